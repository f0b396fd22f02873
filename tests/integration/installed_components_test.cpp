// The broker components as an application gets them from an install: the programs
// that tests/install built against the installed package (with find_package(eventlite
// COMPONENTS redis nats) and with eventlite-redis.pc / eventlite-nats.pc) forward to a
// real redis-server and nats-server, and the broker is read back.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "nats_server.hpp"
#include "redis_server.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

const std::filesystem::path kWork = EVENTLITE_INSTALL_WORK_DIR;

// Runs `program url`; returns its exit status, its output in `out`.
int run(const std::filesystem::path& program, const std::string& url, std::string& out) {
  TempDir dir;
  const std::filesystem::path log = dir / "out.txt";
  const std::string command =
      "'" + program.string() + "' '" + url + "' > '" + log.string() + "' 2>&1";
  const int status = std::system(command.c_str());
  out = read_bytes(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class InstalledComponent : public ::testing::TestWithParam<std::string> {};

TEST_P(InstalledComponent, RedisProgramForwardsToARealServer) {
  const std::filesystem::path program = kWork / GetParam() / "redis_app";
  ASSERT_TRUE(std::filesystem::exists(program)) << program;
  RedisServer server;
  std::string out;
  ASSERT_EQ(run(program, server.url(), out), 0) << out;
  EXPECT_NE(out.find("forwarded 3 to redis"), std::string::npos) << out;
  RedisClient client = server.client();
  EXPECT_EQ(client.integer({"XLEN", "installed"}), 3);
}

TEST_P(InstalledComponent, NatsProgramForwardsToARealServer) {
  const std::filesystem::path program = kWork / GetParam() / "nats_app";
  ASSERT_TRUE(std::filesystem::exists(program)) << program;
  NatsServer server;
  std::string out;
  ASSERT_EQ(run(program, server.url(), out), 0) << out;
  EXPECT_NE(out.find("forwarded 3 to nats"), std::string::npos) << out;
  const NatsConn conn = server.connect();
  EXPECT_EQ(stream_count(conn.get(), "INSTALLED"), 3u);
}

// consumer-build/: built with find_package; pkg-config/: with the .pc files.
INSTANTIATE_TEST_SUITE_P(BothWays, InstalledComponent,
                         ::testing::Values("consumer-build", "pkg-config"));

}  // namespace
}  // namespace eventlite
