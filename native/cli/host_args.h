// host_args.h: what the test hosts (star-clap-host, star-lv2-host) share: their usage error,
// number and KEY=VALUE / FRAME:KEY=VALUE parsing, and JSON string quoting.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace host_args {

// A command-line mistake: the hosts print it and exit with status 2.
struct Usage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline std::string lower(std::string s) {
  for (char& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", ch);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

inline double parse_number(const std::string& text, const std::string& what) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end == nullptr || *end != '\0') throw Usage(what + ": '" + text + "' is not a number");
  return value;
}

struct ParamSetting {
  long frame = 0;  // --change: where; --param: 0 (before activation)
  std::string key;
  double value = 0.0;
};

inline ParamSetting parse_setting(const std::string& text, bool with_frame) {
  ParamSetting s;
  std::string rest = text;
  if (with_frame) {
    const size_t colon = rest.find(':');
    if (colon == std::string::npos) throw Usage("--change wants FRAME:KEY=VALUE, got '" + text + "'");
    s.frame = long(parse_number(rest.substr(0, colon), "--change frame"));
    if (s.frame < 0) throw Usage("--change frame must be >= 0");
    rest = rest.substr(colon + 1);
  }
  const size_t eq = rest.find('=');
  if (eq == std::string::npos || eq == 0) throw Usage("want KEY=VALUE, got '" + text + "'");
  s.key = rest.substr(0, eq);
  s.value = parse_number(rest.substr(eq + 1), "parameter value");
  return s;
}

// The options both hosts take: --info, --block N, --rate HZ, --param KEY=VALUE,
// --change FRAME:KEY=VALUE. A host's own Options derive from this.
struct CommonOptions {
  std::string input, output;  // in.wav, out.wav (not with --info)
  bool info = false;
  int block = 512;
  int rate = 48000;  // --info only
  std::vector<ParamSetting> params, changes;

  // Whether `a` is one of them (then consumed; `value()` takes its argument).
  template <class Value>
  bool take(const std::string& a, Value&& value) {
    if (a == "--info") {
      info = true;
    } else if (a == "--block") {
      block = int(parse_number(value(), "--block"));
      if (block < 1 || block > 1 << 20) throw Usage("--block must be 1..1048576");
    } else if (a == "--rate") {
      rate = int(parse_number(value(), "--rate"));
      if (rate < 1) throw Usage("--rate must be > 0");
    } else if (a == "--param") {
      params.push_back(parse_setting(value(), false));
    } else if (a == "--change") {
      changes.push_back(parse_setting(value(), true));
    } else {
      return false;
    }
    return true;
  }

  // After the options: the positional arguments (PLUGIN in.wav out.wav, or PLUGIN with
  // --info); returns PLUGIN. The --change list ends up sorted by frame.
  std::string finish(const std::vector<std::string>& positional, const char* usage) {
    if (info ? positional.size() != 1 : positional.size() != 3) throw Usage(usage);
    if (!info) {
      input = positional[1];
      output = positional[2];
    }
    std::stable_sort(changes.begin(), changes.end(),
                     [](const ParamSetting& a, const ParamSetting& b) { return a.frame < b.frame; });
    return positional[0];
  }
};

// Reads argv into `o`: the shared options, then `own(a, value)` for the host's own ones (true
// when it took `a`); returns the positional arguments. Unknown options are a Usage error.
template <class Options, class Own>
std::vector<std::string> parse_args(int argc, char** argv, Options& o, Own&& own) {
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Usage(a + " needs a value");
      return argv[++i];
    };
    if (o.take(a, value) || own(a, value)) continue;
    if (a.size() > 1 && a[0] == '-') throw Usage("unknown option " + a);
    positional.push_back(a);
  }
  return positional;
}

// A host's main(): run(parse(argc, argv)); a Usage error exits 2, any other error 1, each
// as one line on stderr that starts with the host's name.
template <class Parse, class Run>
int main_of(const char* name, int argc, char** argv, Parse parse, Run run) {
  try {
    return run(parse(argc, argv));
  } catch (const Usage& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

}  // namespace host_args
