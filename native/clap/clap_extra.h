// clap_extra.h: the CLAP 1.x extensions that the CLAP headers vendored by DPF (1.1.1, Debian's
// dpf-source) lack, with their ABI as the CLAP spec has it. Shared by STAR.clap
// (native/plugin/clap_wrapper.cpp) and star-clap-host.
#pragma once

#include "clap/plugin.h"
#include "clap/string-sizes.h"

namespace clap_extra {

const char kLog[] = "clap.log";  // host extension
struct HostLog {
  void(CLAP_ABI* log)(const clap_host_t* host, int32_t severity, const char* message);
};

const char kPortsConfig[] = "clap.audio-ports-config";
struct PortsConfig {
  clap_id id;
  char name[CLAP_NAME_SIZE];
  uint32_t input_port_count, output_port_count;
  bool has_main_input;
  uint32_t main_input_channel_count;
  const char* main_input_port_type;
  bool has_main_output;
  uint32_t main_output_channel_count;
  const char* main_output_port_type;
};
struct PluginPortsConfig {
  uint32_t(CLAP_ABI* count)(const clap_plugin_t*);
  bool(CLAP_ABI* get)(const clap_plugin_t*, uint32_t index, PortsConfig* config);
  bool(CLAP_ABI* select)(const clap_plugin_t*, clap_id config_id);
};

const char kTail[] = "clap.tail";
struct PluginTail {
  uint32_t(CLAP_ABI* get)(const clap_plugin_t*);
};

const char kRender[] = "clap.render";
enum { kRenderRealtime = 0, kRenderOffline = 1 };
struct PluginRender {
  bool(CLAP_ABI* has_hard_realtime_requirement)(const clap_plugin_t*);
  bool(CLAP_ABI* set)(const clap_plugin_t*, int32_t mode);
};

}  // namespace clap_extra
