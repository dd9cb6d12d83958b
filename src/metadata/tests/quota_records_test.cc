// Client quota records: applied to the image (set, replace, remove, the
// entity dropped when empty), checked, and carried by the record and
// snapshot codecs (a snapshot without them still loads).
#include <gtest/gtest.h>

#include "metadata/metadata_log.h"

namespace holdfast::metadata {
namespace {

const QuotaEntity kAppClient{{"client-id", "app"}};
const QuotaEntity kAliceDefaultClient{{"user", "alice"}, {"client-id", std::nullopt}};

TEST(QuotaRecords, SetReplaceAndRemoveChangeTheImage) {
  MetadataImage empty;
  auto one = apply_record(
      empty, ClientQuotasAltered{kAppClient, {{"producer_byte_rate", 1000.0}, {"consumer_byte_rate", 2000.0}}},
      0);
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ((*one)->client_quotas.at(kAppClient),
            (QuotaValues{{"producer_byte_rate", 1000.0}, {"consumer_byte_rate", 2000.0}}));
  auto replaced = apply_record(**one, ClientQuotasAltered{kAppClient, {{"producer_byte_rate", 5.5}}}, 1);
  ASSERT_TRUE(replaced);
  EXPECT_EQ((*replaced)->client_quotas.at(kAppClient).at("producer_byte_rate"), 5.5);
  auto removed = apply_record(**replaced,
                              ClientQuotasAltered{kAppClient, {{"producer_byte_rate", std::nullopt}}}, 2);
  ASSERT_TRUE(removed);
  EXPECT_EQ((*removed)->client_quotas.at(kAppClient), (QuotaValues{{"consumer_byte_rate", 2000.0}}));
  auto gone = apply_record(**removed,
                           ClientQuotasAltered{kAppClient, {{"consumer_byte_rate", std::nullopt}}}, 3);
  ASSERT_TRUE(gone);
  EXPECT_TRUE((*gone)->client_quotas.empty());  // no key left: no entity
  // Removing what is not there is a no-op (a retried request still applies).
  auto again = apply_record(**gone, ClientQuotasAltered{kAppClient, {{"consumer_byte_rate", std::nullopt}}}, 4);
  ASSERT_TRUE(again);
  EXPECT_TRUE((*again)->client_quotas.empty());
}

TEST(QuotaRecords, UncheckedEntitiesAndValuesAreRefused) {
  MetadataImage empty;
  const std::vector<ClientQuotasAltered> bad = {
      {QuotaEntity{}, {{"producer_byte_rate", 1.0}}},
      {QuotaEntity{{"ip", "1.2.3.4"}}, {{"producer_byte_rate", 1.0}}},
      {QuotaEntity{{"user", ""}}, {{"producer_byte_rate", 1.0}}},
      {kAppClient, {{"request_percentage", 10.0}}},
      {kAppClient, {{"producer_byte_rate", -1.0}}},
      {kAppClient, {{"producer_byte_rate", 0.0}}},
  };
  for (const auto& record : bad) {
    auto r = apply_record(empty, record, 0);
    ASSERT_FALSE(r) << quota_entity_string(record.entity);
    EXPECT_EQ(r.code(), Errc::invalid_record);
  }
  EXPECT_TRUE(apply_record(empty, ClientQuotasAltered{kAliceDefaultClient, {{"consumer_byte_rate", 1.0}}}, 0));
}

TEST(QuotaRecords, RecordsRoundTrip) {
  const ClientQuotasAltered record{kAliceDefaultClient,
                                   {{"producer_byte_rate", 1048576.25}, {"consumer_byte_rate", std::nullopt}}};
  auto decoded = decode_record(encode_record(record));
  ASSERT_TRUE(decoded) << decoded.error().message;
  const auto* got = std::get_if<ClientQuotasAltered>(&*decoded);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->entity, record.entity);  // the null (default) name survives
  EXPECT_EQ(got->changes, record.changes);
}

TEST(QuotaRecords, SnapshotCarriesTheQuotasAndOldSnapshotsLoad) {
  MetadataImage image;
  image.client_quotas[kAppClient] = {{"producer_byte_rate", 200.0 * 1024}};
  image.client_quotas[kAliceDefaultClient] = {{"consumer_byte_rate", 3.0}, {"producer_byte_rate", 4.0}};
  image.last_record_index = 9;
  auto decoded = decode_image(encode_image(image), 1);
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ((*decoded)->client_quotas, image.client_quotas);

  MetadataImage none;
  none.last_record_index = 2;
  const std::string text = encode_image(none);
  EXPECT_EQ(text.find("client_quotas"), std::string::npos);
  auto loaded = decode_image(text, 1);
  ASSERT_TRUE(loaded);
  EXPECT_TRUE((*loaded)->client_quotas.empty());
}

}  // namespace
}  // namespace holdfast::metadata
