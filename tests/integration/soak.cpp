// The soak: EVENTS events appended by 2 processes, each also running a processor
// with 3 subscriptions (a transactional projection, a handler that fails 1 % of its
// first attempts, a sink to a real Redis), whose leases the two share; Redis is
// SIGKILLed and restarted every few seconds. The driver samples, once a second, each
// process's resident memory, the write-ahead log's size and the subscriptions'
// positions, and at the end checks the counts: every event once in the projection
// and in Redis, every one handled, no dead letter, the file sound, the log bounded.
//
//   soak [--events N] [--restart-every S] [--dir D]
//
// The children are this program again, exec'd with --child (libnats and hiredis
// state must not cross a fork, nor may a SQLite connection).

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <SQLiteCpp/SQLiteCpp.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "eventlite/processor.hpp"
#include "eventlite/redis.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "eventlite/transaction.hpp"
#include "redis_server.hpp"
#include "test_support.hpp"

namespace eventlite::test {
namespace {

struct Config {
  std::int64_t events = 1'000'000;
  double restart_every = 5;
  std::string dir;
  bool child = false;
  int id = 0;
  int redis_port = 0;
};

constexpr int kProcesses = 2;
constexpr std::int64_t kBatch = 20;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "soak: FAILED: %s\n", what.c_str());
  std::exit(1);
}

int run_child(const Config& config) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);  // before any thread starts
  const std::filesystem::path dir = config.dir;
  auto store = Store::open(dir / "app.db", fast_options());
  const int handled =
      ::open((dir / ("handled-" + std::to_string(config.id))).c_str(),
             O_WRONLY | O_APPEND | O_CREAT, 0600);
  if (handled < 0) fail("cannot open the handled log");

  ProcessorOptions options;
  options.lease_time = std::chrono::milliseconds(2000);
  Processor processor(store, options);
  processor.subscribe(
      "projection",
      [](const Context& c) {
        SQLite::Statement insert(c.transaction().database(),
                                 "INSERT INTO projected(seq) VALUES (?)");
        insert.bind(1, static_cast<std::int64_t>(c.event().seq));
        insert.exec();
      },
      {.transactional = true});
  SubscriptionOptions flaky;
  flaky.retry = RetryPolicy{.max_attempts = 5,
                            .base = std::chrono::milliseconds(1),
                            .factor = 2.0,
                            .cap = std::chrono::milliseconds(10),
                            .jitter = 0.0};
  processor.subscribe(
      "flaky",
      [handled](const Context& c) {
        if (c.attempt() == 1 && c.event().seq % 100 == 37)
          throw std::runtime_error("the 1 % that fails once");
        const std::string line = std::to_string(c.event().seq) + "\n";
        if (::write(handled, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
          throw std::runtime_error("cannot write the handled log");
      },
      flaky);
  SubscriptionOptions sink;
  sink.max_lanes = 1;
  sink.retry = RetryPolicy{.max_attempts = 100000,
                           .base = std::chrono::milliseconds(20),
                           .factor = 2.0,
                           .cap = std::chrono::milliseconds(200),
                           .jitter = 0.0};
  redis::SinkOptions to_redis;
  to_redis.url = "redis://127.0.0.1:" + std::to_string(config.redis_port);
  to_redis.timeout = std::chrono::milliseconds(1000);
  processor.sink("to-redis", redis::make_sink(to_redis), sink);
  processor.start();

  const std::int64_t share = config.events / kProcesses;
  for (std::int64_t i = 0; i < share;) {
    if (i % 1000 < 500) {  // half in batches, half one by one
      store.append("batch-" + std::to_string(config.id) + "-" + std::to_string(i % 97),
                   numbered_events(kBatch, "Batched", static_cast<std::size_t>(i)));
      i += kBatch;
    } else {
      store.append("single-" + std::to_string(config.id) + "-" + std::to_string(i % 89),
                   event("Single", "{\"i\":" + std::to_string(i) + "}"));
      ++i;
    }
  }
  int sig = 0;
  sigwait(&term, &sig);  // the driver says when everything is delivered
  processor.stop();
  return 0;
}

std::int64_t rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return 0;
}

pid_t spawn(const Config& config, int id, int redis_port) {
  return spawn_self({"--child", "--id", std::to_string(id), "--dir", config.dir, "--events",
                     std::to_string(config.events), "--redis-port",
                     std::to_string(redis_port)});
}

int run_driver(Config config) {
  TempDir temp;
  if (config.dir.empty()) config.dir = temp.path().string();
  const std::filesystem::path dir = config.dir;
  RedisServer redis;
  {
    auto store = Store::open(dir / "app.db", fast_options());
    auto t = store.transaction();
    t.database().exec("CREATE TABLE projected(seq INTEGER PRIMARY KEY)");
    t.commit();
  }
  std::printf("soak: %lld events from %d processes, Redis SIGKILLed every %.0f s\n",
              static_cast<long long>(config.events), kProcesses, config.restart_every);
  std::printf("%6s %9s %9s %9s %9s %8s %8s %8s\n", "t(s)", "head", "projected", "flaky",
              "redis", "wal(MiB)", "rss0(MiB)", "rss1(MiB)");
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) children.push_back(spawn(config, p, redis.port()));

  const auto start = std::chrono::steady_clock::now();
  auto next_restart = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                  std::chrono::duration<double>(config.restart_every));
  std::int64_t max_wal = 0, first_rss = 0, max_rss = 0, last_rss = 0;
  int restarts = 0;
  SQLite::Database db((dir / "app.db").string(), SQLite::OPEN_READONLY);
  db.setBusyTimeout(5000);
  for (int tick = 0;; ++tick) {
    std::this_thread::sleep_for(std::chrono::seconds(1));  // the sampling period
    const auto now = std::chrono::steady_clock::now();
    if (now - start > std::chrono::minutes(30)) fail("not done within 30 minutes");
    if (now >= next_restart) {
      redis.stop(SIGKILL);
      redis.start();
      ++restarts;
      next_restart = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                               std::chrono::duration<double>(config.restart_every));
    }
    std::error_code ec;
    const auto wal = static_cast<std::int64_t>(std::filesystem::file_size(dir / "app.db-wal", ec));
    max_wal = std::max(max_wal, ec ? 0 : wal);
    std::int64_t rss[kProcesses];
    for (int p = 0; p < kProcesses; ++p) rss[p] = rss_kib(children[static_cast<std::size_t>(p)]);
    if (tick == 2) first_rss = std::max(rss[0], rss[1]);
    last_rss = std::max(rss[0], rss[1]);
    max_rss = std::max(max_rss, last_rss);
    const auto head = db.execAndGet("SELECT coalesce(max(seq), 0) FROM eventlite_events").getInt64();
    std::int64_t pos[3] = {0, 0, 0};
    const char* names[3] = {"projection", "flaky", "to-redis"};
    for (int s = 0; s < 3; ++s) {
      SQLite::Statement q(db, "SELECT position FROM eventlite_subscriptions WHERE name = ?");
      q.bind(1, names[s]);
      if (q.executeStep()) pos[s] = q.getColumn(0).getInt64();
    }
    if (tick % 5 == 0 || (head == config.events && pos[0] == head && pos[1] == head &&
                          pos[2] == head))
      std::printf("%6.0f %9lld %9lld %9lld %9lld %8.1f %8.1f %8.1f\n",
                  std::chrono::duration<double>(now - start).count(),
                  static_cast<long long>(head), static_cast<long long>(pos[0]),
                  static_cast<long long>(pos[1]), static_cast<long long>(pos[2]),
                  static_cast<double>(wal) / (1 << 20), static_cast<double>(rss[0]) / 1024,
                  static_cast<double>(rss[1]) / 1024);
    std::fflush(stdout);
    if (head == config.events && pos[0] == head && pos[1] == head && pos[2] == head) break;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (pid_t child : children) {
    ::kill(child, SIGTERM);
    if (wait_child(child, std::chrono::seconds(60)) != 0) fail("a child did not end cleanly");
  }

  auto store = Store::open(dir / "app.db", fast_options());
  if (!store.verify().empty()) fail("verify: " + store.verify().front());
  const auto count = [&](const std::string& sql) { return db.execAndGet(sql).getInt64(); };
  if (db.execAndGet("PRAGMA integrity_check").getString() != "ok") fail("integrity_check");
  const std::int64_t n = config.events;
  if (count("SELECT count(*) FROM eventlite_events") != n) fail("event count");
  if (count("SELECT count(*) FROM projected") != n) fail("projection count");
  if (count("SELECT count(*) FROM eventlite_deliveries") != 0) fail("owed deliveries left");
  std::vector<char> handled(static_cast<std::size_t>(n) + 1, 0);
  std::int64_t handled_lines = 0;
  for (int p = 0; p < kProcesses; ++p) {
    std::ifstream in(dir / ("handled-" + std::to_string(p)));
    for (std::string line; std::getline(in, line); ++handled_lines)
      handled[static_cast<std::size_t>(std::stoll(line))] = 1;
  }
  if (std::count(handled.begin() + 1, handled.end(), 1) != n) fail("flaky: an event never handled");
  RedisClient client(redis.port());
  const auto in_redis = client.integer({"XLEN", "events"});
  if (in_redis != n) fail(fmt::format("redis holds {} entries, not {}", in_redis, n));
  std::printf(
      "soak: ok: %lld events in %.0f s (%.0f events/s, appended and delivered three ways); "
      "Redis restarted %d times; projection %lld rows, flaky handled all %lld (%lld "
      "deliveries, %lld again after a failure or a lease move), Redis %lld entries, 0 "
      "dead, 0 owed; largest WAL %.1f MiB; resident memory of a process %.1f MiB at 2 s, "
      "%.1f MiB at most, %.1f MiB at the end\n",
      static_cast<long long>(n), seconds, static_cast<double>(n) / seconds, restarts,
      static_cast<long long>(n), static_cast<long long>(n),
      static_cast<long long>(handled_lines), static_cast<long long>(handled_lines - n),
      static_cast<long long>(in_redis), static_cast<double>(max_wal) / (1 << 20),
      static_cast<double>(first_rss) / 1024, static_cast<double>(max_rss) / 1024,
      static_cast<double>(last_rss) / 1024);
  return 0;
}

}  // namespace
}  // namespace eventlite::test

int main(int argc, char** argv) {
  eventlite::test::Config config;
  CLI::App app("The soak: two processes appending and processing, Redis restarted.");
  app.add_option("--events", config.events, "Events in all (default 1,000,000)");
  app.add_option("--restart-every", config.restart_every, "Seconds between Redis kills");
  app.add_option("--dir", config.dir, "Where the files go (default: a temp directory)");
  app.add_flag("--child", config.child)->group("");
  app.add_option("--id", config.id)->group("");
  app.add_option("--redis-port", config.redis_port)->group("");
  CLI11_PARSE(app, argc, argv);
  try {
    return config.child ? eventlite::test::run_child(config)
                        : eventlite::test::run_driver(config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "soak: %s\n", e.what());
    return 2;
  }
}
