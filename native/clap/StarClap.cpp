// The STAR CLAP plugin: star::ResampledEngine in a DISTRHO Plugin Framework (DPF) plugin,
// built as a .clap by native/clap/CMakeLists.txt (Debian's dpf-source; DPF vendors the CLAP
// headers). The same engine and the same audio rule as the VST3 (native/plugin):
//
//   dry  = input delayed by latency_samples (so dry and wet line up)
//   wet  = ResampledEngine::process(input)               (latency_samples late)
//   out  = g_wet * wet + g_dry * dry,   g_wet = mix * gain, g_dry = (1 - mix) * gain
// with a linear ramp over the chunk when mix/gain changed (star_mix.h, the VST3's run_chunk,
// the Python StreamingEngine._mix_output).
//
// Parameters (CLAP ids 0..4, DPF symbols): structure_amount 0..1 (0), texture_amount 0..1 (0),
// temperature 0..2 (0), mix 0..1 (1), output_gain -24..24 dB (0). The three morph amounts are
// the export's morph graph's targets; each change glides frame by frame inside the engine.
//
// The model: $STAR_MODEL_DIR when set, else the folder `model` beside the .clap file (found
// with dladdr; DPF 1.6 builds a single-file .clap on Linux). The texture source: the WAV file
// $STAR_TEXTURE when set (resampled to the model's rate, encoded by the export's offline
// encoder graph). Both are loaded in activate() (the CLAP main thread, at the host's rate and
// maximum block), never in process(): run() allocates nothing and does no file I/O. A rate
// outside 8..384 kHz or a model that cannot load leaves the plugin passing its input through
// (times the output gain, no latency) and says why on stderr.
//
// Channels: DPF fixes them at compile time, so this is a stereo plugin (two independent rows
// for a mono model; the pair for a stereo model). A mono track feeds both inputs.
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "DistrhoPlugin.hpp"
#include "star_mix.h"
#include "star_parameters.h"
#include "star_resample.h"
#include "wav.h"

#ifndef STAR_VERSION_MAJOR
#define STAR_VERSION_MAJOR 0
#define STAR_VERSION_MINOR 0
#define STAR_VERSION_PATCH 0
#endif

START_NAMESPACE_DISTRHO

namespace {

using star::kGain;
using star::kMix;
using star::kParameterCount;
using star::kStructure;
using star::kTemperature;
using star::kTexture;
using star::ParameterSpec;
constexpr const ParameterSpec* kSpecs = star::kParameters;  // shared with the VST3

constexpr int kChannels = DISTRHO_PLUGIN_NUM_INPUTS;

// The folder holding this .clap (its model sits beside it).
std::string plugin_folder() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&plugin_folder), &info) == 0 || !info.dli_fname) return ".";
  std::string path = info.dli_fname;
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::string(value) : std::string();
}

std::string model_dir() {
  const std::string dir = env("STAR_MODEL_DIR");
  return dir.empty() ? plugin_folder() + "/model" : dir;
}

}  // namespace

class StarClapPlugin : public Plugin {
 public:
  StarClapPlugin() : Plugin(kParameterCount, 0, 0) {
    for (uint32_t i = 0; i < kParameterCount; ++i) values_[i].store(kSpecs[i].def);
  }

 protected:
  // ---------------------------------------------------------------------------- information
  const char* getLabel() const override { return "STAR"; }
  const char* getDescription() const override { return "STAR-VAE latent effect"; }
  const char* getMaker() const override { return "star-plugin"; }
  const char* getLicense() const override { return "MIT"; }
  uint32_t getVersion() const override {
    return d_version(STAR_VERSION_MAJOR, STAR_VERSION_MINOR, STAR_VERSION_PATCH);
  }
  int64_t getUniqueId() const override { return d_cconst('S', 't', 'r', 'C'); }

  void initAudioPort(bool input, uint32_t index, AudioPort& port) override {
    port.groupId = kPortGroupStereo;
    Plugin::initAudioPort(input, index, port);
  }

  void initParameter(uint32_t index, Parameter& parameter) override {
    if (index >= kParameterCount) return;
    const ParameterSpec& spec = kSpecs[index];
    parameter.hints = kParameterIsAutomatable;
    parameter.name = spec.name;
    parameter.symbol = spec.id;
    parameter.unit = spec.unit;
    parameter.ranges.min = spec.min;
    parameter.ranges.max = spec.max;
    parameter.ranges.def = spec.def;
  }

  // Any thread (DPF applies the host's events on the audio thread before run()).
  float getParameterValue(uint32_t index) const override {
    return index < kParameterCount ? values_[index].load() : 0.0f;
  }
  void setParameterValue(uint32_t index, float value) override {
    if (index >= kParameterCount) return;
    values_[index].store(std::min(kSpecs[index].max, std::max(kSpecs[index].min, value)));
  }

  // ---------------------------------------------------------------------------- set-up
  // The CLAP main thread, the plugin inactive: load the model at the host's rate (again only
  // when the rate or the maximum block changed), the texture, the mix's delay line.
  void activate() override {
    const double rate = getSampleRate();
    const long host_rate = std::lround(rate);
    const int max_block = int(std::min<uint32_t>(star::kMaxBlock, std::max(1u, getBufferSize())));
    rate_ok_ = host_rate >= star::kMinHostRate && host_rate <= star::kMaxHostRate &&
               double(host_rate) == rate;
    if (!rate_ok_) {
      d_stderr2("STAR: host rate %.3f Hz is outside %d..%d Hz: passing audio through", rate,
                star::kMinHostRate, star::kMaxHostRate);
      engine_.reset();
    } else if (!engine_ || engine_rate_ != int(host_rate) || engine_block_ < max_block) {
      engine_.reset();
      try {
        star::EngineConfig config;
        config.channels = kChannels;
        config.max_block = std::max(512, max_block);  // fewer, larger graph runs per block
        config.threads = 1;
        engine_ = std::make_unique<star::ResampledEngine>(model_dir(), int(host_rate), config);
        engine_rate_ = int(host_rate);
        engine_block_ = max_block;
        load_texture();
      } catch (const std::exception& e) {
        d_stderr2("STAR: no model: %s", e.what());
        engine_.reset();
      }
    }
    const int latency = engine_ ? engine_->latency_samples() : 0;
    chunk_ = engine_ ? std::min(engine_->max_block(), star::kMaxBlock) : star::kMaxBlock;
    mix_.prepare(kChannels, chunk_, latency);
    for (auto& buffer : work_) buffer.assign(size_t(chunk_), 0.0f);
    setLatency(uint32_t(latency));
    reset_streams();
  }

  // ---------------------------------------------------------------------------- audio
  // The audio thread: no allocation, no file I/O. inputs and outputs may alias.
  void run(const float** inputs, float** outputs, uint32_t frames) override {
    for (uint32_t done = 0; done < frames;) {
      const int m = int(std::min<uint32_t>(frames - done, uint32_t(chunk_)));
      float* io[kChannels];
      const float* in[kChannels];
      for (int c = 0; c < kChannels; ++c) {
        io[c] = work_[size_t(c)].data();
        in[c] = inputs[c] + done;
        std::copy(in[c], in[c] + m, io[c]);
      }
      run_chunk(io, m);
      for (int c = 0; c < kChannels; ++c) std::copy(io[c], io[c] + m, outputs[c] + done);
      done += uint32_t(m);
    }
  }

 private:
  float target_wet() const { return values_[kMix].load() * star::db_to_gain(values_[kGain].load()); }
  float target_dry() const {
    return (1.0f - values_[kMix].load()) * star::db_to_gain(values_[kGain].load());
  }

  void push_morph() {
    star::MorphTargets t;
    t.structure_amount = values_[kStructure].load();
    t.texture_amount = values_[kTexture].load();
    t.temperature = values_[kTemperature].load();
    engine_->engine().set_morph(t);
  }

  void reset_streams() {
    if (engine_) {
      push_morph();  // the smoothed controls start at the current values
      engine_->reset();
      mix_.reset(target_wet(), target_dry());
    } else {
      mix_.reset(star::db_to_gain(values_[kGain].load()), 0.0f);
    }
  }

  // $STAR_TEXTURE, encoded at the model's rate (the main thread, from activate()).
  void load_texture() {
    const std::string path = env("STAR_TEXTURE");
    star::Engine& engine = engine_->engine();
    if (path.empty()) {
      engine.clear_texture();
      return;
    }
    try {
      const wav::Audio audio = wav::read(path);
      if (audio.frames() == 0) throw std::runtime_error("'" + path + "' has no samples");
      const std::vector<float> mono =
          star::resample_mono(wav::mono(audio), audio.sample_rate, engine.sample_rate());
      int frames = 0;
      const std::vector<float> latent = engine.encode_texture(mono.data(), int(mono.size()),
                                                              &frames);
      engine.set_texture(latent, frames);
      engine.release_retired_texture();
    } catch (const std::exception& e) {
      d_stderr2("STAR: texture: %s", e.what());
      engine.clear_texture();
    }
  }

  void run_chunk(float* const* io, int m) {
    mix_.push_dry(io, m);  // 1. the dry signal, delayed by the latency
    if (engine_) {         // 2. wet in place
      push_morph();        // targets only: the engine glides there frame by frame
      engine_->process(io, io, m);
      mix_.mix(io, m, target_wet(), target_dry());  // 3. mix and gain, ramped
    } else {
      mix_.mix(io, m, star::db_to_gain(values_[kGain].load()), 0.0f);  // pass-through
    }
  }

  std::atomic<float> values_[kParameterCount];
  std::unique_ptr<star::ResampledEngine> engine_;
  int engine_rate_ = 0, engine_block_ = 0, chunk_ = star::kMaxBlock;
  bool rate_ok_ = false;
  star::DryWetMix mix_;
  std::vector<float> work_[kChannels];

  DISTRHO_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(StarClapPlugin)
};

Plugin* createPlugin() { return new StarClapPlugin(); }

END_NAMESPACE_DISTRHO
