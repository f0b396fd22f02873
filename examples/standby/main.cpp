// One active publisher per subscription across processes: what an outbox relay needs
// so that two instances never send the same event.
//
// Two worker processes run the same relay on one file. Each subscribes "relay",
// which records every event it publishes in the `published` table, in the delivery's
// transaction. Only the holder of the subscription's lease dispatches it; the other
// stands by. The driver kills the active worker with SIGKILL in the middle of its
// work; the standby takes the subscription over within the lease time, from the
// last committed checkpoint, and the work the dead worker had not committed never
// lands (the lease's fencing token). At the end every event is published exactly
// once, each by one worker.
//
// Usage: standby_demo DB            (the driver: starts and kills the workers)
//        standby_demo DB --worker N (one worker, until SIGTERM)

#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/core.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "eventlite/eventlite.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kLease = 1000ms;

int worker(const std::string& path, const std::string& name) {
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);  // waited for below, in this thread
  auto store = eventlite::Store::open(path);
  eventlite::ProcessorOptions options;
  options.lease_time = kLease;
  options.batch_size = 16;  // a transactional batch holds the writer: keep it short
  options.checkpoint_interval = 10ms;
  options.owner = "worker-" + name;
  eventlite::Processor processor(store, options);
  processor.subscribe("relay",
                      [&name](const eventlite::Context& ctx) {
                        SQLite::Statement insert(
                            ctx.transaction().database(),
                            "INSERT INTO published (seq, by) VALUES (?, ?)");
                        insert.bind(1, static_cast<std::int64_t>(ctx.event().seq));
                        insert.bind(2, name);
                        insert.exec();  // a second publication of a seq would fail here
                      },
                      {.transactional = true, .max_lanes = 1});
  processor.start();
  int signal = 0;
  sigwait(&term, &signal);
  processor.stop();
  return 0;
}

pid_t spawn_worker(const std::string& path, const std::string& name) {
  std::string self = "/proc/self/exe", flag = "--worker";
  std::string db = path, n = name;
  char* argv[] = {self.data(), db.data(), flag.data(), n.data(), nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv, environ) != 0)
    throw std::runtime_error("cannot start a worker");
  return pid;
}

// Waits until `done` holds, looking every 5 ms; throws after `timeout`.
void wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout,
              const char* what) {
  const auto until = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > until) throw std::runtime_error(std::string("timed out: ") + what);
    std::this_thread::sleep_for(5ms);
  }
}

std::optional<eventlite::SubscriptionStatus> relay(const eventlite::Store& store) {
  for (auto& s : eventlite::status(store).subscriptions)
    if (s.name == "relay") return s;
  return std::nullopt;
}

// Who took the relay's lease last (a worker that died still shows until another
// takes it).
std::string holder(const eventlite::Store& store) {
  const auto s = relay(store);
  return s && s->lease ? s->lease->owner : "";
}

std::int64_t published(SQLite::Database& db, const char* by = nullptr) {
  if (!by) return db.execAndGet("SELECT count(*) FROM published").getInt64();
  SQLite::Statement q(db, "SELECT count(*) FROM published WHERE by = ?");
  q.bind(1, by);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

int drive(const std::string& path) {
  auto store = eventlite::Store::open(path);
  {
    auto t = store.transaction();
    // No key on seq: a second publication of an event would be kept, and counted.
    t.database().exec(
        "CREATE TABLE IF NOT EXISTS published (seq INTEGER NOT NULL, by TEXT NOT NULL)");
    t.commit();
  }
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  const std::int64_t before = published(db);
  fmt::print("eventlite standby demo on {}: two workers, one relay, lease {} ms\n\n",
             path, kLease.count());
  fmt::print("1. worker A starts\n");
  const pid_t a = spawn_worker(path, "A");
  wait_for([&] { return holder(store) == "worker-A"; }, 10s, "worker A's lease");
  fmt::print("   worker A holds the relay's lease\n");
  const pid_t b = spawn_worker(path, "B");
  wait_for(
      [&] {
        const auto s = relay(store);
        return s && !s->standbys.empty();
      },
      10s, "worker B standing by");
  fmt::print("2. worker B starts and stands by\n");
  // Orders come in, one every 2 ms, while A publishes them.
  constexpr int kOrders = 1500;
  std::thread orders([&] {
    for (int i = 0; i < kOrders; ++i) {
      store.append(fmt::format("order-{}", i % 10),
                   eventlite::make_event("OrderPlaced", {{"order", i}}));
      std::this_thread::sleep_for(2ms);
    }
  });
  wait_for([&] { return published(db) - before >= 300; }, 30s, "A publishing");
  kill(a, SIGKILL);
  const auto killed = Clock::now();
  waitpid(a, nullptr, 0);
  const std::int64_t by_a = published(db, "A");
  fmt::print("3. worker A killed (SIGKILL) while orders flow, after publishing {}\n",
             by_a);
  wait_for([&] { return holder(store) == "worker-B"; }, 10s, "worker B taking over");
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed);
  fmt::print("4. worker B took the relay over {} ms after the kill (lease {} ms)\n",
             took.count(), kLease.count());
  orders.join();
  wait_for([&] { return published(db) == store.head(); }, 60s, "everything published");
  kill(b, SIGTERM);
  int status = 0;
  waitpid(b, &status, 0);

  const std::int64_t total = published(db), head = store.head();
  const std::int64_t a_total = published(db, "A"), b_total = published(db, "B");
  fmt::print("5. {} events, {} published: {} by A, {} by B; no event published twice\n",
             head, total, a_total, b_total);
  const bool ok = total == head && a_total + b_total == total && a_total == by_a &&
                  a_total > 0 && b_total > 0 && took < kLease + 2000ms &&
                  WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok) {
    fmt::print(stderr, "standby_demo: the takeover's outcome is wrong\n");
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 4 && std::string(argv[2]) == "--worker") return worker(argv[1], argv[3]);
    if (argc == 2) return drive(argv[1]);
    std::fprintf(stderr, "usage: %s DB\n", argv[0]);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "standby_demo: %s\n", e.what());
    return 1;
  }
}
