// The STAR VST3 plugin: star::Engine in a JUCE AudioProcessor.
//
// Audio path per block (host thread, no allocation, no file I/O):
//   dry  = input delayed by latency_samples (so dry and wet line up)
//   wet  = star::Engine::process(input)                 (latency_samples late)
//   out  = g_wet * wet + g_dry * dry,   g_wet = mix * gain, g_dry = (1 - mix) * gain
// A changed mix/gain ramps linearly over the block, exactly like the Python engine's
// StreamingEngine._mix_output, so automation never clicks.
//
// Structure amount, texture amount and temperature drive the frame-wise morph: the export's
// morph graph (morph.onnx, the same graph the Python ONNX engine runs), between the encoder
// and decoder stream graphs. The engine glides each change frame by frame (one pole, 50 ms),
// like the Python LatentMorph. The texture source is a sound file, encoded once by the
// export's offline encoder graph when the engine is (re)built (never on the audio thread):
// $STAR_TEXTURE (a WAV file) when set, else the bundled
// STAR.vst3/Contents/Resources/textures/texture.wav (the example texture, used when it is at
// the model's rate). Without a texture source the amounts have
// no effect (as in Python); temperature still acts.
//
// The model: $STAR_MODEL_DIR when set, else STAR.vst3/Contents/Resources/model. The engine is
// (re)built off the audio thread in prepareToPlay when the channel count or block size
// changes. A host rate other than the model's is refused: the plugin then passes the input
// through, delayed by the reported latency (the reason is kept in status(); the generic editor
// does not show it yet).
#include <juce_audio_processors/juce_audio_processors.h>
#include <juce_audio_utils/juce_audio_utils.h>

#include <dlfcn.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "star_engine.h"
#include "wav.h"

namespace {

juce::File bundled_model_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&bundled_model_dir), &info) == 0 || !info.dli_fname)
    return {};
  // .../STAR.vst3/Contents/x86_64-linux/STAR.so -> .../STAR.vst3/Contents/Resources/model
  return juce::File(info.dli_fname).getParentDirectory().getParentDirectory()
      .getChildFile("Resources").getChildFile("model");
}

juce::File bundled_texture() {
  const juce::File dir = bundled_model_dir().getParentDirectory().getChildFile("textures");
  const juce::File wav = dir.getChildFile("texture.wav");
  return wav.existsAsFile() ? wav : juce::File();
}

juce::File texture_file() {
  if (const char* env = std::getenv("STAR_TEXTURE"); env != nullptr && *env != '\0')
    return juce::File(juce::String(env));
  return bundled_texture();
}

juce::File model_dir() {
  if (const char* env = std::getenv("STAR_MODEL_DIR"); env != nullptr && *env != '\0')
    return juce::File(juce::String(env));
  return bundled_model_dir();
}

float db_to_gain(float db) { return std::pow(10.0f, db / 20.0f); }

}  // namespace

class StarProcessor : public juce::AudioProcessor {
 public:
  StarProcessor()
      : AudioProcessor(BusesProperties()
                           .withInput("Input", juce::AudioChannelSet::stereo(), true)
                           .withOutput("Output", juce::AudioChannelSet::stereo(), true)),
        parameters_(*this, nullptr, "STAR", layout()) {
    structure_ = parameters_.getRawParameterValue("structure_amount");
    texture_ = parameters_.getRawParameterValue("texture_amount");
    temperature_ = parameters_.getRawParameterValue("temperature");
    mix_ = parameters_.getRawParameterValue("mix");
    gain_db_ = parameters_.getRawParameterValue("output_gain");
    // Load once now so the host sees the latency before prepareToPlay.
    load_engine(2, star::kMaxBlock);
  }

  static juce::AudioProcessorValueTreeState::ParameterLayout layout() {
    using juce::AudioParameterFloat;
    using juce::NormalisableRange;
    using juce::ParameterID;
    auto decimals = [](int places, const char* label) {
      return juce::AudioParameterFloatAttributes()
          .withLabel(label)
          .withStringFromValueFunction([places](float v, int) { return juce::String(v, places); })
          .withValueFromStringFunction([](const juce::String& t) { return t.getFloatValue(); });
    };
    juce::AudioProcessorValueTreeState::ParameterLayout l;
    l.add(std::make_unique<AudioParameterFloat>(ParameterID{"structure_amount", 1},
                                                "Structure Amount",
                                                NormalisableRange<float>(0.f, 1.f), 0.f,
                                                decimals(2, "")));
    l.add(std::make_unique<AudioParameterFloat>(ParameterID{"texture_amount", 1},
                                                "Texture Amount",
                                                NormalisableRange<float>(0.f, 1.f), 0.f,
                                                decimals(2, "")));
    l.add(std::make_unique<AudioParameterFloat>(ParameterID{"temperature", 1}, "Temperature",
                                                NormalisableRange<float>(0.f, 2.f), 0.f,
                                                decimals(2, "")));
    l.add(std::make_unique<AudioParameterFloat>(ParameterID{"mix", 1}, "Mix",
                                                NormalisableRange<float>(0.f, 1.f), 1.f,
                                                decimals(2, "")));
    l.add(std::make_unique<AudioParameterFloat>(ParameterID{"output_gain", 1}, "Output Gain",
                                                NormalisableRange<float>(-24.f, 24.f), 0.f,
                                                decimals(1, "dB")));
    return l;
  }

  // ---------------------------------------------------------------- AudioProcessor
  const juce::String getName() const override { return "STAR"; }
  bool acceptsMidi() const override { return false; }
  bool producesMidi() const override { return false; }
  double getTailLengthSeconds() const override {
    return engine_ ? double(engine_->latency_samples()) / engine_->sample_rate() : 0.0;
  }
  int getNumPrograms() override { return 1; }
  int getCurrentProgram() override { return 0; }
  void setCurrentProgram(int) override {}
  const juce::String getProgramName(int) override { return "Default"; }
  void changeProgramName(int, const juce::String&) override {}

  bool isBusesLayoutSupported(const BusesLayout& layouts) const override {
    const auto& out = layouts.getMainOutputChannelSet();
    if (out != juce::AudioChannelSet::mono() && out != juce::AudioChannelSet::stereo())
      return false;
    return layouts.getMainInputChannelSet() == out;
  }

  void prepareToPlay(double sample_rate, int block) override {
    const int channels = juce::jmax(1, getTotalNumOutputChannels());
    const int max_block = juce::jlimit(1, star::kMaxBlock, block);
    if (!engine_ || engine_->channels() != channels || engine_->max_block() < max_block)
      load_engine(channels, juce::jmax(max_block, 512));
    rate_ok_ = engine_ && std::lround(sample_rate) == engine_->sample_rate();
    if (engine_ && !rate_ok_)
      status_ = "host rate " + juce::String(sample_rate) + " Hz: model '" +
                juce::String(engine_->model().name) + "' runs at " +
                juce::String(engine_->sample_rate()) +
                " Hz only; passing audio through (set the session to the model's rate)";
    else if (engine_)
      status_ = "model '" + juce::String(engine_->model().name) + "', latency " +
                juce::String(engine_->latency_samples()) + " samples";
    reset_streams();
  }

  void releaseResources() override {}

  void reset() override { reset_streams(); }

  using AudioProcessor::processBlock;  // the double-precision overload stays JUCE's
  void processBlock(juce::AudioBuffer<float>& buffer, juce::MidiBuffer&) override {
    juce::ScopedNoDenormals no_denormals;
    const int n = buffer.getNumSamples();
    const int channels = juce::jmin(buffer.getNumChannels(), star::kMaxChannels);
    if (n == 0) return;
    if (!engine_ || engine_->channels() != channels || scratch_.getNumSamples() == 0) {
      buffer.clear();  // unprepared or an unexpected layout: silence, never garbage
      return;
    }
    for (int done = 0; done < n;) {
      const int m = juce::jmin(n - done, chunk_);
      float* io[star::kMaxChannels];
      for (int c = 0; c < channels; ++c) io[c] = buffer.getWritePointer(c, done);
      run_chunk(io, channels, m);
      done += m;
    }
  }

  // ---------------------------------------------------------------- state and editor
  bool hasEditor() const override { return true; }
  juce::AudioProcessorEditor* createEditor() override {
    return new juce::GenericAudioProcessorEditor(*this);
  }
  void getStateInformation(juce::MemoryBlock& data) override {
    if (auto xml = parameters_.copyState().createXml()) copyXmlToBinary(*xml, data);
  }
  void setStateInformation(const void* data, int size) override {
    if (auto xml = getXmlFromBinary(data, size))
      if (xml->hasTagName(parameters_.state.getType()))
        parameters_.replaceState(juce::ValueTree::fromXml(*xml));
  }

  juce::String status() const { return status_ + "; " + texture_status_; }

 private:
  void load_engine(int channels, int max_block) {
    const juce::File dir = model_dir();
    try {
      star::EngineConfig config;
      config.channels = channels;
      config.max_block = max_block;
      config.threads = 1;
      engine_ = std::make_unique<star::Engine>(dir.getFullPathName().toStdString(), config);
      latency_ = engine_->latency_samples();
      setLatencySamples(latency_);
      chunk_ = max_block;
      scratch_.setSize(channels, chunk_);
      dry_.setSize(channels, juce::jmax(1, latency_));
      status_ = "model '" + juce::String(engine_->model().name) + "' loaded";
      load_texture();
    } catch (const std::exception& e) {
      engine_.reset();
      scratch_.setSize(0, 0);
      status_ = juce::String("no model: ") + e.what();
      DBG(status_);
    }
  }

  // The texture source: a WAV file (native/cli/wav.h), averaged to mono, encoded by the export's
  // offline encoder graph. Runs where the engine is built (constructor, prepareToPlay).
  void load_texture() {
    texture_status_ = "no texture source";
    const juce::File file = texture_file();
    if (file == juce::File() || !engine_) return;
    wav::Audio audio;
    try {
      audio = wav::read(file.getFullPathName().toStdString());
    } catch (const std::exception& e) {
      texture_status_ = juce::String("texture: ") + e.what();
      return;
    }
    if (audio.sample_rate != engine_->sample_rate()) {
      texture_status_ = "texture '" + file.getFileName() + "' is " +
                        juce::String(audio.sample_rate) + " Hz; the model runs at " +
                        juce::String(engine_->sample_rate()) + " Hz";
      return;
    }
    const int n = int(audio.frames());
    std::vector<float> mono(size_t(juce::jmax(1, n)), 0.0f);
    for (int i = 0; i < n; ++i) {
      float sum = 0.0f;
      for (const auto& channel : audio.channels) sum += channel[size_t(i)];
      mono[size_t(i)] = sum / float(audio.channels.size());
    }
    try {
      int frames = 0;
      std::vector<float> latent = engine_->encode_texture(mono.data(), n, &frames);
      engine_->set_texture(latent, frames);
      texture_status_ = "texture '" + file.getFileName() + "' (" + juce::String(frames) +
                        " frames)";
    } catch (const std::exception& e) {
      texture_status_ = juce::String("texture: ") + e.what();
    }
  }

  void push_morph() {
    star::MorphTargets t;
    t.structure_amount = structure_->load();
    t.texture_amount = texture_->load();
    t.temperature = temperature_->load();
    engine_->set_morph(t);
  }

  void reset_streams() {
    if (engine_) {
      push_morph();  // the smoothed controls start at the current values
      engine_->reset();
    }
    dry_.clear();
    dry_pos_ = 0;
    gains_[0] = target_wet();
    gains_[1] = target_dry();
  }

  float target_wet() const { return mix_->load() * db_to_gain(gain_db_->load()); }
  float target_dry() const { return (1.0f - mix_->load()) * db_to_gain(gain_db_->load()); }

  void run_chunk(float* const* io, int channels, int m) {
    // 1. the dry signal, delayed by the latency, into scratch (and the input kept in dry_)
    for (int c = 0; c < channels; ++c) {
      float* ring = dry_.getWritePointer(c);
      float* delayed = scratch_.getWritePointer(c);
      int pos = dry_pos_;
      for (int i = 0; i < m; ++i) {
        if (latency_ == 0) {
          delayed[i] = io[c][i];
          continue;
        }
        delayed[i] = ring[pos];
        ring[pos] = io[c][i];
        if (++pos == latency_) pos = 0;
      }
    }
    if (latency_ > 0) dry_pos_ = (dry_pos_ + m) % latency_;
    // 2. wet in place (or the delayed dry when the rate is refused)
    if (rate_ok_) {
      push_morph();  // targets only: the engine glides there frame by frame
      engine_->process(io, io, m);
    } else {
      for (int c = 0; c < channels; ++c) std::copy(scratch_.getReadPointer(c),
                                                    scratch_.getReadPointer(c) + m, io[c]);
    }
    // 3. mix and gain, ramped over the chunk when they changed
    const float wet = rate_ok_ ? target_wet() : db_to_gain(gain_db_->load());
    const float dry = rate_ok_ ? target_dry() : 0.0f;
    const float w0 = gains_[0], d0 = gains_[1];
    const bool steady = wet == w0 && dry == d0;
    if (steady && wet == 1.0f && dry == 0.0f) return;
    for (int c = 0; c < channels; ++c) {
      float* y = io[c];
      const float* delayed = scratch_.getReadPointer(c);
      for (int i = 0; i < m; ++i) {
        float t = steady ? 1.0f : float(i + 1) / float(m);
        float gw = w0 + (wet - w0) * t, gd = d0 + (dry - d0) * t;
        y[i] = gw * y[i] + gd * delayed[i];
      }
    }
    gains_[0] = wet;
    gains_[1] = dry;
  }

  juce::AudioProcessorValueTreeState parameters_;
  std::atomic<float>* structure_ = nullptr;
  std::atomic<float>* texture_ = nullptr;
  std::atomic<float>* temperature_ = nullptr;
  std::atomic<float>* mix_ = nullptr;
  std::atomic<float>* gain_db_ = nullptr;
  std::unique_ptr<star::Engine> engine_;
  juce::AudioBuffer<float> scratch_, dry_;
  int dry_pos_ = 0, latency_ = 0, chunk_ = star::kMaxBlock;
  bool rate_ok_ = false;
  float gains_[2] = {1.0f, 0.0f};
  juce::String status_, texture_status_;

  JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(StarProcessor)
};

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter() { return new StarProcessor(); }
