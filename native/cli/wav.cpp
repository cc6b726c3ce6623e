// wav.cpp: see wav.h.
#include "wav.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace wav {
namespace {

uint32_t u32(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint16_t u16(const unsigned char* p) { return uint16_t(p[0] | p[1] << 8); }

void put32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += char((v >> (8 * i)) & 0xFF);
}
void put16(std::string& out, uint16_t v) {
  out += char(v & 0xFF);
  out += char(v >> 8);
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("'" + path + "': " + what);
}

}  // namespace

Audio read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  if (bytes.size() < 12 || std::memcmp(bytes.data(), "RIFF", 4) != 0 ||
      std::memcmp(bytes.data() + 8, "WAVE", 4) != 0)
    fail(path, "not a RIFF/WAVE file");
  int format = 0, channels = 0, bits = 0;
  uint32_t rate = 0;
  const unsigned char* data = nullptr;
  size_t data_len = 0;
  size_t pos = 12;
  while (pos + 8 <= bytes.size()) {
    const unsigned char* chunk = bytes.data() + pos;
    size_t len = u32(chunk + 4);
    size_t body = pos + 8;
    size_t avail = std::min(len, bytes.size() - body);
    if (std::memcmp(chunk, "fmt ", 4) == 0) {
      if (avail < 16) fail(path, "short fmt chunk");
      format = u16(chunk + 8);
      channels = u16(chunk + 10);
      rate = u32(chunk + 12);
      bits = u16(chunk + 22);
      if (format == 0xFFFE) {  // WAVE_FORMAT_EXTENSIBLE: the sub-format's first two bytes
        if (avail < 26) fail(path, "short extensible fmt chunk");
        format = u16(chunk + 8 + 24);
      }
    } else if (std::memcmp(chunk, "data", 4) == 0) {
      data = bytes.data() + body;
      data_len = avail;  // a truncated file keeps what it has
    }
    pos = body + len + (len & 1);
  }
  if (format == 0 || data == nullptr) fail(path, "no fmt or data chunk");
  if (channels < 1) fail(path, "no channels");
  int width = bits / 8;
  bool ok = (format == 1 && (bits == 16 || bits == 24 || bits == 32)) ||
            (format == 3 && (bits == 32 || bits == 64));
  if (!ok)
    fail(path, "unsupported WAV encoding (format " + std::to_string(format) + ", " +
                   std::to_string(bits) + " bits); use PCM 16/24/32-bit or float 32/64-bit");
  size_t frames = data_len / (size_t(width) * channels);
  Audio audio;
  audio.sample_rate = int(rate);
  audio.channels.assign(size_t(channels), std::vector<float>(frames));
  for (size_t i = 0; i < frames; ++i) {
    for (int c = 0; c < channels; ++c) {
      const unsigned char* p = data + (i * channels + c) * width;
      float v;
      if (format == 3 && bits == 32) {
        std::memcpy(&v, p, 4);
      } else if (format == 3) {
        double d;
        std::memcpy(&d, p, 8);
        v = float(d);
      } else if (bits == 16) {
        v = float(int16_t(u16(p))) / 32768.0f;
      } else if (bits == 24) {
        int32_t s = int32_t(uint32_t(p[0]) << 8 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 24);
        v = float(s >> 8) / 8388608.0f;
      } else {
        v = float(double(int32_t(u32(p))) / 2147483648.0);
      }
      audio.channels[size_t(c)][i] = v;
    }
  }
  return audio;
}

void write(const std::string& path, const Audio& audio, Format format) {
  const int channels = int(audio.channels.size());
  const size_t frames = audio.frames();
  const int width = format == Format::Float32 ? 4 : 2;
  std::string out;
  size_t data_len = frames * channels * width;
  out.reserve(44 + data_len);
  out += "RIFF";
  put32(out, uint32_t(36 + data_len));
  out += "WAVEfmt ";
  put32(out, 16);
  put16(out, format == Format::Float32 ? 3 : 1);
  put16(out, uint16_t(channels));
  put32(out, uint32_t(audio.sample_rate));
  put32(out, uint32_t(audio.sample_rate * channels * width));
  put16(out, uint16_t(channels * width));
  put16(out, uint16_t(width * 8));
  out += "data";
  put32(out, uint32_t(data_len));
  for (size_t i = 0; i < frames; ++i) {
    for (int c = 0; c < channels; ++c) {
      float v = audio.channels[size_t(c)][i];
      if (format == Format::Float32) {
        char b[4];
        std::memcpy(b, &v, 4);
        out.append(b, 4);
      } else {
        float s = std::max(-1.0f, std::min(1.0f, std::isfinite(v) ? v : 0.0f));
        put16(out, uint16_t(int16_t(std::lrint(s * 32767.0f))));
      }
    }
  }
  std::string tmp = path + ".part";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) fail(path, "cannot write");
    f.write(out.data(), std::streamsize(out.size()));
    if (!f) fail(path, "write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail(path, "cannot rename the written file");
}

std::vector<float> mono(const Audio& audio) {
  std::vector<float> out(audio.frames(), 0.0f);
  for (size_t i = 0; i < out.size(); ++i) {
    float sum = 0.0f;
    for (const auto& channel : audio.channels) sum += channel[i];
    out[i] = sum / float(audio.channels.size());
  }
  return out;
}

}  // namespace wav
