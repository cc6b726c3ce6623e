// star-engine-cli: stream a WAV file through a STAR ONNX export with the native engine.
//
//   star-engine-cli MODEL_DIR in.wav out.wav [--block N | --blocks N1,N2,...] [--threads N]
//                   [--compensate] [--pcm16] [--texture T.wav] [--texture-mode loop|hold|mean]
//                   [--structure-amount A] [--texture-amount A] [--temperature T]
//                   [--block-times TIMES.txt] [--worker-thread [--realtime]]
//   star-engine-cli MODEL_DIR --info [--rate HZ]
//
// The input WAV may be at any rate in 8000..384000 Hz: at the model's rate the engine runs
// directly, at any other it runs inside star::ResampledEngine (libsoxr to the model's rate and
// back, like the Python StreamingEngine), and the output WAV has the input's rate; the
// latency in the summary is then in host samples. `--info --rate HZ` adds the latency at that
// host rate ("host_rate", "host_latency_samples").
//
// The morph options act through the export's morph graph (star_plugin.morph's MorphParams,
// seed 0): the texture file is encoded by the offline encoder graph (its channels averaged to
// mono and resampled to the model's rate like Python's texture_source when it has another).
//
// --worker-thread runs the model on a worker thread (star::ThreadedEngine, as the plugin's
// Worker Thread option): the latency grows by the largest block plus one hop. As a bounce the
// main thread waits for the worker (the output then equals the synchronous one, delayed).
// --realtime paces the blocks like an audio callback (one block per block duration) and, with
// --worker-thread, never waits: late blocks become silence ("misses" in the summary).
//
// The output has the input's length. Without --compensate it is the raw stream (the input
// delayed by latency_samples, exactly what a plugin host hears); with --compensate the engine is
// flushed with latency_samples of silence and the delay is removed. --blocks cycles through the
// given block sizes (uneven host buffers). A JSON summary (latency, per-block timing) goes to
// stdout; errors are one line on stderr with exit status 1 (2 for usage errors). Allocations
// on the calling (audio) thread are counted per block; at a non-model rate or with the worker
// thread there is no idle/graph split (every block counts as a graph block,
// "allocations_in_idle_blocks" is null).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "star_engine.h"
#include "star_resample.h"
#include "star_threaded.h"
#include "wav.h"

// Every operator new in the process (the engine's and ONNX Runtime's, which binds to this one)
// is counted per thread, so the summary can say how many allocations one block costs the
// thread that called process() (a worker thread's are its own).
static thread_local unsigned long long t_allocations = 0;

void* operator new(std::size_t size) {
  ++t_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

const char* kUsage =
    "usage: star-engine-cli MODEL_DIR IN.wav OUT.wav [--block N | --blocks N1,N2,...]\n"
    "                       [--threads N] [--compensate] [--pcm16] [--block-times T.txt]\n"
    "                       [--texture T.wav] [--texture-mode loop|hold|mean]\n"
    "                       [--structure-amount A] [--texture-amount A] [--temperature T]\n"
    "                       [--worker-thread [--realtime]]\n"
    "       star-engine-cli MODEL_DIR --info [--rate HZ]\n";

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "star-engine-cli: %s\n%s", why.c_str(), kUsage);
  std::exit(2);
}

float parse_float(const std::string& text, const char* what, float lo, float hi) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= lo && v <= hi))
    usage(std::string(what) + " must be a number in " + std::to_string(lo) + ".." +
          std::to_string(hi) + ", got '" + text + "'");
  return float(v);
}

int parse_int(const std::string& text, const char* what, int lo, int hi) {
  char* end = nullptr;
  long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < lo || v > hi)
    usage(std::string(what) + " must be an integer in " + std::to_string(lo) + ".." +
          std::to_string(hi) + ", got '" + text + "'");
  return int(v);
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) { out += ' '; continue; }
    out += c;
  }
  return out + "\"";
}

void print_info(const star::Engine& engine, const star::ResampledEngine* host) {
  const star::ModelInfo& m = engine.model();
  std::printf("{\"name\": %s, \"sample_rate\": %d, \"hop\": %d, \"latency_samples\": %d, "
              "\"synthesis_delay\": %d, \"audio_channels\": %d, \"latent_channels\": %d, "
              "\"structure_channels\": %d, \"morph\": %s, "
              "\"onnxruntime\": %s, ",
              json_string(m.name).c_str(), m.sample_rate, m.hop, engine.latency_samples(),
              m.synthesis_delay, m.audio_channels, m.latent_channels, m.structure_channels,
              engine.has_morph() ? "true" : "false",
              json_string(star::Engine::runtime_version()).c_str());
  if (host != nullptr)
    std::printf("\"host_rate\": %d, \"host_latency_samples\": %d, \"libsoxr\": %s, ",
                host->sample_rate(), host->latency_samples(),
                json_string(star::ResampledEngine::soxr_version()).c_str());
  std::printf("\"states\": [");
  const auto& states = engine.states();
  for (size_t i = 0; i < states.size(); ++i) {
    std::string shape;
    for (size_t a = 0; a < states[i].shape.size(); ++a)
      shape += (a ? ", " : "") + std::to_string(states[i].shape[a]);
    std::printf("%s{\"graph\": %s, \"name\": %s, \"shape\": [%s], \"dtype\": %s}", i ? ", " : "",
                json_string(states[i].graph).c_str(), json_string(states[i].name).c_str(),
                shape.c_str(), json_string(states[i].dtype).c_str());
  }
  std::printf("]}\n");
}

// This process's peak resident memory in MB (VmHWM: the current address space only, so a
// parent's pages from before exec are not counted, unlike getrusage's ru_maxrss).
double peak_rss_mb() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1.0;
  char line[256];
  double kb = -1.0;
  while (std::fgets(line, sizeof line, f) != nullptr)
    if (std::strncmp(line, "VmHWM:", 6) == 0) kb = std::atof(line + 6);
  std::fclose(f);
  return kb < 0 ? -1.0 : kb / 1024.0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::vector<int> blocks{512};
  int threads = 1, rate = 0;
  bool compensate = false, pcm16 = false, info = false, worker = false, realtime = false;
  star::MorphTargets morph;
  std::string texture_path, block_times_path;
  star::SourceMode texture_mode = star::SourceMode::Loop;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) usage(std::string(name) + " needs a value");
      return argv[++i];
    };
    if (a == "--block") {
      blocks = {parse_int(value("--block"), "--block", 1, 1 << 20)};
    } else if (a == "--blocks") {
      blocks.clear();
      std::string list = value("--blocks"), item;
      for (size_t p = 0; p <= list.size(); ++p) {
        if (p == list.size() || list[p] == ',') {
          blocks.push_back(parse_int(item, "each of --blocks", 1, 1 << 20));
          item.clear();
        } else {
          item += list[p];
        }
      }
    } else if (a == "--rate") {
      rate = parse_int(value("--rate"), "--rate", star::kMinHostRate, star::kMaxHostRate);
    } else if (a == "--threads") {
      threads = parse_int(value("--threads"), "--threads", 1, 256);
    } else if (a == "--structure-amount") {
      morph.structure_amount = parse_float(value("--structure-amount"), "--structure-amount", 0, 1);
    } else if (a == "--texture-amount") {
      morph.texture_amount = parse_float(value("--texture-amount"), "--texture-amount", 0, 1);
    } else if (a == "--temperature") {
      morph.temperature = parse_float(value("--temperature"), "--temperature", 0, 4);
    } else if (a == "--texture") {
      texture_path = value("--texture");
    } else if (a == "--texture-mode") {
      std::string mode = value("--texture-mode");
      if (mode == "loop") texture_mode = star::SourceMode::Loop;
      else if (mode == "hold") texture_mode = star::SourceMode::Hold;
      else if (mode == "mean") texture_mode = star::SourceMode::Mean;
      else usage("--texture-mode must be loop, hold or mean, got '" + mode + "'");
    } else if (a == "--block-times") {
      block_times_path = value("--block-times");
    } else if (a == "--compensate") {
      compensate = true;
    } else if (a == "--pcm16") {
      pcm16 = true;
    } else if (a == "--worker-thread") {
      worker = true;
    } else if (a == "--realtime") {
      realtime = true;
    } else if (a == "--info") {
      info = true;
    } else if (a == "-h" || a == "--help") {
      std::printf("%s", kUsage);
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      usage("unknown option '" + a + "'");
    } else {
      positional.push_back(a);
    }
  }
  if (info ? positional.size() != 1 : positional.size() != 3)
    usage(info ? "--info takes MODEL_DIR only" : "expected MODEL_DIR IN.wav OUT.wav");
  if (rate != 0 && !info)
    usage("--rate goes with --info (a file is processed at its own rate)");
  const int largest = *std::max_element(blocks.begin(), blocks.end());
  if (worker && largest > star::kMaxBlock)
    usage("--worker-thread takes blocks of at most " + std::to_string(star::kMaxBlock) +
          " samples, got " + std::to_string(largest));

  try {
    if (info) {
      star::EngineConfig config;
      config.threads = threads;
      if (rate != 0) {
        star::ResampledEngine host(positional[0], rate, config);
        print_info(host.engine(), &host);
      } else {
        star::Engine engine(positional[0], config);
        print_info(engine, nullptr);
      }
      return 0;
    }
    wav::Audio audio = wav::read(positional[1]);
    const int channels = int(audio.channels.size());
    star::EngineConfig config;
    config.channels = channels;
    config.threads = threads;
    config.max_block = std::min(star::kMaxBlock, largest);
    if (audio.sample_rate < star::kMinHostRate || audio.sample_rate > star::kMaxHostRate)
      throw std::runtime_error("'" + positional[1] + "' is " + std::to_string(audio.sample_rate) +
                               " Hz; the engine takes " + std::to_string(star::kMinHostRate) +
                               ".." + std::to_string(star::kMaxHostRate) + " Hz");
    // the file's rate is the host rate: a pass-through to star::Engine at the model's rate
    auto resampled = std::make_unique<star::ResampledEngine>(positional[0], audio.sample_rate,
                                                             config);
    star::ResampledEngine& host = *resampled;
    star::Engine& engine = host.engine();
    // what the blocks go through: the engine, or the worker-thread wrapper around it
    std::unique_ptr<star::BlockProcessor> chain = std::move(resampled);
    star::ThreadedEngine* threaded = nullptr;
    if (worker) {
      const int headroom = star::ThreadedEngine::default_headroom(
          largest, engine.model().hop, host.sample_rate(), engine.sample_rate());
      auto wrapper = std::make_unique<star::ThreadedEngine>(std::move(chain), largest, headroom);
      threaded = wrapper.get();
      threaded->set_wait_for_worker(!realtime);
      chain = std::move(wrapper);
    }
    engine.set_morph(morph);
    if (!texture_path.empty()) {
      wav::Audio tex = wav::read(texture_path);
      if (tex.frames() == 0) throw std::runtime_error("texture '" + texture_path + "' is empty");
      std::vector<float> mono = star::resample_mono(wav::mono(tex), tex.sample_rate,
                                                    engine.sample_rate());
      int texture_frames = 0;
      std::vector<float> latent = engine.encode_texture(mono.data(), int(mono.size()),
                                                        &texture_frames);
      engine.set_texture(latent, texture_frames, texture_mode);
    }
    chain->reset();  // the smoothed controls start at their targets
    const size_t frames = audio.frames();
    const size_t latency = compensate ? size_t(chain->latency_samples()) : 0;
    const size_t total = frames + latency;
    std::vector<std::vector<float>> in(size_t(channels), std::vector<float>(total, 0.f));
    std::vector<std::vector<float>> out(size_t(channels), std::vector<float>(total, 0.f));
    for (int c = 0; c < channels; ++c)
      std::copy(audio.channels[size_t(c)].begin(), audio.channels[size_t(c)].end(),
                in[size_t(c)].begin());

    std::vector<const float*> ip(static_cast<size_t>(channels), nullptr);
    std::vector<float*> op(static_cast<size_t>(channels), nullptr);
    std::vector<double> times;
    unsigned long long allocations = 0, hop_blocks = 0, idle_allocations = 0;
    times.reserve(total / size_t(*std::min_element(blocks.begin(), blocks.end())) + 1);
    size_t done = 0, k = 0;
    auto next_call = std::chrono::steady_clock::now();
    while (done < total) {
      int n = int(std::min<size_t>(size_t(blocks[k++ % blocks.size()]), total - done));
      for (int c = 0; c < channels; ++c) {
        ip[size_t(c)] = in[size_t(c)].data() + done;
        op[size_t(c)] = out[size_t(c)].data() + done;
      }
      if (realtime) {  // an audio callback's pace: one block per block duration
        std::this_thread::sleep_until(next_call);
        next_call += std::chrono::nanoseconds(int64_t(1e9 * n / host.sample_rate()));
      }
      const unsigned long long before = t_allocations;
      auto t0 = std::chrono::steady_clock::now();
      chain->process(ip.data(), op.data(), n);
      auto t1 = std::chrono::steady_clock::now();
      const unsigned long long used = t_allocations - before;
      // a block that completes no hop runs no graph: it must not allocate at all
      if (!host.resampling() && threaded == nullptr &&
          (done % size_t(engine.model().hop)) + size_t(n) < size_t(engine.model().hop)) {
        idle_allocations += used;
      } else {
        allocations += used;
        ++hop_blocks;
      }
      times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      done += size_t(n);
    }
    for (int c = 0; c < channels; ++c)
      audio.channels[size_t(c)].assign(out[size_t(c)].begin() + long(latency),
                                       out[size_t(c)].end());
    wav::write(positional[2], audio, pcm16 ? wav::Format::Int16 : wav::Format::Float32);

    if (!block_times_path.empty()) {  // one line per block: its samples and milliseconds
      std::FILE* f = std::fopen(block_times_path.c_str(), "w");
      if (f == nullptr) throw std::runtime_error("cannot write '" + block_times_path + "'");
      size_t k2 = 0, left = total;
      for (double t : times) {
        size_t n = std::min<size_t>(size_t(blocks[k2++ % blocks.size()]), left);
        left -= n;
        std::fprintf(f, "%zu %.6f\n", n, t);
      }
      std::fclose(f);
    }
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    double sum = std::accumulate(times.begin(), times.end(), 0.0);
    auto pct = [&](double q) {
      return sorted.empty() ? 0.0 : sorted[std::min(sorted.size() - 1, size_t(q * sorted.size()))];
    };
    double seconds = double(total) / host.sample_rate();
    const std::string idle = host.resampling() || threaded != nullptr
                                 ? "null" : std::to_string(idle_allocations);
    std::printf("{\"latency_samples\": %d, \"sample_rate\": %d, \"channels\": %d, "
                "\"frames\": %zu, \"blocks\": %zu, \"compensated\": %s, "
                "\"block_ms_mean\": %.5f, \"block_ms_median\": %.5f, \"block_ms_p99\": %.5f, "
                "\"block_ms_max\": %.5f, \"rtf\": %.5f, \"sanitized_samples\": %llu, "
                "\"allocations_per_graph_block\": %.1f, \"allocations_in_idle_blocks\": %s, "
                "\"morph\": %s, \"texture_frames\": %d, \"threads\": %d, "
                "\"peak_rss_mb\": %.1f, \"model_rate\": %d, \"underruns\": %llu, "
                "\"worker_thread\": %s, \"realtime\": %s, \"headroom\": %d, "
                "\"misses\": %llu, \"overruns\": %llu, "
                "\"onnxruntime\": %s}\n",
                chain->latency_samples(), host.sample_rate(), channels, frames, times.size(),
                compensate ? "true" : "false", times.empty() ? 0.0 : sum / times.size(),
                pct(0.5), pct(0.99), sorted.empty() ? 0.0 : sorted.back(),
                seconds > 0 ? sum / 1000.0 / seconds : 0.0,
                static_cast<unsigned long long>(host.sanitized_samples()),
                hop_blocks ? double(allocations) / double(hop_blocks) : 0.0, idle.c_str(),
                engine.has_morph() ? "true" : "false", engine.texture_frames(), threads,
                peak_rss_mb(), engine.sample_rate(),
                static_cast<unsigned long long>(host.underruns()),
                threaded ? "true" : "false", realtime ? "true" : "false",
                threaded ? threaded->headroom() : 0,
                static_cast<unsigned long long>(threaded ? threaded->misses() : 0),
                static_cast<unsigned long long>(threaded ? threaded->overruns() : 0),
                json_string(star::Engine::runtime_version()).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "star-engine-cli: %s\n", e.what());
    return 1;
  }
}
