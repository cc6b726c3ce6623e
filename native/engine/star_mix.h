// star_mix.h: the plugins' dry/wet mix and output gain, header-only and framework-free.
//
// The rule (the VST3's StarProcessor::run_chunk, the Python StreamingEngine._mix_output):
//   dry  = input delayed by the latency (so dry and wet line up)
//   wet  = the engine's output                          (latency samples late)
//   out  = g_wet * wet + g_dry * dry,   g_wet = mix * gain, g_dry = (1 - mix) * gain
// A changed g_wet/g_dry ramps linearly over the chunk (t = (i + 1) / m), so automation never
// clicks; a steady mix 1 / gain 1 leaves the wet signal untouched.
//
// Use per chunk (m <= max_block): push_dry(input) BEFORE the engine overwrites the buffer in
// place, then mix(io) after it. prepare() allocates (not on the audio thread); push_dry/mix
// allocate nothing and do no I/O.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace star {

inline float db_to_gain(float db) { return std::pow(10.0f, db / 20.0f); }

class DryWetMix {
 public:
  // Sizes the delay line and the delayed-dry scratch; clears them (gains: wet 1, dry 0).
  void prepare(int channels, int max_block, int latency) {
    channels_ = std::max(1, channels);
    max_block_ = std::max(1, max_block);
    latency_ = std::max(0, latency);
    ring_.assign(size_t(channels_), std::vector<float>(size_t(std::max(1, latency_)), 0.0f));
    delayed_.assign(size_t(channels_), std::vector<float>(size_t(max_block_), 0.0f));
    reset();
  }

  // Back to silence in the delay line. Until the next mix() nothing has sounded, so that
  // mix() starts at its own gains without a ramp (a host may set parameters between reset and
  // playback, e.g. an LV2 session's restore).
  void reset() {
    for (auto& ring : ring_) std::fill(ring.begin(), ring.end(), 0.0f);
    pos_ = 0;
    started_ = false;
  }

  int channels() const { return channels_; }
  int max_block() const { return max_block_; }
  int latency() const { return latency_; }

  // Step 1: the input's m samples (m <= max_block) enter the delay line; the dry signal
  // delayed by the latency is kept for mix() (and readable through delayed()).
  void push_dry(const float* const* input, int m) {
    for (int c = 0; c < channels_; ++c) {
      float* ring = ring_[size_t(c)].data();
      float* out = delayed_[size_t(c)].data();
      int pos = pos_;
      for (int i = 0; i < m; ++i) {
        if (latency_ == 0) {
          out[i] = input[c][i];
          continue;
        }
        out[i] = ring[pos];
        ring[pos] = input[c][i];
        if (++pos == latency_) pos = 0;
      }
    }
    if (latency_ > 0) pos_ = (pos_ + m) % latency_;
  }

  const float* delayed(int c) const { return delayed_[size_t(c)].data(); }

  // Step 3: io (the wet signal, m samples) = ramped g_wet * io + ramped g_dry * delayed dry.
  void mix(float* const* io, int m, float wet, float dry) {
    if (!started_) gains_[0] = wet, gains_[1] = dry, started_ = true;
    const float w0 = gains_[0], d0 = gains_[1];
    const bool steady = wet == w0 && dry == d0;
    if (steady && wet == 1.0f && dry == 0.0f) return;
    for (int c = 0; c < channels_; ++c) {
      float* y = io[c];
      const float* delayed = delayed_[size_t(c)].data();
      for (int i = 0; i < m; ++i) {
        float t = steady ? 1.0f : float(i + 1) / float(m);
        float gw = w0 + (wet - w0) * t, gd = d0 + (dry - d0) * t;
        y[i] = gw * y[i] + gd * delayed[i];
      }
    }
    gains_[0] = wet;
    gains_[1] = dry;
  }

 private:
  int channels_ = 1, max_block_ = 1, latency_ = 0, pos_ = 0;
  std::vector<std::vector<float>> ring_, delayed_;
  float gains_[2] = {1.0f, 0.0f};
  bool started_ = false;
};

}  // namespace star
