// star-lv2-host: a minimal LV2 host (lilv, the library Ardour, Carla and Qtractor use) that
// streams a WAV file through the plugin of an LV2 bundle.
//
//   star-lv2-host BUNDLE.lv2 in.wav out.wav [--block N] [--param KEY=VALUE ...]
//                 [--change FRAME:KEY=VALUE ...] [--freewheel] [--realtime]
//   star-lv2-host BUNDLE.lv2 --info [--rate HZ] [--block N]
//
// It loads the bundle's .ttl files with lilv (so a malformed .ttl fails here as in a DAW),
// takes the bundle's plugin, and instantiates it at the file's rate with the features an LV2
// host provides and JUCE requires: urid:map/unmap, options (min/max/nominal block length,
// sample rate) and bufsz:boundedBlockLength. Ports are connected by their .ttl description:
// audio in/out, control ports at their defaults (lv2:enabled 1, lv2:freeWheeling 0 or 1 with
// --freewheel), the lv2:latency output read after every run, atom sequences in and out.
//
// Parameters are the plugin's patch:writable lv2:Parameters (JUCE's LV2 parameters are not
// control ports): a --param is sent as a patch:Set in a zero-length run after activation, then
// the plugin is deactivated and activated again, the way a DAW restores a session before it
// plays; a --change is sent as a patch:Set in the block that starts at FRAME (the block being
// split there). KEY is the parameter's URI, the part after its last ':' or '#' (for STAR the
// parameter id, e.g. "mix"), or its label, case-insensitive.
//
// Channels: the file's channels feed the plugin's audio inputs; a mono file feeds every input
// (a mono track into a stereo plugin) and the outputs are folded back to mono by their mean.
// The output is the raw stream (the input delayed by "latency_samples"; the caller
// compensates); "final_latency_samples" is the lv2:latency port after the last block, and
// --realtime paces the blocks like an audio callback (a live session). --info instantiates at --rate (default 48000) and runs zero frames: the
// plugin's URI, name, ports, parameters (.ttl defaults and ranges) and latency. A JSON summary
// goes to stdout; errors are one line on stderr, exit status 1 (2: usage).
#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/atom/forge.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/core/lv2.h>
#include <lv2/options/options.h>
#include <lv2/parameters/parameters.h>
#include <lv2/patch/patch.h>
#include <lv2/urid/urid.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "host_args.h"
#include "wav.h"

namespace {

using host_args::json_string;
using host_args::lower;
using host_args::ParamSetting;
using host_args::parse_number;
using host_args::parse_setting;
using host_args::Usage;

// ------------------------------------------------------------------------------ urid
struct UridTable {
  std::map<std::string, LV2_URID> ids;
  std::vector<std::string> uris{""};  // uris[id]; 0 is not a URID

  LV2_URID map(const char* uri) {
    auto found = ids.find(uri);
    if (found != ids.end()) return found->second;
    uris.emplace_back(uri);
    return ids[uri] = LV2_URID(uris.size() - 1);
  }
};

LV2_URID urid_map(LV2_URID_Map_Handle handle, const char* uri) {
  return static_cast<UridTable*>(handle)->map(uri);
}
const char* urid_unmap(LV2_URID_Unmap_Handle handle, LV2_URID id) {
  const auto* table = static_cast<UridTable*>(handle);
  return id < table->uris.size() && id > 0 ? table->uris[id].c_str() : nullptr;
}

// ------------------------------------------------------------------------------ options
struct Options : host_args::CommonOptions {
  std::string bundle;
  bool freewheel = false, realtime = false;
};

Options parse(int argc, char** argv) {
  Options o;
  // the shared options (--info, --block, --rate, --param, --change: host_args.h), then these
  const auto positional = host_args::parse_args(argc, argv, o, [&](const std::string& a,
                                                                   auto&) {
    if (a == "--freewheel") {
      o.freewheel = true;
    } else if (a == "--realtime") {
      o.realtime = true;
    } else {
      return false;
    }
    return true;
  });
  o.bundle = o.finish(positional, "usage: star-lv2-host BUNDLE.lv2 in.wav out.wav [--block N] "
                   "[--param KEY=VALUE ...] [--change FRAME:KEY=VALUE ...] [--freewheel] "
                   "[--realtime] | "
                   "BUNDLE.lv2 --info [--rate HZ] [--block N]");
  return o;
}

// ------------------------------------------------------------------------------ the world
// lilv objects freed in reverse order of creation.
struct World {
  LilvWorld* world = lilv_world_new();
  std::vector<LilvNode*> nodes;
  ~World() {
    for (LilvNode* n : nodes) lilv_node_free(n);
    lilv_world_free(world);
  }
  const LilvNode* uri(const char* text) {
    nodes.push_back(lilv_new_uri(world, text));
    return nodes.back();
  }
};

std::string node_string(const LilvNode* node) {
  return node ? lilv_node_as_string(node) : "";
}

// The first value of (subject, predicate), or nullptr; the caller frees it.
LilvNode* get(World& w, const LilvNode* subject, const char* predicate) {
  return lilv_world_get(w.world, subject, w.uri(predicate), nullptr);
}

struct Param {
  std::string uri, label;
  float def = 0.0f, min = 0.0f, max = 1.0f, value = 0.0f;
  std::string key() const {  // the part after the URI's last ':' or '#'
    const size_t cut = uri.find_last_of(":#");
    return cut == std::string::npos ? uri : uri.substr(cut + 1);
  }
};

float node_float(LilvNode* node, float fallback) {
  const float v = node && (lilv_node_is_float(node) || lilv_node_is_int(node))
                      ? lilv_node_as_float(node) : fallback;
  if (node) lilv_node_free(node);
  return v;
}

std::vector<Param> plugin_params(World& w, const LilvPlugin* plugin) {
  std::vector<Param> params;
  LilvNodes* writable = lilv_world_find_nodes(w.world, lilv_plugin_get_uri(plugin),
                                              w.uri(LV2_PATCH__writable), nullptr);
  LILV_FOREACH(nodes, i, writable) {
    const LilvNode* node = lilv_nodes_get(writable, i);
    Param p;
    p.uri = node_string(node);
    LilvNode* label = get(w, node, "http://www.w3.org/2000/01/rdf-schema#label");
    p.label = node_string(label);
    if (label) lilv_node_free(label);
    p.def = node_float(get(w, node, LV2_CORE__default), 0.0f);
    p.min = node_float(get(w, node, LV2_CORE__minimum), 0.0f);
    p.max = node_float(get(w, node, LV2_CORE__maximum), 1.0f);
    p.value = p.def;
    params.push_back(p);
  }
  lilv_nodes_free(writable);
  return params;
}

Param& find_param(std::vector<Param>& params, const std::string& key) {
  const std::string k = lower(key);
  for (Param& p : params)
    if (lower(p.uri) == k || lower(p.key()) == k || lower(p.label) == k) return p;
  std::string known;
  for (const Param& p : params) known += (known.empty() ? "" : ", ") + p.key();
  throw std::runtime_error("the plugin has no parameter '" + key + "' (it has: " + known + ")");
}

// ------------------------------------------------------------------------------ ports
enum class Kind { AudioIn, AudioOut, ControlIn, ControlOut, AtomIn, AtomOut, Other };

struct Port {
  Kind kind = Kind::Other;
  std::string symbol;
  float control = 0.0f;
};

constexpr uint32_t kAtomCapacity = 1 << 16;

// An atom sequence buffer: patch:Set messages in, whatever the plugin says out.
struct AtomBuffer {
  std::vector<uint64_t> storage = std::vector<uint64_t>(kAtomCapacity / 8);
  LV2_Atom_Sequence* seq() { return reinterpret_cast<LV2_Atom_Sequence*>(storage.data()); }
};

struct Patch {
  LV2_URID set, property, value, chunk, frame;
  explicit Patch(UridTable& t)
      : set(t.map(LV2_PATCH__Set)), property(t.map(LV2_PATCH__property)),
        value(t.map(LV2_PATCH__value)), chunk(t.map(LV2_ATOM__Chunk)),
        frame(t.map(LV2_ATOM__frameTime)) {}
};

// The input sequence holding one patch:Set per (parameter URID, value), at frame 0.
void write_patch_sets(AtomBuffer& buffer, const Patch& u, UridTable& table,
                      const std::vector<std::pair<std::string, float>>& sets) {
  LV2_Atom_Forge forge;
  LV2_URID_Map map{&table, urid_map};
  lv2_atom_forge_init(&forge, &map);
  lv2_atom_forge_set_buffer(&forge, reinterpret_cast<uint8_t*>(buffer.storage.data()),
                            kAtomCapacity);
  LV2_Atom_Forge_Frame seq_frame;
  lv2_atom_forge_sequence_head(&forge, &seq_frame, u.frame);
  for (const auto& [uri, v] : sets) {
    lv2_atom_forge_frame_time(&forge, 0);
    LV2_Atom_Forge_Frame obj;
    lv2_atom_forge_object(&forge, &obj, 0, u.set);
    lv2_atom_forge_key(&forge, u.property);
    lv2_atom_forge_urid(&forge, table.map(uri.c_str()));
    lv2_atom_forge_key(&forge, u.value);
    lv2_atom_forge_float(&forge, v);
    lv2_atom_forge_pop(&forge, &obj);
  }
  lv2_atom_forge_pop(&forge, &seq_frame);
}

void clear_output(AtomBuffer& buffer, const Patch& u) {
  LV2_Atom_Sequence* s = buffer.seq();
  s->atom.type = u.chunk;
  s->atom.size = kAtomCapacity - sizeof(LV2_Atom);
}

// ------------------------------------------------------------------------------ the run
int run(const Options& o) {
  wav::Audio in;
  if (!o.info) in = wav::read(o.input);
  World w;
  std::string path = o.bundle;
  if (path.empty() || path.back() != '/') path += '/';
  LilvNode* bundle = lilv_new_file_uri(w.world, nullptr, path.c_str());
  w.nodes.push_back(bundle);
  lilv_world_load_bundle(w.world, bundle);
  const LilvPlugins* all = lilv_world_get_all_plugins(w.world);
  const LilvPlugin* plugin = nullptr;
  LILV_FOREACH(plugins, i, all) {
    const LilvPlugin* p = lilv_plugins_get(all, i);
    if (lilv_node_equals(lilv_plugin_get_bundle_uri(p), bundle)) plugin = p;
  }
  if (plugin == nullptr)
    throw std::runtime_error("'" + o.bundle + "' holds no LV2 plugin (no manifest.ttl, or it "
                             "describes none)");
  LilvNode* name_node = lilv_plugin_get_name(plugin);
  const std::string uri = node_string(lilv_plugin_get_uri(plugin)), name = node_string(name_node);
  if (name_node) lilv_node_free(name_node);

  UridTable table;
  const Patch u(table);
  std::vector<Param> params = plugin_params(w, plugin);

  // ports, by their .ttl description
  const LilvNode* audio = w.uri(LV2_CORE__AudioPort);
  const LilvNode* control = w.uri(LV2_CORE__ControlPort);
  const LilvNode* input = w.uri(LV2_CORE__InputPort);
  const LilvNode* atom = w.uri(LV2_ATOM__AtomPort);
  const LilvNode* enabled = w.uri(LV2_CORE_PREFIX "enabled");
  const LilvNode* freewheeling = w.uri(LV2_CORE__freeWheeling);
  const uint32_t n_ports = lilv_plugin_get_num_ports(plugin);
  std::vector<Port> ports(n_ports);
  std::vector<float> mins(n_ports), maxs(n_ports), defs(n_ports);
  lilv_plugin_get_port_ranges_float(plugin, mins.data(), maxs.data(), defs.data());
  std::vector<uint32_t> audio_in, audio_out;
  long latency_port = -1;
  if (lilv_plugin_has_latency(plugin)) latency_port = long(lilv_plugin_get_latency_port_index(plugin));
  for (uint32_t i = 0; i < n_ports; ++i) {
    const LilvPort* port = lilv_plugin_get_port_by_index(plugin, i);
    Port& p = ports[i];
    p.symbol = node_string(lilv_port_get_symbol(plugin, port));
    const bool is_in = lilv_port_is_a(plugin, port, input);
    if (lilv_port_is_a(plugin, port, audio)) {
      p.kind = is_in ? Kind::AudioIn : Kind::AudioOut;
      (is_in ? audio_in : audio_out).push_back(i);
    } else if (lilv_port_is_a(plugin, port, control)) {
      p.kind = is_in ? Kind::ControlIn : Kind::ControlOut;
      p.control = std::isnan(defs[i]) ? 0.0f : defs[i];
      LilvNode* designation = lilv_port_get(plugin, port, w.uri(LV2_CORE__designation));
      if (designation && lilv_node_equals(designation, enabled)) p.control = 1.0f;
      if (designation && lilv_node_equals(designation, freewheeling))
        p.control = o.freewheel ? 1.0f : 0.0f;
      if (designation) lilv_node_free(designation);
    } else if (lilv_port_is_a(plugin, port, atom)) {
      p.kind = is_in ? Kind::AtomIn : Kind::AtomOut;
    }
  }
  if (audio_in.empty() || audio_out.size() != audio_in.size())
    throw std::runtime_error("the plugin needs as many audio inputs as outputs (it has " +
                             std::to_string(audio_in.size()) + " in, " +
                             std::to_string(audio_out.size()) + " out)");
  const int plugin_channels = int(audio_in.size());

  // features
  const int rate = o.info ? o.rate : in.sample_rate;
  LV2_URID_Map map{&table, urid_map};
  LV2_URID_Unmap unmap{&table, urid_unmap};
  const int32_t min_block = 1, max_block = o.block;
  const float sample_rate = float(rate);
  const LV2_URID int_type = table.map(LV2_ATOM__Int), float_type = table.map(LV2_ATOM__Float);
  LV2_Options_Option options[] = {
      {LV2_OPTIONS_INSTANCE, 0, table.map(LV2_BUF_SIZE__minBlockLength), sizeof(int32_t),
       int_type, &min_block},
      {LV2_OPTIONS_INSTANCE, 0, table.map(LV2_BUF_SIZE__maxBlockLength), sizeof(int32_t),
       int_type, &max_block},
      {LV2_OPTIONS_INSTANCE, 0, table.map(LV2_BUF_SIZE__nominalBlockLength), sizeof(int32_t),
       int_type, &max_block},
      {LV2_OPTIONS_INSTANCE, 0, table.map(LV2_PARAMETERS__sampleRate), sizeof(float),
       float_type, &sample_rate},
      {LV2_OPTIONS_INSTANCE, 0, 0, 0, 0, nullptr}};
  LV2_Feature map_feature{LV2_URID__map, &map}, unmap_feature{LV2_URID__unmap, &unmap};
  LV2_Feature options_feature{LV2_OPTIONS__options, options};
  LV2_Feature bounded{LV2_BUF_SIZE__boundedBlockLength, nullptr};
  const LV2_Feature* features[] = {&map_feature, &unmap_feature, &options_feature, &bounded,
                                   nullptr};

  LilvInstance* instance = lilv_plugin_instantiate(plugin, double(rate), features);
  if (instance == nullptr) throw std::runtime_error("instantiating '" + uri + "' failed");

  // buffers
  const size_t block = size_t(o.block);
  std::vector<std::vector<float>> in_bufs(audio_in.size(), std::vector<float>(block)),
      out_bufs(audio_out.size(), std::vector<float>(block));
  std::vector<AtomBuffer> atoms(n_ports);
  AtomBuffer* atom_in = nullptr;
  for (uint32_t i = 0; i < n_ports; ++i) {
    Port& p = ports[i];
    switch (p.kind) {
      case Kind::ControlIn:
      case Kind::ControlOut: lilv_instance_connect_port(instance, i, &p.control); break;
      case Kind::AtomIn:
        if (atom_in == nullptr) atom_in = &atoms[i];
        [[fallthrough]];
      case Kind::AtomOut: lilv_instance_connect_port(instance, i, atoms[i].seq()); break;
      default: break;
    }
  }
  for (size_t c = 0; c < audio_in.size(); ++c) {
    lilv_instance_connect_port(instance, audio_in[c], in_bufs[c].data());
    lilv_instance_connect_port(instance, audio_out[c], out_bufs[c].data());
  }
  // Before each run: the inputs' sequences hold `sets` (or nothing), the outputs are empty.
  auto prepare_atoms = [&](const std::vector<std::pair<std::string, float>>& sets) {
    for (uint32_t i = 0; i < n_ports; ++i) {
      if (ports[i].kind == Kind::AtomIn)
        write_patch_sets(atoms[i], u, table, &atoms[i] == atom_in ? sets
                         : std::vector<std::pair<std::string, float>>{});
      if (ports[i].kind == Kind::AtomOut) clear_output(atoms[i], u);
    }
  };
  auto latency = [&]() { return latency_port >= 0 ? long(ports[size_t(latency_port)].control) : 0L; };
  auto set = [&](const ParamSetting& s) {
    Param& p = find_param(params, s.key);
    p.value = std::min(p.max, std::max(p.min, float(s.value)));
    return std::make_pair(p.uri, p.value);
  };

  lilv_instance_activate(instance);
  std::vector<std::pair<std::string, float>> initial;
  for (const ParamSetting& s : o.params) initial.push_back(set(s));
  if (!initial.empty() && atom_in == nullptr)
    throw std::runtime_error("the plugin has no atom input for its parameters");
  prepare_atoms(initial);
  lilv_instance_run(instance, 0);
  if (!initial.empty()) {  // a restored session: the values hold from the first sample
    lilv_instance_deactivate(instance);
    lilv_instance_activate(instance);
    prepare_atoms({});
    lilv_instance_run(instance, 0);
  }
  const long first_latency = latency();
  long latency_changes = 0, last_latency = first_latency;

  double seconds = 0.0;
  long frames = 0, blocks = 0;
  const int file_channels = o.info ? plugin_channels : int(in.channels.size());
  if (!o.info) {
    if (file_channels != plugin_channels && file_channels != 1)
      throw std::runtime_error("a " + std::to_string(file_channels) + "-channel file for a " +
                               std::to_string(plugin_channels) + "-channel plugin");
    frames = long(in.frames());
    wav::Audio out;
    out.sample_rate = rate;
    out.channels.assign(size_t(file_channels), std::vector<float>(size_t(frames), 0.0f));
    size_t next_change = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (long done = 0; done < frames;) {
      long n = std::min<long>(o.block, frames - done);
      std::vector<std::pair<std::string, float>> sets;
      while (next_change < o.changes.size() && o.changes[next_change].frame <= done)
        sets.push_back(set(o.changes[next_change++]));
      if (next_change < o.changes.size()) n = std::min(n, o.changes[next_change].frame - done);
      prepare_atoms(sets);
      for (int c = 0; c < plugin_channels; ++c) {
        const std::vector<float>& src = in.channels[size_t(file_channels == 1 ? 0 : c)];
        std::copy(src.begin() + done, src.begin() + done + n, in_bufs[size_t(c)].begin());
      }
      if (o.realtime)  // blocks at an audio callback's pace, as a live session runs them
        std::this_thread::sleep_until(t0 + std::chrono::duration<double>(double(done) / rate));
      lilv_instance_run(instance, uint32_t(n));
      if (latency() != last_latency) ++latency_changes, last_latency = latency();
      for (int c = 0; c < file_channels; ++c) {
        float* dst = out.channels[size_t(c)].data() + done;
        if (file_channels == plugin_channels) {
          std::copy(out_bufs[size_t(c)].begin(), out_bufs[size_t(c)].begin() + n, dst);
        } else {  // a mono file from a wider plugin: the channels' mean
          for (long i = 0; i < n; ++i) {
            float sum = 0.0f;
            for (int k = 0; k < plugin_channels; ++k) sum += out_bufs[size_t(k)][size_t(i)];
            dst[i] = sum / float(plugin_channels);
          }
        }
      }
      done += n;
      ++blocks;
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    wav::write(o.output, out);
  }
  lilv_instance_deactivate(instance);
  lilv_instance_free(instance);

  std::string params_json = "{", ranges_json = "{";
  for (size_t i = 0; i < params.size(); ++i) {
    char number[96];
    std::snprintf(number, sizeof(number), "%.9g", double(params[i].value));
    params_json += (i ? ", " : "") + json_string(params[i].key()) + ": " + number;
    std::snprintf(number, sizeof(number), "[%.9g, %.9g, %.9g]", double(params[i].min),
                  double(params[i].max), double(params[i].def));
    ranges_json += (i ? ", " : "") + json_string(params[i].key()) + ": " + number;
  }
  params_json += "}";
  ranges_json += "}";
  std::printf(
      "{\"plugin_uri\": %s, \"plugin_name\": %s, \"latency_samples\": %ld, "
      "\"latency_changes\": %ld, \"final_latency_samples\": %ld, \"sample_rate\": %d, "
      "\"channels\": %d, "
      "\"plugin_channels\": %d, \"ports\": %u, \"frames\": %ld, \"block\": %d, "
      "\"blocks\": %ld, \"seconds\": %.6f, \"params\": %s, \"param_ranges\": %s}\n",
      json_string(uri).c_str(), json_string(name).c_str(), first_latency, latency_changes,
      last_latency, rate,
      file_channels, plugin_channels, n_ports, frames, o.block, blocks, seconds,
      params_json.c_str(), ranges_json.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return host_args::main_of("star-lv2-host", argc, argv, parse, run); }
