#include "tools/forward.hpp"

#include <fmt/chrono.h>
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <thread>

#include "eventlite/processor.hpp"
#include "eventlite/subscriptions.hpp"
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

namespace {

using namespace std::chrono_literals;

#ifdef EVENTLITE_HAVE_REDIS
std::shared_ptr<Sink> redis_sink(const ForwardArgs& args, std::string& where) {
  redis::SinkOptions options;
  options.logger = quiet_logger(args.run);
  options.url = args.redis;
  options.mode = args.mode == "pubsub" ? redis::Mode::pubsub : redis::Mode::stream;
  options.key = args.key;
  if (args.maxlen) options.maxlen = static_cast<std::size_t>(*args.maxlen);
  options.format =
      args.format == "cloudevents" ? PayloadFormat::cloudevents : PayloadFormat::envelope;
  options.source = args.source;
  auto sink = redis::make_sink(options);  // checks the URL: a usage error is exit 1
  where = redis::Url::parse(args.redis).redacted();
  return sink;
}
#else
std::shared_ptr<Sink> redis_sink(const ForwardArgs&, std::string&) {
  throw CommandError(kExitError,
                     "this eventlite was built without Redis support "
                     "(configure with -DEVENTLITE_WITH_REDIS=ON)");
}
#endif

#ifdef EVENTLITE_HAVE_NATS
std::shared_ptr<Sink> nats_sink(const ForwardArgs& args, std::string& where) {
  nats::SinkOptions options;
  options.logger = quiet_logger(args.run);
  options.url = args.nats;
  options.jetstream = args.jetstream;
  options.create_stream = args.jetstream;
  options.subject_prefix = args.subject_prefix;
  options.format =
      args.format == "cloudevents" ? PayloadFormat::cloudevents : PayloadFormat::envelope;
  options.source = args.source;
  auto sink = nats::make_sink(options);
  where = nats::redacted(args.nats);
  return sink;
}
#else
std::shared_ptr<Sink> nats_sink(const ForwardArgs&, std::string&) {
  throw CommandError(kExitError,
                     "this eventlite was built without NATS support "
                     "(configure with -DEVENTLITE_WITH_NATS=ON)");
}
#endif

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

}  // namespace

CLI::App* add_forward(CLI::App& app, ForwardArgs& args) {
  CLI::App* command = app.add_subcommand(
      "forward",
      "Forward DB's events to Redis (a Stream, or Pub/Sub channels) as subscription "
      "--name, resuming where it stopped: run it again, or in several processes (one "
      "forwards at a time, the others stand by). Runs until SIGINT or SIGTERM, or with "
      "--until-idle until every event is forwarded.");
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
  command->callback([&args, command] {
    if (args.redis.empty() && args.nats.empty())
      throw CLI::RequiredError("--redis or --nats");
    if (!args.source.empty() && args.format != "cloudevents")
      throw CLI::ValidationError("--source", "only with --format cloudevents");
    (void)command;
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
  if (args.name.empty()) args.name = args.nats.empty() ? "forward-redis" : "forward-nats";
  Store store = open_for_writing(args.db);
  std::string where;
  std::shared_ptr<Sink> sink =
      args.nats.empty() ? redis_sink(args, where) : nats_sink(args, where);
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

}  // namespace eventlite::cli
