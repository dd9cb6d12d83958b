// sasl.scram.bootstrap.file (security/scram_bootstrap.h): the file's lines,
// which credentials are due, and "once": a bootstrapped credential deleted
// later is not due again, across a snapshot too.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "metadata/metadata_log.h"
#include "server/security/scram_bootstrap.h"
#include "server/security/scram_credentials.h"

namespace holdfast::server::security {
namespace {

metadata::ScramCredentialUpserted credential(const std::string& user, int8_t mechanism) {
  auto made = make_credential(mechanism == 1 ? ScramHash::sha256 : ScramHash::sha512, "secret",
                              std::string(32, 's'), 4096);
  return {user, mechanism, made.salt, made.stored_key, made.server_key, made.iterations};
}

std::string write_file(const std::string& name, const std::string& text) {
  auto path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream(path) << text;
  return path;
}

metadata::MetadataImage applied(const metadata::MetadataImage& image,
                                const metadata::MetadataRecord& record) {
  auto next = metadata::apply_record(image, record, image.last_record_index + 1);
  EXPECT_TRUE(next) << next.error().message;
  return **next;
}

TEST(ScramBootstrapTest, ReadsTheLinesTheCliWrites) {
  auto path = write_file("hf-bootstrap-ok", scram_bootstrap_line(credential("broker", 2)) + "\n\n" +
                                                scram_bootstrap_line(credential("alice", 1)) + "\n");
  auto loaded = load_scram_bootstrap_file(path);
  ASSERT_TRUE(loaded) << loaded.error().message;
  ASSERT_EQ(loaded->size(), 2u);
  EXPECT_EQ((*loaded)[0].user, "broker");
  EXPECT_EQ((*loaded)[1].mechanism, 1);
  EXPECT_TRUE((*loaded)[0].bootstrap);
}

TEST(ScramBootstrapTest, RefusesABadLineNamingItAndNoKey) {
  auto good = credential("broker", 2);
  auto path = write_file("hf-bootstrap-bad", scram_bootstrap_line(good) + "\nnot json\n");
  auto loaded = load_scram_bootstrap_file(path);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find("line 2"), std::string::npos) << loaded.error().message;

  auto weak = good;
  weak.iterations = 1000;
  auto weak_path = write_file("hf-bootstrap-weak", metadata::encode_record(weak) + "\n");
  auto refused = load_scram_bootstrap_file(weak_path);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("iterations"), std::string::npos);

  EXPECT_FALSE(load_scram_bootstrap_file("/nonexistent/hf-bootstrap"));
}

TEST(ScramBootstrapTest, DueOnceAndNeverOverAnExistingCredential) {
  const std::vector<metadata::ScramCredentialUpserted> wanted = {credential("broker", 2),
                                                                 credential("alice", 2)};
  metadata::MetadataImage image;
  // alice already has a credential (made through the API): not replaced.
  image = applied(image, credential("alice", 2));
  auto due = scram_bootstrap_due(image, wanted);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].user, "broker");
  EXPECT_TRUE(due[0].bootstrap);

  image = applied(image, due[0]);
  EXPECT_TRUE(scram_bootstrap_due(image, wanted).empty());
  // Deleted later: stays deleted (the control: the same image without the
  // bootstrap mark would make it due again).
  image = applied(image, metadata::ScramCredentialDeleted{"broker", 2});
  EXPECT_TRUE(scram_bootstrap_due(image, wanted).empty());
  auto unmarked = image;
  unmarked.scram_bootstrapped.clear();
  EXPECT_EQ(scram_bootstrap_due(unmarked, wanted).size(), 1u);

  // The mark survives a snapshot.
  auto restored = metadata::decode_image(metadata::encode_image(image), -1);
  ASSERT_TRUE(restored) << restored.error().message;
  EXPECT_EQ((*restored)->scram_bootstrapped.count({"broker", 2}), 1u);
  EXPECT_TRUE(scram_bootstrap_due(**restored, wanted).empty());
}

TEST(ScramBootstrapTest, TheMarkRoundTripsThroughTheRecordCodec) {
  auto record = credential("broker", 2);
  record.bootstrap = true;
  auto decoded = metadata::decode_record(metadata::encode_record(record));
  ASSERT_TRUE(decoded);
  EXPECT_TRUE(std::get<metadata::ScramCredentialUpserted>(*decoded).bootstrap);
  record.bootstrap = false;
  auto plain = metadata::encode_record(record);
  EXPECT_EQ(plain.find("bootstrap"), std::string::npos) << "older readers see the same record";
}

}  // namespace
}  // namespace holdfast::server::security
