// The crash loop: a child process appends (single events, batches, the application's
// own transactions through append_in) and processes (a transactional projection, an
// at-least-once handler, a sink to a real Redis and one to a real JetStream), and is
// killed with SIGKILL at a random moment, again and again; with --kill-brokers the
// brokers are SIGKILLed and restarted meanwhile too. After every kill the driver
// checks what the guarantees say:
//   - every append the child saw acknowledged is in the file, byte for byte;
//   - seqs are gap-free, stream versions contiguous, the file sound (verify,
//     integrity_check); the application's rows and their events committed together;
//   - the transactional projection holds each seq up to its checkpoint exactly once
//     and nothing past it; the at-least-once handler saw every seq up to its
//     checkpoint (no checkpoint ahead of delivery);
//   - Redis and JetStream hold every seq up to their sinks' checkpoints, none twice.
// A last child drains everything, and the same checks then cover every event.
//
//   crash_loop [--loops N] [--seconds S] [--kill-brokers] [--seed X] [--dir D]
//
// The child is this program again (exec, not a bare fork: libnats's threads do not
// survive a fork), with --child. It records acknowledgements in acks.log and the
// handler's deliveries in delivered.log, one write(2) a line, which a SIGKILL cannot
// tear (a process crash, not a power cut, so nothing needs an fsync).

#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/format.h>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "eventlite/nats.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/redis.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "eventlite/transaction.hpp"
#include "nats_server.hpp"
#include "redis_server.hpp"
#include "test_support.hpp"

namespace eventlite::test {
namespace {

struct Config {
  int loops = 20;
  double seconds = 120;
  bool kill_brokers = false;
  std::uint64_t seed = std::random_device{}();
  std::string dir;
  // The child's.
  bool child = false;
  bool drain = false;
  int run = 0;
  int redis_port = 0;
  int nats_port = 0;
};

constexpr int kMaxOperations = 400;  // appends a child makes at most, then it only processes
constexpr const char* kSubscriptions[] = {"projection", "at-least-once", "to-redis",
                                          "to-nats"};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "crash_loop: FAILED: %s\n", what.c_str());
  std::exit(1);
}

void append_line(int fd, const std::string& line) {
  const std::string text = line + "\n";
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    fail("cannot write a log line");
}

// A log read a little further each time: the whole lines added since.
struct LogReader {
  std::filesystem::path path;
  std::uintmax_t offset = 0;

  std::vector<std::string> new_lines() {
    std::vector<std::string> lines;
    if (!std::filesystem::exists(path)) return lines;
    const std::string text = read_bytes(path).substr(offset);
    std::size_t at = 0;
    for (std::size_t nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
      lines.push_back(text.substr(at, nl - at));
    offset += at;
    return lines;
  }
};

// ---- the child -------------------------------------------------------------------

ProcessorOptions processor_options() {
  ProcessorOptions o;
  o.lease_time = std::chrono::milliseconds(400);  // the next child waits this out
  o.checkpoint_interval = std::chrono::milliseconds(5);
  return o;
}

void subscribe_all(Processor& processor, const Config& config, int delivered_fd) {
  processor.subscribe(
      "projection",
      [](const Context& c) {
        SQLite::Statement insert(c.transaction().database(),
                                 "INSERT INTO projected(seq) VALUES (?)");
        insert.bind(1, static_cast<std::int64_t>(c.event().seq));
        insert.exec();
      },
      {.transactional = true});
  processor.subscribe("at-least-once", [delivered_fd](const Context& c) {
    append_line(delivered_fd, std::to_string(c.event().seq));
  });
  SubscriptionOptions sink;
  sink.max_lanes = 1;
  sink.retry = RetryPolicy{.max_attempts = 1000,
                           .base = std::chrono::milliseconds(20),
                           .factor = 2.0,
                           .cap = std::chrono::milliseconds(200),
                           .jitter = 0.0};
  redis::SinkOptions to_redis;
  to_redis.url = "redis://127.0.0.1:" + std::to_string(config.redis_port);
  to_redis.timeout = std::chrono::milliseconds(500);
  processor.sink("to-redis", redis::make_sink(to_redis), sink);
  nats::SinkOptions to_nats;
  to_nats.url = "nats://127.0.0.1:" + std::to_string(config.nats_port);
  to_nats.jetstream = true;
  to_nats.create_stream = true;
  to_nats.timeout = std::chrono::milliseconds(500);
  processor.sink("to-nats", nats::make_sink(to_nats), sink);
}

int run_child(const Config& config) {
  const std::filesystem::path dir = config.dir;
  auto store = Store::open(dir / "app.db", fast_options());
  SQLite::Database app((dir / "app.db").string(), SQLite::OPEN_READWRITE);
  app.setBusyTimeout(5000);
  app.exec("PRAGMA wal_autocheckpoint=0");  // as verify advises on SQLite < 3.51.3
  const int acks = ::open((dir / "acks.log").c_str(), O_WRONLY | O_APPEND | O_CREAT, 0600);
  const int delivered =
      ::open((dir / "delivered.log").c_str(), O_WRONLY | O_APPEND | O_CREAT, 0600);
  if (acks < 0 || delivered < 0) fail("cannot open the logs");

  Processor processor(store, processor_options());
  subscribe_all(processor, config, delivered);
  processor.start();
  if (config.drain) {  // until every subscription is at the head
    const bool caught_up = wait_until(
        [&] {
          const Seq head = store.head();
          for (const auto& m : processor.metrics())
            if (m.position != head) return false;
          return true;
        },
        std::chrono::seconds(60));
    processor.stop();
    return caught_up ? 0 : 3;
  }

  std::mt19937_64 rng(config.seed ^ static_cast<std::uint64_t>(config.run));
  const auto key = [&](int i) {
    return std::to_string(config.run) + ":" + std::to_string(i);
  };
  const auto data = [&](int i) { return "{\"k\":\"" + key(i) + "\"}"; };
  const auto ack = [&](Seq seq, int i) { append_line(acks, std::to_string(seq) + " " + key(i)); };
  int i = 0;
  const int operations = static_cast<int>(rng() % (kMaxOperations + 1));
  for (int op = 0; op < operations; ++op) {
    switch (rng() % 3) {
      case 0: {
        ack(store.append("single-" + std::to_string(op % 5), event("Single", data(i))), i);
        ++i;
        break;
      }
      case 1: {
        std::vector<NewEvent> batch;
        for (int b = 0; b < 5; ++b) batch.push_back(event("Batched", data(i + b)));
        const auto seqs = store.append("batch-" + std::to_string(op % 3), batch);
        for (int b = 0; b < 5; ++b) ack(seqs[static_cast<std::size_t>(b)], i + b);
        i += 5;
        break;
      }
      default: {
        app.exec("BEGIN IMMEDIATE");
        SQLite::Statement order(app, "INSERT INTO app_orders(k) VALUES (?)");
        order.bind(1, key(i));
        order.exec();
        const auto seqs = store.append_in(app, "order-" + std::to_string(op % 4),
                                          std::vector<NewEvent>{event("OrderPlaced", data(i))});
        app.exec("COMMIT");
        ack(seqs.front(), i);
        ++i;
        break;
      }
    }
  }
  for (;;) ::pause();  // processing, until killed
}

// ---- the driver ------------------------------------------------------------------

struct Totals {
  int kills = 0, broker_kills = 0;
  // Every acknowledgement so far (seq, key) and every seq the handler saw.
  std::vector<std::pair<Seq, std::string>> acks = {};
  std::set<Seq> delivered = {};
  LogReader ack_log = {}, delivered_log = {};
};

std::map<std::string, Seq> positions(SQLite::Database& db) {
  std::map<std::string, Seq> out;
  SQLite::Statement q(db, "SELECT name, position FROM eventlite_subscriptions");
  while (q.executeStep()) out[q.getColumn(0).getString()] = q.getColumn(1).getInt64();
  return out;
}

// What a broker holds, read a little more after every kill: every seq seen, and
// where the reading stopped. A seq seen twice is a duplicate.
struct BrokerCopy {
  const char* name;
  std::set<Seq> seen = {};
  std::string redis_after = "-";  // the last entry id read
  std::uint64_t nats_after = 0;   // the last stream sequence read

  void add(Seq seq, Seq head) {
    if (!seen.insert(seq).second) fail(fmt::format("{}: seq {} twice", name, seq));
    if (seq < 1 || seq > head) fail(fmt::format("{}: seq {} not in the file", name, seq));
  }
  // Every seq 1..upto seen.
  void expect_up_to(Seq upto) const {
    if (static_cast<Seq>(std::distance(seen.begin(), seen.upper_bound(upto))) == upto) return;
    for (Seq s = 1; s <= upto; ++s)
      if (!seen.count(s))
        fail(fmt::format("{}: seq {} missing, its checkpoint is at {}", name, s, upto));
  }
};

void read_redis(int port, BrokerCopy& copy, Seq head) {
  RedisClient client(port);
  for (;;) {
    const std::string from = copy.redis_after == "-" ? "-" : "(" + copy.redis_after;
    auto r = client.run({"XRANGE", "events", from, "+", "COUNT", "1000"});
    if (r->type == REDIS_REPLY_ERROR) fail(fmt::format("redis: XRANGE: {}", r->str));
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return;
    for (std::size_t i = 0; i < r->elements; ++i) {
      copy.redis_after = std::string(r->element[i]->element[0]->str);
      copy.add(std::stoll(copy.redis_after), head);
    }
  }
}

void read_jetstream(const NatsServer& server, BrokerCopy& copy, Seq head) {
  NatsConn conn = server.connect();
  const NatsJs ctx = jetstream(conn.get());
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetStreamInfo(&info, ctx.get(), "EVENTS", nullptr, &code);
  if (s == NATS_NOT_FOUND || code == JSStreamNotFoundErr) return;  // not made yet
  if (s != NATS_OK) fail(fmt::format("jetstream: stream info: {}", natsStatus_GetText(s)));
  const std::uint64_t last = info->State.LastSeq;
  jsStreamInfo_Destroy(info);
  for (; copy.nats_after < last; ++copy.nats_after) {
    natsMsg* m = nullptr;
    if (js_GetMsg(&m, ctx.get(), "EVENTS", copy.nats_after + 1, nullptr, nullptr) != NATS_OK)
      fail(fmt::format("jetstream: message {} unreadable", copy.nats_after + 1));
    const NatsMsg msg(m);
    copy.add(std::stoll(header(msg.get(), "Eventlite-Seq")), head);
  }
}

struct Copies {
  BrokerCopy redis{"redis"}, jetstream{"jetstream"};
};

void check(const Config& config, const RedisServer& redis, const NatsServer& nats,
           bool drained, Totals& totals, Copies& copies) {
  const std::filesystem::path dir = config.dir;
  Seq head = 0;
  {
    auto store = Store::open(dir / "app.db", fast_options());
    head = store.head();
    for (const auto& problem : store.verify()) fail("verify: " + problem);
  }
  {
    // Every event's key by seq, read in SQL: seqs 1..head, each acknowledged append
    // there with what was given.
    SQLite::Database db((dir / "app.db").string(), SQLite::OPEN_READONLY);
    std::vector<std::string> keys(static_cast<std::size_t>(head) + 1);
    std::set<std::string> placed;  // the keys of OrderPlaced events
    SQLite::Statement q(db,
                        "SELECT seq, json_extract(data, '$.k'), type FROM eventlite_events");
    Seq rows = 0;
    while (q.executeStep()) {
      const Seq seq = q.getColumn(0).getInt64();
      if (seq < 1 || seq > head) fail(fmt::format("seq {} past the head {}", seq, head));
      keys[static_cast<std::size_t>(seq)] = q.getColumn(1).getString();
      if (q.getColumn(2).getString() == "OrderPlaced")
        placed.insert(keys[static_cast<std::size_t>(seq)]);
      ++rows;
    }
    if (rows != head) fail("seqs are not 1..head");
    // The application's rows and their events committed together: one each way.
    std::size_t orders = 0;
    SQLite::Statement rows_of_app(db, "SELECT k FROM app_orders");
    for (; rows_of_app.executeStep(); ++orders)
      if (!placed.count(rows_of_app.getColumn(0).getString()))
        fail("an application row without its event: " + rows_of_app.getColumn(0).getString());
    if (orders != placed.size())
      fail(fmt::format("{} application rows, {} events placed", orders, placed.size()));
    for (const auto& line : totals.ack_log.new_lines()) {
      const auto space = line.find(' ');
      totals.acks.emplace_back(std::stoll(line.substr(0, space)), line.substr(space + 1));
    }
    for (const auto& [seq, key] : totals.acks)
      if (seq > head || keys[static_cast<std::size_t>(seq)] != key)
        fail(fmt::format("acknowledged append lost or changed: seq {} key {}", seq, key));
  }
  SQLite::Database db((dir / "app.db").string(), SQLite::OPEN_READONLY);
  if (db.execAndGet("PRAGMA integrity_check").getString() != "ok")
    fail("integrity_check is not ok");

  auto at = positions(db);
  for (const char* sub : kSubscriptions) {
    if (drained && at[sub] != head)
      fail(fmt::format("{} at {} after draining, head {}", sub, at[sub], head));
  }
  // Exactly once, and nothing past the checkpoint (same transaction).
  const auto projected = db.execAndGet("SELECT count(*) FROM projected").getInt64();
  const auto highest = db.execAndGet("SELECT coalesce(max(seq), 0) FROM projected").getInt64();
  if (projected != at["projection"] || highest != at["projection"])
    fail(fmt::format("projection: {} rows up to seq {}, its checkpoint at {}", projected,
                     highest, at["projection"]));
  // At least once: duplicates allowed, gaps below the checkpoint not.
  for (const auto& line : totals.delivered_log.new_lines())
    totals.delivered.insert(std::stoll(line));
  for (Seq s = 1; s <= at["at-least-once"]; ++s)
    if (!totals.delivered.count(s))
      fail(fmt::format("at-least-once: seq {} never delivered, checkpoint {}", s,
                       at["at-least-once"]));
  read_redis(redis.port(), copies.redis, head);
  copies.redis.expect_up_to(at["to-redis"]);
  read_jetstream(nats, copies.jetstream, head);
  copies.jetstream.expect_up_to(at["to-nats"]);
}

void create(const Config& config) {
  const std::filesystem::path dir = config.dir;
  {
    auto store = Store::open(dir / "app.db", fast_options());
    auto t = store.transaction();
    t.database().exec(
        "CREATE TABLE IF NOT EXISTS projected(seq INTEGER PRIMARY KEY);"
        "CREATE TABLE IF NOT EXISTS app_orders(k TEXT PRIMARY KEY)");
    t.commit();
  }
}

pid_t spawn(const Config& config, int run, bool drain, const RedisServer& redis,
            const NatsServer& nats) {
  std::vector<std::string> args = {"--child",
                                   "--dir", config.dir,
                                   "--run", std::to_string(run),
                                   "--seed", std::to_string(config.seed),
                                   "--redis-port", std::to_string(redis.port()),
                                   "--nats-port", std::to_string(nats.port())};
  if (drain) args.push_back("--drain");
  return spawn_self(std::move(args));
}

int run_driver(Config config) {
  TempDir temp;
  if (config.dir.empty()) config.dir = temp.path().string();
  std::printf("crash_loop: seed %llu, up to %d loops in %.0f s%s\n",
              static_cast<unsigned long long>(config.seed), config.loops, config.seconds,
              config.kill_brokers ? ", brokers killed too" : "");
  RedisServer redis;
  NatsServer nats;
  create(config);
  std::mt19937_64 rng(config.seed);
  const auto ms = [&](int lo, int hi) {
    return std::chrono::milliseconds(lo + static_cast<int>(rng() % (hi - lo + 1)));
  };
  Totals totals;
  totals.ack_log.path = std::filesystem::path(config.dir) / "acks.log";
  totals.delivered_log.path = std::filesystem::path(config.dir) / "delivered.log";
  Copies copies;
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                         std::chrono::duration<double>(config.seconds));
  int loop = 0;
  for (; loop < config.loops && std::chrono::steady_clock::now() < until; ++loop) {
    const pid_t child = spawn(config, loop, false, redis, nats);
    // The fault's timing: not waiting for anything, choosing when it strikes.
    const auto life = ms(20, 600);
    bool broker_down = false;
    if (config.kill_brokers && loop % 2 == 1) {
      const auto before = ms(0, static_cast<int>(life.count()));
      std::this_thread::sleep_for(before);
      if (loop % 4 == 1)
        redis.stop(SIGKILL);
      else
        nats.stop(SIGKILL);
      broker_down = true;
      ++totals.broker_kills;
      std::this_thread::sleep_for(life - before);
    } else {
      std::this_thread::sleep_for(life);
    }
    ::kill(child, SIGKILL);
    if (wait_child(child, std::chrono::seconds(10)) != 128 + SIGKILL)
      fail(fmt::format("loop {}: the child ended before it was killed", loop));
    ++totals.kills;
    if (broker_down) {
      if (loop % 4 == 1)
        redis.start();
      else
        nats.start();
    }
    check(config, redis, nats, false, totals, copies);
    if ((loop + 1) % 100 == 0) {
      std::printf("crash_loop: %d loops, %zu acknowledged appends, all there\n", loop + 1,
                  totals.acks.size());
      std::fflush(stdout);
    }
  }
  const pid_t last = spawn(config, loop, true, redis, nats);
  if (const int code = wait_child(last, std::chrono::seconds(120)); code != 0)
    fail(fmt::format("the draining child ended with {}", code));
  check(config, redis, nats, true, totals, copies);
  Seq head = 0;
  {
    auto store = Store::open(std::filesystem::path(config.dir) / "app.db", fast_options());
    head = store.head();
  }
  std::printf(
      "crash_loop: ok: %d loops, %d SIGKILLs of the child, %d of a broker; %lld events, "
      "%zu acknowledged appends checked after every kill: 0 lost, 0 duplicated\n",
      loop, totals.kills, totals.broker_kills, static_cast<long long>(head), totals.acks.size());
  return 0;
}

}  // namespace
}  // namespace eventlite::test

int main(int argc, char** argv) {
  eventlite::test::Config config;
  CLI::App app("The crash loop: a child appending and processing, SIGKILLed at random.");
  app.add_option("--loops", config.loops, "Kills at most");
  app.add_option("--seconds", config.seconds, "Time at most, for the kills");
  app.add_flag("--kill-brokers", config.kill_brokers,
               "Also SIGKILL and restart Redis or NATS in every other loop");
  app.add_option("--seed", config.seed, "Seed of the random timings");
  app.add_option("--dir", config.dir, "Where the files go (default: a temp directory)");
  app.add_flag("--child", config.child)->group("");
  app.add_flag("--drain", config.drain)->group("");
  app.add_option("--run", config.run)->group("");
  app.add_option("--redis-port", config.redis_port)->group("");
  app.add_option("--nats-port", config.nats_port)->group("");
  CLI11_PARSE(app, argc, argv);
  try {
    return config.child ? eventlite::test::run_child(config)
                        : eventlite::test::run_driver(config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crash_loop: %s: %s\n", config.child ? "child" : "driver", e.what());
    return 2;
  }
}
