#include "tools/brokers.hpp"

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <array>
#include <chrono>

#include "eventlite/errors.hpp"
#include "tools/error.hpp"

#ifdef EVENTLITE_HAVE_REDIS
#include "eventlite/redis.hpp"
#endif
#ifdef EVENTLITE_HAVE_NATS
#include "eventlite/nats.hpp"
#endif

namespace eventlite::cli {
namespace {

PayloadFormat format_of(const ForwardArgs& args) {
  return args.format == "cloudevents" ? PayloadFormat::cloudevents
                                      : PayloadFormat::envelope;
}

[[noreturn, maybe_unused]] void not_built(const char* broker, const char* option) {
  throw CommandError(kExitError, fmt::format("this eventlite was built without {} "
                                             "support (configure with -D{}=ON)",
                                             broker, option));
}

#ifdef EVENTLITE_HAVE_REDIS
constexpr Broker kRedis{
    .name = "redis",
    .url_form = "redis://[[user]:password@]host[:port][/db]",
    .sink =
        [](const ForwardArgs& args) {
          redis::SinkOptions options;
          options.logger = quiet_logger(args.run);
          options.url = args.server.url;
          options.mode =
              args.mode == "pubsub" ? redis::Mode::pubsub : redis::Mode::stream;
          options.key = args.key;
          if (args.maxlen) options.maxlen = static_cast<std::size_t>(*args.maxlen);
          options.format = format_of(args);
          options.source = args.source;
          return redis::make_sink(options);
        },
    .bridge = [](Store& store, const BridgeArgs& args) -> std::unique_ptr<InboxBridge> {
      redis::BridgeOptions options;
      options.url = args.server.url;
      options.key = args.key;
      options.group = args.group;
      options.name = args.name;
      options.lease_time = std::chrono::seconds(args.run.lease_time);
      options.logger = quiet_logger(args.run);
      return std::make_unique<redis::Bridge>(store, options);
    },
    .where = [](const std::string& url) { return redis::redacted(url); },
    .bridge_source =
        [](const BridgeArgs& args) {
          return fmt::format("{} from {} (group {})", args.key,
                             redis::redacted(args.server.url), args.group);
        },
};
#else
constexpr Broker kRedis{
    .name = "redis",
    .url_form = "redis://[[user]:password@]host[:port][/db]",
    .sink = [](const ForwardArgs&) -> std::shared_ptr<Sink> {
      not_built("Redis", "EVENTLITE_WITH_REDIS");
    },
    .bridge = [](Store&, const BridgeArgs&) -> std::unique_ptr<InboxBridge> {
      not_built("Redis", "EVENTLITE_WITH_REDIS");
    },
    .where = [](const std::string&) -> std::string { return "redis"; },
    .bridge_source = [](const BridgeArgs&) -> std::string { return "redis"; },
};
#endif

#ifdef EVENTLITE_HAVE_NATS
constexpr Broker kNats{
    .name = "nats",
    .url_form = "nats://[user:password@|token@]host[:port]",
    .sink =
        [](const ForwardArgs& args) {
          nats::SinkOptions options;
          options.logger = quiet_logger(args.run);
          options.url = args.server.url;
          options.jetstream = args.jetstream;
          options.create_stream = args.jetstream;
          options.subject_prefix = args.subject_prefix;
          options.format = format_of(args);
          options.source = args.source;
          return nats::make_sink(options);
        },
    .bridge = [](Store& store, const BridgeArgs& args) -> std::unique_ptr<InboxBridge> {
      nats::BridgeOptions options;
      options.url = args.server.url;
      options.stream = args.stream;
      options.durable = args.durable;
      options.name = args.name;
      options.lease_time = std::chrono::seconds(args.run.lease_time);
      options.logger = quiet_logger(args.run);
      return std::make_unique<nats::Bridge>(store, options);
    },
    .where = [](const std::string& url) { return nats::redacted(url); },
    .bridge_source =
        [](const BridgeArgs& args) {
          return fmt::format("JetStream stream {} from {} (durable {})", args.stream,
                             nats::redacted(args.server.url), args.durable);
        },
};
#else
constexpr Broker kNats{
    .name = "nats",
    .url_form = "nats://[user:password@|token@]host[:port]",
    .sink = [](const ForwardArgs&) -> std::shared_ptr<Sink> {
      not_built("NATS", "EVENTLITE_WITH_NATS");
    },
    .bridge = [](Store&, const BridgeArgs&) -> std::unique_ptr<InboxBridge> {
      not_built("NATS", "EVENTLITE_WITH_NATS");
    },
    .where = [](const std::string&) -> std::string { return "nats"; },
    .bridge_source = [](const BridgeArgs&) -> std::string { return "nats"; },
};
#endif

constexpr std::array kBrokers{kRedis, kNats};

}  // namespace

std::span<const Broker> brokers() {
  return kBrokers;
}

const Broker& broker_of(const Server& server) {
  for (const Broker& b : kBrokers)
    if (b.name == server.broker) return b;
  throw CommandError(kExitError, fmt::format("unknown broker \"{}\"", server.broker));
}

std::map<std::string, CLI::Option*, std::less<>> add_server_options(CLI::App* command,
                                                                    Server& server) {
  std::map<std::string, CLI::Option*, std::less<>> options;
  for (const Broker& b : kBrokers) {
    const std::string name(b.name);
    CLI::Option* option = command
                              ->add_option_function<std::string>(
                                  "--" + name,
                                  [&server, name](const std::string& url) {
                                    server = {name, url};
                                  },
                                  fmt::format("the server: {}", b.url_form))
                              ->type_name("URL");
    for (auto& [other_name, other] : options) {
      option->excludes(other);
      other->excludes(option);
    }
    options.emplace(name, option);
  }
  return options;
}

void require_server(const Server& server) {
  if (!server.broker.empty()) return;
  std::string names;
  for (const Broker& b : kBrokers)
    names += fmt::format("{}--{}", names.empty() ? "" : " or ", b.name);
  throw CLI::RequiredError(names);
}

}  // namespace eventlite::cli
