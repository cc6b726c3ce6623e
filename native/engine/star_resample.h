// star_resample.h: star::Engine at any host sample rate (8 kHz .. 384 kHz), like the Python
// StreamingEngine (star_plugin/engine.py) with backend="onnx".
//
//   host block (channels, n) at the host rate
//     -> NaN/Inf replaced by 0, |x| clamped to 1e4 (before the resampler, as in Python)
//     -> libsoxr stream to the model rate (linear-phase "LQ", float32: python-soxr's
//        ResampleStream(host, model, channels, dtype="float32", quality="LQ"))
//     -> Engine::process_aligned: the model's aligned output, synthesis delay dropped, no FIFO
//     -> libsoxr stream back to the host rate
//     -> one FIFO primed with latency_samples() zeros -> n samples out
//
// latency_samples() is computed exactly like StreamingEngine._measure_latency: the chain is
// replayed on silence for kLatencyProbeSeconds in kLatencyProbeBlock-sample host chunks
// (sample counts only), the worst lag + kLatencyProbeBlock + 1. At the model's own rate the
// wrapper is a pass-through to Engine (its latency, its FIFO).
//
// Real-time rules: everything is allocated in the constructor; process() allocates nothing of
// its own and does no I/O. libsoxr (Debian 0.1.3, checked with a counting malloc) allocates in
// soxr_create/soxr_clear (filter design) and, after those, while its internal FIFOs grow to
// the largest block seen (the first blocks after construction or reset()); after that
// soxr_process allocates nothing. ONNX Runtime's Run may allocate internally (see Engine).
// reset() re-designs the filters (soxr_clear): not on the audio thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "star_engine.h"

namespace star {

constexpr int kMinHostRate = 8000;
constexpr int kMaxHostRate = 384000;
constexpr double kLatencyProbeSeconds = 3.0;  // star_plugin.engine.LATENCY_PROBE_S
constexpr int kLatencyProbeBlock = 8;         // the probe's host chunk

class ResampledEngine : public BlockProcessor {
 public:
  // Loads the export (as Engine does) and sets up the resamplers for `host_rate` (kModelRate:
  // the model's own, no resampling); throws EngineError (one line) for a rate outside
  // 8000..384000 or anything Engine refuses.
  static constexpr int kModelRate = 0;
  ResampledEngine(const std::string& model_dir, int host_rate,
                  const EngineConfig& config = EngineConfig());
  ~ResampledEngine() override;
  ResampledEngine(const ResampledEngine&) = delete;
  ResampledEngine& operator=(const ResampledEngine&) = delete;

  int channels() const override;
  int sample_rate() const override;      // the host rate
  int latency_samples() const override;  // host samples; the model's own at the model rate
  int max_block() const override;        // longer blocks are split, so any length is accepted
  void reset() override;                 // states, resamplers, FIFO (not for the audio thread)
  // Planar float, any samples >= 0; output may alias input (in place).
  void process(const float* const* input, float* const* output, int samples) override;

  // The model-rate engine inside: morph targets, texture source (its encode_texture takes
  // audio at the model's rate), model facts.
  Engine& engine();
  const Engine& engine() const;
  int model_rate() const;
  bool resampling() const;  // false at the model's rate (pass-through)
  // Input samples replaced (NaN/Inf) or clamped (|x| > 1e4) since construction.
  uint64_t sanitized_samples() const;
  // Blocks the chain could not fill since the last reset (never, if the latency is right).
  uint64_t underruns() const;

  // What StreamingEngine._measure_latency returns for this chain, without building an
  // engine around it: the model's latency at the model rate.
  static int measure_latency(int host_rate, int model_rate, int hop, int model_latency,
                             int channels = 1);
  static std::string soxr_version();  // libsoxr's own version string

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One-shot mono resampling exactly like star_plugin.audio.resample (soxr "VHQ", linear phase,
// round(n * out / in) samples): for texture files at another rate. Allocates: not real time.
std::vector<float> resample_mono(const std::vector<float>& audio, int in_rate, int out_rate);

}  // namespace star
