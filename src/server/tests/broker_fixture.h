// A broker running in this process on a loopback port with a fresh data
// directory, for protocol-level tests. Subclasses adjust the configuration in
// configure() and may restart() the broker on the same directory.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "io/posix_file_system.h"
#include "server/broker.h"
#include "server/tests/test_client.h"

namespace holdfast::server::testing {

class BrokerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("hf-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_suite()->name() + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    start();
  }
  void TearDown() override {
    broker_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Called before every start(); the base settings are already in place.
  virtual void configure(BrokerConfig& config) {}
  // Called after every successful start().
  virtual void after_start() {}
  // The file system every start() hands to the broker (a test may return a
  // FaultInjectionFileSystem wrapping fs_).
  virtual io::FileSystem& file_system() { return fs_; }

  // Waits for `condition` to hold, checking it every few milliseconds, for at
  // most `limit`. Returns whether it held: tests wait on conditions, not sleeps.
  template <typename Condition>
  static bool eventually(Condition condition,
                         std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (condition()) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  void start() {
    BrokerConfig config;
    config.data_dir = dir_.string();
    config.listen_host = "127.0.0.1";
    config.listen_port = 0;
    config.num_network_threads = 2;
    configure(config);
    broker_ = std::make_unique<Broker>(config, file_system());
    auto started = broker_->start();
    ASSERT_TRUE(started) << started.error().message;
    after_start();
  }
  void restart() {
    broker_.reset();
    start();
  }
  uint16_t port() const { return broker_->bound_port(); }

  void create_topic(TestClient& client, const std::string& name, int32_t partitions) {
    protocol::CreateTopicsRequest request;
    auto& t = request.topics.emplace_back();
    t.name = name;
    t.num_partitions = partitions;
    t.replication_factor = 1;
    request.timeout_ms = 5000;
    auto response =
        client.call<protocol::CreateTopicsRequest, protocol::CreateTopicsResponse>(request, 4);
    ASSERT_EQ(response.topics.size(), 1u);
    ASSERT_EQ(response.topics[0].error_code, 0) << response.topics[0].error_message.value_or("");
  }

  std::filesystem::path dir_;
  io::PosixFileSystem fs_;
  std::unique_ptr<Broker> broker_;
};

}  // namespace holdfast::server::testing
