// Strong ids: an Offset is not a PartitionId, and the compiler says so.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace holdfast {

template <typename Tag, typename Rep>
struct StrongInt {
  Rep value{};

  constexpr StrongInt() = default;
  constexpr explicit StrongInt(Rep v) : value(v) {}
  constexpr Rep operator()() const { return value; }
  constexpr auto operator<=>(const StrongInt&) const = default;

  friend std::ostream& operator<<(std::ostream& os, StrongInt s) { return os << s.value; }
};

using Offset = StrongInt<struct OffsetTag, int64_t>;
using PartitionId = StrongInt<struct PartitionIdTag, int32_t>;
using NodeId = StrongInt<struct NodeIdTag, int32_t>;
using Epoch = StrongInt<struct EpochTag, int32_t>;

}  // namespace holdfast

template <typename Tag, typename Rep>
struct std::hash<holdfast::StrongInt<Tag, Rep>> {
  size_t operator()(holdfast::StrongInt<Tag, Rep> s) const noexcept {
    return std::hash<Rep>{}(s.value);
  }
};
