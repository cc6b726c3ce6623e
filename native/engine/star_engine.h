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

class Engine {
 public:
  // Loads and checks MODEL_DIR/manifest.json and the two stream graphs; throws EngineError.
  explicit Engine(const std::string& model_dir, const EngineConfig& config = EngineConfig());
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const ModelInfo& model() const;
  const std::vector<StateInfo>& states() const;
  int latency_samples() const;  // the output trails the input by exactly this many samples
  int sample_rate() const;      // the only rate process() accepts (the host resamples)
  int channels() const;         // host channels
  int max_block() const;

  // Back to the state of silence (zero states, empty hop buffer, FIFO primed with zeros).
  void reset();

  // Planar float blocks: input[c][0..samples) -> output[c][0..samples), c < channels().
  // Any samples >= 0; output may alias input (in place).
  void process(const float* const* input, float* const* output, int samples);

  // ---- the morph (needs the export's morph graph; without one these are accepted and inert)
  bool has_morph() const;
  // New targets; they glide there frame by frame. Real-time safe (call before process()).
  void set_morph(const MorphTargets& targets);
  const MorphTargets& morph_targets() const;
  // The texture source: latent frames, channel-major (latent_channels x frames), e.g. from
  // encode_texture(). Copies and allocates: call off the audio thread, never during process().
  void set_texture(const std::vector<float>& latent, int frames, SourceMode mode = SourceMode::Loop);
  void clear_texture();
  int texture_frames() const;  // 0: no texture source (the amounts then have no effect)
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
