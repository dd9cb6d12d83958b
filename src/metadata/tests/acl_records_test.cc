// ACL records: applied to the image's set, idempotent, checked; the record
// and snapshot codecs carry them (and a snapshot without them still loads).
#include <gtest/gtest.h>

#include "metadata/metadata_log.h"

namespace holdfast::metadata {
namespace {

AclBinding topic_acl(std::string name, AclPatternType pattern, std::string principal,
                     AclOperation op, AclPermission permission) {
  return AclBinding{AclResourceType::topic, std::move(name), pattern, std::move(principal), "*",
                    op, permission};
}

const AclBinding kWrite =
    topic_acl("orders", AclPatternType::literal, "User:alice", AclOperation::write, AclPermission::allow);
const AclBinding kPrefixedDeny =
    topic_acl("ord", AclPatternType::prefixed, "User:*", AclOperation::read, AclPermission::deny);

TEST(AclRecords, CreateAndDeleteChangeTheImageIdempotently) {
  MetadataImage empty;
  auto one = apply_record(empty, AclsCreated{{kWrite, kPrefixedDeny}}, 0);
  ASSERT_TRUE(one);
  EXPECT_EQ((*one)->acls, (AclSet{kWrite, kPrefixedDeny}));
  auto again = apply_record(**one, AclsCreated{{kWrite}}, 1);
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)->acls.size(), 2u);
  auto deleted = apply_record(**again, AclsDeleted{{kWrite}}, 2);
  ASSERT_TRUE(deleted);
  EXPECT_EQ((*deleted)->acls, (AclSet{kPrefixedDeny}));
  auto absent = apply_record(**deleted, AclsDeleted{{kWrite}}, 3);
  ASSERT_TRUE(absent);
  EXPECT_EQ((*absent)->acls, (AclSet{kPrefixedDeny}));
}

TEST(AclRecords, BindingsThatAreFiltersAreRefused) {
  MetadataImage empty;
  AclBinding any_type = kWrite;
  any_type.resource_type = AclResourceType::any;
  AclBinding match = kWrite;
  match.pattern_type = AclPatternType::match;
  AclBinding any_op = kWrite;
  any_op.operation = AclOperation::any;
  AclBinding bad_principal = kWrite;
  bad_principal.principal = "alice";
  AclBinding cluster = kWrite;
  cluster.resource_type = AclResourceType::cluster;  // must be named kafka-cluster
  for (const auto& b : {any_type, match, any_op, bad_principal, cluster}) {
    auto r = apply_record(empty, AclsCreated{{kWrite, b}}, 0);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.code(), Errc::invalid_record);
  }
  cluster.resource_name = "kafka-cluster";
  EXPECT_TRUE(apply_record(empty, AclsCreated{{cluster}}, 0));
}

TEST(AclRecords, RecordsRoundTrip) {
  for (const MetadataRecord& record :
       {MetadataRecord{AclsCreated{{kWrite, kPrefixedDeny}}}, MetadataRecord{AclsDeleted{{kWrite}}}}) {
    auto decoded = decode_record(encode_record(record));
    ASSERT_TRUE(decoded) << decoded.error().message;
    ASSERT_EQ(decoded->index(), record.index());
    const auto& want = std::holds_alternative<AclsCreated>(record) ? std::get<AclsCreated>(record).bindings
                                                                   : std::get<AclsDeleted>(record).bindings;
    const auto& got = std::holds_alternative<AclsCreated>(*decoded) ? std::get<AclsCreated>(*decoded).bindings
                                                                    : std::get<AclsDeleted>(*decoded).bindings;
    EXPECT_EQ(got, want);
  }
}

TEST(AclRecords, SnapshotCarriesTheSetAndOldSnapshotsLoad) {
  MetadataImage image;
  image.acls = {kWrite, kPrefixedDeny};
  image.last_record_index = 7;
  auto decoded = decode_image(encode_image(image), 1);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ((*decoded)->acls, image.acls);

  MetadataImage none;
  const std::string text = encode_image(none);
  EXPECT_EQ(text.find("acls"), std::string::npos);  // written only when there are some
  auto loaded = decode_image(R"({"version":2,"last_record_index":3,"brokers":[],"topics":[]})", 1);
  ASSERT_TRUE(loaded);
  EXPECT_TRUE((*loaded)->acls.empty());
}

}  // namespace
}  // namespace holdfast::metadata
