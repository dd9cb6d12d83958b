#include "server/request_budget.h"

namespace holdfast::server {

RequestBudget::RequestBudget(int64_t capacity) : capacity_(capacity) {}

bool RequestBudget::try_acquire(const void* frame, size_t n, std::function<void()> wake,
                                uint64_t* ticket) {
  std::lock_guard lock(mu_);
  const auto want = static_cast<int64_t>(n);
  const bool fits = in_use_ <= capacity_ && want <= capacity_ - in_use_;
  if (fits || overdraft_holder_ == frame || overdraft_holder_ == nullptr) {
    if (!fits) overdraft_holder_ = frame;
    in_use_ += want;
    return true;
  }
  *ticket = next_ticket_++;
  waiters_.emplace(*ticket, std::move(wake));
  return false;
}

void RequestBudget::cancel_wait(uint64_t ticket) {
  std::lock_guard lock(mu_);
  waiters_.erase(ticket);
}

void RequestBudget::release(size_t n) {
  if (n == 0) return;
  std::lock_guard lock(mu_);
  in_use_ -= static_cast<int64_t>(n);
  wake_all_locked();
}

void RequestBudget::frame_done(const void* frame) {
  std::lock_guard lock(mu_);
  if (overdraft_holder_ != frame) return;
  overdraft_holder_ = nullptr;
  wake_all_locked();
}

void RequestBudget::wake_all_locked() {
  // Every waiter retries; those that still do not fit register again. There
  // are at most as many waiters as connections, and releases are per frame.
  auto waiters = std::move(waiters_);
  waiters_.clear();
  for (auto& [ticket, wake] : waiters) wake();
}

int64_t RequestBudget::in_use() const {
  std::lock_guard lock(mu_);
  return in_use_;
}

size_t RequestBudget::waiting() const {
  std::lock_guard lock(mu_);
  return waiters_.size();
}

FrameMemory::~FrameMemory() {
  budget_->frame_done(this);
  // Free the memory before returning its charge, so that in_use never counts
  // less than what is allocated.
  std::vector<uint8_t>().swap(bytes_);
  budget_->release(charged_);
}

}  // namespace holdfast::server
