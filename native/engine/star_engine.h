// star_engine.h: a framework-free native host for STAR-VAE ONNX stream graphs.
//
// The engine reads an export directory written by `star export` (manifest.json +
// encoder_stream.onnx + decoder_stream.onnx) and runs it block by block through ONNX Runtime's
// C/C++ API, exactly like the Python reference `OnnxVAE.streamer()` (export/runtime.py):
//
//   * every state is discovered from manifest.json (name, shape at batch 1, batch multiple,
//     dtype) and fed back state_out.X -> state_in.X, so a model with a new state needs no
//     change here;
//   * incomplete hops are buffered here; the encoder runs only on whole hops (the manifest's
//     pending-sample state `input` is fed empty), the decoder on the frames it returns;
//   * the first `synthesis_delay` decoder samples ever produced are dropped, and a FIFO primed
//     with `latency_samples` zeros hands out exactly as many samples as came in;
//   * any host block size (blocks above `max_block` are split), 1..kMaxChannels channels
//     (a mono model runs each channel as one batch row; a stereo model takes channel pairs,
//     a mono host signal is duplicated to a pair and folded back by the mean);
//   * NaN/Inf input samples become 0 and |x| is clamped to 1e4 (as star_plugin.guard does).
//
// Real-time safety: every buffer and every ORT tensor view (for each possible frame count) is
// created in the constructor; process() does no file I/O and no allocation of its own (ONNX
// Runtime's Run may allocate internally). One Engine must not be used from two threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace star {

// Every error the engine raises: one line, naming the file or value at fault.
class EngineError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr int kMaxChannels = 8;
constexpr int kMaxBlock = 8192;

struct EngineConfig {
  int channels = 1;          // host channels, 1..kMaxChannels
  int max_block = kMaxBlock;  // longest block processed in one piece (longer ones are split)
  int threads = 1;           // ONNX Runtime intra-op threads
};

// The model facts from manifest.json's "model" section.
struct ModelInfo {
  std::string name;
  std::string family;
  std::string backbone;
  std::string producer_version;  // star_plugin version that exported it
  int sample_rate = 0;
  int hop = 0;
  int latency_samples = 0;
  int synthesis_delay = 0;
  int audio_channels = 0;
  int latent_channels = 0;
  int structure_channels = 0;
  int tail_samples = 0;  // output after the input ends, beyond the latency (0: not measured)
};

// One streaming state as the engine holds it (shape with the batch applied).
struct StateInfo {
  std::string graph;  // "encoder_stream" or "decoder_stream"
  std::string name;   // manifest name, e.g. "decoder.8.phase" (graph I/O: state_in./state_out.)
  std::string dtype;  // "float32" or "float64"
  std::vector<int64_t> shape;
  bool pending_buffer = false;  // a 0-length dynamic axis (the encoder's `input`): fed empty
};

// What the frame-wise morph moves towards (star_plugin.morph.MorphParams' numeric fields).
// Changes glide frame by frame (one pole, the manifest's smoothing_s), exactly like the Python
// LatentMorph. The formula itself is the export's morph graph (morph.onnx).
struct MorphTargets {
  float structure_amount = 0.0f;  // 0..1: how much of the texture source's structure
  float texture_amount = 1.0f;    // 0..1: how much of the texture source's texture
  float temperature = 0.0f;       // >= 0: resample the texture channels around the posterior
};

// Which texture source frame latent frame i uses (star_plugin.morph's modes; 'match' is not
// implemented natively).
enum class SourceMode { Loop, Hold, Mean };

// What a host drives block by block. Engine (model rate, on the calling thread) is one; the
// wrappers that resample to a host rate or move the work to a worker thread are others, so
// they stack (threaded over resampled over Engine) behind one interface.
class BlockProcessor {
 public:
  virtual ~BlockProcessor() = default;
  virtual int channels() const = 0;
  virtual int sample_rate() const = 0;     // the rate process() takes and returns
  virtual int latency_samples() const = 0;  // the output trails the input by exactly this
  virtual int max_block() const = 0;        // the longest block process() accepts
  virtual void reset() = 0;                 // back to silence (not for the audio thread)
  // Planar float blocks: input[c][0..samples) -> output[c][0..samples), c < channels().
  virtual void process(const float* const* input, float* const* output, int samples) = 0;
};

class Engine : public BlockProcessor {
 public:
  // Loads and checks MODEL_DIR/manifest.json and the two stream graphs; throws EngineError.
  explicit Engine(const std::string& model_dir, const EngineConfig& config = EngineConfig());
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const ModelInfo& model() const;
  const std::vector<StateInfo>& states() const;
  int latency_samples() const override;  // the output trails the input by exactly this
  int sample_rate() const override;  // the model's rate, the only one process() accepts
  int channels() const override;     // host channels
  int max_block() const override;    // longer blocks are split, so any length is accepted

  // Back to the state of silence (zero states, empty hop buffer, FIFO primed with zeros).
  void reset() override;

  // Any samples >= 0; output may alias input (in place).
  void process(const float* const* input, float* const* output, int samples) override;

  // The same stream without the latency FIFO (for wrappers with their own delay line, such as
  // ResampledEngine): the decoded samples as soon as hops complete, the first synthesis_delay
  // ever dropped (StreamingEngine._model_block). Writes output[c][0..k) and returns k <=
  // samples + hop - 1; a capacity below k throws EngineError before anything runs. Do not mix
  // with process() between two reset() calls.
  int process_aligned(const float* const* input, int samples, float* const* output, int capacity);

  // ---- the morph (needs the export's morph graph; without one these are accepted and inert)
  bool has_morph() const;
  // New targets; they glide there frame by frame. Real-time safe, and safe from any thread
  // (each target is an atomic), also while another thread runs process().
  void set_morph(const MorphTargets& targets);
  MorphTargets morph_targets() const;
  // The texture source: latent frames, channel-major (latent_channels x frames), e.g. from
  // encode_texture(). Copies and allocates, so call it off the audio thread; it may run while
  // another thread is inside process(): the new source is handed over by pointer swaps and
  // used from the next latent frame on. The source it replaces is freed by the next
  // set_texture/clear_texture/release_retired_texture call (never on the processing thread).
  void set_texture(const std::vector<float>& latent, int frames, SourceMode mode = SourceMode::Loop);
  void clear_texture();
  void release_retired_texture();
  int texture_frames() const;  // of the latest set_texture; 0: none (the amounts do nothing)
  // Mono audio at the model rate -> its latent mean (latent_channels x frames, channel-major)
  // through the export's offline encoder graph (encoder.onnx), like OnnxVAE.encode. Loads that
  // graph on first use and allocates: off the audio thread only.
  std::vector<float> encode_texture(const float* audio, int samples, int* frames);

  // Input samples replaced (NaN/Inf) or clamped (|x| > 1e4) since construction.
  uint64_t sanitized_samples() const;

  // ONNX Runtime version string of the library actually loaded.
  static std::string runtime_version();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace star
