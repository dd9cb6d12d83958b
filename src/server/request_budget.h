// The broker-wide budget for request bytes (`queued.max.request.bytes`).
//
// A connection charges a frame's memory to the budget as the bytes arrive, in
// pieces, never from the 4-byte size alone: a client that announces a large
// frame and then stalls holds only what it has sent. The charge stays until
// the frame's memory is freed (the last Bytes slice of it is gone), whichever
// thread that happens on. When a piece does not fit, the connection stops
// reading and waits until bytes are released.
//
// One frame at a time may overdraw the budget (by at most one frame, which
// socket.request.max.bytes bounds): without that, frames that are each
// partly read could fill the budget together and wait for one another for
// ever. The overdraft passes to the next frame when its holder is complete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace holdfast::server {

class RequestBudget {
 public:
  explicit RequestBudget(int64_t capacity);

  RequestBudget(const RequestBudget&) = delete;
  RequestBudget& operator=(const RequestBudget&) = delete;

  // Charges `n` bytes for `frame` (an opaque identity, e.g. the frame's
  // memory) if they fit, or if the frame holds or can take the overdraft, and
  // returns true. Otherwise registers `wake`, which is called once, from
  // whichever thread releases bytes or the overdraft next (under the budget's
  // lock: it must only post work elsewhere), stores its ticket in *ticket and
  // returns false.
  bool try_acquire(const void* frame, size_t n, std::function<void()> wake, uint64_t* ticket);
  // Forgets a registered waiter (harmless if it already fired). After this
  // returns, its `wake` is never called.
  void cancel_wait(uint64_t ticket);

  // Returns `n` charged bytes.
  void release(size_t n);
  // The frame is complete (or abandoned): it gives up the overdraft if it
  // holds it. Its bytes stay charged until release().
  void frame_done(const void* frame);

  int64_t capacity() const { return capacity_; }
  int64_t in_use() const;
  size_t waiting() const;

 private:
  void wake_all_locked();

  const int64_t capacity_;
  mutable std::mutex mu_;
  int64_t in_use_ = 0;
  const void* overdraft_holder_ = nullptr;
  uint64_t next_ticket_ = 1;
  std::map<uint64_t, std::function<void()>> waiters_;
};

// The memory of one request frame while it is read and handled; charged to
// the budget for its capacity, returned when destroyed.
class FrameMemory {
 public:
  explicit FrameMemory(std::shared_ptr<RequestBudget> budget) : budget_(std::move(budget)) {}
  ~FrameMemory();
  FrameMemory(const FrameMemory&) = delete;
  FrameMemory& operator=(const FrameMemory&) = delete;

  std::vector<uint8_t>& bytes() { return bytes_; }
  RequestBudget& budget() { return *budget_; }
  // Bytes charged so far (the capacity the frame may grow to without more).
  size_t charged() const { return charged_; }
  void add_charge(size_t n) { charged_ += n; }

 private:
  std::shared_ptr<RequestBudget> budget_;
  std::vector<uint8_t> bytes_;
  size_t charged_ = 0;
};

}  // namespace holdfast::server
