// STAR.clap: the VST3's and LV2's JUCE processor (StarProcessor) behind a CLAP entry, so the
// three formats are one plugin: mono and stereo, every parameter (Texture Source, Worker
// Thread included), the texture file and the whole state, a real reset.
//
// JUCE 7 has no CLAP client, so this file is the glue (CLAP 1.1 headers: the copy DPF vendors,
// Debian's dpf-source). What maps to what:
//   activate(rate, min, max)   setBusesLayout (the selected ports config), prepareToPlay;
//                              the latency it then reports goes to the host's clap.latency
//   deactivate / reset         releaseResources / AudioProcessor::reset
//   process                    processBlock in place on the output buffers, split at each
//                              parameter event (sample-accurate automation)
//   clap.params                the processor's parameters, id = index, module = the
//                              parameter id ("mix", "texture_source"...), plain values
//   clap.state                 get/setStateInformation (parameters + the texture file path)
//   clap.audio-ports(-config)  one main port in and out; configs "stereo" (1) and "mono" (2)
//   clap.render                offline rendering = AudioProcessor::setNonRealtime
//   clap.tail                  the model's measured tail (getTailLengthSeconds)
// A latency change while active (Worker Thread) asks the host for a restart. Every host
// extension is optional: each is looked up once and checked before use.
#include <juce_audio_processors/juce_audio_processors.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

#include "clap/entry.h"
#include "clap/events.h"
#include "clap/ext/audio-ports.h"
#include "clap/ext/latency.h"
#include "clap/ext/params.h"
#include "clap/ext/state.h"
#include "clap/plugin-factory.h"
#include "clap/plugin.h"
#include "clap/process.h"
#include "clap_extra.h"

namespace {

using clap_extra::PluginPortsConfig;
using clap_extra::PluginRender;
using clap_extra::PluginTail;
using clap_extra::PortsConfig;

constexpr clap_id kStereoConfig = 1, kMonoConfig = 2;

void copy_name(char* dst, const juce::String& text) {
  std::strncpy(dst, text.toRawUTF8(), CLAP_NAME_SIZE - 1);
  dst[CLAP_NAME_SIZE - 1] = '\0';
}

// One plugin instance.
struct Instance : juce::AudioProcessorListener {
  clap_plugin_t clap{};
  const clap_host_t* host;
  const clap_host_latency_t* host_latency = nullptr;
  std::unique_ptr<juce::AudioProcessor> processor;
  juce::Array<juce::AudioProcessorParameter*> params;
  int channels = 2;
  std::atomic<bool> active{false};
  std::atomic<int> reported_latency{0};
  juce::AudioBuffer<float> buffer;  // refers to the host's output buffers, never allocates
  juce::MidiBuffer midi;

  explicit Instance(const clap_host_t* h) : host(h) {}
  ~Instance() override {
    if (processor) processor->removeListener(this);
  }

  static Instance& of(const clap_plugin_t* p) { return *static_cast<Instance*>(p->plugin_data); }

  juce::RangedAudioParameter* param(clap_id id) const {
    return id < clap_id(params.size())
               ? dynamic_cast<juce::RangedAudioParameter*>(params[int(id)]) : nullptr;
  }

  // A parameter event or a flush: the plain value, clamped, as the host automates it.
  void set_param(clap_id id, double value) {
    if (auto* p = param(id)) {
      const auto& range = p->getNormalisableRange();
      const float plain = juce::jlimit(range.start, range.end, float(value));
      p->setValueNotifyingHost(p->convertTo0to1(plain));
    }
  }

  void apply_event(const clap_event_header_t* e) {
    if (e == nullptr || e->space_id != CLAP_CORE_EVENT_SPACE_ID || e->type != CLAP_EVENT_PARAM_VALUE)
      return;
    const auto* v = reinterpret_cast<const clap_event_param_value_t*>(e);
    set_param(v->param_id, v->value);
  }

  bool set_layout(int wanted) {
    const auto set = wanted == 1 ? juce::AudioChannelSet::mono() : juce::AudioChannelSet::stereo();
    juce::AudioProcessor::BusesLayout layout;
    layout.inputBuses.add(set);
    layout.outputBuses.add(set);
    if (!processor->setBusesLayout(layout)) return false;
    channels = wanted;
    return true;
  }

  // The service thread announces a latency change (Worker Thread): the host must restart us.
  void audioProcessorChanged(juce::AudioProcessor* p, const ChangeDetails& details) override {
    if (!details.latencyChanged || p->getLatencySamples() == reported_latency.load()) return;
    if (active) host->request_restart(host);  // [thread-safe] in CLAP
  }
  void audioProcessorParameterChanged(juce::AudioProcessor*, int, float) override {}
};

// ------------------------------------------------------------------------------ extensions
const clap_plugin_params_t kParams = {
    [](const clap_plugin_t* p) -> uint32_t { return uint32_t(Instance::of(p).params.size()); },
    [](const clap_plugin_t* p, uint32_t index, clap_param_info_t* info) -> bool {
      auto* param = Instance::of(p).param(index);
      if (param == nullptr || info == nullptr) return false;
      *info = clap_param_info_t{};
      info->id = index;
      info->flags = (param->isAutomatable() ? uint32_t(CLAP_PARAM_IS_AUTOMATABLE) : 0u) |
                    (param->isDiscrete() ? uint32_t(CLAP_PARAM_IS_STEPPED) : 0u);
      copy_name(info->name, param->getName(CLAP_NAME_SIZE));
      std::strncpy(info->module, param->getParameterID().toRawUTF8(), CLAP_PATH_SIZE - 1);
      info->min_value = param->getNormalisableRange().start;
      info->max_value = param->getNormalisableRange().end;
      info->default_value = param->convertFrom0to1(param->getDefaultValue());
      return true;
    },
    [](const clap_plugin_t* p, clap_id id, double* value) -> bool {
      auto* param = Instance::of(p).param(id);
      if (param == nullptr || value == nullptr) return false;
      *value = param->convertFrom0to1(param->getValue());
      return true;
    },
    [](const clap_plugin_t* p, clap_id id, double value, char* out, uint32_t size) -> bool {
      auto* param = Instance::of(p).param(id);
      if (param == nullptr || out == nullptr || size == 0) return false;
      const juce::String text = param->getText(param->convertTo0to1(float(value)), int(size)) +
                                (param->getLabel().isEmpty() ? "" : " " + param->getLabel());
      std::strncpy(out, text.toRawUTF8(), size - 1);
      out[size - 1] = '\0';
      return true;
    },
    [](const clap_plugin_t* p, clap_id id, const char* text, double* value) -> bool {
      auto* param = Instance::of(p).param(id);
      if (param == nullptr || text == nullptr || value == nullptr) return false;
      *value = param->convertFrom0to1(param->getValueForText(juce::String(text)));
      return true;
    },
    [](const clap_plugin_t* p, const clap_input_events_t* in, const clap_output_events_t*) {
      for (uint32_t i = 0, n = in ? in->size(in) : 0; i < n; ++i)
        Instance::of(p).apply_event(in->get(in, i));
    }};

const clap_plugin_latency_t kLatency = {[](const clap_plugin_t* p) -> uint32_t {
  return uint32_t(std::max(0, Instance::of(p).processor->getLatencySamples()));
}};

const PluginTail kTail = {[](const clap_plugin_t* p) -> uint32_t {
  const Instance& self = Instance::of(p);
  return uint32_t(std::lround(self.processor->getTailLengthSeconds() * self.processor->getSampleRate()));
}};

const clap_plugin_state_t kState = {
    [](const clap_plugin_t* p, const clap_ostream_t* stream) -> bool {
      juce::MemoryBlock data;
      Instance::of(p).processor->getStateInformation(data);
      const char* bytes = static_cast<const char*>(data.getData());
      for (size_t done = 0; done < data.getSize();) {
        const int64_t n = stream->write(stream, bytes + done, data.getSize() - done);
        if (n <= 0) return false;
        done += size_t(n);
      }
      return true;
    },
    [](const clap_plugin_t* p, const clap_istream_t* stream) -> bool {
      juce::MemoryBlock data;
      char chunk[4096];
      for (int64_t n; (n = stream->read(stream, chunk, sizeof(chunk))) != 0;) {
        if (n < 0) return false;
        data.append(chunk, size_t(n));
      }
      Instance::of(p).processor->setStateInformation(data.getData(), int(data.getSize()));
      return true;
    }};

const clap_plugin_audio_ports_t kAudioPorts = {
    [](const clap_plugin_t*, bool) -> uint32_t { return 1; },
    [](const clap_plugin_t* p, uint32_t index, bool, clap_audio_port_info_t* info) -> bool {
      if (index != 0 || info == nullptr) return false;
      const int channels = Instance::of(p).channels;
      *info = clap_audio_port_info_t{};
      info->id = 0;
      copy_name(info->name, channels == 1 ? "Mono" : "Stereo");
      info->flags = CLAP_AUDIO_PORT_IS_MAIN;
      info->channel_count = uint32_t(channels);
      info->port_type = channels == 1 ? CLAP_PORT_MONO : CLAP_PORT_STEREO;
      info->in_place_pair = 0;
      return true;
    }};

const PluginPortsConfig kPortsConfig = {
    [](const clap_plugin_t*) -> uint32_t { return 2; },
    [](const clap_plugin_t*, uint32_t index, PortsConfig* config) -> bool {
      if (index > 1 || config == nullptr) return false;
      const bool mono = index == 1;
      *config = PortsConfig{};
      config->id = mono ? kMonoConfig : kStereoConfig;
      copy_name(config->name, mono ? "Mono" : "Stereo");
      config->input_port_count = config->output_port_count = 1;
      config->has_main_input = config->has_main_output = true;
      config->main_input_channel_count = config->main_output_channel_count = mono ? 1 : 2;
      config->main_input_port_type = config->main_output_port_type =
          mono ? CLAP_PORT_MONO : CLAP_PORT_STEREO;
      return true;
    },
    [](const clap_plugin_t* p, clap_id id) -> bool {
      Instance& self = Instance::of(p);
      if (self.active || (id != kStereoConfig && id != kMonoConfig)) return false;
      return self.set_layout(id == kMonoConfig ? 1 : 2);
    }};

const PluginRender kRender = {
    [](const clap_plugin_t*) -> bool { return false; },
    [](const clap_plugin_t* p, int32_t mode) -> bool {
      Instance::of(p).processor->setNonRealtime(mode == clap_extra::kRenderOffline);
      return true;
    }};

// ------------------------------------------------------------------------------ the plugin
bool CLAP_ABI plugin_init(const clap_plugin_t* p) {
  Instance& self = Instance::of(p);
  self.host_latency = static_cast<const clap_host_latency_t*>(
      self.host->get_extension ? self.host->get_extension(self.host, CLAP_EXT_LATENCY) : nullptr);
  self.processor.reset(createPluginFilter());
  self.params = self.processor->getParameters();
  self.processor->addListener(&self);
  return self.set_layout(2);
}

void CLAP_ABI plugin_destroy(const clap_plugin_t* p) { delete &Instance::of(p); }

bool CLAP_ABI plugin_activate(const clap_plugin_t* p, double rate, uint32_t, uint32_t max) {
  Instance& self = Instance::of(p);
  const int block = int(std::max<uint32_t>(1, max));
  self.processor->setRateAndBufferSizeDetails(rate, block);
  self.processor->prepareToPlay(rate, block);
  self.midi.ensureSize(64);
  const int latency = self.processor->getLatencySamples();
  if (latency != self.reported_latency.exchange(latency) && self.host_latency != nullptr)
    self.host_latency->changed(self.host);
  self.active = true;
  return true;
}

void CLAP_ABI plugin_deactivate(const clap_plugin_t* p) {
  Instance& self = Instance::of(p);
  self.active = false;
  self.processor->releaseResources();
}

bool CLAP_ABI plugin_start(const clap_plugin_t*) { return true; }
void CLAP_ABI plugin_stop(const clap_plugin_t*) {}
void CLAP_ABI plugin_reset(const clap_plugin_t* p) { Instance::of(p).processor->reset(); }

// In place on the output buffers; split where a parameter event falls.
clap_process_status CLAP_ABI plugin_process(const clap_plugin_t* p, const clap_process_t* proc) {
  Instance& self = Instance::of(p);
  const uint32_t frames = proc->frames_count;
  if (proc->audio_inputs_count < 1 || proc->audio_outputs_count < 1) return CLAP_PROCESS_ERROR;
  const clap_audio_buffer_t& in = proc->audio_inputs[0];
  const clap_audio_buffer_t& out = proc->audio_outputs[0];
  const int channels = self.channels;
  if (int(in.channel_count) < channels || int(out.channel_count) < channels ||
      in.data32 == nullptr || out.data32 == nullptr)
    return CLAP_PROCESS_ERROR;
  for (int c = 0; c < channels; ++c)
    if (out.data32[c] != in.data32[c])
      std::copy(in.data32[c], in.data32[c] + frames, out.data32[c]);
  const clap_input_events_t* events = proc->in_events;
  const uint32_t count = events ? events->size(events) : 0;
  for (uint32_t done = 0, next = 0;;) {
    while (next < count && events->get(events, next)->time <= done)  // (sorted by time)
      self.apply_event(events->get(events, next++));
    const uint32_t until = next < count ? std::min(frames, events->get(events, next)->time) : frames;
    if (until > done) {
      float* ptrs[2];
      for (int c = 0; c < channels; ++c) ptrs[c] = out.data32[c] + done;
      self.buffer.setDataToReferTo(ptrs, channels, int(until - done));
      self.processor->processBlock(self.buffer, self.midi);
      done = until;
    }
    if (done >= frames) {
      while (next < count) self.apply_event(events->get(events, next++));  // (time >= frames)
      break;
    }
  }
  return CLAP_PROCESS_CONTINUE;
}

const void* CLAP_ABI plugin_extension(const clap_plugin_t*, const char* id) {
  if (id == nullptr) return nullptr;
  if (std::strcmp(id, CLAP_EXT_PARAMS) == 0) return &kParams;
  if (std::strcmp(id, CLAP_EXT_LATENCY) == 0) return &kLatency;
  if (std::strcmp(id, CLAP_EXT_STATE) == 0) return &kState;
  if (std::strcmp(id, CLAP_EXT_AUDIO_PORTS) == 0) return &kAudioPorts;
  if (std::strcmp(id, clap_extra::kPortsConfig) == 0) return &kPortsConfig;
  if (std::strcmp(id, clap_extra::kRender) == 0) return &kRender;
  if (std::strcmp(id, clap_extra::kTail) == 0) return &kTail;
  return nullptr;
}

void CLAP_ABI plugin_on_main_thread(const clap_plugin_t*) {}

// ------------------------------------------------------------------------------ factory, entry
const char* kFeatures[] = {CLAP_PLUGIN_FEATURE_AUDIO_EFFECT, CLAP_PLUGIN_FEATURE_STEREO,
                                 CLAP_PLUGIN_FEATURE_MONO, nullptr};
const clap_plugin_descriptor_t kDescriptor = {
    CLAP_VERSION_INIT, "org.starplugin.star", "STAR", "star-plugin", "", "", "",
    JucePlugin_VersionString, "STAR-VAE latent effect", kFeatures};

const clap_plugin_factory_t kFactory = {
    [](const clap_plugin_factory_t*) -> uint32_t { return 1; },
    [](const clap_plugin_factory_t*, uint32_t index) -> const clap_plugin_descriptor_t* {
      return index == 0 ? &kDescriptor : nullptr;
    },
    [](const clap_plugin_factory_t*, const clap_host_t* host,
       const char* id) -> const clap_plugin_t* {
      if (host == nullptr || id == nullptr || std::strcmp(id, kDescriptor.id) != 0) return nullptr;
      auto* self = new Instance(host);
      self->clap = clap_plugin_t{&kDescriptor,    self,           plugin_init,
                                 plugin_destroy,  plugin_activate, plugin_deactivate,
                                 plugin_start,    plugin_stop,    plugin_reset,
                                 plugin_process,  plugin_extension, plugin_on_main_thread};
      return &self->clap;
    }};

// JUCE's message manager for the module's lifetime (the processor's parameter state uses it).
std::unique_ptr<juce::ScopedJuceInitialiser_GUI> g_juce;
int g_entry_count = 0;

}  // namespace

// clap_entry: the one exported symbol (clap.version); its name is fixed by the spec.
extern "C" {
extern const clap_plugin_entry_t clap_entry;
const clap_plugin_entry_t clap_entry = {
    CLAP_VERSION_INIT,
    [](const char*) -> bool {
      if (g_entry_count++ == 0) g_juce = std::make_unique<juce::ScopedJuceInitialiser_GUI>();
      return true;
    },
    []() {
      if (g_entry_count > 0 && --g_entry_count == 0) g_juce.reset();
    },
    [](const char* id) -> const void* {
      return id && std::strcmp(id, CLAP_PLUGIN_FACTORY_ID) == 0 ? &kFactory : nullptr;
    }};
}
