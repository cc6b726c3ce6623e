// star_threaded.h: run a BlockProcessor on a worker thread, so the audio thread only copies.
//
// The native counterpart of star_plugin/threaded_engine.py. A synchronous process() call that
// completes a latent frame carries the whole frame's compute (a few ms), longer than a small
// host block lasts, and ONNX Runtime allocates inside Run. Here the audio thread writes its
// block into a lock-free input ring, wakes the worker (a semaphore post) and reads finished
// samples from an output ring primed with `headroom` samples of silence. While the worker
// keeps up (the compute of one block within `headroom` samples' worth of time) every call
// finds its output ready; the audio thread never locks, allocates, or calls the model.
//
// If the worker is late the block is completed with silence and counted in misses(); the late
// samples are dropped when they arrive, so the output stays exactly latency_samples() behind
// the input (it never drifts). Offline rendering (a DAW's bounce, Pedalboard) sets
// set_wait_for_worker(true): process() then waits for the worker instead, so the output equals
// the inner processor's delayed by `headroom`, sample for sample.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <semaphore.h>

#include "star_engine.h"

namespace star {

// Single-producer single-consumer ring of planar float frames (no locks, no allocation after
// construction). The producer calls space()/write*; the consumer available()/read/skip.
class FrameRing {
 public:
  FrameRing(int channels, int capacity);
  int capacity() const { return capacity_; }
  int available() const;  // frames the consumer can read
  int space() const;      // frames the producer can write
  void write(const float* const* src, int n);  // n <= space()
  void write_zeros(int n);
  void read(float* const* dst, int n);  // n <= available()
  void skip(int n);
  void clear();  // only while neither side runs

 private:
  int channels_, capacity_;
  std::vector<float> data_;  // channel-major, capacity_ frames per channel
  std::atomic<uint64_t> written_{0}, read_{0};
};

class ThreadedEngine : public BlockProcessor {
 public:
  // inner: what the worker runs (it must take blocks of max_block samples).
  // headroom: extra latency in samples; default_headroom() is enough for a worker that
  // finishes a hop's compute within a hop's time. Starts the worker thread.
  ThreadedEngine(std::unique_ptr<BlockProcessor> inner, int max_block, int headroom);
  ~ThreadedEngine() override;  // stops and joins the worker
  ThreadedEngine(const ThreadedEngine&) = delete;
  ThreadedEngine& operator=(const ThreadedEngine&) = delete;

  // max_block plus one model hop at the host rate (rounded up), as the Python engine.
  static int default_headroom(int max_block, int hop, int host_rate, int model_rate);

  int channels() const override;
  int sample_rate() const override;
  int latency_samples() const override;  // the inner latency + headroom
  int max_block() const override;        // the longest block process() accepts
  int headroom() const;
  BlockProcessor& inner();

  // Waits for the worker to go idle, then back to silence (not for the audio thread).
  void reset() override;
  // Audio thread: never blocks unless set_wait_for_worker(true). Blocks longer than
  // max_block() are refused with EngineError (a host announces its block size up front).
  void process(const float* const* input, float* const* output, int samples) override;

  // Offline rendering: process() waits (up to 30 s) for the worker instead of filling in
  // silence. Set it between blocks, from the thread that calls process().
  void set_wait_for_worker(bool wait);
  uint64_t misses() const;     // blocks completed with silence since reset
  uint64_t overruns() const;   // input blocks replaced by silence: the input ring was full

 private:
  void worker_loop();

  std::unique_ptr<BlockProcessor> inner_;
  int max_block_, headroom_;
  FrameRing in_, out_;
  std::vector<float> scratch_in_, scratch_out_;  // the worker's planar blocks
  int64_t debt_ = 0;  // samples replaced by silence, dropped when they arrive (audio thread)
  int64_t owed_ = 0;  // input samples dropped (ring full), fed as silence later (audio thread)
  bool wait_ = false;
  std::atomic<bool> waiting_{false};
  std::atomic<uint64_t> misses_{0}, overruns_{0};
  std::atomic<bool> stop_{false};
  sem_t work_;                     // posted per block by the audio thread
  std::mutex busy_;                // held by the worker while it processes; reset() takes it
  std::mutex done_mutex_;          // with done_: only for set_wait_for_worker(true)
  std::condition_variable done_;
  std::thread worker_;
};

}  // namespace star
