// wav.h: a tiny RIFF/WAVE reader and writer (PCM 16/24/32-bit, IEEE float 32/64-bit,
// WAVE_FORMAT_EXTENSIBLE), planar float in memory. Enough for the CLI and tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace wav {

struct Audio {
  int sample_rate = 0;
  std::vector<std::vector<float>> channels;  // [channel][frame]
  size_t frames() const { return channels.empty() ? 0 : channels[0].size(); }
};

enum class Format { Float32, Int16 };

// Throws std::runtime_error with a one-line message naming the file.
Audio read(const std::string& path);
void write(const std::string& path, const Audio& audio, Format format = Format::Float32);

// The channels' mean (the texture sources are mono).
std::vector<float> mono(const Audio& audio);

}  // namespace wav
