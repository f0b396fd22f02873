#pragma once

// `eventlite bridge`: a broker's stream into DB (the Bridge of
// include/eventlite/redis.hpp or nats.hpp). The command's options and its run are
// both here.

#include <cstdint>
#include <string>

#include "tools/options.hpp"

namespace CLI {
class App;
}

namespace eventlite::cli {

struct BridgeArgs {
  std::string db;
  std::string redis;  // the URL, or empty
  std::string key = "events";
  std::string group = "eventlite";
  std::string nats;  // the URL, or empty
  std::string stream = "EVENTS";
  std::string durable = "eventlite";
  std::string name;  // empty: redis-bridge or nats-bridge
  RunOptions run;  // --until-idle, --retry-for, --lease-time
};

CLI::App* add_bridge(CLI::App& app, BridgeArgs& args);
int run_bridge(const BridgeArgs& args);

}  // namespace eventlite::cli
