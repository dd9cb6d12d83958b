// MetadataStore as a MetadataLog (metadata_log.h): the adapter glue, kept
// apart from the file handling in metadata_store.cc.
#include "metadata/metadata_store.h"

namespace holdfast::metadata {

void MetadataStore::append(MetadataRecord record, AppendCallback done) {
  // The local file is synchronous: the record is fsynced and applied (and the
  // subscribers told) by the time append returns, so `done` runs right here.
  done(append(record));
}

ImagePtr MetadataStore::subscribe(MetadataListener listener) {
  std::lock_guard lock(mutex_);
  listeners_.push_back(std::move(listener));
  return image_;
}

void MetadataStore::notify_applied(const MetadataRecord& record, const ImagePtr& image) {
  const MetadataEvent event{&record, image};
  for (const auto& listener : listeners_) listener(event);
}

}  // namespace holdfast::metadata
