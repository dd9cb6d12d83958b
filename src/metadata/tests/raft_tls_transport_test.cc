// The metadata quorum over mutual TLS (raft_tls_transport.h): three
// RaftMetadataLog members whose Raft traffic runs through RaftTlsTransport
// elect a leader and replicate; a plain TCP peer, a TLS peer without a
// certificate and one with a certificate from another CA are closed while
// the quorum keeps working; a member whose certificate does not name the
// address it is dialled at, or whose CA the others do not trust, gets no
// entries; stop() with a dial stuck in its handshake completes.
//
// Certificates are made at test time with the openssl CLI, as the cluster
// tests do (tests/cluster/secure_kit.py), and the TLS contexts with the
// broker's own make_mutual_tls_contexts (server/security/tls_context.h),
// which is why this test binary links the server library.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <cstdlib>
#include <fstream>
#include <future>
#include <optional>

#include "io/tests/temp_dir.h"
#include "metadata/tests/metadata_test_util.h"
#include "metadata/tests/raft_test_cluster.h"
#include "server/security/tls_context.h"

namespace holdfast::metadata {
namespace {

using namespace testing;  // NOLINT: the helpers in metadata_test_util.h and raft_test_cluster.h
using asio::ip::tcp;

// A CA, a CA nobody trusts, and certificates signed by either (secure_kit.py's Pki).
class Pki {
 public:
  Pki() {
    make_ca("ca", "/CN=Holdfast raft test CA");
    make_ca("rogue-ca", "/CN=Another CA");
  }
  std::string ca() const { return dir_ / "ca.pem"; }

  // Certificate and key of `name`, signed by `ca`, naming `san`.
  server::security::TlsSettings make_cert(const std::string& name, const std::string& ca = "ca",
                                           const std::string& san = "IP:127.0.0.1") {
    run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + name +
        ".key -out " + name + ".csr -subj /CN=" + name);
    std::ofstream(dir_ / (name + ".ext")) << "subjectAltName=" << san << "\n";
    run("openssl x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca +
        ".key -CAcreateserial -out " + name + ".pem -days 2 -extfile " + name + ".ext");
    server::security::TlsSettings settings;
    settings.certificate_location = dir_ / (name + ".pem");
    settings.key_location = dir_ / (name + ".key");
    settings.ca_location = this->ca();
    return settings;
  }

 private:
  void make_ca(const std::string& name, const std::string& subject) {
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + name +
        ".key -out " + name + ".pem -subj '" + subject + "' -days 2");
  }
  void run(const std::string& command) {
    const std::string line = "cd " + dir_.path() + " && " + command + " >/dev/null 2>&1";
    if (std::system(line.c_str()) != 0) throw std::runtime_error("failed: " + command);
  }
  io::testing::TempDir dir_;
};

class RaftTlsClusterTest : public RaftClusterTest {
 protected:
  void SetUp() override {
    RaftClusterTest::SetUp();
    for (int i = 0; i < kMembers; ++i) certs_.push_back(pki_.make_cert("node-" + std::to_string(i + 1)));
  }

  RaftOptions options_for(int index) const override {
    RaftOptions options = RaftClusterTest::options_for(index);
    auto contexts = server::security::make_mutual_tls_contexts(certs_[index], "test");
    if (!contexts) throw std::runtime_error(contexts.error().message);
    options.tls_server = contexts->server;
    options.tls_client = contexts->client;
    options.tls_handshake_timeout_ms = handshake_timeout_ms_;
    return options;
  }

  uint16_t port_of(int index) const {
    return uint16_t(std::stoi(voters_[index].address.substr(voters_[index].address.rfind(':') + 1)));
  }

  // Appends a few topics on the leader; every running member applies them.
  void replicate_topics(int first, int count) {
    for (int n = first; n < first + count; ++n) {
      auto appended = append_on_leader(topic(n));
      ASSERT_TRUE(appended) << appended.error().message;
    }
    const std::string image = encode_image(*members_[wait_for_leader()]->current());
    EXPECT_TRUE(all_running_hold(image));
  }

  // Members 1 and 2 form the quorum and apply a registration; member 3
  // (certs_[2] spoilt by the caller) applies nothing. Pre-vote keeps member
  // 3, which hears no leader, from deposing theirs.
  void expect_member_3_gets_no_entries(const std::string& why) {
    start_all();
    auto leader_of_two = [&]() -> int {
      const RaftStatus a = members_[0]->status(), b = members_[1]->status();
      if (a.leader_id < 0 || a.leader_id != b.leader_id) return -1;
      return a.role == RaftRole::leader ? 0 : b.role == RaftRole::leader ? 1 : -1;
    };
    ASSERT_TRUE(wait_until([&] { return leader_of_two() >= 0; }))
        << "members 1 and 2 did not lead by themselves: member 3 took part although " << why;
    for (const MetadataRecord& record : live_broker(1)) {
      auto appended = append_and_wait(*members_[leader_of_two()], record);
      ASSERT_TRUE(appended) << appended.error().message;
    }
    ASSERT_TRUE(wait_until([&] { return recorders_[0]->size() == 2 && recorders_[1]->size() == 2; }));
    EXPECT_FALSE(wait_until([&] { return recorders_[2]->size() > 0; }, 3s))
        << "member 3 applied entries although " << why;
  }

  Pki pki_;
  std::vector<server::security::TlsSettings> certs_;
  unsigned handshake_timeout_ms_ = 10000;
};

// Reads from `fd` until the peer closes (true) or `timeout` passes (false).
bool closed_by_peer(int fd, std::chrono::seconds timeout) {
  timeval tv{timeout.count(), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buffer[4096];
  while (true) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

// A plain TCP peer that sends what raft's own TCP transport sends first
// (protocol 1, id 9, an address) and then an AppendEntries-like preamble.
bool plain_peer_is_closed(uint16_t port) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  std::vector<uint8_t> bytes(64, 0);
  bytes[0] = 1;   // protocol version (little endian u64)
  bytes[8] = 9;   // server id
  bytes[16] = 16; // address length
  std::memcpy(bytes.data() + 24, "127.0.0.1:1", 11);
  bytes[40] = 1;  // message type: append entries
  asio::write(socket, asio::buffer(bytes));
  return closed_by_peer(socket.native_handle(), kWait / 2);
}

// What a dialling member sends first inside TLS (raft_tls_transport.cc): the
// magic, Raft id 9 (u64 BE), the address's length (u16 BE), the address.
std::string preamble() {
  return std::string("HFRAFT\0\1", 8) + std::string(7, '\0') + '\x09' + std::string("\0\x0b", 2) +
         "127.0.0.1:1";
}

// Whether the member ends `tls` (an error or end of stream on a read) within
// `timeout`; false when the read is still waiting then.
bool ended_by_member(asio::io_context& io, asio::ssl::stream<tcp::socket&>& tls,
                     std::chrono::milliseconds timeout) {
  char byte;
  std::optional<asio::error_code> outcome;
  tls.async_read_some(asio::buffer(&byte, 1),
                      [&](const asio::error_code& ec, size_t) { outcome = ec; });
  io.restart();
  io.run_for(timeout);
  if (outcome) return bool(*outcome);
  tls.next_layer().close();  // the read completes with operation_aborted
  io.restart();
  io.run();
  return false;
}

// A TLS peer with `context` that sends a valid preamble: true when the member
// ends the connection, in the handshake or (TLS 1.3: the server checks the
// client's certificate after the client's side of the handshake is done)
// right after it.
bool tls_peer_is_refused(uint16_t port, asio::ssl::context& context,
                         std::chrono::milliseconds timeout = kWait / 2) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::ssl::stream<tcp::socket&> tls(socket, context);
  asio::error_code ec;
  tls.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return true;
  asio::write(tls, asio::buffer(preamble()), ec);
  if (ec) return true;
  return ended_by_member(io, tls, timeout);
}

TEST_F(RaftTlsClusterTest, MembersOverMutualTlsElectALeaderAndReplicate) {
  start_all();
  ASSERT_GE(wait_for_leader(), 0);
  std::vector<MetadataRecord> records = live_broker(1);
  for (int n = 0; n < 8; ++n) records.push_back(topic(n));
  ASSERT_NO_FATAL_FAILURE(append_and_expect_everywhere(records));
  // A new leader after the old one stops: the connections are re-dialled.
  const int leader = wait_for_leader();
  stop(leader);
  ASSERT_GE(wait_for_leader(leader), 0);
  ASSERT_NO_FATAL_FAILURE(replicate_topics(100, 3));
  start(leader);
  ASSERT_NO_FATAL_FAILURE(replicate_topics(200, 1));
}

TEST_F(RaftTlsClusterTest, PeersWithoutATrustedCertificateAreClosedAndTheQuorumServes) {
  start_all();
  ASSERT_GE(wait_for_leader(), 0);
  ASSERT_NO_FATAL_FAILURE(register_broker());
  const uint16_t port = port_of(0);

  EXPECT_TRUE(plain_peer_is_closed(port));

  asio::ssl::context anonymous(asio::ssl::context::tls_client);
  anonymous.set_verify_mode(asio::ssl::verify_none);
  EXPECT_TRUE(tls_peer_is_refused(port, anonymous)) << "a peer without a certificate";

  auto rogue = server::security::make_mutual_tls_contexts(pki_.make_cert("rogue", "rogue-ca"), "test");
  ASSERT_TRUE(rogue) << rogue.error().message;
  rogue->client->set_verify_mode(asio::ssl::verify_none);  // it cannot verify us either
  EXPECT_TRUE(tls_peer_is_refused(port, *rogue->client)) << "a peer certified by another CA";

  ASSERT_NO_FATAL_FAILURE(replicate_topics(0, 3));
}

// The positive control of the probes above: a peer with a certificate from
// the cluster's CA and a well-formed preamble is kept open.
TEST_F(RaftTlsClusterTest, APeerWithATrustedCertificateIsKeptOpen) {
  start_all();
  ASSERT_GE(wait_for_leader(), 0);
  auto trusted = server::security::make_mutual_tls_contexts(pki_.make_cert("guest"), "test");
  ASSERT_TRUE(trusted) << trusted.error().message;
  // Nothing comes back: raft waits for a message from us.
  EXPECT_FALSE(tls_peer_is_refused(port_of(0), *trusted->client, 2000ms));
}

TEST_F(RaftTlsClusterTest, AMemberWhoseCertificateNamesAnotherAddressGetsNoEntries) {
  // Member 3 can dial the others (their certificates name 127.0.0.1), but
  // whoever dials member 3 finds a certificate for 10.9.9.9 and hangs up, so
  // no leader's AppendEntries reach it.
  certs_[2] = pki_.make_cert("node-3-elsewhere", "ca", "IP:10.9.9.9");
  expect_member_3_gets_no_entries("its certificate does not name its address");
}

TEST_F(RaftTlsClusterTest, AMemberFromAnotherCaGetsNoEntries) {
  certs_[2] = pki_.make_cert("node-3-rogue", "rogue-ca");
  expect_member_3_gets_no_entries("the others do not trust its CA");
}

TEST_F(RaftTlsClusterTest, StopCompletesWhileADialIsStuckInItsHandshake) {
  // Members 2 and 3 are listening sockets that never answer: member 1's dials
  // connect and then wait for a TLS handshake that never comes.
  handshake_timeout_ms_ = 60000;
  asio::io_context io;
  std::vector<tcp::acceptor> silent;
  for (int i = 1; i < kMembers; ++i) {
    silent.emplace_back(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_of(i)));
  }
  start(0);
  // Member 1 campaigns (pre-vote) and dials both: each silent listener then
  // holds a connection in its backlog (its socket reads as readable).
  ASSERT_TRUE(wait_until([&] {
    for (auto& acceptor : silent) {
      pollfd pending{acceptor.native_handle(), POLLIN, 0};
      if (::poll(&pending, 1, 0) != 1) return false;
    }
    return true;
  }));
  auto stopped = std::async(std::launch::async, [&] { stop(0); });
  EXPECT_EQ(stopped.wait_for(kWait), std::future_status::ready) << "stop() hung";
}

}  // namespace
}  // namespace holdfast::metadata
