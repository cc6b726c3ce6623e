// The STAR plugin (VST3, LV2 and CLAP: one JUCE AudioProcessor): star::Engine inside it.
//
// Audio path per block (host thread, no allocation, no file I/O):
//   dry  = input delayed by latency_samples (so dry and wet line up)
//   wet  = chain.process(input)                          (latency_samples late)
//   out  = g_wet * wet + g_dry * dry,   g_wet = mix * gain, g_dry = (1 - mix) * gain
// A changed mix/gain ramps linearly over the block, exactly like the Python engine's
// StreamingEngine._mix_output, so automation never clicks.
//
// The chain is star::Engine, or with "Worker Thread" on, star::ThreadedEngine around it: the
// model then runs on a worker thread and the audio thread only copies samples (for small host
// buffers; the latency grows by the host block plus one model hop). In offline rendering the
// audio thread waits for the worker, so a bounce equals the synchronous output.
//
// Structure amount, texture amount and temperature drive the frame-wise morph: the export's
// morph graph (morph.onnx, the same graph the Python ONNX engine runs), between the encoder
// and decoder stream graphs; each change glides frame by frame (one pole, 50 ms), like the
// Python LatentMorph. "Texture Source" picks the morph's texture: Off, one of the bundled
// example textures (Resources/textures/*.wav in the bundle), or File (a WAV the user
// picks in the editor, remembered in the session; $STAR_TEXTURE sets the initial one). A
// texture is encoded by the export's offline encoder graph on the service thread, never on
// the audio thread, and handed to the engine by pointer swap.
//
// The model: $STAR_MODEL_DIR when set, else the bundle's Resources/model (STAR.vst3/Contents/
// Resources, STAR.lv2/Resources; for STAR.clap, model/ beside it). The chain is
// (re)built where the audio thread cannot run: prepareToPlay, reset, and in offline rendering
// the callback itself. At a host rate other than the model's the chain resamples with libsoxr
// (star::ResampledEngine, the Python engine's resampler and latency rule); a rate outside
// 8..384 kHz is refused: the input passes through, delayed by the latency, and the editor says
// why.
#include "StarProcessor.h"

#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "StarEditor.h"
#include "star_parameters.h"
#include "star_resample.h"
#include "wav.h"

namespace {

const char* const kTextureOff = "Off";
const char* const kTextureFile = "File";

juce::File bundle_resources() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&bundle_resources), &info) == 0 || !info.dli_fname)
    return {};
  // CLAP: .../STAR/STAR.clap                           -> .../STAR (model/ beside the .clap)
  // LV2:  .../STAR.lv2/STAR.so                          -> .../STAR.lv2/Resources
  // VST3: .../STAR.vst3/Contents/x86_64-linux/STAR.so   -> .../STAR.vst3/Contents/Resources
  const juce::File module(info.dli_fname), folder = module.getParentDirectory();
  if (module.getFileExtension() == ".clap") return folder;
  if (folder.getFileExtension() == ".lv2") return folder.getChildFile("Resources");
  return folder.getParentDirectory().getChildFile("Resources");
}

juce::File bundled_texture(const juce::String& name) {
  return bundle_resources().getChildFile("textures").getChildFile(name + ".wav");
}

juce::File model_dir() {
  if (const char* env = std::getenv("STAR_MODEL_DIR"); env != nullptr && *env != '\0')
    return juce::File(juce::String(env));
  return bundle_resources().getChildFile("model");
}

juce::File env_texture() {
  if (const char* env = std::getenv("STAR_TEXTURE"); env != nullptr && *env != '\0')
    return juce::File(juce::String(env));
  return {};
}

// A WAV file as mono (the channels' mean) at `rate` (resampled as star_plugin.audio.resample
// does when the file has another rate); throws std::runtime_error naming the file.
std::vector<float> read_mono(const juce::File& file, int rate) {
  const wav::Audio audio = wav::read(file.getFullPathName().toStdString());
  if (audio.frames() == 0)
    throw std::runtime_error("'" + file.getFileName().toStdString() + "' has no samples");
  return star::resample_mono(wav::mono(audio), audio.sample_rate, rate);
}

}  // namespace

// ------------------------------------------------------------------------------ set-up
juce::StringArray StarProcessor::texture_choices() {
  juce::StringArray names;
  for (const auto& file : bundle_resources().getChildFile("textures")
                              .findChildFiles(juce::File::findFiles, false, "*.wav"))
    names.add(file.getFileNameWithoutExtension());
  names.sort(true);
  names.insert(0, kTextureOff);
  names.add(kTextureFile);
  return names;
}

juce::AudioProcessorValueTreeState::ParameterLayout StarProcessor::layout() {
  juce::AudioProcessorValueTreeState::ParameterLayout l;
  for (const star::ParameterSpec& spec : star::kParameters) {  // shared with the CLAP
    const int places = spec.decimals;
    l.add(std::make_unique<juce::AudioParameterFloat>(
        juce::ParameterID{spec.id, 1}, spec.name,
        juce::NormalisableRange<float>(spec.min, spec.max), spec.def,
        juce::AudioParameterFloatAttributes()
            .withLabel(spec.unit)
            .withStringFromValueFunction(
                [places](float v, int) { return juce::String(v, places); })
            .withValueFromStringFunction(
                [](const juce::String& t) { return t.getFloatValue(); })));
  }
  // The texture: the file from $STAR_TEXTURE when set, else the bundled "texture" example.
  const juce::StringArray choices = texture_choices();
  int initial = choices.indexOf("texture");
  if (env_texture() != juce::File()) initial = choices.indexOf(kTextureFile);
  l.add(std::make_unique<juce::AudioParameterChoice>(juce::ParameterID{"texture_source", 1},
                                                     "Texture Source", choices,
                                                     juce::jmax(0, initial)));
  // Changes the latency, so it is not automatable: hosts apply it when they re-prepare.
  l.add(std::make_unique<juce::AudioParameterBool>(
      juce::ParameterID{"worker_thread", 1}, "Worker Thread", false,
      juce::AudioParameterBoolAttributes().withAutomatable(false)));
  return l;
}

StarProcessor::StarProcessor()
    : AudioProcessor(BusesProperties()
                         .withInput("Input", juce::AudioChannelSet::stereo(), true)
                         .withOutput("Output", juce::AudioChannelSet::stereo(), true)),
      parameters_(*this, nullptr, "STAR", layout()),
      user_texture_(env_texture()) {
  structure_ = parameters_.getRawParameterValue("structure_amount");
  texture_ = parameters_.getRawParameterValue("texture_amount");
  temperature_ = parameters_.getRawParameterValue("temperature");
  mix_amount_ = parameters_.getRawParameterValue("mix");
  gain_db_ = parameters_.getRawParameterValue("output_gain");
  texture_source_ = parameters_.getRawParameterValue("texture_source");
  worker_ = parameters_.getRawParameterValue("worker_thread");
  parameters_.addParameterListener("texture_source", this);
  parameters_.addParameterListener("worker_thread", this);
  if (user_texture_ != juce::File())  // $STAR_TEXTURE: saved with the session like a picked file
    parameters_.state.setProperty("texture_file", user_texture_.getFullPathName(), nullptr);
  {
    // Load once now, at the model's rate, so the host sees a latency before prepareToPlay.
    // Without a model (a bundle built with --model none and no $STAR_MODEL_DIR; JUCE's LV2
    // build also instantiates the plugin to write its .ttl) the plugin still loads: it passes
    // audio through and the editor says why.
    std::lock_guard<std::mutex> lock(service_mutex_);
    try {
      adopt_chain(build_chain(2, star::kMaxBlock, false, star::ResampledEngine::kModelRate));
      service_pending();
    } catch (const std::exception& e) {
      model_status_ = juce::String("no model: ") + e.what();
      std::fprintf(stderr, "STAR: %s\n", model_status_.toRawUTF8());  // headless hosts too
    }
  }
  service_ = std::thread([this] { service_loop(); });
}

StarProcessor::~StarProcessor() {
  {
    std::lock_guard<std::mutex> lock(service_mutex_);
    stop_service_ = true;
  }
  service_wake_.notify_all();
  if (service_.joinable()) service_.join();
  parameters_.removeParameterListener("texture_source", this);
  parameters_.removeParameterListener("worker_thread", this);
}

StarChain StarProcessor::build_chain(int channels, int max_block, bool worker,
                                     int host_rate) const {
  StarChain chain;
  chain.channels = channels;
  chain.max_block = max_block;
  chain.worker = worker;
  chain.host_rate = host_rate;
  star::EngineConfig config;
  config.channels = channels;
  config.max_block = juce::jmax(512, max_block);  // fewer, larger graph runs per host block
  config.threads = 1;
  auto host = std::make_unique<star::ResampledEngine>(
      model_dir().getFullPathName().toStdString(), host_rate, config);
  chain.engine = &host->engine();
  chain.host_rate = host->sample_rate();  // host_rate may be kModelRate
  chain.resampling = host->resampling();
  if (worker) {
    const int headroom = star::ThreadedEngine::default_headroom(
        max_block, chain.engine->model().hop, host_rate, chain.engine->sample_rate());
    auto threaded = std::make_unique<star::ThreadedEngine>(std::move(host), max_block,
                                                           headroom);
    chain.threaded = threaded.get();
    chain.processor = std::move(threaded);
  } else {
    chain.processor = std::move(host);
  }
  return chain;
}

// Caller holds service_mutex_, and the audio thread cannot be in processBlock.
void StarProcessor::adopt_chain(StarChain chain) {
  chain_ = std::move(chain);
  latency_ = chain_.processor->latency_samples();
  setLatencySamples(latency_);
  chunk_ = chain_.processor->max_block();  // longer host blocks are split
  mix_.prepare(chain_.channels, chunk_, latency_);
  describe_chain();
  texture_loaded_generation_ = -1;  // the new engine has no texture yet
  handover_ready_ = false;  // a chain built for the old one is stale
  pending_.reset();
}

// Caller holds service_mutex_: the status line for chain_.
void StarProcessor::describe_chain() {
  const star::ModelInfo& model = chain_.engine->model();
  model_status_ = "model '" + juce::String(model.name) + "' (" +
                  juce::String(model.sample_rate) + " Hz), latency " + juce::String(latency_) +
                  " samples (" + juce::String(1000.0 * latency_ / chain_.host_rate, 1) +
                  " ms at " + juce::String(chain_.host_rate) + " Hz" +
                  (chain_.resampling ? ", resampled with libsoxr)" : ")");
}

// The model's measured tail (manifest.json, star_plugin/tail.py): what it still plays after
// the input ends, beyond the latency the host compensates.
double StarProcessor::getTailLengthSeconds() const {
  if (chain_.engine == nullptr) return 0.0;
  const star::ModelInfo& model = chain_.engine->model();
  return double(model.tail_samples) / model.sample_rate;
}

bool StarProcessor::isBusesLayoutSupported(const BusesLayout& layouts) const {
  const auto& out = layouts.getMainOutputChannelSet();
  if (out != juce::AudioChannelSet::mono() && out != juce::AudioChannelSet::stereo())
    return false;
  return layouts.getMainInputChannelSet() == out;
}

void StarProcessor::prepareToPlay(double sample_rate, int block) {
  const int channels = juce::jmax(1, getTotalNumOutputChannels());
  const int max_block = juce::jlimit(1, star::kMaxBlock, block);
  const bool worker = worker_->load() > 0.5f;
  const long rate = std::lround(sample_rate);
  std::lock_guard<std::mutex> lock(service_mutex_);
  host_rate_ = sample_rate;
  rate_ok_ = rate >= star::kMinHostRate && rate <= star::kMaxHostRate &&
             double(rate) == sample_rate;
  const int chain_rate = rate_ok_ ? int(rate) : chain_.host_rate;  // refused: pass-through
  try {
    // the worker's headroom follows the host block; the synchronous engine only needs room
    if (!chain_.processor || chain_.channels != channels || chain_.worker != worker ||
        chain_.host_rate != chain_rate ||
        (worker ? chain_.max_block != max_block : chain_.max_block < max_block))
      adopt_chain(build_chain(channels, max_block, worker, chain_rate));
    rebuild_wanted_ = false;
  } catch (const std::exception& e) {
    model_status_ = juce::String("no model: ") + e.what();
    rate_ok_ = false;
  }
  prepared_ = true;
  service_pending();
  reset_streams();
}

void StarProcessor::reset() {
  std::lock_guard<std::mutex> lock(service_mutex_);
  service_pending();
  reset_streams();
}

// ------------------------------------------------------------------------------ the service
void StarProcessor::parameterChanged(const juce::String& id, float) {
  // Any thread, the audio thread included: only flags and a wake-up.
  if (id == "texture_source") texture_generation_.fetch_add(1);
  if (id == "worker_thread") rebuild_wanted_ = true;
  service_wake_.notify_one();
}

void StarProcessor::set_texture_file(const juce::File& file) {
  {
    std::lock_guard<std::mutex> lock(service_mutex_);
    user_texture_ = file;
    parameters_.state.setProperty("texture_file", file.getFullPathName(), nullptr);
  }
  auto* choice = parameters_.getParameter("texture_source");
  const int index = texture_choices().indexOf(kTextureFile);
  choice->setValueNotifyingHost(choice->convertTo0to1(float(index)));
  texture_generation_.fetch_add(1);  // a new file under the same choice
  service_wake_.notify_one();
}

juce::File StarProcessor::texture_file() const {
  std::lock_guard<std::mutex> lock(service_mutex_);
  return user_texture_;
}

// Realtime: textures load here, on the service thread (the engine takes them by pointer
// swap). A Worker Thread change builds the new chain here too; the audio thread swaps it in at
// its next block (take_handover), and the new latency is then announced to the host.
void StarProcessor::service_loop() {
  std::unique_lock<std::mutex> lock(service_mutex_);
  while (!stop_service_) {
    service_wake_.wait_for(lock, std::chrono::milliseconds(50));
    // offline rendering: the callback does this work itself, before its next block
    if (retired_) {  // the audio thread took a handover: free the old chain, tell the host
      retired_.reset();
      describe_chain();
      setLatencySamples(latency_);
    }
    if (stop_service_ || isNonRealtime() || chain_.engine == nullptr) continue;
    sync_texture();
    if (rebuild_wanted_.exchange(false)) {
      handover_ready_ = false;  // a newer request replaces a chain not yet taken
      pending_.reset();
      const bool worker = worker_->load() > 0.5f;
      if (worker != chain_.worker) {
        try {
          auto next = std::make_unique<Handover>();
          next->chain = build_chain(chain_.channels, chain_.max_block, worker, chain_.host_rate);
          next->latency = next->chain.processor->latency_samples();
          next->chunk = next->chain.processor->max_block();
          next->mix.prepare(next->chain.channels, next->chunk, next->latency);
          push_morph(*next->chain.engine);
          next->chain.processor->reset();
          pending_ = std::move(next);
          handover_ready_ = true;
        } catch (const std::exception& e) {
          model_status_ = juce::String("worker thread: ") + e.what();
        }
      }
    }
  }
}

// The audio thread, at a block boundary: swap in the chain the service thread built. Only
// moves (no allocation, no file I/O); try_lock, so it never waits for the service thread.
void StarProcessor::take_handover() {
  std::unique_lock<std::mutex> lock(service_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || !pending_) return;
  std::swap(chain_, pending_->chain);
  std::swap(mix_, pending_->mix);
  latency_ = pending_->latency;
  chunk_ = pending_->chunk;
  texture_loaded_generation_ = -1;  // the new engine has no texture yet: the service loads it
  retired_ = std::move(pending_);
  handover_ready_ = false;
  service_wake_.notify_one();
}

// Caller holds service_mutex_; never on the realtime audio thread.
void StarProcessor::service_pending() {
  if (chain_.engine == nullptr) return;
  rebuild_wanted_ = false;
  // (the switch itself, not the flag: the service thread may have taken the flag and built a
  // handover the audio thread has not swapped in; adopt_chain drops it)
  const bool worker = worker_->load() > 0.5f;
  if (worker != chain_.worker) {
    try {
      adopt_chain(build_chain(chain_.channels, chain_.max_block, worker, chain_.host_rate));
      reset_streams();
    } catch (const std::exception& e) {
      model_status_ = juce::String("worker thread: ") + e.what();
    }
  }
  sync_texture();
}

// Caller holds service_mutex_: load the texture the parameter asks for, when it changed.
void StarProcessor::sync_texture() {
  const int generation = texture_generation_.load();
  if (generation == texture_loaded_generation_) return;
  load_texture(juce::roundToInt(texture_source_->load()));
  texture_loaded_generation_ = generation;
}

// Caller holds service_mutex_. Encodes and hands over; the engine switches at its next frame.
void StarProcessor::load_texture(int choice) {
  const juce::StringArray choices = texture_choices();
  const juce::String name = choices[juce::jlimit(0, choices.size() - 1, choice)];
  if (name == kTextureOff) {
    chain_.engine->clear_texture();
    texture_status_ = "texture: off";
    return;
  }
  const juce::File file = name == kTextureFile ? user_texture_ : bundled_texture(name);
  if (file == juce::File()) {
    chain_.engine->clear_texture();
    texture_status_ = "texture: no file chosen (Load texture...)";
    return;
  }
  try {
    std::vector<float> mono = read_mono(file, chain_.engine->sample_rate());
    int frames = 0;
    std::vector<float> latent = chain_.engine->encode_texture(mono.data(), int(mono.size()),
                                                              &frames);
    chain_.engine->set_texture(latent, frames);
    chain_.engine->release_retired_texture();
    texture_status_ = "texture: '" + file.getFileName() + "' (" + juce::String(frames) +
                      " frames)";
  } catch (const std::exception& e) {
    chain_.engine->clear_texture();
    texture_status_ = juce::String("texture: ") + e.what();
  }
}

juce::StringArray StarProcessor::status() const {
  // The editor's timer asks on the message thread: never wait for a texture being encoded.
  std::unique_lock<std::mutex> lock(service_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return last_status_;
  juce::StringArray& lines = last_status_;
  lines.clear();
  lines.add(model_status_);
  if (prepared_ && !rate_ok_)
    lines.add("host rate " + juce::String(host_rate_, 1) + " Hz is outside " +
              juce::String(star::kMinHostRate) + ".." + juce::String(star::kMaxHostRate) +
              " Hz: passing audio through (delayed by the latency).");
  lines.add(texture_status_);
  if (chain_.threaded != nullptr)
    lines.add("worker thread: on, " + juce::String(chain_.threaded->headroom()) +
              " samples of headroom, " + juce::String((juce::int64)chain_.threaded->misses()) +
              " late blocks");
  else
    lines.add("worker thread: off (the model runs in the host's audio callback)");
  return lines;
}

// ------------------------------------------------------------------------------ audio
void StarProcessor::push_morph(star::Engine& engine) const {
  star::MorphTargets t;
  t.structure_amount = structure_->load();
  t.texture_amount = texture_->load();
  t.temperature = temperature_->load();
  engine.set_morph(t);
}

void StarProcessor::reset_streams() {
  if (chain_.processor) {
    push_morph(*chain_.engine);  // the smoothed controls start at the current values
    chain_.processor->reset();
  }
  mix_.reset();
}

float StarProcessor::target_wet() const {
  return mix_amount_->load() * star::db_to_gain(gain_db_->load());
}
float StarProcessor::target_dry() const {
  return (1.0f - mix_amount_->load()) * star::db_to_gain(gain_db_->load());
}

void StarProcessor::processBlock(juce::AudioBuffer<float>& buffer, juce::MidiBuffer&) {
  juce::ScopedNoDenormals no_denormals;
  const int n = buffer.getNumSamples();
  const int channels = juce::jmin(buffer.getNumChannels(), star::kMaxChannels);
  const bool offline = isNonRealtime();
  if (offline && !was_offline_ && chain_.processor) {
    // A bounce starts: from silence, like a fresh instance, so that it does not depend on
    // what the host played before (Ardour runs a varying number of idle cycles first).
    // Offline rendering may block; this never runs in real time.
    std::lock_guard<std::mutex> lock(service_mutex_);
    reset_streams();
  }
  was_offline_ = offline;
  if (offline && ((worker_->load() > 0.5f) != chain_.worker ||
                  texture_generation_.load() != texture_loaded_generation_)) {
    // Offline rendering may block: apply what the parameters ask for before this block (an
    // empty block too: LV2 hosts apply a restored state with one).
    std::lock_guard<std::mutex> lock(service_mutex_);
    service_pending();
  }
  if (n == 0) return;
  if (!chain_.processor) return;  // no model: the input passes through (the editor says why)
  if (chain_.channels != channels) {
    buffer.clear();  // an unexpected layout: silence, never garbage
    return;
  }
  if (handover_ready_.load(std::memory_order_acquire)) take_handover();
  if (chain_.threaded != nullptr) chain_.threaded->set_wait_for_worker(offline);
  for (int done = 0; done < n;) {
    const int m = juce::jmin(n - done, chunk_);
    float* io[star::kMaxChannels];
    for (int c = 0; c < channels; ++c) io[c] = buffer.getWritePointer(c, done);
    run_chunk(io, channels, m);
    done += m;
  }
}

// The mix rule is star_mix.h's (shared with the CLAP build): the dry signal enters the delay
// line before the engine overwrites the buffer in place.
void StarProcessor::run_chunk(float* const* io, int channels, int m) {
  mix_.push_dry(io, m);
  if (rate_ok_) {
    push_morph(*chain_.engine);  // targets only: the engine glides there frame by frame
    chain_.processor->process(io, io, m);
    mix_.mix(io, m, target_wet(), target_dry());
    return;
  }
  // a refused rate: the delayed dry signal, times the output gain
  for (int c = 0; c < channels; ++c) std::copy(mix_.delayed(c), mix_.delayed(c) + m, io[c]);
  mix_.mix(io, m, star::db_to_gain(gain_db_->load()), 0.0f);
}

// ------------------------------------------------------------------------------ state, editor
juce::AudioProcessorEditor* StarProcessor::createEditor() { return new StarEditor(*this); }

void StarProcessor::getStateInformation(juce::MemoryBlock& data) {
  if (auto xml = parameters_.copyState().createXml()) copyXmlToBinary(*xml, data);
}

void StarProcessor::setStateInformation(const void* data, int size) {
  if (auto xml = getXmlFromBinary(data, size)) {
    if (xml->hasTagName(parameters_.state.getType())) {
      parameters_.replaceState(juce::ValueTree::fromXml(*xml));
      const juce::String path = parameters_.state.getProperty("texture_file").toString();
      if (path.isNotEmpty()) {
        std::lock_guard<std::mutex> lock(service_mutex_);
        user_texture_ = juce::File(path);
      }
      texture_generation_.fetch_add(1);
      rebuild_wanted_ = true;
      service_wake_.notify_one();
    }
  }
}

juce::AudioProcessor* JUCE_CALLTYPE createPluginFilter() { return new StarProcessor(); }
