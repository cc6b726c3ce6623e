// star-clap-host: a minimal CLAP host that streams a WAV file through a .clap plugin.
//
//   star-clap-host PLUGIN.clap in.wav out.wav [--block N] [--param KEY=VALUE ...]
//                  [--change FRAME:KEY=VALUE ...] [--without EXTENSION|all ...]
//                  [--offline] [--reset-after] [--realtime]
//                  [--load-state FILE] [--save-state FILE]
//   star-clap-host PLUGIN.clap --info [--rate HZ] [--block N] [--param KEY=VALUE ...]
//
// It dlopens the plugin, calls clap_entry's init with the file's path, takes the plugin
// factory, creates the first plugin, init()s it, sets the --param values through the params
// extension's flush (before activation: they hold from the first sample, as if set in a
// session), activates it at the file's rate with min 1 / max N frames, queries the latency
// extension, start_processing, processes the file in N-frame blocks (planar float32 audio
// ports; a --change is sent as a CLAP_EVENT_PARAM_VALUE in the block that starts at FRAME,
// the block being split there), stop_processing, deactivates, destroys, deinits.
// KEY is a parameter's CLAP id, its name or its module (DPF: the parameter's symbol, e.g.
// "mix", "output_gain"), case-insensitive.
//
// Channels: when the plugin offers a ports configuration (clap.audio-ports-config) whose main
// ports have the file's channel count, it is selected before activation ("ports_config" in
// the summary). The file's channels feed the plugin's first input port; a mono file feeds
// every channel of a wider port (a mono track into a stereo plugin) and the output is folded
// back to the file's channels by the mean. The output is the raw stream, as a DAW hears it before its
// latency compensation: the input delayed by "latency_samples" (the caller compensates).
//
// The host provides the extensions plugins (DPF's wrapper in particular) ask for: latency
// (changed), params (rescan, clear, request_flush), thread-check, log, audio-ports; requests
// (restart, process, callback) are counted, and a requested callback runs on_main_thread.
// --without ID (repeatable; "all") hides one of those extensions: a host that lacks it.
// Everything runs on this one thread; thread-check calls it the audio thread inside process().
// --offline asks the plugin to render offline (clap.render) before activation, as a DAW's
// bounce does. --reset-after processes the file a second time after plugin->reset() and
// writes that pass (a real reset makes it equal the first). --realtime paces the blocks like
// an audio callback (a live session).
// --load-state loads a state (clap.state) before the --params, as a DAW restores a session;
// --save-state writes the plugin's state after the run, as a DAW saves one.
// --info activates at --rate (default 48000) without processing: the plugin's id, name,
// parameters and latency at that rate. A JSON summary goes to stdout; errors are one line on stderr, exit status 1 (2: usage).
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "clap/entry.h"
#include "clap/events.h"
#include "clap/ext/audio-ports.h"
#include "clap/ext/latency.h"
#include "clap/ext/params.h"
#include "clap/ext/state.h"
#include "clap/ext/thread-check.h"
#include "clap/host.h"
#include "clap/plugin-factory.h"
#include "clap/plugin.h"
#include "clap/process.h"
#include "clap_extra.h"
#include "host_args.h"
#include "wav.h"

namespace {

using host_args::json_string;
using host_args::lower;
using host_args::ParamSetting;
using host_args::parse_number;
using host_args::parse_setting;
using host_args::Usage;

using clap_extra::HostLog;
using clap_extra::kLog;
using clap_extra::PluginPortsConfig;
using clap_extra::PluginRender;
using clap_extra::PluginTail;
using clap_extra::PortsConfig;

// The plugin's ports configuration whose main ports have `channels` channels, selected
// (clap.audio-ports-config, before activation); its name, or "" when it offers none.
std::string select_ports_config(const clap_plugin_t* plugin, uint32_t channels) {
  const auto* configs =
      static_cast<const PluginPortsConfig*>(plugin->get_extension(plugin, clap_extra::kPortsConfig));
  for (uint32_t i = 0, n = configs ? configs->count(plugin) : 0; i < n; ++i) {
    PortsConfig c{};
    if (configs->get(plugin, i, &c) && c.has_main_input && c.has_main_output &&
        c.main_input_channel_count == channels && c.main_output_channel_count == channels &&
        configs->select(plugin, c.id))
      return c.name;
  }
  return "";
}


// ------------------------------------------------------------------------------ the host
struct HostState {
  bool in_process = false;
  int latency_changed = 0, restart_requests = 0, process_requests = 0, callback_requests = 0;
  int rescans = 0, log_messages = 0;
  bool callback_pending = false;
};

HostState g_state;

const void* CLAP_ABI host_get_extension(const clap_host_t*, const char* id);
void CLAP_ABI host_request_restart(const clap_host_t*) { ++g_state.restart_requests; }
void CLAP_ABI host_request_process(const clap_host_t*) { ++g_state.process_requests; }
void CLAP_ABI host_request_callback(const clap_host_t*) {
  ++g_state.callback_requests;
  g_state.callback_pending = true;
}

void CLAP_ABI latency_changed(const clap_host_t*) { ++g_state.latency_changed; }
const clap_host_latency_t kHostLatency = {latency_changed};

void CLAP_ABI params_rescan(const clap_host_t*, clap_param_rescan_flags) { ++g_state.rescans; }
void CLAP_ABI params_clear(const clap_host_t*, clap_id, clap_param_clear_flags) {}
void CLAP_ABI params_request_flush(const clap_host_t*) {}
const clap_host_params_t kHostParams = {params_rescan, params_clear, params_request_flush};

bool CLAP_ABI is_main_thread(const clap_host_t*) { return !g_state.in_process; }
bool CLAP_ABI is_audio_thread(const clap_host_t*) { return g_state.in_process; }
const clap_host_thread_check_t kHostThreadCheck = {is_main_thread, is_audio_thread};

void CLAP_ABI host_log(const clap_host_t*, int32_t severity, const char* message) {
  ++g_state.log_messages;
  std::fprintf(stderr, "plugin log [%d]: %s\n", int(severity), message ? message : "");
}
const HostLog kHostLog = {host_log};

bool CLAP_ABI ports_rescan_flag_supported(const clap_host_t*, uint32_t) { return false; }
void CLAP_ABI ports_rescan(const clap_host_t*, uint32_t) {}
const clap_host_audio_ports_t kHostAudioPorts = {ports_rescan_flag_supported, ports_rescan};

// --without: extensions this host pretends not to have (the ids, or "all"), so a test can check
// that the plugin survives hosts that lack them (every host extension is optional in CLAP)
std::vector<std::string> g_without;

bool host_lacks(const char* id) {
  for (const std::string& w : g_without)
    if (w == "all" || w == id) return true;
  return false;
}

const void* CLAP_ABI host_get_extension(const clap_host_t*, const char* id) {
  if (id == nullptr || host_lacks(id)) return nullptr;
  if (std::strcmp(id, CLAP_EXT_LATENCY) == 0) return &kHostLatency;
  if (std::strcmp(id, CLAP_EXT_PARAMS) == 0) return &kHostParams;
  if (std::strcmp(id, CLAP_EXT_THREAD_CHECK) == 0) return &kHostThreadCheck;
  if (std::strcmp(id, kLog) == 0) return &kHostLog;
  if (std::strcmp(id, CLAP_EXT_AUDIO_PORTS) == 0) return &kHostAudioPorts;
  return nullptr;
}

const clap_host_t kHost = {CLAP_VERSION,         nullptr,
                           "star-clap-host",     "star-plugin",
                           "",                   "1.0",
                           host_get_extension,   host_request_restart,
                           host_request_process, host_request_callback};

// ------------------------------------------------------------------------------ events
struct EventList {
  std::vector<clap_event_param_value_t> events;
  clap_input_events_t in{};
  clap_output_events_t out{};

  EventList() {
    in.ctx = this;
    in.size = [](const clap_input_events_t* list) -> uint32_t {
      return uint32_t(static_cast<const EventList*>(list->ctx)->events.size());
    };
    in.get = [](const clap_input_events_t* list, uint32_t i) -> const clap_event_header_t* {
      return &static_cast<const EventList*>(list->ctx)->events[i].header;
    };
    out.ctx = this;
    out.try_push = [](const clap_output_events_t*, const clap_event_header_t*) { return true; };
  }

  void add(clap_id id, double value, uint32_t time = 0) {
    clap_event_param_value_t e{};
    e.header.size = sizeof(e);
    e.header.time = time;
    e.header.space_id = CLAP_CORE_EVENT_SPACE_ID;
    e.header.type = CLAP_EVENT_PARAM_VALUE;
    e.header.flags = 0;
    e.param_id = id;
    e.cookie = nullptr;
    e.note_id = -1;
    e.port_index = -1;
    e.channel = -1;
    e.key = -1;
    e.value = value;
    events.push_back(e);
  }
};

struct Param {
  clap_param_info_t info;
};

const Param& find_param(const std::vector<Param>& params, const std::string& key) {
  const std::string k = lower(key);
  for (const Param& p : params) {
    if (std::to_string(p.info.id) == k || lower(p.info.name) == k || lower(p.info.module) == k)
      return p;
  }
  std::string known;
  for (const Param& p : params) known += (known.empty() ? "" : ", ") + std::string(p.info.module);
  throw std::runtime_error("the plugin has no parameter '" + key + "' (it has: " + known + ")");
}

// A state file for --load-state / --save-state, closed when done.
struct StateFile {
  FILE* f;
  StateFile(const std::string& path, const char* mode) : f(std::fopen(path.c_str(), mode)) {
    if (f == nullptr) throw std::runtime_error("cannot open the state file '" + path + "'");
  }
  ~StateFile() { std::fclose(f); }
};

template <class T>
const T* plugin_extension(const clap_plugin_t* plugin, const char* id) {
  return static_cast<const T*>(plugin->get_extension(plugin, id));
}

void run_callbacks(const clap_plugin_t* plugin) {
  if (g_state.callback_pending) {
    g_state.callback_pending = false;
    plugin->on_main_thread(plugin);
  }
}

struct Options : host_args::CommonOptions {
  std::string plugin;
  bool offline = false, reset_after = false, realtime = false;
  std::string load_state, save_state;  // --load-state F, --save-state F (clap.state)
};

Options parse(int argc, char** argv) {
  Options o;
  // the shared options (--info, --block, --rate, --param, --change: host_args.h), then these
  const auto positional = host_args::parse_args(argc, argv, o, [&](const std::string& a,
                                                                   auto& value) {
    if (a == "--offline") {
      o.offline = true;
    } else if (a == "--reset-after") {
      o.reset_after = true;
    } else if (a == "--realtime") {
      o.realtime = true;
    } else if (a == "--load-state") {
      o.load_state = value();
    } else if (a == "--save-state") {
      o.save_state = value();
    } else if (a == "--without") {
      const std::string id = value();
      const char* known[] = {"all", CLAP_EXT_LATENCY, CLAP_EXT_PARAMS, CLAP_EXT_THREAD_CHECK,
                             kLog, CLAP_EXT_AUDIO_PORTS};
      if (std::none_of(std::begin(known), std::end(known),
                       [&](const char* k) { return id == k; }))
        throw Usage(std::string("--without wants all, ") + CLAP_EXT_LATENCY + ", " +
                    CLAP_EXT_PARAMS + ", " + CLAP_EXT_THREAD_CHECK + ", " + kLog + " or " +
                    CLAP_EXT_AUDIO_PORTS + ", got '" + id + "'");
      g_without.push_back(id);
    } else {
      return false;
    }
    return true;
  });
  o.plugin = o.finish(positional, "usage: star-clap-host PLUGIN.clap in.wav out.wav [--block N] "
                   "[--param KEY=VALUE ...] [--change FRAME:KEY=VALUE ...] [--without EXT ...] "
                   "[--offline] [--reset-after] [--realtime] [--load-state F] "
                   "[--save-state F] | "
                   "PLUGIN.clap --info "
                   "[--rate HZ] [--block N] [--param KEY=VALUE ...]");
  return o;
}

int run(const Options& o) {
  wav::Audio in;
  if (!o.info) in = wav::read(o.input);
  void* library = dlopen(o.plugin.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) throw std::runtime_error(std::string("dlopen: ") + dlerror());
  const auto* entry = static_cast<const clap_plugin_entry_t*>(dlsym(library, "clap_entry"));
  if (entry == nullptr) throw std::runtime_error("'" + o.plugin + "' exports no clap_entry");
  if (!clap_version_is_compatible(entry->clap_version))
    throw std::runtime_error("incompatible CLAP version " +
                             std::to_string(entry->clap_version.major));
  if (!entry->init(o.plugin.c_str())) throw std::runtime_error("clap_entry.init failed");
  const auto* factory =
      static_cast<const clap_plugin_factory_t*>(entry->get_factory(CLAP_PLUGIN_FACTORY_ID));
  if (factory == nullptr || factory->get_plugin_count(factory) == 0)
    throw std::runtime_error("the plugin factory lists no plugin");
  const clap_plugin_descriptor_t* desc = factory->get_plugin_descriptor(factory, 0);
  if (desc == nullptr || desc->id == nullptr) throw std::runtime_error("no plugin descriptor");
  const std::string plugin_id = desc->id ? desc->id : "", plugin_name = desc->name ? desc->name : "",
                    vendor = desc->vendor ? desc->vendor : "";
  const clap_plugin_t* plugin = factory->create_plugin(factory, &kHost, desc->id);
  if (plugin == nullptr) throw std::runtime_error(std::string("create_plugin failed: ") + desc->id);
  if (!plugin->init(plugin)) throw std::runtime_error("plugin init failed");

  // a ports configuration with the file's channel count when the plugin offers one (a mono
  // track gets a mono plugin); else the default ports
  const std::string ports_config =
      o.info ? std::string() : select_ports_config(plugin, uint32_t(in.channels.size()));
  // audio ports: the first input and output ports
  const auto* ports = plugin_extension<clap_plugin_audio_ports_t>(plugin, CLAP_EXT_AUDIO_PORTS);
  if (ports == nullptr || ports->count(plugin, true) < 1 || ports->count(plugin, false) < 1)
    throw std::runtime_error("the plugin has no audio input and output port");
  std::vector<uint32_t> in_channels, out_channels;
  for (int is_input = 1; is_input >= 0; --is_input) {
    for (uint32_t i = 0, n = ports->count(plugin, is_input); i < n; ++i) {
      clap_audio_port_info_t info{};
      if (!ports->get(plugin, i, is_input, &info)) throw std::runtime_error("audio port info");
      (is_input ? in_channels : out_channels).push_back(info.channel_count);
    }
  }
  const int port_channels = int(in_channels[0]);
  if (int(out_channels[0]) != port_channels)
    throw std::runtime_error("the plugin's main input and output ports differ in channels");

  // parameters
  const auto* params_ext = plugin_extension<clap_plugin_params_t>(plugin, CLAP_EXT_PARAMS);
  std::vector<Param> params;
  for (uint32_t i = 0, n = params_ext ? params_ext->count(plugin) : 0; i < n; ++i) {
    Param p{};
    if (params_ext->get_info(plugin, i, &p.info)) params.push_back(p);
  }
  // --load-state: a saved session's plugin state, before the --params (clap.state)
  const auto* state = plugin_extension<clap_plugin_state_t>(plugin, CLAP_EXT_STATE);
  if (!o.load_state.empty()) {
    if (state == nullptr) throw std::runtime_error("--load-state: the plugin has no clap.state");
    StateFile file(o.load_state, "rb");
    clap_istream_t in_stream{&file, [](const clap_istream_t* st, void* buffer, uint64_t size) {
      return int64_t(std::fread(buffer, 1, size_t(size), static_cast<StateFile*>(st->ctx)->f));
    }};
    if (!state->load(plugin, &in_stream))
      throw std::runtime_error("the plugin refused the state in '" + o.load_state + "'");
  }
  EventList flush;
  for (const ParamSetting& s : o.params) flush.add(find_param(params, s.key).info.id, s.value);
  if (!flush.events.empty()) params_ext->flush(plugin, &flush.in, &flush.out);

  std::string params_json = "{";
  auto describe_params = [&]() {
    params_json = "{";
    for (size_t i = 0; i < params.size(); ++i) {
      double value = 0.0;
      params_ext->get_value(plugin, params[i].info.id, &value);
      char number[32];
      std::snprintf(number, sizeof(number), "%.9g", value);
      params_json += (i ? ", " : "") + json_string(params[i].info.module) + ": " + number;
    }
    params_json += "}";
  };
  describe_params();

  const int rate = o.info ? o.rate : in.sample_rate;
  const int file_channels = o.info ? port_channels : int(in.channels.size());
  if (file_channels != port_channels && file_channels != 1)
    throw std::runtime_error("a " + std::to_string(file_channels) + "-channel file for a " +
                             std::to_string(port_channels) + "-channel plugin");
  // --offline: a bounce (clap.render), where the plugin may take its time
  const auto* render = static_cast<const PluginRender*>(plugin->get_extension(plugin, clap_extra::kRender));
  if (o.offline && (render == nullptr || !render->set(plugin, clap_extra::kRenderOffline)))
    throw std::runtime_error("--offline: the plugin has no clap.render extension");
  if (!plugin->activate(plugin, double(rate), 1, uint32_t(o.block)))
    throw std::runtime_error("activate failed");
  run_callbacks(plugin);
  const auto* latency_ext = plugin_extension<clap_plugin_latency_t>(plugin, CLAP_EXT_LATENCY);
  const long latency = latency_ext ? long(latency_ext->get(plugin)) : 0;
  const auto* tail_ext = static_cast<const PluginTail*>(plugin->get_extension(plugin, clap_extra::kTail));
  const long tail = tail_ext ? long(tail_ext->get(plugin)) : -1;  // -1: no clap.tail

  double seconds = 0.0;
  long frames = 0, blocks = 0;
  if (!o.info) {
    frames = long(in.frames());
    // planar buffers for every port (extra ports get silence / are discarded)
    std::vector<std::vector<std::vector<float>>> in_bufs, out_bufs;
    std::vector<std::vector<float*>> in_ptrs, out_ptrs;
    std::vector<clap_audio_buffer_t> in_audio(in_channels.size()), out_audio(out_channels.size());
    auto make = [&](const std::vector<uint32_t>& counts, std::vector<std::vector<std::vector<float>>>& bufs,
                    std::vector<std::vector<float*>>& ptrs, std::vector<clap_audio_buffer_t>& audio) {
      bufs.resize(counts.size());
      ptrs.resize(counts.size());
      for (size_t p = 0; p < counts.size(); ++p) {
        bufs[p].assign(counts[p], std::vector<float>(size_t(o.block), 0.0f));
        for (auto& b : bufs[p]) ptrs[p].push_back(b.data());
        audio[p] = clap_audio_buffer_t{ptrs[p].data(), nullptr, counts[p], 0, 0};
      }
    };
    make(in_channels, in_bufs, in_ptrs, in_audio);
    make(out_channels, out_bufs, out_ptrs, out_audio);
    wav::Audio out;
    out.sample_rate = rate;
    out.channels.assign(size_t(file_channels), std::vector<float>(size_t(frames), 0.0f));
    // --reset-after: a second pass after plugin->reset(), which must start from silence
    for (int pass = 0; pass < (o.reset_after ? 2 : 1); ++pass) {
      if (pass > 0) plugin->reset(plugin);
      EventList events;
      size_t next_change = 0;
      if (!plugin->start_processing(plugin)) throw std::runtime_error("start_processing failed");
      const auto t0 = std::chrono::steady_clock::now();
      for (long done = 0; done < frames;) {
        long n = std::min<long>(o.block, frames - done);
        events.events.clear();
        while (next_change < o.changes.size() && o.changes[next_change].frame <= done) {
          const ParamSetting& s = o.changes[next_change++];
          events.add(find_param(params, s.key).info.id, s.value);
        }
        if (next_change < o.changes.size()) n = std::min(n, o.changes[next_change].frame - done);
        for (int c = 0; c < port_channels; ++c) {
          const std::vector<float>& src = in.channels[size_t(file_channels == 1 ? 0 : c)];
          std::copy(src.begin() + done, src.begin() + done + n, in_bufs[0][size_t(c)].begin());
        }
        clap_process_t process{};
        process.steady_time = done;
        process.frames_count = uint32_t(n);
        process.transport = nullptr;
        process.audio_inputs = in_audio.data();
        process.audio_outputs = out_audio.data();
        process.audio_inputs_count = uint32_t(in_audio.size());
        process.audio_outputs_count = uint32_t(out_audio.size());
        process.in_events = &events.in;
        process.out_events = &events.out;
        if (o.realtime)  // blocks at an audio callback's pace, as a live session runs them
          std::this_thread::sleep_until(t0 + std::chrono::duration<double>(double(done) / rate));
        g_state.in_process = true;
        const clap_process_status status = plugin->process(plugin, &process);
        g_state.in_process = false;
        if (status == CLAP_PROCESS_ERROR)
          throw std::runtime_error("process returned CLAP_PROCESS_ERROR at frame " +
                                   std::to_string(done));
        for (int c = 0; c < file_channels; ++c) {
          float* dst = out.channels[size_t(c)].data() + done;
          if (file_channels == port_channels) {
            std::copy(out_bufs[0][size_t(c)].begin(), out_bufs[0][size_t(c)].begin() + n, dst);
          } else {  // a mono file from a wider port: the channels' mean
            for (long i = 0; i < n; ++i) {
              float sum = 0.0f;
              for (int k = 0; k < port_channels; ++k) sum += out_bufs[0][size_t(k)][size_t(i)];
              dst[i] = sum / float(port_channels);
            }
          }
        }
        done += n;
        ++blocks;
        run_callbacks(plugin);
      }
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      plugin->stop_processing(plugin);
    }
    wav::write(o.output, out);
  }
  plugin->deactivate(plugin);
  run_callbacks(plugin);
  describe_params();
  if (!o.save_state.empty()) {  // --save-state: what a DAW stores in its session
    if (state == nullptr) throw std::runtime_error("--save-state: the plugin has no clap.state");
    StateFile file(o.save_state, "wb");
    clap_ostream_t out_stream{&file, [](const clap_ostream_t* st, const void* buffer,
                                        uint64_t size) {
      return int64_t(std::fwrite(buffer, 1, size_t(size), static_cast<StateFile*>(st->ctx)->f));
    }};
    if (!state->save(plugin, &out_stream))
      throw std::runtime_error("the plugin could not save its state");
  }
  plugin->destroy(plugin);
  entry->deinit();
  // (the library stays loaded: plugins may keep static destructors registered)

  std::printf(
      "{\"plugin_id\": %s, \"plugin_name\": %s, \"vendor\": %s, \"clap_version\": \"%u.%u.%u\", "
      "\"latency_samples\": %ld, \"sample_rate\": %d, \"channels\": %d, \"plugin_channels\": %d, "
      "\"input_ports\": %zu, \"output_ports\": %zu, \"frames\": %ld, \"block\": %d, "
      "\"blocks\": %ld, \"seconds\": %.6f, \"params\": %s, \"latency_changed\": %d, "
      "\"restart_requests\": %d, \"callback_requests\": %d, \"log_messages\": %d, "
      "\"ports_config\": %s, \"tail_samples\": %ld}\n",
      json_string(plugin_id).c_str(), json_string(plugin_name).c_str(),
      json_string(vendor).c_str(), entry->clap_version.major,
      entry->clap_version.minor, entry->clap_version.revision, latency, rate, file_channels,
      port_channels, in_channels.size(), out_channels.size(), frames, o.block, blocks, seconds,
      params_json.c_str(), g_state.latency_changed, g_state.restart_requests,
      g_state.callback_requests, g_state.log_messages, json_string(ports_config).c_str(), tail);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return host_args::main_of("star-clap-host", argc, argv, parse, run); }
