// `eventlite forward`: the file's events to a broker, as a sink subscription
// (include/eventlite/sink.hpp; the brokers in tools/brokers.hpp).

#include <fmt/chrono.h>
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <thread>

#include "eventlite/processor.hpp"
#include "eventlite/subscriptions.hpp"
#include "tools/brokers.hpp"
#include "tools/command.hpp"
#include "tools/error.hpp"
#include "tools/open_store.hpp"
#include "tools/options.hpp"

namespace eventlite::cli {

namespace {

using namespace std::chrono_literals;

// --until-idle: forwards until nothing is left; a broker unreachable for longer than
// --retry-for ends it with one line.
int forward_until_idle(const ForwardArgs& args, Store& store, Processor& processor,
                       const std::string& where) {
  const auto give_up = std::chrono::seconds(args.run.retry_for);
  // Another process holding the lease (a forwarder that runs, or one that died and
  // whose lease has not expired yet): stand by until it expires, then take over.
  const auto stand_by_until = std::chrono::steady_clock::now() +
                              std::chrono::seconds(args.run.lease_time) + give_up;
  for (;;) {
    processor.run_until_idle();
    const SubscriptionMetrics m = processor.metrics().at(0);
    if (!m.leased) {
      if (std::chrono::steady_clock::now() > stand_by_until)
        throw CommandError(kExitError,
                           fmt::format("{}: subscription {} is forwarded by another "
                                       "process (see `eventlite status {}`)",
                                       args.db, args.name, args.db));
      std::this_thread::sleep_for(100ms);
      continue;
    }
    if (m.lag == 0 && !m.failing_since) {
      std::cout << fmt::format("forwarded to {}: position {}, {} events parked\n", where,
                               m.position, m.dead);
      if (m.dead > 0) {
        const auto dead = dead_letters(store, args.name);
        throw CommandError(
            kExitError,
            fmt::format("{} events could not be forwarded and are parked (see `eventlite "
                        "dead list {} --subscription {}`): {}",
                        m.dead, args.db, args.name,
                        dead.empty() ? std::string("?") : dead.back().last_error));
      }
      return kExitOk;
    }
    // Another store's entries at the destination: no retry mends it.
    if (m.destination_conflict) throw CommandError(kExitError, m.last_error);
    if (m.failing_since &&
        std::chrono::system_clock::now() - *m.failing_since > give_up) {
      throw CommandError(
          kExitError,
          fmt::format("cannot forward to {} for {}s, {} events not forwarded: {}", where,
                      args.run.retry_for, m.lag, m.last_error));
    }
    // The sink waits out its backoff before the next attempt.
    std::this_thread::sleep_for(20ms);
  }
}

CLI::App* add_forward(CLI::App& app, ForwardArgs& args) {
  CLI::App* command = app.add_subcommand(
      "forward",
      "Forward DB's events to Redis (a Stream, or Pub/Sub channels) or NATS (core, or "
      "JetStream) as subscription "
      "--name, resuming where it stopped: run it again, or in several processes (one "
      "forwards at a time, the others stand by). Runs until SIGINT or SIGTERM, or with "
      "--until-idle until every event is forwarded.");
  command->add_option("DB", args.db, "the SQLite file, set up by `eventlite init`")
      ->required()
      ->type_name("")
      ->check(db_name());
  const auto servers = add_server_options(command, args.server);
  CLI::Option* nats = servers.at("nats");
  command
      ->add_flag("--jetstream", args.jetstream,
                 "with --nats: publish into JetStream (stream EVENTS, created if "
                 "missing; Nats-Msg-Id = event id, nothing sent twice) instead of "
                 "core NATS, which only connected subscribers get")
      ->needs(nats);
  command
      ->add_option("--subject-prefix", args.subject_prefix,
                   "with --nats: subjects are PREFIX.<type>")
      ->type_name("P")
      ->needs(nats)
      ->check(non_empty())
      ->capture_default_str();
  command->callback([&args] {
    require_server(args.server);
    if (!args.source.empty() && args.format != "cloudevents")
      throw CLI::ValidationError("--source", "only with --format cloudevents");
  });
  command
      ->add_option(
          "--mode", args.mode,
          "stream: XADD to a Redis Stream (entry id <seq>-0, nothing sent twice); "
          "pubsub: PUBLISH to events:<type>, which only connected subscribers get")
      ->type_name("MODE")
      ->check(CLI::IsMember({"stream", "pubsub"}))
      ->capture_default_str();
  command
      ->add_option(
          "--key", args.key,
          "stream mode: the stream's key; {type} and {stream} in it are replaced")
      ->type_name("K")
      ->check(non_empty())
      ->capture_default_str();
  command->add_option("--maxlen", args.maxlen, "stream mode: trim with MAXLEN ~ N")
      ->type_name("N")
      ->transform(decimal(1, std::numeric_limits<std::int64_t>::max()));
  command
      ->add_option("--name", args.name,
                   "the subscription that keeps the position [default: forward-redis "
                   "or forward-nats]")
      ->type_name("SUBSCRIPTION")
      ->check(non_empty());
  command
      ->add_option("--format", args.format,
                   "envelope (eventlite's JSON line) or cloudevents (CloudEvents 1.0)")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"envelope", "cloudevents"}))
      ->capture_default_str();
  command
      ->add_option("--source", args.source,
                   "with --format cloudevents: the source attribute [default: "
                   "eventlite://<the store's name, or its id>]")
      ->type_name("URI")
      ->check(non_empty());
  add_run_options(command, args.run,
                  "exit 0 once every event is forwarded, or 1 when the server stays "
                  "unreachable past --retry-for");
  return command;
}

int run_forward(const ForwardArgs& given) {
  ForwardArgs args = given;
  if (args.name.empty()) args.name = "forward-" + args.server.broker;
  Store store = open_for_writing(args.db);
  const Broker& broker = broker_of(args.server);
  std::shared_ptr<Sink> sink = broker.sink(args);  // checks the URL: exit 1
  const std::string where = broker.where(args.server.url);
  ProcessorOptions options;
  options.lease_time = std::chrono::seconds(args.run.lease_time);
  if (args.run.until_idle) options.logger = quiet_logger(args.run);
  SubscriptionOptions sub;
  sub.max_lanes = 1;  // one broker stream: seq order
  if (args.run.until_idle) {
    Processor processor(store, options);
    processor.sink(args.name, sink, sub);
    return forward_until_idle(args, store, processor, where);
  }
  const sigset_t stop_signals = block_stop_signals();
  Processor processor(store, options);
  processor.sink(args.name, sink, sub);
  processor.start();
  std::cerr << fmt::format(
      "eventlite: forwarding {} to {} as {}; SIGINT or SIGTERM stops\n", args.db, where,
      args.name);
  int signal = 0;
  sigwait(&stop_signals, &signal);
  processor.stop();
  const SubscriptionMetrics m = processor.metrics().at(0);
  std::cout << fmt::format("stopped: position {}, lag {}, {} parked\n", m.position, m.lag,
                           m.dead);
  return kExitOk;
}

std::string check_forward(const ForwardArgs& f) {
  if (f.server.broker.empty()) return "--redis or --nats, one";
  if (f.mode != "stream" && f.mode != "pubsub") return "--mode is known";
  if (f.format != "envelope" && f.format != "cloudevents") return "--format is known";
  if (f.maxlen && *f.maxlen < 1) return "--maxlen is 1 or more";
  if (std::string why = run_problem(f.run); !why.empty()) return why;
  return file_db_problem(f.db);
}

}  // namespace

void setup_forward(CLI::App& app, Commands& commands) {
  add_command<ForwardArgs>(app, commands, add_forward, run_forward, check_forward);
}

}  // namespace eventlite::cli
