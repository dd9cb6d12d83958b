// The metadata log on one node: a local file of records, each applied to the
// image in order (DESIGN §5). A record is durable (fsynced) before it is
// applied, so a restart replays exactly the changes that were acknowledged.
//
// File format (docs/storage-format.md, "metadata log"): a sequence of entries
//   length u32 BE | crc32c(payload) u32 BE | payload (one JSON object)
// On open, a torn last entry (bad framing or CRC with no valid entry after it:
// a crash during the last, unacknowledged append) is cut off. A bad entry
// followed by a valid one is damage to acknowledged records: open fails,
// naming the file and byte offset, and leaves the file untouched.
//
// This is the single-node implementation of MetadataLog (metadata_log.h); the
// replicated one is RaftMetadataLog.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/file_system.h"
#include "metadata/metadata_image.h"
#include "metadata/metadata_log.h"

namespace holdfast::metadata {

class MetadataStore : public MetadataLog {
 public:
  // Opens (creating if needed) `<data_dir>/__metadata/metadata.log` and replays it.
  // `node_id` is this broker's node.id: the image's sole node
  // (MetadataImage::sole_node_id), which holds every partition of a topic
  // written without an assignment (every topic record of single-node Holdfast
  // so far). meta.properties ties the data dir to one node id, so the
  // resolution is the same on every start. The default, 0, is node.id's default.
  static Result<std::unique_ptr<MetadataStore>, Errc> open(io::FileSystem& fs,
                                                           const std::string& data_dir,
                                                           int32_t node_id = 0);

  // The current image; never changes under the caller.
  ImagePtr current() const override;

  // Checks the record against the current image, writes and fsyncs it, then
  // applies it and tells the subscribers. Returns the new image. Writers are
  // serialised internally.
  // After a failed write or fsync the store is failed: this append and every
  // later one return io_error (with a message saying so) and the image stays
  // as it was; reads of current() keep working. Only a restart (whose replay
  // cuts the partial entry) brings the store back.
  Result<ImagePtr, Errc> append(const MetadataRecord& record);

  // True once a write or fsync failed (see append()).
  bool failed() const;

  // MetadataLog (metadata_store_log.cc): the synchronous append above, its
  // result passed to `done` on the caller's thread before this returns.
  void append(MetadataRecord record, AppendCallback done) override;
  ImagePtr subscribe(MetadataListener listener) override;

 private:
  MetadataStore(io::FileSystem& fs, std::string path, std::unique_ptr<io::File> file,
                ImagePtr image);
  // Tells every subscriber about an applied record; mutex_ is held.
  void notify_applied(const MetadataRecord& record, const ImagePtr& image);

  io::FileSystem& fs_;
  std::string path_;
  std::unique_ptr<io::File> file_;
  mutable std::mutex mutex_;  // guards image_, failure_, file_ appends and listeners_
  ImagePtr image_;
  std::string failure_;  // non-empty once a write failed: the store refuses appends
  std::vector<MetadataListener> listeners_;
};

// meta.properties: the node id and the cluster id this data directory belongs
// to. Created on first start with a fresh cluster id; on later starts a node id
// that differs from the configured one is an error (the wrong directory).
struct NodeIdentity {
  int32_t node_id = 0;
  std::string cluster_id;
};
// `new_cluster_id`: the cluster id written into a new meta.properties (a
// cluster's nodes share one); empty = a fresh random one (a single node).
Result<NodeIdentity, Errc> load_or_create_identity(io::FileSystem& fs, const std::string& data_dir,
                                                   int32_t node_id,
                                                   const std::string& new_cluster_id = "");

// A fresh random id: 16 random bytes.
TopicId random_id();
// Kafka's cluster id form: URL-safe base64 of 16 bytes without padding (22 chars).
std::string base64_url_id(const TopicId& id);

}  // namespace holdfast::metadata
