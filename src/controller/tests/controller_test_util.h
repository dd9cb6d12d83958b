// Images for the controller tests: registered brokers, topics with given
// partition states, and a fake clock.
#pragma once

#include <gtest/gtest.h>

#include "controller/controller.h"

namespace holdfast::controller::testing {

using metadata::ImagePtr;
using metadata::MetadataImage;
using metadata::MetadataRecord;
using metadata::PartitionState;

inline metadata::TopicId incarnation(int32_t id, int generation = 1) {
  metadata::TopicId out{};
  out[0] = uint8_t(id);
  out[1] = uint8_t(generation);
  return out;
}

inline BrokerRegistrationRequest registration(int32_t id, std::string rack = "", int generation = 1) {
  return BrokerRegistrationRequest{
      id, incarnation(id, generation), {{"PLAINTEXT", "127.0.0.1", 9090 + id}}, std::move(rack)};
}

// Applies records in order, failing the test on any refusal.
inline ImagePtr apply_all(ImagePtr image, const std::vector<MetadataRecord>& records) {
  for (const auto& record : records) {
    auto next = metadata::apply_record(*image, record, image->last_record_index + 1);
    EXPECT_TRUE(next) << metadata::encode_record(record) << ": " << next.error().message;
    if (!next) return image;
    image = *next;
  }
  return image;
}

// Brokers registered (epoch 1) and unfenced, with the given racks (by index,
// node ids from 1).
inline ImagePtr brokers(const std::vector<std::string>& racks) {
  ImagePtr image = std::make_shared<MetadataImage>();
  std::vector<MetadataRecord> records;
  for (size_t i = 0; i < racks.size(); ++i) {
    const auto id = int32_t(i + 1);
    auto r = registration(id, racks[i]);
    records.push_back(metadata::BrokerRegistered{id, 1, r.incarnation, r.endpoints, r.rack});
    records.push_back(metadata::BrokerUnfenced{id, 1});
  }
  return apply_all(image, records);
}
inline ImagePtr brokers(int count) { return brokers(std::vector<std::string>(size_t(count), "")); }

}  // namespace holdfast::controller::testing
