#pragma once

// `eventlite bridge`: a broker's stream into DB (include/eventlite/redis.hpp's
// Bridge). The command's options and its run are both here.

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace eventlite::cli {

struct BridgeArgs {
  std::string db;
  std::string redis;  // the URL
  std::string key = "events";
  std::string group = "eventlite";
  std::string name = "redis-bridge";
  bool until_idle = false;
  std::uint64_t retry_for = 20;   // seconds a broker may stay unreachable (--until-idle)
  std::uint64_t lease_time = 15;  // seconds another process takes over after this dies
};

CLI::App* add_bridge(CLI::App& app, BridgeArgs& args);
int run_bridge(const BridgeArgs& args);

}  // namespace eventlite::cli
