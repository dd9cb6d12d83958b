#include "admin/admin_server.h"

#include <gtest/gtest.h>

namespace holdfast::admin {
namespace {

// The start-up warning for an unauthenticated admin listener that others can
// reach depends on this.
TEST(AdminServerTest, LoopbackHostsAreRecognised) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"}) {
    EXPECT_TRUE(is_loopback_host(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "10.0.0.1", "192.168.1.127", "127.0.0", "127.0.0.1.5",
                           "127.0.0.a", "127.", "", "::", "example.com", "128.0.0.1"}) {
    EXPECT_FALSE(is_loopback_host(host)) << host;
  }
}

}  // namespace
}  // namespace holdfast::admin
