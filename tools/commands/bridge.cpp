// `eventlite bridge`: a broker's stream into DB (InboxBridge, include/eventlite/
// inbox.hpp; the brokers in tools/brokers.hpp).

#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <thread>

#include "eventlite/errors.hpp"
#include "tools/brokers.hpp"
#include "tools/command.hpp"
#include "tools/error.hpp"
#include "tools/open_store.hpp"
#include "tools/options.hpp"

namespace eventlite::cli {
namespace {

using namespace std::chrono_literals;

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
  const auto servers = add_server_options(command, args.server);
  CLI::Option* redis = servers.at("redis");
  CLI::Option* nats = servers.at("nats");
  command->callback([&args] { require_server(args.server); });
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

int bridge_until_idle(const BridgeArgs& args, InboxBridge& bridge,
                      const std::string& where) {
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
int bridge_until_stopped(InboxBridge& bridge, const sigset_t& stop_signals,
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

int run_bridge(const BridgeArgs& given) {
  BridgeArgs args = given;
  if (args.name.empty()) args.name = args.server.broker + "-bridge";
  Store store = open_for_writing(args.db);
  const Broker& broker = broker_of(args.server);
  if (args.run.until_idle) {
    const auto bridge = broker.bridge(store, args);
    return bridge_until_idle(args, *bridge, broker.where(args.server.url));
  }
  const sigset_t stop_signals = block_stop_signals();
  const auto bridge = broker.bridge(store, args);
  return bridge_until_stopped(
      *bridge, stop_signals,
      fmt::format("{} into {}", broker.bridge_source(args), args.db));
}

std::string check_bridge(const BridgeArgs& b) {
  if (b.server.broker.empty()) return "--redis or --nats, one";
  if (std::string why = run_problem(b.run); !why.empty()) return why;
  return file_db_problem(b.db);
}

}  // namespace

void setup_bridge(CLI::App& app, Commands& commands) {
  add_command<BridgeArgs>(app, commands, add_bridge, run_bridge, check_bridge);
}

}  // namespace eventlite::cli
