#include "star_threaded.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

namespace star {

// ------------------------------------------------------------------------------ FrameRing
FrameRing::FrameRing(int channels, int capacity)
    : channels_(channels), capacity_(capacity), data_(size_t(channels) * size_t(capacity), 0.f) {}

int FrameRing::available() const {
  return int(written_.load(std::memory_order_acquire) - read_.load(std::memory_order_relaxed));
}

int FrameRing::space() const {
  return capacity_ -
         int(written_.load(std::memory_order_relaxed) - read_.load(std::memory_order_acquire));
}

// Copy n frames in or out at ring position `at`, in at most two runs (the wrap).
template <typename Copy>
static void for_runs(uint64_t at, int n, int capacity, Copy copy) {
  const int start = int(at % uint64_t(capacity));
  const int first = std::min(n, capacity - start);
  copy(start, 0, first);
  if (first < n) copy(0, first, n - first);
}

void FrameRing::write(const float* const* src, int n) {
  const uint64_t w = written_.load(std::memory_order_relaxed);
  for (int c = 0; c < channels_; ++c) {
    float* ring = data_.data() + size_t(c) * capacity_;
    for_runs(w, n, capacity_, [&](int pos, int offset, int len) {
      std::memcpy(ring + pos, src[c] + offset, size_t(len) * sizeof(float));
    });
  }
  written_.store(w + uint64_t(n), std::memory_order_release);
}

void FrameRing::write_zeros(int n) {
  const uint64_t w = written_.load(std::memory_order_relaxed);
  for (int c = 0; c < channels_; ++c) {
    float* ring = data_.data() + size_t(c) * capacity_;
    for_runs(w, n, capacity_, [&](int pos, int, int len) {
      std::fill(ring + pos, ring + pos + len, 0.f);
    });
  }
  written_.store(w + uint64_t(n), std::memory_order_release);
}

void FrameRing::read(float* const* dst, int n) {
  const uint64_t r = read_.load(std::memory_order_relaxed);
  for (int c = 0; c < channels_; ++c) {
    const float* ring = data_.data() + size_t(c) * capacity_;
    for_runs(r, n, capacity_, [&](int pos, int offset, int len) {
      std::memcpy(dst[c] + offset, ring + pos, size_t(len) * sizeof(float));
    });
  }
  read_.store(r + uint64_t(n), std::memory_order_release);
}

void FrameRing::skip(int n) {
  read_.store(read_.load(std::memory_order_relaxed) + uint64_t(n), std::memory_order_release);
}

void FrameRing::clear() {
  written_.store(0);
  read_.store(0);
}

// ------------------------------------------------------------------------------ ThreadedEngine
namespace {
// The input ring holds a second of audio beyond a few blocks: a worker that far behind has
// failed anyway (its blocks are then dropped and counted in overruns()).
int input_capacity(int max_block, int rate) { return 4 * max_block + rate; }
}  // namespace

ThreadedEngine::ThreadedEngine(std::unique_ptr<BlockProcessor> inner, int max_block,
                               int headroom)
    : inner_(std::move(inner)),
      max_block_(max_block),
      headroom_(headroom),
      in_(inner_ ? inner_->channels() : 1,
          input_capacity(max_block, inner_ ? inner_->sample_rate() : 0)),
      out_(inner_ ? inner_->channels() : 1,
           headroom + input_capacity(max_block, inner_ ? inner_->sample_rate() : 0) +
               max_block) {
  if (!inner_) throw EngineError("ThreadedEngine needs a processor to run");
  if (max_block < 1 || max_block > kMaxBlock)
    throw EngineError("max_block must be in 1.." + std::to_string(kMaxBlock) + ", got " +
                      std::to_string(max_block));
  if (headroom < 0)
    throw EngineError("headroom must be >= 0 samples, got " + std::to_string(headroom));
  const size_t planar = size_t(inner_->channels()) * size_t(max_block);
  scratch_in_.assign(planar, 0.f);
  scratch_out_.assign(planar, 0.f);
  out_.write_zeros(headroom_);
  if (sem_init(&work_, 0, 0) != 0) throw EngineError("cannot create the worker's semaphore");
  worker_ = std::thread([this] { worker_loop(); });
}

ThreadedEngine::~ThreadedEngine() {
  stop_.store(true);
  sem_post(&work_);
  if (worker_.joinable()) worker_.join();
  sem_destroy(&work_);
}

int ThreadedEngine::default_headroom(int max_block, int hop, int host_rate, int model_rate) {
  const int64_t hop_host = (int64_t(hop) * host_rate + model_rate - 1) / model_rate;
  return max_block + int(hop_host);
}

int ThreadedEngine::channels() const { return inner_->channels(); }
int ThreadedEngine::sample_rate() const { return inner_->sample_rate(); }
int ThreadedEngine::latency_samples() const { return inner_->latency_samples() + headroom_; }
int ThreadedEngine::max_block() const { return max_block_; }
int ThreadedEngine::headroom() const { return headroom_; }
BlockProcessor& ThreadedEngine::inner() { return *inner_; }
uint64_t ThreadedEngine::misses() const { return misses_.load(); }
uint64_t ThreadedEngine::overruns() const { return overruns_.load(); }
void ThreadedEngine::set_wait_for_worker(bool wait) { wait_ = wait; }

void ThreadedEngine::worker_loop() {
  const int channels = inner_->channels();
  float* in[kMaxChannels];
  float* out[kMaxChannels];
  for (int c = 0; c < channels; ++c) {
    in[c] = scratch_in_.data() + size_t(c) * max_block_;
    out[c] = scratch_out_.data() + size_t(c) * max_block_;
  }
  while (true) {
    while (sem_wait(&work_) != 0) {
    }  // EINTR: wait again
    if (stop_.load()) return;
    std::lock_guard<std::mutex> busy(busy_);
    for (int n; (n = std::min(in_.available(), max_block_)) > 0;) {
      in_.read(in, n);
      try {
        inner_->process(in, out, n);
      } catch (const std::exception&) {
        for (int c = 0; c < channels; ++c) std::fill(out[c], out[c] + n, 0.f);
      }
      out_.write(out, std::min(n, out_.space()));  // sized so it always fits
      if (waiting_.load()) {
        std::lock_guard<std::mutex> lock(done_mutex_);
        done_.notify_all();
      }
    }
  }
}

void ThreadedEngine::process(const float* const* input, float* const* output, int samples) {
  if (samples <= 0) return;
  if (samples > max_block_)
    throw EngineError("block of " + std::to_string(samples) + " samples is longer than this "
                      "engine's max_block " + std::to_string(max_block_));
  const int channels = inner_->channels();
  // A block the full input ring could not take is replaced by silence once there is room,
  // so the stream keeps its timing.
  if (owed_ > 0 && in_.space() >= owed_ + samples) {
    in_.write_zeros(int(owed_));
    owed_ = 0;
  }
  if (owed_ == 0 && in_.space() >= samples) {
    in_.write(input, samples);
  } else {
    overruns_.fetch_add(1);
    owed_ += samples;
  }
  sem_post(&work_);
  if (debt_ > 0) {  // late samples already replaced by silence
    const int drop = int(std::min<int64_t>(debt_, out_.available()));
    out_.skip(drop);
    debt_ -= drop;
  }
  if (wait_ && out_.available() < samples) {
    waiting_.store(true);
    std::unique_lock<std::mutex> lock(done_mutex_);
    done_.wait_for(lock, std::chrono::seconds(30), [&] { return out_.available() >= samples; });
    waiting_.store(false);
  }
  const int ready = std::min(out_.available(), samples);
  out_.read(output, ready);
  if (ready < samples) {
    for (int c = 0; c < channels; ++c) std::fill(output[c] + ready, output[c] + samples, 0.f);
    misses_.fetch_add(1);
    debt_ += samples - ready;
  }
}

void ThreadedEngine::reset() {
  std::lock_guard<std::mutex> busy(busy_);  // the worker is idle (or waiting for work)
  while (sem_trywait(&work_) == 0) {
  }
  in_.clear();
  out_.clear();
  inner_->reset();
  out_.write_zeros(headroom_);
  debt_ = owed_ = 0;
  misses_.store(0);
  overruns_.store(0);
}

}  // namespace star
