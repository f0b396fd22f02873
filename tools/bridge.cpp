#include "tools/bridge.hpp"

#include <fmt/core.h>
#include <signal.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <optional>
#include <thread>

#include "eventlite/errors.hpp"
#include "tools/commands.hpp"
#include "tools/error.hpp"
#include "tools/options.hpp"

#ifdef EVENTLITE_HAVE_REDIS
#include "eventlite/redis.hpp"
#endif

namespace eventlite::cli {

CLI::App* add_bridge(CLI::App& app, BridgeArgs& args) {
  CLI::App* command = app.add_subcommand(
      "bridge",
      "Append another service's events from a Redis Stream to DB, through consumer "
      "group --group: idempotently by event id, each acknowledged after DB's commit; "
      "entries that are not envelopes are kept in the stream eventlite-rejected-NAME. "
      "One bridge per --name runs at a time, across processes. Runs until SIGINT or "
      "SIGTERM, or with --until-idle until the stream has nothing new.");
  command->add_option("DB", args.db, "the SQLite file, set up by `eventlite init`")
      ->required()
      ->type_name("")
      ->check(db_name());
  command
      ->add_option("--redis", args.redis,
                   "the server: redis://[[user]:password@]host[:port][/db]")
      ->type_name("URL")
      ->required();
  command->add_option("--key", args.key, "the stream's key")
      ->type_name("KEY")
      ->check(non_empty())
      ->capture_default_str();
  command->add_option("--group", args.group, "the consumer group (created if missing)")
      ->type_name("G")
      ->check(non_empty())
      ->capture_default_str();
  command->add_option("--name", args.name, "the bridge's lease and consumer name")
      ->type_name("NAME")
      ->check(non_empty())
      ->capture_default_str();
  add_run_options(command, args.run,
                  "exit 0 once nothing new comes, or 1 when the server stays "
                  "unreachable past --retry-for");
  return command;
}

#ifdef EVENTLITE_HAVE_REDIS

namespace {

using namespace std::chrono_literals;

int bridge_until_idle(const BridgeArgs& args, redis::Bridge& bridge,
                      const std::string& where) {
  const auto give_up = std::chrono::seconds(args.run.retry_for);
  const auto stand_by_until = std::chrono::steady_clock::now() +
                              std::chrono::seconds(args.run.lease_time) + give_up;
  std::optional<std::chrono::steady_clock::time_point> failing_since;
  std::size_t total = 0;
  auto pause = 100ms;
  for (;;) {
    try {
      const std::size_t n = bridge.step();
      failing_since.reset();
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
      if (!failing_since) failing_since = now;
      if (now - *failing_since > give_up)
        throw CommandError(kExitError, fmt::format("cannot bridge from {} for {}s: {}",
                                                   where, args.run.retry_for, e.what()));
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(2000));
    }
  }
  std::cout << fmt::format("bridged from {}: {} entries taken in\n", where, total);
  return kExitOk;
}

}  // namespace

int run_bridge(const BridgeArgs& args) {
  Store store = open_for_writing(args.db);
  redis::BridgeOptions options;
  options.url = args.redis;
  options.key = args.key;
  options.group = args.group;
  options.name = args.name;
  options.lease_time = std::chrono::seconds(args.run.lease_time);
  const std::string where = redis::Url::parse(args.redis).redacted();
  if (args.run.until_idle) {
    options.logger = std::make_shared<spdlog::logger>(
        "eventlite", std::make_shared<spdlog::sinks::null_sink_mt>());
    redis::Bridge bridge(store, options);
    return bridge_until_idle(args, bridge, where);
  }
  // SIGINT and SIGTERM are taken by a thread of ours, which stops the bridge.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  redis::Bridge bridge(store, options);
  std::thread waiter([&] {
    int signal = 0;
    sigwait(&set, &signal);
    bridge.stop();
  });
  std::cerr << fmt::format(
      "eventlite: bridging {} from {} (group {}) into {}; SIGINT or SIGTERM stops\n",
      args.key, where, args.group, args.db);
  bridge.run();
  waiter.join();
  std::cout << "stopped\n";
  return kExitOk;
}

#else

int run_bridge(const BridgeArgs&) {
  throw CommandError(kExitError,
                     "this eventlite was built without Redis support "
                     "(configure with -DEVENTLITE_WITH_REDIS=ON)");
}

#endif

}  // namespace eventlite::cli
