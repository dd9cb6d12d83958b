// Result<T, E>: a value or an error, which the caller cannot silently drop.
//
// Expected failures are values (STYLE.md): each module defines its own error
// code enum `E` and returns Result<T, E>. Exceptions are reserved for
// programming errors and start-up failures.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace holdfast {

template <typename E>
struct Error {
  E code;
  std::string message;
};

template <typename E>
Error<E> make_error(E code, std::string message = {}) {
  return Error<E>{code, std::move(message)};
}

template <typename T, typename E>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT
  Result(Error<E> error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error<E>& error() const {
    assert(!ok());
    return std::get<1>(state_);
  }
  E code() const { return error().code; }

 private:
  std::variant<T, Error<E>> state_;
};

template <typename E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  Result(Error<E> error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error<E>& error() const {
    assert(!ok_);
    return error_;
  }
  E code() const { return error().code; }

 private:
  Error<E> error_{};
  bool ok_ = true;
};

}  // namespace holdfast
