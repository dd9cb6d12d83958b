// Truncated, oversized and random frames fed to every request decoder: each
// must come back as an error (or a valid message), never crash, and never
// allocate more than a small multiple of the input size.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "protocol/messages.h"
#include "protocol/test_samples.h"

// Every allocation while tracking is on: the total and the largest single
// one. Replacing the global operator new is the one way to observe what the
// decoder asks for; the total is what matters (many moderate reservations
// add up as surely as one large one).
namespace {
std::atomic<bool> g_tracking{false};
std::atomic<size_t> g_max_alloc{0};
std::atomic<size_t> g_total_alloc{0};
}  // namespace

void* operator new(size_t n) {
  if (g_tracking.load(std::memory_order_relaxed)) {
    g_total_alloc.fetch_add(n, std::memory_order_relaxed);
    size_t prev = g_max_alloc.load(std::memory_order_relaxed);
    while (n > prev && !g_max_alloc.compare_exchange_weak(prev, n)) {
    }
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace holdfast::protocol {
namespace {

// What a decode may allocate in total for an input of `n` bytes. Array
// reservations are bounded by the elements the remaining bytes can hold at
// the decoded version *and* by kMaxDecodeReserveBytes, so a hostile count
// costs at most one capped reservation per nesting level that it fails in;
// the rest is the decoded content itself and the error message.
constexpr size_t kTotalPerInputByte = 8;
constexpr size_t kTotalConstant = 4096;
size_t g_worst_excess = 0;  // largest total - 8 * input seen, for the report line
size_t allocation_budget(size_t n) { return kTotalPerInputByte * n + kTotalConstant; }

struct DecodeOutcome {
  bool ok;
  size_t max_alloc;
  size_t total_alloc;
};

template <class Msg>
DecodeOutcome decode_tracked(const std::vector<uint8_t>& bytes, int16_t version) {
  Bytes input(bytes);
  DecodeOutcome out{};
  {
    Msg msg;
    Reader r(input);
    g_max_alloc = 0;
    g_total_alloc = 0;
    g_tracking = true;
    auto res = msg.decode(r, version);
    g_tracking = false;
    out.ok = res.ok();
  }
  out.max_alloc = g_max_alloc.load();
  out.total_alloc = g_total_alloc.load();
  if (out.total_alloc > kTotalPerInputByte * bytes.size()) {
    g_worst_excess = std::max(g_worst_excess, out.total_alloc - kTotalPerInputByte * bytes.size());
  }
  return out;
}

template <class F>
void for_each_request(F&& f) {
  for (const auto& api : kApiSchemas) {
    visit_api(api.api_key, [&]<class Req, class Resp>() { f.template operator()<Req>(); });
  }
  f.template operator()<RequestHeader>();
}

TEST(HostileInput, EveryTruncationOfEveryRequestFails) {
  size_t frames = 0;
  for_each_request([&]<class Msg>() {
    for (int v = Msg::kMinVersion; v <= Msg::kMaxVersion; ++v) {
      for (int variant = 0; variant < 2; ++variant) {
        Msg sample;
        fill_sample(sample, int16_t(v), variant);
        std::vector<uint8_t> full = encode_message(sample, int16_t(v));
        for (size_t cut = 0; cut < full.size(); ++cut) {
          std::vector<uint8_t> prefix(full.begin(), full.begin() + long(cut));
          auto out = decode_tracked<Msg>(prefix, int16_t(v));
          EXPECT_FALSE(out.ok) << Msg::kName << " v" << v << " cut at " << cut;
          EXPECT_LE(out.total_alloc, allocation_budget(prefix.size()));
          ++frames;
        }
      }
    }
  });
  EXPECT_GT(frames, 1000u);
}

TEST(HostileInput, OversizedLengthsAreRejectedWithoutAllocating) {
  // Produce v3 claiming 2^31-1 topics in an 12-byte frame.
  std::vector<uint8_t> many_topics = {0xff, 0xff, 0, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff};
  auto out = decode_tracked<ProduceRequest>(many_topics, 3);
  EXPECT_FALSE(out.ok);
  EXPECT_LE(out.total_alloc, allocation_budget(many_topics.size()));

  // A topic name claiming 32767 bytes.
  std::vector<uint8_t> long_name = {0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 0xff, 'a'};
  out = decode_tracked<ProduceRequest>(long_name, 3);
  EXPECT_FALSE(out.ok);
  EXPECT_LE(out.total_alloc, allocation_budget(long_name.size()));

  // Records claiming 2 GiB.
  std::vector<uint8_t> huge_records = {0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 't',
                                       0, 0, 0, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 1, 2};
  out = decode_tracked<ProduceRequest>(huge_records, 3);
  EXPECT_FALSE(out.ok);
  EXPECT_LE(out.total_alloc, allocation_budget(huge_records.size()));

  // Flexible Produce v9 with a compact array count of 2^32-2.
  std::vector<uint8_t> compact_many = {0x00, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f};
  out = decode_tracked<ProduceRequest>(compact_many, 9);
  EXPECT_FALSE(out.ok);
  EXPECT_LE(out.total_alloc, allocation_budget(compact_many.size()));

  // Negative lengths other than -1.
  std::vector<uint8_t> negative = {0xff, 0xfe, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0};
  Reader r{Bytes(negative)};
  ProduceRequest req;
  auto res = req.decode(r, 3);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.code(), Errc::invalid_length);
  EXPECT_EQ(res.error().message.rfind("ProduceRequest.transactional_id: ", 0), 0u) << res.error().message;
}

// "One wire byte reserves 32 bytes": a classic []string (DeleteTopics v0
// topic_names) whose announced count fits the remaining bytes at one byte per
// element, though a classic string takes at least two, and whose elements are
// garbage. The count must be held to the version's real minimum, and the
// reservation must not follow the count.
TEST(HostileInput, AnnouncedCountsDoNotDecideTheAllocation) {
  for (uint32_t count : {4000u, 2000u, 1000u}) {
    std::vector<uint8_t> frame(4 + 4000, 0xff);  // every element: a null string
    store_be32(frame.data(), count);
    auto out = decode_tracked<DeleteTopicsRequest>(frame, 0);
    EXPECT_FALSE(out.ok);
    EXPECT_LE(out.total_alloc, allocation_budget(frame.size())) << "count " << count;
    EXPECT_LE(out.max_alloc, kMaxDecodeReserveBytes + 1024) << "count " << count;
  }
}

// Random mutations of valid frames: flip bytes, overwrite with 0xff/0x7f
// runs (hostile lengths), truncate or extend. Bounded and seeded.
TEST(HostileInput, RandomMutationsNeverCrashOrOverAllocate) {
  std::mt19937 rng(20240611);
  size_t decoded = 0, rejected = 0;
  for_each_request([&]<class Msg>() {
    for (int v = Msg::kMinVersion; v <= Msg::kMaxVersion; ++v) {
      Msg sample;
      fill_sample(sample, int16_t(v), 0);
      const std::vector<uint8_t> base = encode_message(sample, int16_t(v));
      for (int i = 0; i < 60; ++i) {
        std::vector<uint8_t> frame = base;
        int edits = 1 + int(rng() % 4);
        for (int e = 0; e < edits; ++e) {
          if (frame.empty()) frame.push_back(0);
          size_t pos = rng() % frame.size();
          switch (rng() % 5) {
            case 0: frame[pos] ^= uint8_t(1u << (rng() % 8)); break;
            case 1: frame[pos] = uint8_t(rng()); break;
            case 2:
              for (size_t k = pos; k < frame.size() && k < pos + 4; ++k) frame[k] = (k == pos) ? 0x7f : 0xff;
              break;
            case 3: frame.resize(pos); break;
            case 4: frame.insert(frame.begin() + long(pos), uint8_t(rng())); break;
          }
        }
        auto out = decode_tracked<Msg>(frame, int16_t(v));
        EXPECT_LE(out.total_alloc, allocation_budget(frame.size())) << Msg::kName << " v" << v;
        (out.ok ? decoded : rejected)++;
      }
    }
  });
  // Most mutations are rejected; some still form valid messages.
  EXPECT_GT(rejected, 1000u);
  std::cout << "random frames: " << decoded << " decoded, " << rejected << " rejected; worst "
            << "total allocation so far: 8 x input + " << g_worst_excess << " bytes\n";
}

TEST(HostileInput, PureNoiseAtEveryVersion) {
  std::mt19937 rng(7);
  for_each_request([&]<class Msg>() {
    for (int v = Msg::kMinVersion; v <= Msg::kMaxVersion; ++v) {
      for (int i = 0; i < 20; ++i) {
        std::vector<uint8_t> frame(rng() % 64);
        for (auto& b : frame) b = uint8_t(rng());
        auto out = decode_tracked<Msg>(frame, int16_t(v));
        EXPECT_LE(out.total_alloc, allocation_budget(frame.size()));
      }
    }
  });
}

}  // namespace
}  // namespace holdfast::protocol
