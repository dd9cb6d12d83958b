// Start-up and shutdown of the broker as a whole: the data-directory lock,
// binding before the data directory is touched, a shutdown that completes
// every durability waiter before the executors go, and an accept loop that
// backs off when it runs out of file descriptors.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "io/posix_file_system.h"
#include "record/batch.h"
#include "server/broker.h"
#include "server/tests/broker_fixture.h"

namespace holdfast::server {
namespace {

using namespace std::chrono_literals;
using testing::TestClient;

BrokerConfig config_for(const std::filesystem::path& dir, uint16_t port = 0) {
  BrokerConfig config;
  config.data_dir = dir.string();
  config.listen_host = "127.0.0.1";
  config.listen_port = port;
  config.num_network_threads = 2;
  config.offsets_topic_num_partitions = 1;
  config.group_initial_rebalance_delay_ms = 0;
  return config;
}

Bytes batch_of(std::initializer_list<std::string> values) {
  record::BatchBuilder builder;
  for (const auto& v : values) builder.add(std::nullopt, v, 1000);
  return builder.build();
}

protocol::ProduceRequest produce_request(const std::string& topic, Bytes batch) {
  protocol::ProduceRequest request;
  request.acks = -1;
  request.timeout_ms = 30000;
  auto& t = request.topic_data.emplace_back();
  t.name = topic;
  auto& p = t.partition_data.emplace_back();
  p.index = 0;
  p.records = std::move(batch);
  return request;
}

class LifecycleTest : public testing::BrokerFixture {
 protected:
  std::filesystem::path other_dir(const std::string& name) {
    auto path = dir_.string() + "-" + name;
    std::filesystem::remove_all(path);
    extra_dirs_.push_back(path);
    return path;
  }
  void TearDown() override {
    BrokerFixture::TearDown();
    for (const auto& d : extra_dirs_) std::filesystem::remove_all(d);
  }
  std::vector<std::filesystem::path> extra_dirs_;
};

// Issue 8 item 6a: a second broker on a directory in use refuses to start,
// touches nothing, and the first keeps serving.
TEST_F(LifecycleTest, SecondBrokerOnTheSameDataDirectoryRefuses) {
  TestClient client(port());
  create_topic(client, "t", 1);

  io::PosixFileSystem fs;
  Broker second(config_for(dir_), fs);
  auto started = second.start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().message.find("another process is using " + dir_.string()),
            std::string::npos)
      << started.error().message;
  second.shutdown();
  EXPECT_FALSE(std::filesystem::exists(dir_ / ".kafka_cleanshutdown"));

  auto produced = client.call<protocol::ProduceRequest, protocol::ProduceResponse>(
      produce_request("t", batch_of({"a"})), 7);
  EXPECT_EQ(produced.responses.at(0).partition_responses.at(0).error_code, 0);

  // After the first stops, the directory can be used again.
  broker_.reset();
  Broker third(config_for(dir_), fs);
  auto again = third.start();
  EXPECT_TRUE(again) << again.error().message;
}

// Item 6a: the listener is bound before the data directory is created, so a
// port in use leaves no trace on disk.
TEST_F(LifecycleTest, PortInUseLeavesTheDataDirectoryUntouched) {
  auto fresh = other_dir("fresh");
  io::PosixFileSystem fs;
  Broker second(config_for(fresh, port()), fs);
  auto started = second.start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().message.find("cannot listen"), std::string::npos)
      << started.error().message;
  second.shutdown();
  EXPECT_FALSE(std::filesystem::exists(fresh));
}

TEST_F(LifecycleTest, NegativeNodeIdIsRejectedBeforeAnythingIsCreated) {
  auto fresh = other_dir("node");
  auto config = config_for(fresh);
  config.node_id = -5;
  io::PosixFileSystem fs;
  Broker broker(config, fs);
  auto started = broker.start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().message.find("node.id"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(fresh));
}

// A file system whose fsyncs block, once armed, until released.
class GatedFileSystem final : public io::FileSystem {
 public:
  void arm() {
    std::lock_guard lock(mu_);
    armed_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      armed_ = false;
    }
    cv_.notify_all();
  }
  int blocked() {
    std::lock_guard lock(mu_);
    return blocked_;
  }
  void gate() {
    std::unique_lock lock(mu_);
    if (!armed_) return;
    ++blocked_;
    cv_.wait(lock, [&] { return !armed_; });
    --blocked_;
  }

  class GatedFile final : public io::File {
   public:
    GatedFile(GatedFileSystem& fs, std::unique_ptr<io::File> inner)
        : fs_(fs), inner_(std::move(inner)) {}
    const std::string& path() const override { return inner_->path(); }
    io::IoResult<size_t> read_at(uint64_t offset, std::span<uint8_t> out) const override {
      return inner_->read_at(offset, out);
    }
    io::IoResult<void> append(std::span<const uint8_t> data) override {
      return inner_->append(data);
    }
    io::IoResult<void> sync_data() override {
      fs_.gate();
      return inner_->sync_data();
    }
    io::IoResult<void> sync() override {
      fs_.gate();
      return inner_->sync();
    }
    io::IoResult<void> truncate(uint64_t size) override { return inner_->truncate(size); }
    uint64_t size() const override { return inner_->size(); }

   private:
    GatedFileSystem& fs_;
    std::unique_ptr<io::File> inner_;
  };

  io::IoResult<std::unique_ptr<io::File>> open(const std::string& path,
                                               io::OpenMode mode) override {
    auto file = posix_.open(path, mode);
    if (!file) return file.error();
    return std::unique_ptr<io::File>(std::make_unique<GatedFile>(*this, std::move(*file)));
  }
  io::IoResult<void> rename(const std::string& from, const std::string& to) override {
    return posix_.rename(from, to);
  }
  io::IoResult<void> remove(const std::string& path) override { return posix_.remove(path); }
  io::IoResult<void> remove_dir(const std::string& path) override {
    return posix_.remove_dir(path);
  }
  io::IoResult<std::vector<std::string>> list_dir(const std::string& path) override {
    return posix_.list_dir(path);
  }
  io::IoResult<void> create_dir(const std::string& path) override {
    return posix_.create_dir(path);
  }
  io::IoResult<void> sync_dir(const std::string& path) override {
    gate();
    return posix_.sync_dir(path);
  }
  bool exists(const std::string& path) override { return posix_.exists(path); }
  bool is_directory(const std::string& path) override { return posix_.is_directory(path); }
  io::IoResult<uint64_t> file_size(const std::string& path) override {
    return posix_.file_size(path);
  }

 private:
  io::PosixFileSystem posix_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;
  int blocked_ = 0;
};

// Issue 8 item 6: shutdown while a produce and an offset commit wait for an
// fsync that has not returned. Their callbacks must not run on destroyed
// executors (ASan: heap-use-after-free before the fix), and since the logs
// are flushed at shutdown both are acknowledged before the connections close.
TEST_F(LifecycleTest, ShutdownWithProduceAndCommitWaitingOnFsyncAnswersBoth) {
  broker_.reset();
  GatedFileSystem gated;
  auto broker = std::make_unique<Broker>(config_for(other_dir("gated")), gated);
  auto started = broker->start();
  ASSERT_TRUE(started) << started.error().message;
  ASSERT_TRUE(broker->groups().wait_until_loaded(10000));
  const uint16_t broker_port = broker->bound_port();
  {
    TestClient admin(broker_port);
    create_topic(admin, "t", 1);
  }
  TestClient producer(broker_port);
  TestClient committer(broker_port);

  gated.arm();
  const int32_t produce_id = producer.send(produce_request("t", batch_of({"a", "b"})), 7);
  ASSERT_TRUE(eventually([&] { return gated.blocked() >= 1; }));
  protocol::OffsetCommitRequest commit;
  commit.group_id = "g";
  commit.generation_id = -1;
  commit.member_id = "";
  auto& topic = commit.topics.emplace_back();
  topic.name = "t";
  auto& partition = topic.partitions.emplace_back();
  partition.partition_index = 0;
  partition.committed_offset = 2;
  const int32_t commit_id = committer.send(commit, 7);
  ASSERT_TRUE(eventually([&] { return broker->network()->in_flight_requests() == 2; }));

  std::thread stopper([&] { broker->shutdown(); });
  // Release the disk once the broker is closing its logs (before the fix it
  // had destroyed the network executors by then).
  bool reached = eventually([&] { return broker->stage() >= Broker::Stage::closing_logs; }, 30s);
  gated.release();
  stopper.join();
  ASSERT_TRUE(reached);

  auto produced = producer.receive<protocol::ProduceResponse>(protocol::ProduceRequest::kApiKey,
                                                              7, produce_id);
  EXPECT_EQ(produced.responses.at(0).partition_responses.at(0).error_code, 0);
  auto committed = committer.receive<protocol::OffsetCommitResponse>(
      protocol::OffsetCommitRequest::kApiKey, 7, commit_id);
  EXPECT_EQ(committed.topics.at(0).partitions.at(0).error_code, 0);
  broker.reset();
}

// Issue 8 item 10: out of file descriptors, the accept loop backs off instead
// of retrying at once (which spun a core at 100%), and recovers afterwards.
// Profiles and `top -H` name the busy part of the broker: every long-lived
// thread carries an hf- name.
TEST_F(LifecycleTest, BrokerThreadsAreNamed) {
  // (The group loader thread ends once __consumer_offsets is loaded.)
  const std::vector<std::string> expected = {"hf-net-0", "hf-net-1", "hf-flush-0", "hf-log-timer",
                                             "hf-group-timer", "hf-lifecycle"};
  auto thread_names = [] {
    std::set<std::string> names;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      std::getline(comm, name);
      names.insert(name);
    }
    return names;
  };
  // A thread names itself once it runs: wait for that, bounded.
  eventually([&] {
    auto names = thread_names();
    return std::all_of(expected.begin(), expected.end(),
                       [&](const std::string& n) { return names.count(n) > 0; });
  });
  auto names = thread_names();
  std::string all;
  for (const auto& name : names) all += name + " ";
  for (const auto& name : expected) {
    EXPECT_TRUE(names.count(name)) << "no thread named " << name << "; threads: " << all;
  }
}

TEST_F(LifecycleTest, AcceptLoopBacksOffWhenOutOfFileDescriptors) {
  rlimit original{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &original), 0);
  // The client's socket exists before the limit drops; connect() needs no
  // new descriptor here, but the broker's accept() does.
  int client = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(client, 0);
  // Fill every free descriptor number below the limit we set.
  std::vector<int> fillers;
  int highest = client;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    highest = std::max(highest, std::stoi(entry.path().filename().string()));
  }
  for (;;) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    if (fd > highest) {
      ::close(fd);
      break;
    }
    fillers.push_back(fd);
  }
  rlimit lowered = original;
  lowered.rlim_cur = static_cast<rlim_t>(highest + 1);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int connected = ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const auto* network = broker_->network();
  bool failed = eventually([&] { return network->accept_failures() > 0; });
  const int64_t first = network->accept_failures();
  // A measurement window, not a synchronisation: how often does it retry?
  std::this_thread::sleep_for(500ms);
  const int64_t during = network->accept_failures() - first;

  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &original), 0);
  for (int fd : fillers) ::close(fd);
  ASSERT_EQ(connected, 0);
  ASSERT_TRUE(failed);
  // Back-off from 50 ms doubling: a handful of retries in half a second; a
  // spinning loop makes tens of thousands.
  EXPECT_LE(during, 10);

  // Once descriptors are available again, the connection that waited in the
  // backlog is served, and so is a new one: the accept loop survived the
  // episode. (It used to die here: the first socket on another network
  // thread created that thread's epoll reactor, which needs descriptors, and
  // the exception ended the detached accept coroutine for good.)
  auto frame = TestClient::frame(protocol::ApiVersionsRequest{}, 0, 7);
  ASSERT_EQ(::send(client, frame.data(), frame.size(), MSG_NOSIGNAL), static_cast<ssize_t>(frame.size()));
  pollfd p{client, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 10000), 1) << "the connection queued during EMFILE was never served";
  ::close(client);
  TestClient fresh(port());
  protocol::ApiVersionsRequest request;
  EXPECT_NO_THROW((fresh.call<protocol::ApiVersionsRequest, protocol::ApiVersionsResponse>(request, 3)))
      << "a connection made after the EMFILE episode was never served";
}

}  // namespace
}  // namespace holdfast::server
