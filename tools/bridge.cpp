#include "tools/bridge.hpp"

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <thread>

#include "eventlite/errors.hpp"
#include "tools/commands.hpp"
#include "tools/error.hpp"
#include "tools/options.hpp"

#ifdef EVENTLITE_HAVE_REDIS
#include "eventlite/redis.hpp"
#endif
#ifdef EVENTLITE_HAVE_NATS
#include "eventlite/nats.hpp"
#endif

namespace eventlite::cli {

CLI::App* add_bridge(CLI::App& app, BridgeArgs& args) {
  CLI::App* command = app.add_subcommand(
      "bridge",
      "Append another service's events to DB from a Redis Stream (through consumer "
      "group --group) or a JetStream stream (through durable consumer --durable): "
      "idempotently by event id, each acknowledged after DB's commit; entries that "
      "are not envelopes are kept in the stream eventlite-rejected-NAME. One bridge "
      "per --name runs at a time, across processes. Runs until SIGINT or SIGTERM, or "
      "with --until-idle until the broker has nothing new.");
  command->add_option("DB", args.db, "the SQLite file, set up by `eventlite init`")
      ->required()
      ->type_name("")
      ->check(db_name());
  CLI::Option* redis =
      command
          ->add_option("--redis", args.redis,
                       "the server: redis://[[user]:password@]host[:port][/db]")
          ->type_name("URL");
  CLI::Option* nats =
      command
          ->add_option("--nats", args.nats,
                       "the server: nats://[user:password@|token@]host[:port]")
          ->type_name("URL");
  redis->excludes(nats);
  nats->excludes(redis);
  command->callback([&args] {
    if (args.redis.empty() && args.nats.empty())
      throw CLI::RequiredError("--redis or --nats");
  });
  command->add_option("--key", args.key, "with --redis: the stream's key")
      ->type_name("K")
      ->needs(redis)
      ->check(non_empty())
      ->capture_default_str();
  command
      ->add_option("--group", args.group,
                   "with --redis: the consumer group (created if missing)")
      ->type_name("G")
      ->needs(redis)
      ->check(non_empty())
      ->capture_default_str();
  command->add_option("--stream", args.stream, "with --nats: the JetStream stream")
      ->type_name("S")
      ->needs(nats)
      ->check(non_empty())
      ->capture_default_str();
  command
      ->add_option("--durable", args.durable,
                   "with --nats: the durable consumer (created if missing; one per "
                   "bridge name)")
      ->type_name("D")
      ->needs(nats)
      ->check(non_empty())
      ->capture_default_str();
  command
      ->add_option("--name", args.name,
                   "the bridge's lease (and its Redis consumer name) [default: "
                   "redis-bridge or nats-bridge]")
      ->type_name("NAME")
      ->check(non_empty());
  add_run_options(command, args.run,
                  "exit 0 once nothing new comes, or 1 when the server stays "
                  "unreachable past --retry-for");
  return command;
}

namespace {

using namespace std::chrono_literals;

// What the command needs of redis::Bridge and nats::Bridge alike.
template <typename Bridge>
int bridge_until_idle(const BridgeArgs& args, Bridge& bridge, const std::string& where) {
  const auto give_up = std::chrono::seconds(args.run.retry_for);
  const auto stand_by_until = std::chrono::steady_clock::now() +
                              std::chrono::seconds(args.run.lease_time) + give_up;
  // When the failures in a row began; the far future while the last step worked.
  constexpr auto kNotFailing = std::chrono::steady_clock::time_point::max();
  auto failing_since = kNotFailing;
  std::size_t total = 0;
  auto pause = 100ms;
  for (;;) {
    try {
      const std::size_t n = bridge.step();
      failing_since = kNotFailing;
      pause = 100ms;
      total += n;
      if (n > 0) continue;
      if (bridge.active()) break;
      if (std::chrono::steady_clock::now() > stand_by_until)
        throw CommandError(kExitError,
                           fmt::format("{}: bridge {} runs in another process (see "
                                       "`eventlite status {}`)",
                                       args.db, args.name, args.db));
      std::this_thread::sleep_for(100ms);
    } catch (const BrokerError& e) {
      if (!e.retryable()) throw;
      const auto now = std::chrono::steady_clock::now();
      failing_since = std::min(failing_since, now);
      if (now - failing_since > give_up)
        throw CommandError(kExitError, fmt::format("cannot bridge from {} for {}s: {}",
                                                   where, args.run.retry_for, e.what()));
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(2000));
    }
  }
  std::cout << fmt::format("bridged from {}: {} entries taken in\n", where, total);
  return kExitOk;
}

// Without --until-idle: runs until SIGINT or SIGTERM, which a thread of ours takes.
template <typename Bridge>
int bridge_until_stopped(Bridge& bridge, const sigset_t& stop_signals,
                         const std::string& what) {
  std::thread waiter([&] {
    int signal = 0;
    sigwait(&stop_signals, &signal);
    bridge.stop();
  });
  std::cerr << "eventlite: bridging " << what << "; SIGINT or SIGTERM stops\n";
  bridge.run();
  waiter.join();
  std::cout << "stopped\n";
  return kExitOk;
}

#ifdef EVENTLITE_HAVE_REDIS
int bridge_from_redis(const BridgeArgs& args, Store& store) {
  redis::BridgeOptions options;
  options.url = args.redis;
  options.key = args.key;
  options.group = args.group;
  options.name = args.name;
  options.lease_time = std::chrono::seconds(args.run.lease_time);
  options.logger = quiet_logger(args.run);
  const std::string where = redis::Url::parse(args.redis).redacted();
  if (args.run.until_idle) {
    redis::Bridge bridge(store, options);
    return bridge_until_idle(args, bridge, where);
  }
  const sigset_t stop_signals = block_stop_signals();
  redis::Bridge bridge(store, options);
  return bridge_until_stopped(
      bridge, stop_signals,
      fmt::format("{} from {} (group {}) into {}", args.key, where, args.group, args.db));
}
#else
int bridge_from_redis(const BridgeArgs&, Store&) {
  throw CommandError(kExitError,
                     "this eventlite was built without Redis support "
                     "(configure with -DEVENTLITE_WITH_REDIS=ON)");
}
#endif

#ifdef EVENTLITE_HAVE_NATS
int bridge_from_nats(const BridgeArgs& args, Store& store) {
  nats::BridgeOptions options;
  options.url = args.nats;
  options.stream = args.stream;
  options.durable = args.durable;
  options.name = args.name;
  options.lease_time = std::chrono::seconds(args.run.lease_time);
  options.logger = quiet_logger(args.run);
  const std::string where = nats::redacted(args.nats);
  if (args.run.until_idle) {
    nats::Bridge bridge(store, options);
    return bridge_until_idle(args, bridge, where);
  }
  const sigset_t stop_signals = block_stop_signals();
  nats::Bridge bridge(store, options);
  return bridge_until_stopped(bridge, stop_signals,
                              fmt::format("JetStream stream {} from {} (durable {}) into {}",
                                          args.stream, where, args.durable, args.db));
}
#else
int bridge_from_nats(const BridgeArgs&, Store&) {
  throw CommandError(kExitError,
                     "this eventlite was built without NATS support "
                     "(configure with -DEVENTLITE_WITH_NATS=ON)");
}
#endif

}  // namespace

int run_bridge(const BridgeArgs& given) {
  BridgeArgs args = given;
  if (args.name.empty()) args.name = args.nats.empty() ? "redis-bridge" : "nats-bridge";
  Store store = open_for_writing(args.db);
  return args.nats.empty() ? bridge_from_redis(args, store)
                           : bridge_from_nats(args, store);
}

}  // namespace eventlite::cli
