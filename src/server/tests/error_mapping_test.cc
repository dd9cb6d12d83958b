#include "server/handlers/error_mapping.h"

#include <gtest/gtest.h>

namespace holdfast::server {
namespace {

TEST(ErrorMapping, RecordErrors) {
  EXPECT_EQ(to_kafka_error(record::Errc::corrupt_message), KafkaError::corrupt_message);
  EXPECT_EQ(to_kafka_error(record::Errc::truncated), KafkaError::corrupt_message);
  EXPECT_EQ(to_kafka_error(record::Errc::invalid_record), KafkaError::invalid_record);
  EXPECT_EQ(to_kafka_error(record::Errc::message_too_large), KafkaError::message_too_large);
  EXPECT_EQ(to_kafka_error(record::Errc::unsupported_compression),
            KafkaError::unsupported_compression_type);
  EXPECT_EQ(to_kafka_error(record::Errc::unsupported_magic),
            KafkaError::unsupported_for_message_format);
  EXPECT_EQ(to_kafka_error(record::Errc::invalid_timestamp), KafkaError::invalid_timestamp);
  EXPECT_EQ(code(KafkaError::corrupt_message), 2);
  EXPECT_EQ(code(KafkaError::invalid_record), 87);
}

TEST(ErrorMapping, StorageErrors) {
  EXPECT_EQ(to_kafka_error(storage::Errc::offset_out_of_range), KafkaError::offset_out_of_range);
  EXPECT_EQ(to_kafka_error(storage::Errc::not_found), KafkaError::unknown_topic_or_partition);
  EXPECT_EQ(to_kafka_error(storage::Errc::io_error), KafkaError::kafka_storage_error);
  EXPECT_EQ(code(KafkaError::kafka_storage_error), 56);
  EXPECT_EQ(to_kafka_error(storage::Errc::closed), KafkaError::not_leader_or_follower);
  EXPECT_EQ(to_kafka_error(storage::Errc::truncated), KafkaError::not_leader_or_follower);
  EXPECT_EQ(code(KafkaError::offset_out_of_range), 1);
}

TEST(ErrorMapping, IdempotentProducerErrors) {
  EXPECT_EQ(to_kafka_error(storage::Errc::out_of_order_sequence),
            KafkaError::out_of_order_sequence_number);
  EXPECT_EQ(to_kafka_error(storage::Errc::invalid_producer_epoch),
            KafkaError::invalid_producer_epoch);
  EXPECT_EQ(code(KafkaError::out_of_order_sequence_number), 45);
  EXPECT_EQ(code(KafkaError::invalid_producer_epoch), 47);
}

TEST(ErrorMapping, ReplicationErrors) {
  EXPECT_EQ(to_kafka_error(replication::Errc::not_leader), KafkaError::not_leader_or_follower);
  EXPECT_EQ(to_kafka_error(replication::Errc::not_replica), KafkaError::not_leader_or_follower);
  EXPECT_EQ(to_kafka_error(replication::Errc::not_enough_replicas), KafkaError::not_enough_replicas);
  EXPECT_EQ(to_kafka_error(replication::Errc::not_enough_replicas_after_append),
            KafkaError::not_enough_replicas_after_append);
  EXPECT_EQ(to_kafka_error(replication::Errc::log_failed), KafkaError::kafka_storage_error);
  EXPECT_EQ(code(KafkaError::not_leader_or_follower), 6);
  EXPECT_EQ(code(KafkaError::not_enough_replicas), 19);
  EXPECT_EQ(code(KafkaError::not_enough_replicas_after_append), 20);
}

}  // namespace
}  // namespace holdfast::server
