// The STAR VST3 plugin's processor: star::Engine (optionally behind star::ThreadedEngine) in a
// JUCE AudioProcessor. See StarProcessor.cpp for the audio path, StarEditor.cpp for the editor.
#pragma once

#include <juce_audio_processors/juce_audio_processors.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "star_engine.h"
#include "star_mix.h"
#include "star_threaded.h"

// What the processor runs: the model engine at the host rate (star::ResampledEngine), optionally
// behind the worker-thread wrapper.
struct StarChain {
  std::unique_ptr<star::BlockProcessor> processor;  // what processBlock calls
  star::Engine* engine = nullptr;                   // inside processor: morph and texture
  star::ThreadedEngine* threaded = nullptr;         // inside processor, when worker mode is on
  int channels = 0, max_block = 0;  // max_block: the longest block processor takes
  int host_rate = 0;
  bool worker = false, resampling = false;
};

class StarProcessor : public juce::AudioProcessor,
                      private juce::AudioProcessorValueTreeState::Listener {
 public:
  StarProcessor();
  ~StarProcessor() override;

  static juce::AudioProcessorValueTreeState::ParameterLayout layout();

  // ---------------------------------------------------------------- AudioProcessor
  const juce::String getName() const override { return "STAR"; }
  bool acceptsMidi() const override { return false; }
  bool producesMidi() const override { return false; }
  double getTailLengthSeconds() const override;
  int getNumPrograms() override { return 1; }
  int getCurrentProgram() override { return 0; }
  void setCurrentProgram(int) override {}
  const juce::String getProgramName(int) override { return "Default"; }
  void changeProgramName(int, const juce::String&) override {}
  bool isBusesLayoutSupported(const BusesLayout& layouts) const override;
  void prepareToPlay(double sample_rate, int block) override;
  void releaseResources() override {}
  void reset() override;
  using AudioProcessor::processBlock;  // the double-precision overload stays JUCE's
  void processBlock(juce::AudioBuffer<float>& buffer, juce::MidiBuffer&) override;
  bool hasEditor() const override { return true; }
  juce::AudioProcessorEditor* createEditor() override;
  void getStateInformation(juce::MemoryBlock& data) override;
  void setStateInformation(const void* data, int size) override;

  // ---------------------------------------------------------------- for the editor
  juce::AudioProcessorValueTreeState& parameters() { return parameters_; }
  // One line per fact: the model and latency, the host rate, the texture, the worker thread.
  juce::StringArray status() const;
  // The "File" texture source: remembered in the session; loaded off the audio thread.
  void set_texture_file(const juce::File& file);
  juce::File texture_file() const;
  static juce::StringArray texture_choices();  // "Off", the bundled textures, "File"

 private:
  void parameterChanged(const juce::String& id, float value) override;
  StarChain build_chain(int channels, int max_block, bool worker, int host_rate) const;
  void adopt_chain(StarChain chain);
  void service_loop();
  void service_pending();  // rebuild / load what the parameters ask for (never the audio thread)
  void sync_texture();
  void load_texture(int choice);
  void push_morph(star::Engine& engine) const;
  void describe_chain();
  void reset_streams();
  float target_wet() const;
  float target_dry() const;
  void run_chunk(float* const* io, int channels, int m);

  juce::AudioProcessorValueTreeState parameters_;
  std::atomic<float>* structure_ = nullptr;
  std::atomic<float>* texture_ = nullptr;
  std::atomic<float>* temperature_ = nullptr;
  std::atomic<float>* mix_amount_ = nullptr;
  std::atomic<float>* gain_db_ = nullptr;
  std::atomic<float>* texture_source_ = nullptr;
  std::atomic<float>* worker_ = nullptr;

  StarChain chain_;  // swapped while the audio thread cannot run (prepare) or by it (handover)
  star::DryWetMix mix_;  // the dry delay line and the ramped mix/gain (star_mix.h)
  int latency_ = 0, chunk_ = star::kMaxBlock;

  // A chain the service thread built while playing (a Worker Thread switch): the audio thread
  // swaps it in at a block boundary (pointer and vector swaps only, under try_lock) and hands
  // the old one back for the service thread to free. Hosts that never re-prepare a plugin
  // (JUCE's LV2 client) get the switch this way too.
  struct Handover {
    StarChain chain;
    star::DryWetMix mix;
    int latency = 0, chunk = 0;
  };
  std::unique_ptr<Handover> pending_, retired_;  // guarded by service_mutex_
  std::atomic<bool> handover_ready_{false};
  void take_handover();  // the audio thread
  double host_rate_ = 0.0;
  bool rate_ok_ = false, prepared_ = false;
  bool was_offline_ = false;  // the audio thread's: the last block's isNonRealtime()

  // The service thread: texture loads and worker-mode rebuilds, off the audio thread.
  mutable std::mutex service_mutex_;  // guards chain_ swaps, texture state, status strings
  std::condition_variable service_wake_;
  std::thread service_;
  bool stop_service_ = false;
  std::atomic<int> texture_generation_{0};  // bumped by every texture request
  std::atomic<int> texture_loaded_generation_{-1};
  std::atomic<bool> rebuild_wanted_{false};
  juce::File user_texture_;
  juce::String model_status_, texture_status_;
  mutable juce::StringArray last_status_;  // status() while the service thread is busy

  JUCE_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(StarProcessor)
};
