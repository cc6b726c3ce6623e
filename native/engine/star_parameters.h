// star_parameters.h: the plugins' sound parameters, one table for the VST3 (native/plugin) and
// the CLAP (native/clap): id/symbol, name, unit, range, default, and display decimals.
// Structure/texture/temperature are star::MorphTargets; mix and output gain the DryWetMix rule.
#pragma once

namespace star {

enum ParameterIndex : unsigned {
  kStructure = 0,
  kTexture,
  kTemperature,
  kMix,
  kGain,
  kParameterCount
};

struct ParameterSpec {
  const char* id;  // VST3 parameter id, CLAP/DPF symbol
  const char* name;
  const char* unit;
  float min, max, def;
  int decimals;
};

constexpr ParameterSpec kParameters[kParameterCount] = {
    {"structure_amount", "Structure Amount", "", 0.0f, 1.0f, 0.0f, 2},
    {"texture_amount", "Texture Amount", "", 0.0f, 1.0f, 0.0f, 2},
    {"temperature", "Temperature", "", 0.0f, 2.0f, 0.0f, 2},
    {"mix", "Mix", "", 0.0f, 1.0f, 1.0f, 2},
    {"output_gain", "Output Gain", "dB", -24.0f, 24.0f, 0.0f, 1},
};

}  // namespace star
