#pragma once

// The brokers the tool reaches, one row each (brokers.cpp): how `forward` and `bridge`
// name a server (--redis URL, --nats URL) and how its URL and the command's options
// become a sink or a bridge. brokers.cpp is the one file of the tool that names a
// broker's library; a broker this build lacks keeps its row, whose makers say how to
// build it in.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "eventlite/inbox.hpp"
#include "eventlite/sink.hpp"
#include "eventlite/store.hpp"
#include "tools/options.hpp"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace eventlite::cli {

// The server a command was given: a broker's name and its URL.
struct Server {
  std::string broker;  // "redis", "nats"; empty: none given
  std::string url;
};

struct ForwardArgs {
  std::string db;
  Server server;
  bool jetstream = false;
  std::string subject_prefix = "events";
  std::string mode = "stream";  // stream | pubsub
  std::string key = "events";
  std::optional<std::uint64_t> maxlen;
  std::string name;                 // empty: forward-<broker>
  std::string format = "envelope";  // envelope | cloudevents
  std::string source;               // the CloudEvents source; empty: the store's
  RunOptions run;                   // --until-idle, --retry-for, --lease-time
};

struct BridgeArgs {
  std::string db;
  Server server;
  std::string key = "events";
  std::string group = "eventlite";
  std::string stream = "EVENTS";
  std::string durable = "eventlite";
  std::string name;  // empty: <broker>-bridge
  RunOptions run;    // --until-idle, --retry-for, --lease-time
};

struct Broker {
  std::string_view name;      // its option is --<name>
  std::string_view url_form;  // for --help: "redis://[[user]:password@]host..."
  // The sink `forward` sends through; throws InvalidArgument for a malformed URL.
  std::shared_ptr<Sink> (*sink)(const ForwardArgs& args);
  // The bridge `bridge` runs; throws InvalidArgument for a malformed URL or name.
  std::unique_ptr<InboxBridge> (*bridge)(Store& store, const BridgeArgs& args);
  // The URL without its password, for what the command prints.
  std::string (*where)(const std::string& url);
  // What a bridge reads, for the line `bridge` prints while it runs.
  std::string (*bridge_source)(const BridgeArgs& args);
};

std::span<const Broker> brokers();
// The row of the broker `server` names; `server` was checked by the command line.
const Broker& broker_of(const Server& server);

// Adds --<name> URL for each broker, each excluding the others; the one given fills
// `server`. Returns the options by broker name, for options that need one of them.
std::map<std::string, CLI::Option*, std::less<>> add_server_options(CLI::App* command,
                                                                    Server& server);
// In a command's callback: a usage error unless a server was given.
void require_server(const Server& server);

}  // namespace eventlite::cli
