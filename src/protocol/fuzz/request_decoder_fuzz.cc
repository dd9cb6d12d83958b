// libFuzzer target: bytes 0-1 pick the api key, bytes 2-3 the version, the
// rest is a request header followed by the body. Keys and versions are folded
// into the ranges our schemas cover so that no input is wasted on
// "unsupported". Beyond "no crash, no sanitizer report", it checks that a
// successfully decoded message re-encodes to bytes that decode to the same value.
// NaN never equals itself, so the one request with a float64 field (an
// AlterClientQuotas op's value) has its NaNs compared by bit pattern.
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "protocol/messages.h"

using namespace holdfast;
using namespace holdfast::protocol;

namespace {

// Every NaN value replaced by a negative number made from its payload bits,
// so that defaulted equality compares NaNs bitwise instead of failing on them.
template <class Msg>
void canonicalize_nans(Msg&) {}

template <>
void canonicalize_nans(AlterClientQuotasRequest& msg) {
  for (auto& entry : msg.entries)
    for (auto& op : entry.ops)
      if (std::isnan(op.value)) op.value = -double(std::bit_cast<uint64_t>(op.value) & 0xFFFFFFFFFFFFF);
}

template <class Msg>
void check_body(Reader& r, int16_t version) {
  Msg msg;
  if (!msg.decode(r, version).ok()) return;
  std::vector<uint8_t> again = encode_message(msg, version);
  Reader r2{Bytes(std::move(again))};
  Msg msg2;
  if (!msg2.decode(r2, version).ok() || !r2.at_end()) std::abort();
  canonicalize_nans(msg);
  canonicalize_nans(msg2);
  if (!(msg2 == msg)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const auto& api = kApiSchemas[load_be16(data) % kApiSchemas.size()];
  const int span = api.max_version - api.min_version + 1;
  const auto version = int16_t(api.min_version + load_be16(data + 2) % span);

  Bytes frame = Bytes::copy_of(std::span<const uint8_t>(data + 4, size - 4));
  Reader r(frame);
  RequestHeader header;
  if (!header.decode(r, request_header_version(api.api_key, version)).ok()) return 0;
  visit_api(api.api_key, [&]<class Req, class Resp>() { check_body<Req>(r, version); });
  return 0;
}
