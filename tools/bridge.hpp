#pragma once

// `eventlite bridge`: a broker's stream into DB (include/eventlite/redis.hpp's
// Bridge). The command's options and its run are both here.

#include <cstdint>
#include <string>

#include "tools/options.hpp"

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
  RunOptions run;  // --until-idle, --retry-for, --lease-time
};

CLI::App* add_bridge(CLI::App& app, BridgeArgs& args);
int run_bridge(const BridgeArgs& args);

}  // namespace eventlite::cli
