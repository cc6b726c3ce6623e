// star_resample.cpp: see star_resample.h for what the wrapper does and its real-time rules.
#include "star_resample.h"

#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace star {
namespace {

const float kSampleLimit = 1e4f;  // star_plugin.guard.SAMPLE_LIMIT, as Engine's guard

// One direction of python-soxr's ResampleStream(in_rate, out_rate, channels, dtype="float32",
// quality="LQ") (python-soxr 1.1.0, src/soxr_ext.cpp, CSoxr), on libsoxr directly:
//   * soxr_create with soxr_quality_spec(SOXR_LQ, 0) (linear phase) and one thread (python-soxr
//     passes no runtime spec: libsoxr's default is soxr_runtime_spec(1));
//   * resample_chunk(x) asks for soxr_delay() + ilen * out/in + 1 output frames (truncated) and
//     feeds the input in pieces of max(1000, 48000 * in/out) frames.
// python-soxr hands libsoxr a power-of-two buffer at least that large; libsoxr never emits
// more than that request (measured at 8k..384k <-> 16k/44.1k, chunks of 1..8192), so the
// emitted counts are the same. I/O here is planar (SOXR_FLOAT32_S) rather than interleaved:
// libsoxr runs the same per-channel resamplers either way (bit-identical output).
class SoxrStream {
 public:
  SoxrStream() = default;
  ~SoxrStream() {
    if (s_ != nullptr) soxr_delete(s_);
  }
  SoxrStream(const SoxrStream&) = delete;
  SoxrStream& operator=(const SoxrStream&) = delete;

  void open(int in_rate, int out_rate, int channels) {
    soxr_error_t err = nullptr;
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_S, SOXR_FLOAT32_S);
    const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_LQ, 0);
    const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
    s_ = soxr_create(in_rate, out_rate, unsigned(channels), &err, &io, &quality, &runtime);
    if (err != nullptr || s_ == nullptr)
      throw EngineError("libsoxr cannot resample " + std::to_string(in_rate) + " -> " +
                        std::to_string(out_rate) + " Hz: " + (err ? err : "soxr_create failed"));
    ratio_ = double(out_rate) / double(in_rate);
    div_len_ = size_t(std::max(1000., 48000. * in_rate / out_rate));
    channels_ = channels;
  }

  // Back to a fresh stream (libsoxr re-designs its filters: allocates).
  void clear() {
    if (soxr_error_t err = soxr_clear(s_)) throw EngineError(std::string("libsoxr: ") + err);
  }

  double delay() const { return soxr_delay(s_); }

  // resample_chunk of in[c][0..ilen) (ilen > 0) into out[c][0..): returns the frames written.
  // `capacity` (frames) caps the request; a capped request leaves the rest inside libsoxr
  // for the next call (nothing is lost), and the constructor sizes it never to be reached.
  size_t process(const float* const* in, size_t ilen, float* const* out, size_t capacity) {
    const size_t wanted = size_t(soxr_delay(s_) + double(ilen) * ratio_ + 1);
    const size_t olen = std::min(wanted, capacity);
    const float* ip[kMaxChannels];
    float* op[kMaxChannels];
    size_t pos = 0;
    for (size_t idx = 0; idx < ilen; idx += div_len_) {
      for (int c = 0; c < channels_; ++c) {
        ip[c] = in[c] + idx;
        op[c] = out[c] + pos;
      }
      size_t odone = 0;
      soxr_error_t err = soxr_process(s_, ip, std::min(div_len_, ilen - idx), nullptr, op,
                                      olen - pos, &odone);
      if (err != nullptr) throw EngineError(std::string("libsoxr failed while streaming: ") + err);
      pos += odone;
    }
    return pos;
  }

 private:
  soxr_t s_ = nullptr;
  double ratio_ = 1.0;
  size_t div_len_ = 1000;
  int channels_ = 1;
};

struct Probe {
  int latency = 0;
  double max_delay_in = 0.0, max_delay_out = 0.0;  // the most each stream held back
};

// StreamingEngine._measure_latency, step by step: host chunks of kLatencyProbeBlock zeros into
// the input stream, the model's hop framing (whole hops, minus what it holds back), the output
// stream; the worst lag + kLatencyProbeBlock + 1.
Probe probe_chain(int host_rate, int model_rate, int hop, int model_latency, int channels) {
  Probe p;
  if (host_rate == model_rate) {
    p.latency = model_latency;
    return p;
  }
  SoxrStream rs_in, rs_out;
  rs_in.open(host_rate, model_rate, channels);
  rs_out.open(model_rate, host_rate, channels);
  const int64_t probe = kLatencyProbeBlock;
  const int64_t held_back = int64_t(model_latency) - (hop - 1);
  const size_t rows = static_cast<size_t>(channels);
  std::vector<std::vector<float>> zeros(rows), sink(rows);
  std::vector<const float*> zp(rows);
  std::vector<float*> sp(rows);
  auto fit = [&](size_t in, size_t out) {  // zero input and a sink big enough for a call
    for (int c = 0; c < channels; ++c) {
      if (zeros[size_t(c)].size() < in) zeros[size_t(c)].assign(in, 0.f);
      if (sink[size_t(c)].size() < out) sink[size_t(c)].resize(out);
      zp[size_t(c)] = zeros[size_t(c)].data();
      sp[size_t(c)] = sink[size_t(c)].data();
    }
  };
  auto request = [](const SoxrStream& s, size_t ilen, double ratio) {
    return size_t(s.delay() + double(ilen) * ratio + 1);
  };
  const double up = double(model_rate) / host_rate, down = double(host_rate) / model_rate;
  int64_t fed = 0, out = 0, at_model = 0, done = 0, worst = 0;
  const int64_t rounds = int64_t(kLatencyProbeSeconds * host_rate) / probe;
  for (int64_t r = 0; r < rounds; ++r) {
    fed += probe;
    p.max_delay_in = std::max(p.max_delay_in, rs_in.delay());
    fit(size_t(probe), request(rs_in, size_t(probe), up));
    at_model += int64_t(rs_in.process(zp.data(), size_t(probe), sp.data(), sink[0].size()));
    const int64_t ready = std::max<int64_t>(0, at_model / hop * hop - held_back);
    if (ready > done) {
      const size_t n = size_t(ready - done);
      p.max_delay_out = std::max(p.max_delay_out, rs_out.delay());
      fit(n, request(rs_out, n, down));
      out += int64_t(rs_out.process(zp.data(), n, sp.data(), sink[0].size()));
      done = ready;
    }
    worst = std::max(worst, fed - out);
  }
  p.latency = int(worst + probe + 1);
  return p;
}

void check_host_rate(int rate) {
  if (rate < kMinHostRate || rate > kMaxHostRate)
    throw EngineError("host sample rate must be " + std::to_string(kMinHostRate) + ".." +
                      std::to_string(kMaxHostRate) + " Hz, got " + std::to_string(rate) + " Hz");
}

}  // namespace

struct ResampledEngine::Impl {
  explicit Impl(const std::string& dir, const EngineConfig& config) : engine(dir, config) {}

  Engine engine;
  int host_rate = 0, model_rate = 0, channels = 1, max_block = kMaxBlock, latency = 0;
  bool resampling = false;
  SoxrStream rs_in, rs_out;
  // Planar work buffers (one row per channel): guarded input, model-rate input, the engine's
  // aligned output, host-rate output; and the output FIFO (a ring per channel).
  std::vector<float> guarded, model_in, aligned, host_out, fifo;
  size_t in_cap = 0, aligned_cap = 0, out_cap = 0;
  int fifo_capacity = 0, fifo_head = 0, fifo_size = 0;
  uint64_t sanitized = 0, underruns = 0;

  void reset_fifo() {
    std::fill(fifo.begin(), fifo.end(), 0.f);
    fifo_head = 0;
    fifo_size = latency;
    underruns = 0;
  }

  // One piece of at most max_block host samples.
  void process_piece(const float* const* input, float* const* output, int n) {
    float* g[kMaxChannels];
    float* mid[kMaxChannels];
    float* al[kMaxChannels];
    float* ho[kMaxChannels];
    for (int c = 0; c < channels; ++c) {
      g[c] = guarded.data() + size_t(c) * size_t(max_block);
      mid[c] = model_in.data() + size_t(c) * in_cap;
      al[c] = aligned.data() + size_t(c) * aligned_cap;
      ho[c] = host_out.data() + size_t(c) * out_cap;
      // the guard, before the resampler (as StreamingEngine.guard_block); copying first also
      // makes in-place processing safe
      const float* src = input[c];
      for (int i = 0; i < n; ++i) {
        float x = src[i];
        if (!(std::fabs(x) <= kSampleLimit)) {  // NaN, Inf or too loud
          ++sanitized;
          x = std::isfinite(x) ? (x > 0 ? kSampleLimit : -kSampleLimit) : 0.f;
        }
        g[c][i] = x;
      }
    }
    const size_t m = rs_in.process(g, size_t(n), mid, in_cap);
    const int k = m > 0 ? engine.process_aligned(mid, int(m), al, int(aligned_cap)) : 0;
    const size_t h = k > 0 ? rs_out.process(al, size_t(k), ho, out_cap) : 0;
    if (fifo_size + int64_t(h) > fifo_capacity)  // cannot happen: the chain never runs ahead
      throw EngineError("internal error: the resampled engine's output FIFO overflowed");
    for (int c = 0; c < channels; ++c) {  // push h
      float* ring = fifo.data() + size_t(c) * size_t(fifo_capacity);
      int pos = (fifo_head + fifo_size) % fifo_capacity;
      for (size_t i = 0; i < h; ++i) {
        ring[pos] = ho[c][i];
        if (++pos == fifo_capacity) pos = 0;
      }
    }
    fifo_size += int(h);
    const int have = std::min(fifo_size, n);  // pop n; a shortfall is silence (SampleFIFO.pop)
    if (have < n) ++underruns;
    for (int c = 0; c < channels; ++c) {
      const float* ring = fifo.data() + size_t(c) * size_t(fifo_capacity);
      int pos = fifo_head;
      for (int i = 0; i < have; ++i) {
        output[c][i] = ring[pos];
        if (++pos == fifo_capacity) pos = 0;
      }
      std::fill(output[c] + have, output[c] + n, 0.f);
    }
    fifo_head = (fifo_head + have) % fifo_capacity;
    fifo_size -= have;
  }
};

ResampledEngine::ResampledEngine(const std::string& model_dir, int host_rate,
                                 const EngineConfig& config) {
  if (host_rate != kModelRate) check_host_rate(host_rate);
  impl_.reset(new Impl(model_dir, config));
  Impl& m = *impl_;
  const ModelInfo& info = m.engine.model();
  if (host_rate == kModelRate) host_rate = info.sample_rate;
  m.host_rate = host_rate;
  m.model_rate = info.sample_rate;
  m.channels = m.engine.channels();
  m.max_block = m.engine.max_block();
  m.resampling = host_rate != m.model_rate;
  const Probe p = probe_chain(host_rate, m.model_rate, info.hop, m.engine.latency_samples(),
                              m.channels);
  m.latency = p.latency;
  if (!m.resampling) return;

  m.rs_in.open(host_rate, m.model_rate, m.channels);
  m.rs_out.open(m.model_rate, host_rate, m.channels);
  // Most frames one call can ask for: delay + ilen * ratio + 1 (the probe's worst delay,
  // doubled for the larger blocks' rounding); the engine adds at most hop - 1.
  const double up = double(m.model_rate) / host_rate, down = double(host_rate) / m.model_rate;
  m.in_cap = size_t(std::ceil(m.max_block * up)) + 2 * size_t(std::ceil(p.max_delay_in)) + 64;
  m.aligned_cap = m.in_cap + size_t(info.hop) - 1;
  m.out_cap = size_t(std::ceil(double(m.aligned_cap) * down)) +
              2 * size_t(std::ceil(p.max_delay_out)) + 64;
  const size_t c = size_t(m.channels);
  m.guarded.assign(c * size_t(m.max_block), 0.f);
  m.model_in.assign(c * m.in_cap, 0.f);
  m.aligned.assign(c * m.aligned_cap, 0.f);
  m.host_out.assign(c * m.out_cap, 0.f);
  m.fifo_capacity = m.latency + 2 * m.max_block + 64;
  m.fifo.assign(c * size_t(m.fifo_capacity), 0.f);
  m.reset_fifo();
}

ResampledEngine::~ResampledEngine() = default;

int ResampledEngine::channels() const { return impl_->channels; }
int ResampledEngine::sample_rate() const { return impl_->host_rate; }
int ResampledEngine::latency_samples() const { return impl_->latency; }
int ResampledEngine::max_block() const { return impl_->max_block; }
Engine& ResampledEngine::engine() { return impl_->engine; }
const Engine& ResampledEngine::engine() const { return impl_->engine; }
int ResampledEngine::model_rate() const { return impl_->model_rate; }
bool ResampledEngine::resampling() const { return impl_->resampling; }
uint64_t ResampledEngine::underruns() const { return impl_->underruns; }

uint64_t ResampledEngine::sanitized_samples() const {
  return impl_->resampling ? impl_->sanitized : impl_->engine.sanitized_samples();
}

void ResampledEngine::reset() {
  Impl& m = *impl_;
  m.engine.reset();
  if (!m.resampling) return;
  m.rs_in.clear();
  m.rs_out.clear();
  m.reset_fifo();
}

void ResampledEngine::process(const float* const* input, float* const* output, int samples) {
  Impl& m = *impl_;
  if (!m.resampling) {
    m.engine.process(input, output, samples);
    return;
  }
  const float* in[kMaxChannels];
  float* out[kMaxChannels];
  for (int done = 0; done < samples;) {
    const int n = std::min(samples - done, m.max_block);
    for (int c = 0; c < m.channels; ++c) {
      in[c] = input[c] + done;
      out[c] = output[c] + done;
    }
    m.process_piece(in, out, n);
    done += n;
  }
}

int ResampledEngine::measure_latency(int host_rate, int model_rate, int hop, int model_latency,
                                     int channels) {
  check_host_rate(host_rate);
  if (model_rate < 1 || hop < 1 || channels < 1 || channels > kMaxChannels)
    throw EngineError("measure_latency: model rate, hop and channels must be positive");
  return probe_chain(host_rate, model_rate, hop, model_latency, channels).latency;
}

std::string ResampledEngine::soxr_version() { return ::soxr_version(); }

std::vector<float> resample_mono(const std::vector<float>& audio, int in_rate, int out_rate) {
  if (in_rate < 1 || out_rate < 1)
    throw EngineError("cannot resample from " + std::to_string(in_rate) + " Hz to " +
                      std::to_string(out_rate) + " Hz");
  if (in_rate == out_rate) return audio;
  const int64_t n = int64_t(audio.size());
  const int64_t n_out = (n * out_rate + in_rate / 2) / in_rate;  // audio.resample's length
  std::vector<float> out(size_t(std::max<int64_t>(n_out, 0)), 0.0f);
  if (n == 0 || n_out == 0) return out;
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_VHQ, 0);
  size_t done = 0;
  const soxr_error_t err = soxr_oneshot(in_rate, out_rate, 1, audio.data(), size_t(n), nullptr,
                                        out.data(), size_t(n_out), &done, &io, &quality, nullptr);
  if (err)
    throw EngineError(std::string("resampling ") + std::to_string(in_rate) + " Hz -> " +
                      std::to_string(out_rate) + " Hz failed: " + err);
  return out;  // a shorter result (never seen) stays zero-padded, as audio.resample pads
}

}  // namespace star
