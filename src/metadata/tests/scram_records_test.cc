// SCRAM credential records (issue 11): they apply to the image, round-trip
// through the record and snapshot codecs, and bad ones are refused.
#include <gtest/gtest.h>

#include "metadata/metadata_image.h"
#include "metadata/metadata_log.h"

namespace holdfast::metadata {
namespace {

ScramCredentialUpserted alice_512() {
  return ScramCredentialUpserted{"alice", 2, std::string("\x00\x01salt", 6),
                                 std::string(64, '\x11'), std::string(64, '\x22'), 4096};
}

TEST(ScramRecords, UpsertAndDeleteApplyToTheImage) {
  MetadataImage empty;
  auto with = apply_record(empty, alice_512(), 0);
  ASSERT_TRUE(with);
  const auto& creds = (*with)->scram_credentials;
  ASSERT_EQ(creds.size(), 1u);
  const auto& c = creds.at({"alice", int8_t(2)});
  EXPECT_EQ(c.salt, std::string("\x00\x01salt", 6));
  EXPECT_EQ(c.iterations, 4096);

  auto without = apply_record(**with, ScramCredentialDeleted{"alice", 2}, 1);
  ASSERT_TRUE(without);
  EXPECT_TRUE((*without)->scram_credentials.empty());
  // Deleting what is not there does not fit the image.
  auto again = apply_record(**without, ScramCredentialDeleted{"alice", 2}, 2);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.code(), Errc::invalid_record);
}

TEST(ScramRecords, BadCredentialsAreRefused) {
  MetadataImage empty;
  auto few = alice_512();
  few.iterations = 4095;
  EXPECT_FALSE(apply_record(empty, few, 0));
  auto mechanism = alice_512();
  mechanism.mechanism = 3;
  EXPECT_FALSE(apply_record(empty, mechanism, 0));
  auto nameless = alice_512();
  nameless.user = "";
  EXPECT_FALSE(apply_record(empty, nameless, 0));
}

TEST(ScramRecords, RecordsRoundTripThroughJson) {
  for (MetadataRecord record : {MetadataRecord{alice_512()},
                                MetadataRecord{ScramCredentialDeleted{"bob", 1}}}) {
    std::string encoded = encode_record(record);
    auto decoded = decode_record(encoded);
    ASSERT_TRUE(decoded) << encoded;
    EXPECT_EQ(encode_record(*decoded), encoded);
    EXPECT_EQ(decoded->index(), record.index());
  }
  auto decoded = decode_record(encode_record(alice_512()));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::get<ScramCredentialUpserted>(*decoded).salt, alice_512().salt);
}

TEST(ScramRecords, SnapshotCarriesCredentials) {
  MetadataImage empty;
  auto image = apply_record(empty, alice_512(), 0);
  ASSERT_TRUE(image);
  auto decoded = decode_image(encode_image(**image), -1);
  ASSERT_TRUE(decoded);
  EXPECT_EQ((*decoded)->scram_credentials, (*image)->scram_credentials);
  // An image without credentials encodes without the member (as before).
  EXPECT_EQ(encode_image(empty).find("scram"), std::string::npos);
}

}  // namespace
}  // namespace holdfast::metadata
