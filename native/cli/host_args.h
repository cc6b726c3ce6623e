// host_args.h: what the test hosts (star-clap-host, star-lv2-host) share: their usage error,
// number and KEY=VALUE / FRAME:KEY=VALUE parsing, and JSON string quoting.
#pragma once

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

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

}  // namespace host_args
