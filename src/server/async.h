// Bridges from callback-style completions (the flusher thread, the log's
// high-watermark listener) into coroutines on a connection's executor.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace holdfast::server {

template <typename T>
using Awaitable = asio::awaitable<T>;

// Suspends the calling coroutine until `start` calls the std::function<void(T)> it was given
// (exactly once, from any thread); resumes on the coroutine's own executor with
// the value passed.
template <typename T, typename Start>
auto await_callback(Start start) {
  // Not a coroutine itself: it returns the awaitable of the initiation, so no
  // extra coroutine frame holds `start` (GCC 12 mishandles lambda captures
  // kept in coroutine frames across a suspension).
  return asio::async_initiate<const asio::use_awaitable_t<>, void(T)>(
      [start = std::move(start)](auto handler) mutable {
        auto executor = asio::get_associated_executor(handler);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        std::function<void(T)> resume = [executor, shared](T value) {
          asio::post(executor,
                     [shared, value = std::move(value)]() mutable { (*shared)(std::move(value)); });
        };
        start(std::move(resume));
      },
      asio::use_awaitable);
}

// Like await_callback, but gives up after `timeout`: resumes with std::nullopt
// when `start`'s callback has not been called by then (a later call is
// dropped). Not a coroutine either, for the same reason: the state shared by
// the timer and the callback lives in a shared_ptr owned by their handlers,
// never in a coroutine frame. The timer is set, cancelled and fired on the
// calling coroutine's executor only; the callback may come from any thread.
template <typename T, typename Start>
auto await_callback_for(Start start, std::chrono::milliseconds timeout) {
  return asio::async_initiate<const asio::use_awaitable_t<>, void(std::optional<T>)>(
      [start = std::move(start), timeout](auto handler) mutable {
        using Handler = decltype(handler);
        struct State {
          State(asio::any_io_executor executor, Handler h)
              : executor(executor), timer(executor), handler(std::move(h)) {}
          asio::any_io_executor executor;
          asio::steady_timer timer;
          Handler handler;
          std::atomic<bool> done{false};
        };
        auto executor = asio::get_associated_executor(handler);
        auto state = std::make_shared<State>(executor, std::move(handler));
        state->timer.expires_after(timeout);
        state->timer.async_wait([state](const asio::error_code& ec) {
          if (ec || state->done.exchange(true)) return;  // cancelled, or the callback came first
          state->handler(std::optional<T>());
        });
        std::function<void(T)> resume = [state](T value) {
          if (state->done.exchange(true)) return;  // timed out already
          asio::post(state->executor, [state, value = std::move(value)]() mutable {
            state->timer.cancel();
            state->handler(std::optional<T>(std::move(value)));
          });
        };
        start(std::move(resume));
      },
      asio::use_awaitable);
}

// A one-shot wake-up: a coroutine waits until notify() or a deadline.
// notify() may be called from any thread; the wait runs on the timer's executor.
class Wakeup : public std::enable_shared_from_this<Wakeup> {
 public:
  explicit Wakeup(asio::any_io_executor executor) : timer_(executor) {}

  void notify() {
    asio::post(timer_.get_executor(), [self = shared_from_this()] {
      self->notified_ = true;
      self->timer_.cancel();
    });
  }

  // Returns once notified or at the deadline. Must run on the timer's executor.
  asio::awaitable<void> wait_until(std::chrono::steady_clock::time_point deadline) {
    if (notified_) co_return;
    timer_.expires_at(deadline);
    asio::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }

  bool notified() const { return notified_; }
  void reset() { notified_ = false; }

 private:
  asio::steady_timer timer_;
  bool notified_ = false;
};

// Set when a connection's client has gone (its read side ended: EOF, reset,
// or the broker stopped reading): long-polls on that connection stop waiting
// and drop their registrations instead of holding them until max_wait_ms.
// Used only on the connection's thread.
class ClientGone {
 public:
  bool gone() const { return gone_; }
  // Wakes `waiter` when the client goes (at once if it already has).
  void watch(const std::shared_ptr<Wakeup>& waiter) {
    if (gone_) return waiter->notify();
    std::erase_if(watched_, [](const std::weak_ptr<Wakeup>& w) { return w.expired(); });
    for (const auto& w : watched_) {
      if (w.lock() == waiter) return;
    }
    watched_.push_back(waiter);
  }
  void fire() {
    gone_ = true;
    auto watched = std::move(watched_);
    watched_.clear();
    for (auto& w : watched) {
      if (auto live = w.lock()) live->notify();
    }
  }

 private:
  bool gone_ = false;
  std::vector<std::weak_ptr<Wakeup>> watched_;
};

}  // namespace holdfast::server
