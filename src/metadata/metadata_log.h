// The metadata log as an interface (DESIGN §5): records appended in one order,
// each applied to the immutable MetadataImage, with subscribers told about
// every applied record in that order.
//
// Two implementations:
//   - MetadataStore (metadata_store.h): a local file on one node; a record is
//     durable once fsynced, and applied by the appending thread.
//   - RaftMetadataLog (raft_metadata_log.h): the same records replicated with
//     Canonical raft; a record is durable once a majority of voters stored it,
//     and every member applies it on its own `hf-raft` thread.
//
// The point of the interface is that topic and partition lifecycle reacts to
// *applied* records (subscribe), so a single node and a cluster run the same
// code with a different log underneath. The broker's local replicas follow
// applied records through replication::PartitionLifecycle (a subscriber);
// TopicManager still appends to the MetadataStore synchronously, which moves
// to append() + forwarding with the Raft log (docs/dev/cluster-plan.md).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "metadata/metadata_image.h"

namespace holdfast::metadata {

// One change to the image, delivered to subscribers in log order.
struct MetadataEvent {
  // The record that was applied; nullptr when the image was replaced as a
  // whole (a Raft snapshot installed from the leader because this member fell
  // behind the leader's compacted log). In that case the records in between
  // are not delivered one by one: a subscriber reconciles its state against
  // `image` (create what the image has, delete what it no longer has).
  const MetadataRecord* record = nullptr;
  // The image after the change.
  ImagePtr image;
};

using MetadataListener = std::function<void(const MetadataEvent&)>;

// Completion of an append: the image that includes the record (or a later
// one), or the reason it was not appended (Errc in metadata_image.h).
using AppendCallback = std::function<void(Result<ImagePtr, Errc>)>;

class MetadataLog {
 public:
  virtual ~MetadataLog() = default;

  // The current image; never changes under the caller. Any thread.
  virtual ImagePtr current() const = 0;

  // Appends one record. `done` runs exactly once:
  //   ok                 the record is durable (local: fsynced; Raft: committed
  //                      by a majority) and applied here; subscribers have
  //                      seen it before `done` runs.
  //   invalid_record     it does not fit the image (nothing is written);
  //   not_leader         a Raft member that is not the leader (nothing written);
  //   unknown_outcome    Raft leadership was lost while the record was in
  //                      flight: it may still be committed by the next leader;
  //   shut_down, io_error.
  // Any thread. `done` may run on the caller's thread before append returns
  // (local file) or on the log's own thread (Raft); it must not block.
  virtual void append(MetadataRecord record, AppendCallback done) = 0;

  // Registers `listener` for every change applied after this call, in log
  // order, and returns the image it starts from: the listener sees no gap and
  // no change twice. Listeners live as long as the log. They run on the thread
  // that applies (local: the appending thread, with the log's lock held; Raft:
  // hf-raft) and must not block or call back into the log; hand work to
  // another thread instead.
  virtual ImagePtr subscribe(MetadataListener listener) = 0;
};

// The snapshot form of an image (a Raft snapshot is exactly this): one JSON
// object, {"version":2,"last_record_index":N,"brokers":[...],"topics":[...]}
// with each broker as its broker_registered record (plus "fenced" and
// "registered_index") and each topic as a topic_created record carrying its
// partitions' current states. docs/storage-format.md, "Metadata log".
//
// decode_image also reads version 1 (topics only, no assignment), written
// before partitions had state: their partitions land on `sole_node_id`
// (MetadataImage::sole_node_id, which the decoded image also carries). With
// sole_node_id = -1 (a Raft log) such a topic is corrupt.
std::string encode_image(const MetadataImage& image);
Result<ImagePtr, Errc> decode_image(std::string_view payload, int32_t sole_node_id);

}  // namespace holdfast::metadata
