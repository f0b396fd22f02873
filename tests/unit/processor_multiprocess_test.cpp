// The processor across processes: at-least-once delivery and an exactly-once
// transactional projection when the dispatching process is SIGKILLed mid-way; a
// standby process taking a subscription's lease over within the lease time of its
// owner's death; the fencing token refusing a stale owner's checkpoint; and a
// periodic task running once per interval among two processes.
//
// Every child is forked before the parent opens a Store or a SQLite connection: no
// connection or store thread crosses fork().

#include <SQLiteCpp/Database.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iterator>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "eventlite/clock.hpp"
#include "eventlite/handlers.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;
using namespace std::chrono_literals;

constexpr int kEvents = 3000;
constexpr int kStreams = 30;

// Creates the store in a short-lived child and appends `kEvents` events over
// `kStreams` streams, interleaved in rounds of 10 events per stream; runs `setup`
// on the store first (for the application's tables).
void create_and_fill_in_child(const std::filesystem::path& path,
                              const std::function<void(Store&)>& setup = {}) {
  ASSERT_EQ(run_in_child([&] {
              auto store = Store::open(path, fast_options());
              if (setup) setup(store);
              constexpr int kPerAppend = 10;
              int first = 0;
              for (int round = 0; round < kEvents / (kStreams * kPerAppend); ++round) {
                for (int s = 0; s < kStreams; ++s) {
                  store.append("stream-" + std::to_string(s),
                               numbered_events(kPerAppend, "Numbered",
                                               static_cast<std::size_t>(first)));
                  first += kPerAppend;
                }
              }
              return store.head() == kEvents ? 0 : 1;
            }),
            0);
}

// Appends "<seq>\n" to the file open on `fd` with O_APPEND: one write(2) per
// delivery, so lines of concurrent workers never mix and survive a SIGKILL.
void record_seq(int fd, Seq seq) {
  const std::string line = std::to_string(seq) + "\n";
  const ssize_t n = ::write(fd, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) throw std::runtime_error("write failed");
}

int open_append(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open");
  return fd;
}

std::size_t count_lines(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return 0;
  const std::string bytes = read_bytes(path);
  return static_cast<std::size_t>(std::count(bytes.begin(), bytes.end(), '\n'));
}

std::vector<Seq> read_seqs(const std::filesystem::path& path) {
  std::vector<Seq> out;
  if (!std::filesystem::exists(path)) return out;
  std::istringstream in(read_bytes(path));
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(std::stoll(line));
  return out;
}

std::set<Seq> one_to(Seq n) {
  std::set<Seq> out;
  for (Seq s = 1; s <= n; ++s) out.insert(s);
  return out;
}

// A pipe whose read end a child blocks on until the parent closes the write end
// (or dies): the children's "run until told".
struct Gate {
  int fds[2] = {-1, -1};
  Gate() {
    if (::pipe(fds) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  }
  ~Gate() {
    close_read();
    open_gate();
  }
  // In the child: waits until the parent opens the gate.
  void wait_in_child() {
    if (fds[1] >= 0) ::close(fds[1]);
    char byte;
    while (::read(fds[0], &byte, 1) < 0 && errno == EINTR) {
    }
  }
  void close_read() {
    if (fds[0] >= 0) ::close(fds[0]);
    fds[0] = -1;
  }
  void open_gate() {
    if (fds[1] >= 0) ::close(fds[1]);
    fds[1] = -1;
  }
};

// The handler's own small piece of work.
void some_work() {
  std::this_thread::sleep_for(300us);
}

// Deliveries after which a child's handlers stop for good, in the middle of a batch,
// so that the kill surely lands mid-way.
constexpr int kStallAfter = 1000;

Seq stored_position(RawDb& db, const std::string& name) {
  return db.query_int(
      "SELECT coalesce((SELECT position FROM eventlite_subscriptions "
      "WHERE name = '" +
      name + "'), -1)");
}

TEST(ProcessorCrash, AtLeastOnceAcrossSigkillSkipsNothing) {
  TempDir dir;
  const auto path = dir / "app.db";
  const auto seqs_file = dir / "seqs.txt";
  create_and_fill_in_child(path);

  const auto options = [] {
    ProcessorOptions o;
    o.batch_size = 64;
    o.checkpoint_interval = 5ms;
    // The restarted process takes the lease once the killed one's has run out.
    o.lease_time = 500ms;
    return o;
  };

  Gate gate;
  const pid_t worker = spawn_child([&] {
    const int fd = open_append(seqs_file);
    auto store = Store::open(path, fast_options());
    Processor processor(store, options());
    std::atomic<int> delivered{0};
    processor.subscribe("relay", [&, fd](const Context& ctx) {
      some_work();
      record_seq(fd, ctx.event().seq);
      if (++delivered >= kStallAfter) gate.wait_in_child();
    });
    processor.start();
    gate.wait_in_child();  // never opened: the parent kills this process
    return 0;
  });
  gate.close_read();

  const bool reached =
      wait_until([&] { return count_lines(seqs_file) >= kStallAfter; }, 20s);
  ::kill(worker, SIGKILL);
  ASSERT_EQ(wait_child(worker, 10s), 128 + SIGKILL);
  ASSERT_TRUE(reached) << "the worker recorded " << count_lines(seqs_file) << " lines";
  {
    RawDb db(path);
    const Seq at_kill = stored_position(db, "relay");
    ASSERT_LT(at_kill, kEvents) << "the worker finished before it was killed";
  }

  auto store = Store::open(path, fast_options());
  const int fd = open_append(seqs_file);
  Processor processor(store, options());
  processor.subscribe("relay",
                      [fd](const Context& ctx) { record_seq(fd, ctx.event().seq); });
  std::size_t redelivered = 0;
  EXPECT_TRUE(wait_until(
      [&] {
        redelivered += processor.run_until_idle();
        return processor.metrics().at(0).position == kEvents;
      },
      10s));
  ::close(fd);
  EXPECT_GT(redelivered, 0U);

  const auto recorded = read_seqs(seqs_file);
  const std::set<Seq> distinct(recorded.begin(), recorded.end());
  const std::set<Seq> all = one_to(kEvents);
  std::vector<Seq> missing;
  std::set_difference(all.begin(), all.end(), distinct.begin(), distinct.end(),
                      std::back_inserter(missing));
  EXPECT_TRUE(missing.empty()) << missing.size() << " seqs never delivered, the first "
                               << (missing.empty() ? 0 : missing.front());
  EXPECT_EQ(distinct.size(), static_cast<std::size_t>(kEvents))
      << recorded.size() << " deliveries, " << distinct.size() << " distinct";
  EXPECT_EQ(*distinct.begin(), 1);
  EXPECT_EQ(*distinct.rbegin(), kEvents);
  RawDb db(path);
  EXPECT_EQ(stored_position(db, "relay"), kEvents);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM eventlite_deliveries"), 0);
}

TEST(ProcessorCrash, TransactionalProjectionIsExactlyOnceAcrossSigkill) {
  TempDir dir;
  const auto path = dir / "app.db";
  create_and_fill_in_child(path, [](Store& store) {
    auto txn = store.transaction();
    txn.database().exec("CREATE TABLE projection(seq INTEGER NOT NULL)");
    txn.commit();
  });

  const auto project = [](const Context& ctx) {
    some_work();
    ctx.transaction().database().exec("INSERT INTO projection(seq) VALUES (" +
                                      std::to_string(ctx.event().seq) + ")");
  };

  Gate gate;
  const pid_t worker = spawn_child([&] {
    std::atomic<int> delivered{0};
    // Stops for good inside a batch's transaction: the kill lands mid-batch.
    const auto stalling = [&](const Context& ctx) {
      project(ctx);
      if (++delivered >= kStallAfter) gate.wait_in_child();
    };
    auto store = Store::open(path, fast_options());
    ProcessorOptions o;
    o.batch_size = 64;
    o.checkpoint_interval = 5ms;
    o.owner = "A";
    o.lease_time = 1000ms;
    Processor processor(store, o);
    processor.subscribe("projector", stalling,
                        SubscriptionOptions{.transactional = true});
    processor.start();
    gate.wait_in_child();  // never opened: the parent kills this process
    return 0;
  });
  gate.close_read();

  std::int64_t at_kill = 0;
  {
    RawDb db(path);
    const bool reached = wait_until(
        [&] {
          return db.query_int("SELECT count(*) FROM projection") >= kStallAfter - 64;
        },
        20s);
    ::kill(worker, SIGKILL);
    ASSERT_EQ(wait_child(worker, 10s), 128 + SIGKILL);
    at_kill = db.query_int("SELECT count(*) FROM projection");
    ASSERT_TRUE(reached) << "projected " << at_kill;
    ASSERT_LT(at_kill, kEvents) << "the worker finished before it was killed";
    // Another process takes over once the dead owner's lease has run out.
    ASSERT_TRUE(wait_until(
        [&] {
          return db.query_int(
                     "SELECT expires <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                     "FROM eventlite_leases WHERE name = 'projector'") == 1;
        },
        5s));
  }

  auto store = Store::open(path, fast_options());
  ProcessorOptions o;
  o.batch_size = 64;
  o.owner = "B";
  o.lease_time = 1000ms;
  Processor processor(store, o);
  processor.subscribe("projector", project, SubscriptionOptions{.transactional = true});
  const std::size_t delivered = processor.run_until_idle();
  EXPECT_EQ(delivered, static_cast<std::size_t>(kEvents - at_kill));

  RawDb db(path);
  EXPECT_EQ(db.query_int("SELECT count(*) FROM projection"), kEvents);
  EXPECT_EQ(db.query_int("SELECT count(DISTINCT seq) FROM projection"), kEvents);
  EXPECT_EQ(db.query_int("SELECT min(seq) FROM projection"), 1);
  EXPECT_EQ(db.query_int("SELECT max(seq) FROM projection"), kEvents);
  EXPECT_EQ(stored_position(db, "projector"), kEvents);
  EXPECT_EQ(db.query_text("SELECT owner FROM eventlite_leases WHERE name = 'projector'"),
            "B");
  EXPECT_EQ(db.query_int("SELECT token FROM eventlite_leases WHERE name = 'projector'"),
            2);
}

TEST(ProcessorLease, StandbyTakesOverWithinLeaseTimeAfterSigkill) {
  TempDir dir;
  const auto path = dir / "app.db";
  const auto a_file = dir / "a.txt";
  constexpr auto kLease = 2000ms;
  ASSERT_EQ(run_in_child([&] {
              auto store = Store::open(path, fast_options());
              store.append("orders", numbered_events(100));
              return 0;
            }),
            0);

  Gate gate;
  const pid_t a = spawn_child([&] {
    const int fd = open_append(a_file);
    auto store = Store::open(path, fast_options());
    ProcessorOptions o;
    o.owner = "A";
    o.lease_time = kLease;
    o.checkpoint_interval = 5ms;
    Processor processor(store, o);
    processor.subscribe("relay",
                        [fd](const Context& ctx) { record_seq(fd, ctx.event().seq); });
    processor.start();
    gate.wait_in_child();  // never opened: the parent kills this process
    return 0;
  });
  gate.close_read();

  // A holds the lease: it delivered every event.
  const bool a_done = wait_until([&] { return count_lines(a_file) >= 100; }, 10s);
  if (!a_done) {
    ::kill(a, SIGKILL);
    wait_child(a, 10s);
    FAIL() << "A recorded " << count_lines(a_file) << " of 100";
  }

  std::int64_t token_a = 0;
  {
    RawDb db(path);
    EXPECT_EQ(db.query_text("SELECT owner FROM eventlite_leases WHERE name = 'relay'"),
              "A");
    token_a = db.query_int("SELECT token FROM eventlite_leases WHERE name = 'relay'");
  }

  auto store = Store::open(path, fast_options());
  std::mutex mu;
  std::vector<Seq> b_seen;
  ProcessorOptions o;
  o.owner = "B";
  o.lease_time = kLease;
  o.checkpoint_interval = 5ms;
  Processor b(store, o);
  b.subscribe("relay", [&](const Context& ctx) {
    std::lock_guard lock(mu);
    b_seen.push_back(ctx.event().seq);
  });
  const auto b_count = [&] {
    std::lock_guard lock(mu);
    return b_seen.size();
  };
  const auto b_leased = [&] {
    const auto m = b.metrics();
    return m.size() == 1 && m[0].leased;
  };
  b.start();

  // While A lives B delivers nothing, not even this process's own appends, and
  // across more than a lease time (A renews it).
  store.append("orders", numbered_events(10, "Numbered", 100));
  EXPECT_TRUE(wait_until([&] { return count_lines(a_file) >= 110; }, 10s))
      << "A recorded " << count_lines(a_file);
  EXPECT_FALSE(wait_until([&] { return b_count() > 0 || b_leased(); }, kLease + 500ms))
      << "B took over while A held the lease";

  ::kill(a, SIGKILL);
  const auto killed_at = std::chrono::steady_clock::now();
  EXPECT_TRUE(wait_until(b_leased, kLease + 1000ms)) << "B did not take the lease over";
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed_at);
  EXPECT_LE(took, kLease + 1000ms);
  EXPECT_EQ(wait_child(a, 10s), 128 + SIGKILL);

  {
    RawDb db(path);
    EXPECT_EQ(db.query_text("SELECT owner FROM eventlite_leases WHERE name = 'relay'"),
              "B");
    EXPECT_GT(db.query_int("SELECT token FROM eventlite_leases WHERE name = 'relay'"),
              token_a);
  }

  store.append("orders", numbered_events(20, "Numbered", 110));
  const std::set<Seq> after_kill = [] {
    std::set<Seq> s;
    for (Seq seq = 111; seq <= 130; ++seq) s.insert(seq);
    return s;
  }();
  const auto has_after_kill = [&] {
    std::lock_guard lock(mu);
    const std::set<Seq> seen(b_seen.begin(), b_seen.end());
    return std::includes(seen.begin(), seen.end(), after_kill.begin(), after_kill.end());
  };
  EXPECT_TRUE(wait_until(has_after_kill, 5s)) << "B delivered " << b_count() << " events";
  b.stop();
  RawDb db(path);
  EXPECT_EQ(stored_position(db, "relay"), 130);
}

TEST(ProcessorLease, StaleOwnerCannotMoveTheCheckpoint) {
  TempDir dir;
  const auto path = dir / "app.db";
  const auto t0 = std::chrono::system_clock::now();
  auto clock_a = std::make_shared<ManualClock>(t0);
  auto clock_b = std::make_shared<ManualClock>(t0 + 11s);

  auto store_a = Store::open(path, fast_options());
  auto store_b = Store::open(path, fast_options());
  store_a.append("orders", numbered_events(10));

  std::vector<Seq> a_seen;
  std::vector<Seq> b_seen;
  ProcessorOptions oa;
  oa.owner = "A";
  oa.lease_time = 10s;
  oa.clock = clock_a;
  Processor a(store_a, oa);
  a.subscribe("relay", [&](const Context& ctx) { a_seen.push_back(ctx.event().seq); });
  ProcessorOptions ob = oa;
  ob.owner = "B";
  ob.clock = clock_b;
  Processor b(store_b, ob);
  b.subscribe("relay", [&](const Context& ctx) { b_seen.push_back(ctx.event().seq); });

  RawDb db(path);
  EXPECT_EQ(a.run_until_idle(), 10U);
  EXPECT_EQ(stored_position(db, "relay"), 10);
  EXPECT_EQ(db.query_int("SELECT token FROM eventlite_leases WHERE name = 'relay'"), 1);

  // B's clock is past A's lease: it takes over, and there is nothing new for it.
  EXPECT_EQ(b.run_until_idle(), 0U);
  EXPECT_TRUE(b_seen.empty());
  EXPECT_EQ(db.query_text("SELECT owner FROM eventlite_leases WHERE name = 'relay'"),
            "B");
  EXPECT_EQ(db.query_int("SELECT token FROM eventlite_leases WHERE name = 'relay'"), 2);
  EXPECT_EQ(stored_position(db, "relay"), 10);

  store_a.append("orders", numbered_events(5, "Numbered", 10));
  // A's clock has not moved: it believes it still holds the lease. It may call its
  // handler, but the file refuses its checkpoint.
  a_seen.clear();
  (void)a.run_until_idle();
  for (Seq seq : a_seen) EXPECT_GT(seq, 10);
  EXPECT_EQ(stored_position(db, "relay"), 10) << "a stale owner moved the checkpoint";
  const auto am = a.metrics();
  ASSERT_EQ(am.size(), 1U);
  EXPECT_FALSE(am[0].leased);
  EXPECT_EQ(db.query_text("SELECT owner FROM eventlite_leases WHERE name = 'relay'"),
            "B");
  EXPECT_EQ(db.query_int("SELECT token FROM eventlite_leases WHERE name = 'relay'"), 2);

  EXPECT_EQ(b.run_until_idle(), 5U);
  EXPECT_EQ(b_seen, (std::vector<Seq>{11, 12, 13, 14, 15}));
  EXPECT_EQ(stored_position(db, "relay"), 15);
  const auto bm = b.metrics();
  ASSERT_EQ(bm.size(), 1U);
  EXPECT_TRUE(bm[0].leased);
  EXPECT_EQ(bm[0].position, 15);
}

TEST(ProcessorEvery, RunsOncePerIntervalAcrossTwoProcesses) {
  TempDir dir;
  const auto path = dir / "app.db";
  constexpr auto kInterval = 200ms;
  constexpr int kTicks = 8;
  ASSERT_EQ(run_in_child([&] {
              auto store = Store::open(path, fast_options());
              auto txn = store.transaction();
              txn.database().exec(
                  "CREATE TABLE ticks(pid INTEGER NOT NULL, "
                  "ms INTEGER NOT NULL)");
              txn.commit();
              return 0;
            }),
            0);

  Gate go;    // releases both together
  Gate done;  // tells both to stop
  std::vector<pid_t> children;
  for (int p = 0; p < 2; ++p) {
    children.push_back(spawn_child([&, p] {
      go.wait_in_child();
      auto store = Store::open(path, fast_options());
      ProcessorOptions o;
      o.owner = "P" + std::to_string(p);
      Processor processor(store, o);
      processor.every("tick", kInterval, [&store] {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
        auto txn = store.transaction();
        txn.database().exec("INSERT INTO ticks(pid, ms) VALUES (" +
                            std::to_string(::getpid()) + ", " + std::to_string(ms) + ")");
        txn.commit();
      });
      processor.start();
      done.wait_in_child();
      processor.stop();
      return 0;
    }));
  }
  go.close_read();
  done.close_read();
  const auto started = std::chrono::steady_clock::now();
  go.open_gate();

  bool enough = false;
  {
    RawDb db(path);
    enough = wait_until(
        [&] { return db.query_int("SELECT count(*) FROM ticks") >= kTicks; }, 15s);
  }
  done.open_gate();
  for (pid_t child : children) EXPECT_EQ(wait_child(child, 10s), 0);
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  ASSERT_TRUE(enough) << "fewer than " << kTicks << " ticks in 15 s";

  RawDb db(path);
  std::vector<std::int64_t> times;
  for (const auto& text : db.query_column("SELECT ms FROM ticks ORDER BY ms"))
    times.push_back(std::stoll(text));
  const auto n = static_cast<std::int64_t>(times.size());
  ASSERT_GE(n, kTicks);
  // Never twice in one interval: a double run would be a gap of a few ms. (A tick's
  // time is taken when its body starts on a worker, some ms after the claim on a
  // loaded machine: hence the slack.)
  for (std::size_t i = 1; i < times.size(); ++i)
    EXPECT_GE(times[i] - times[i - 1], 100) << "ticks " << i - 1 << " and " << i;
  // About one per interval over the whole run: not doubled, not skipped.
  const std::int64_t mean_gap = (times.back() - times.front()) / (n - 1);
  EXPECT_GE(mean_gap, 180);
  EXPECT_LE(mean_gap, 400);
  EXPECT_LE(n, elapsed / kInterval + 1) << n << " ticks in " << elapsed.count() << " ms";
  const auto processes = db.query_int("SELECT count(DISTINCT pid) FROM ticks");
  std::printf("%lld ticks in %lld ms by %lld process(es), mean gap %lld ms\n",
              static_cast<long long>(n), static_cast<long long>(elapsed.count()),
              static_cast<long long>(processes), static_cast<long long>(mean_gap));
}

}  // namespace
}  // namespace eventlite
