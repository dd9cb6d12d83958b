// The replication module's expected failures (one enum for the module:
// the partition lifecycle's and the replicated partition's).
#pragma once

namespace holdfast::replication {

enum class Errc {
  // PartitionLifecycle
  storage_error,  // creating or removing a partition log failed (message says which)
  shut_down,      // the lifecycle stopped before handling the record

  // Partition (leader side)
  not_leader,           // this replica does not lead the partition (any more)
  not_replica,          // a follower fetch from a broker that is not one of the replicas
  not_enough_replicas,  // acks=all: the ISR is smaller than min.insync.replicas; nothing appended
  // acks=all: the batch was appended, but when the high watermark passed it
  // the ISR was smaller than min.insync.replicas.
  not_enough_replicas_after_append,
  log_failed,  // the log could not make the batch durable (a failed fsync): never acknowledged
  log_closed,  // the partition was removed or the broker is shutting down
};
const char* to_string(Errc code);

}  // namespace holdfast::replication
