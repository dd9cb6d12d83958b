// Allocates producer ids for idempotent producers (InitProducerId).
//
// Ids are handed out from a block whose end is persisted BEFORE any id of the
// block is used: `<data.dir>/producer-id-block` holds the first id not yet
// reserved. After a crash the next start continues from that value, so an id
// is never handed out twice (some ids of the old block are skipped; that is
// harmless). Kafka does the same with blocks of 1000 from the controller.
//
// Thread safety: next_producer_id() may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "base/result.h"
#include "io/file_system.h"

namespace holdfast::coordinator {

enum class ProducerIdErrc { io_error, corrupt, exhausted };

class ProducerIdManager {
 public:
  static constexpr int64_t kDefaultBlockSize = 1000;
  static constexpr std::string_view kBlockFile = "producer-id-block";

  // Reads the block file (absent = a new data directory, start at 0). A file
  // that does not parse is `corrupt`: never guess, a guess could reuse ids.
  static Result<std::unique_ptr<ProducerIdManager>, ProducerIdErrc> open(
      io::FileSystem& fs, const std::string& data_dir, int64_t block_size = kDefaultBlockSize);

  // A producer id never returned before by this data directory. Reserves (and
  // durably persists) a new block when the current one is used up; fails
  // with io_error if that write fails (nothing is handed out then).
  Result<int64_t, ProducerIdErrc> next_producer_id();

  // Cluster mode: producer ids must be unique across brokers (a retried
  // batch is recognised by producer id and sequence on whichever broker
  // leads the partition). Each node hands out ids from its own range,
  // node_id * 2^40 + the local counter, so no two nodes can hand out the
  // same id without coordinating. A single node keeps base 0 (the ids it
  // always handed out).
  static constexpr int64_t kNodeIdSpace = int64_t{1} << 40;
  void set_node_id_base(int32_t node_id) {
    id_base_ = static_cast<int64_t>(node_id) * kNodeIdSpace;
    per_node_ = true;
  }

  ProducerIdManager(io::FileSystem& fs, std::string path, int64_t reserved, int64_t block_size);

 private:
  io::FileSystem& fs_;
  const std::string path_;
  const int64_t block_size_;
  std::mutex mu_;
  int64_t next_;      // the next id to hand out
  int64_t reserved_;  // first id not covered by the persisted block
  int64_t id_base_ = 0;
  bool per_node_ = false;
};

}  // namespace holdfast::coordinator
