#pragma once

// `eventlite forward`: the file's events to a broker, as a sink subscription
// (include/eventlite/redis.hpp). The command's options and its run are both here.

#include <cstdint>
#include <optional>
#include <string>

#include "tools/options.hpp"

namespace CLI {
class App;
}

namespace eventlite::cli {

struct ForwardArgs {
  std::string db;
  std::string redis;  // the URL, or empty
  std::string nats;   // the URL, or empty
  bool jetstream = false;
  std::string subject_prefix = "events";
  std::string mode = "stream";  // stream | pubsub
  std::string key = "events";
  std::optional<std::uint64_t> maxlen;
  std::string name;                 // empty: forward-redis or forward-nats
  std::string format = "envelope";  // envelope | cloudevents
  std::string source;               // the CloudEvents source; empty: the store's
  RunOptions run;                   // --until-idle, --retry-for, --lease-time
};

CLI::App* add_forward(CLI::App& app, ForwardArgs& args);
int run_forward(const ForwardArgs& args);

}  // namespace eventlite::cli
