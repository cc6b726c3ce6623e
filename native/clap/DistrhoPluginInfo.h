// DPF's compile-time description of the STAR CLAP plugin (native/clap/StarClap.cpp).
// A stereo effect (DPF fixes the port count at compile time: 2 in, 2 out, one stereo port
// each), no GUI, no MIDI, no state beyond its parameters; it reports a latency.
#pragma once

#define DISTRHO_PLUGIN_BRAND "star-plugin"
#define DISTRHO_PLUGIN_NAME "STAR"
#define DISTRHO_PLUGIN_URI "urn:starplugin:star"
#define DISTRHO_PLUGIN_CLAP_ID "org.starplugin.star"
#define DISTRHO_PLUGIN_CLAP_FEATURES "audio-effect", "stereo"

#define DISTRHO_PLUGIN_HAS_UI 0
#define DISTRHO_PLUGIN_IS_RT_SAFE 1
#define DISTRHO_PLUGIN_IS_SYNTH 0
#define DISTRHO_PLUGIN_NUM_INPUTS 2
#define DISTRHO_PLUGIN_NUM_OUTPUTS 2
#define DISTRHO_PLUGIN_WANT_LATENCY 1
#define DISTRHO_PLUGIN_WANT_MIDI_INPUT 0
#define DISTRHO_PLUGIN_WANT_MIDI_OUTPUT 0
#define DISTRHO_PLUGIN_WANT_PROGRAMS 0
#define DISTRHO_PLUGIN_WANT_STATE 0
#define DISTRHO_PLUGIN_WANT_TIMEPOS 0
