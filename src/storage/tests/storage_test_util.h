// Shared helpers for the storage tests.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "io/posix_file_system.h"
#include "io/tests/temp_dir.h"
#include "record/batch.h"
#include "storage/log_manager.h"

namespace holdfast::storage::testing {

// A client batch of `count` records "<tag>-<i>" with timestamps ts, ts+1, ...
inline Bytes make_batch(const std::string& tag, int count, int64_t ts,
                        record::Compression c = record::Compression::none, size_t value_size = 0) {
  record::BatchBuilder builder(c);
  for (int i = 0; i < count; ++i) {
    std::string value = tag + "-" + std::to_string(i);
    if (value.size() < value_size) value.resize(value_size, 'x');
    builder.add(std::nullopt, value, ts + i);
  }
  return builder.build();
}

inline record::BatchHeader header_of(const Bytes& batch) {
  auto h = record::validate_produced_batch(batch.span(), {1 << 30, true});
  EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.error().message);
  return *h;
}

// The bytes the log stores for a client batch appended at `base_offset`.
inline std::vector<uint8_t> stamped(const Bytes& batch, int64_t base_offset, int32_t epoch) {
  std::vector<uint8_t> out(batch.data(), batch.data() + batch.size());
  record::stamp_batch(out.data(), base_offset, epoch);
  return out;
}

// Splits a read result into batches (checking each one's CRC).
inline std::vector<std::vector<uint8_t>> split_batches(const Bytes& records) {
  std::vector<std::vector<uint8_t>> out;
  size_t pos = 0;
  while (pos < records.size()) {
    auto h = record::check_batch(records.span().subspan(pos));
    EXPECT_TRUE(h.ok()) << "at " << pos << ": " << (h.ok() ? "" : h.error().message);
    if (!h.ok()) break;
    out.emplace_back(records.data() + pos, records.data() + pos + h->size_in_bytes());
    pos += h->size_in_bytes();
  }
  return out;
}

inline int64_t batch_base(const std::vector<uint8_t>& batch) {
  return int64_t(load_be64(batch.data()));
}

// Waits for on_durable and returns its outcome.
inline Result<void, Errc> wait_durable_sync(LogManager& manager, PartitionLog* log, int64_t end) {
  auto promise = std::make_shared<std::promise<Result<void, Errc>>>();
  auto future = promise->get_future();
  manager.wait_durable(log, end,
                       [promise](Result<void, Errc> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    return make_error(Errc::io_error, "timed out waiting for durability");
  }
  return future.get();
}

// A test clock the tests move by hand.
struct ManualClock {
  std::shared_ptr<std::atomic<int64_t>> now =
      std::make_shared<std::atomic<int64_t>>(1'700'000'000'000);
  std::function<int64_t()> fn() const {
    auto n = now;
    return [n] { return n->load(); };
  }
  void advance(int64_t ms) { now->fetch_add(ms); }
};

}  // namespace holdfast::storage::testing
