// Figures 6 to 12: the processor. Dispatch throughput over a backlog (one and ten
// subscriptions), the latency from an append to its handler (appender in this process
// or in another one), peak memory while draining a backlog, the CPU an idle started
// processor uses, and (a prototype ahead of its integration) how soon the change watch
// wakes a loop on another process's commit. A repetition that
// dispatches works on a synced copy of the fixture: the processor writes checkpoints,
// leases and subscription rows into the file.

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "bench/raw_sqlite.hpp"
#include "bench/scenarios.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/store.hpp"
#include "store/change_watch.hpp"

extern char** environ;

namespace eventlite::bench {
namespace {

using namespace std::chrono_literals;

// Generous: a drain of 1M events takes seconds; this only turns a hang into an error.
constexpr auto kDrainTimeout = std::chrono::minutes(10);
// How long an appender waits for the handler to see its event before giving up.
constexpr auto kSeenTimeout = std::chrono::seconds(10);

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// ---- dispatch ---------------------------------------------------------------------

// Waits until every subscription of the started `processor` is leased and at `head`
// with its checkpoint committed (wait_idle returns only once checkpoints are).
void drain(Processor& processor, Seq head) {
  const auto deadline = std::chrono::steady_clock::now() + kDrainTimeout;
  for (;;) {
    if (processor.wait_idle(
            std::chrono::duration_cast<std::chrono::milliseconds>(kDrainTimeout))) {
      const auto metrics = processor.metrics();
      if (std::all_of(metrics.begin(), metrics.end(), [&](const SubscriptionMetrics& m) {
            return m.leased && m.position >= head;
          }))
        return;
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("the processor did not reach the head in time");
  }
}

std::string subscription_name(std::size_t s) {
  return "bench-" + std::to_string(s);
}

// Starts a processor (default options) with `subscriptions` no-op subscriptions on a
// copy of the fixture and times it from start() until all are at the head; returns
// deliveries per second.
double dispatch_eventlite(Context& ctx, std::size_t subscriptions) {
  const std::size_t n = ctx.sizes().stored_events;
  const ScratchFile file(ctx.new_path("dispatch-eventlite"));
  copy_file_synced(ctx.fixture(n), file.path());
  auto store = Store::open(file.path());  // durability full, the default
  Processor processor(store);
  for (std::size_t s = 0; s < subscriptions; ++s)
    processor.subscribe(subscription_name(s), [](const eventlite::Context&) {});
  const Stopwatch watch;
  processor.start();
  drain(processor, static_cast<Seq>(n));
  const double seconds = watch.seconds();
  for (const SubscriptionMetrics& m : processor.metrics())
    if (m.delivered != n || m.failed != 0)
      throw std::runtime_error("subscription " + m.name + " delivered " +
                               std::to_string(m.delivered) + " events, expected " +
                               std::to_string(n));
  processor.stop();
  return static_cast<double>(n * subscriptions) / seconds;
}

// The raw checkpoint loop on another copy of the fixture, once per subscription, one
// after another, each with its own checkpoint row; returns deliveries per second.
// `checkpoint_every` 0: a commit per batch; else as RawCheckpointLoop says.
double dispatch_baseline(Context& ctx, std::size_t subscriptions,
                         std::chrono::milliseconds checkpoint_every = {}) {
  const std::size_t n = ctx.sizes().stored_events;
  const ScratchFile file(ctx.new_path("dispatch-baseline"));
  copy_file_synced(ctx.fixture(n), file.path());
  RawDb db(file.path(), RawDb::Sync::full);
  std::vector<std::unique_ptr<RawCheckpointLoop>> loops;
  for (std::size_t s = 0; s < subscriptions; ++s)
    loops.push_back(std::make_unique<RawCheckpointLoop>(db, subscription_name(s), 256,
                                                        checkpoint_every));
  const Stopwatch watch;
  for (auto& loop : loops)
    if (loop->drain() != n) throw std::runtime_error("the raw loop missed events");
  const double seconds = watch.seconds();
  return static_cast<double>(n * subscriptions) / seconds;
}

// Against the raw loop committing its checkpoint per batch: ratio >= 0.7 (one
// subscription) or 1 (ten). `vs_checkpoint_interval` compares instead with a raw loop
// that commits checkpoints as rarely as the processor does (its default
// checkpoint_interval, 200 ms), so that the ratio shows the processor's own work per
// event rather than fsyncs saved: ratio >= 0.7 for one subscription.
FigureSpec dispatch_figure(Context& ctx, std::size_t subscriptions,
                           bool vs_checkpoint_interval = false) {
  const std::string backlog = count_label(ctx.sizes().stored_events) + " backlog";
  const std::chrono::milliseconds every = vs_checkpoint_interval
                                              ? ProcessorOptions{}.checkpoint_interval
                                              : std::chrono::milliseconds(0);
  FigureSpec spec;
  spec.name = subscriptions == 1 ? "dispatch no-op handler, " + backlog
                                 : "dispatch " + std::to_string(subscriptions) +
                                       " subscriptions, " + backlog;
  if (vs_checkpoint_interval)
    spec.name += ", vs raw checkpoint every " + std::to_string(every.count()) + " ms";
  spec.unit = "events/s";
  if (!vs_checkpoint_interval)
    spec.threshold = Threshold::ratio_at_least(subscriptions == 1 ? 0.7 : 1.0);
  else if (subscriptions == 1)
    spec.threshold = Threshold::ratio_at_least(0.7);
  spec.eventlite = [&ctx, subscriptions] {
    return dispatch_eventlite(ctx, subscriptions);
  };
  spec.baseline = [&ctx, subscriptions, every] {
    return dispatch_baseline(ctx, subscriptions, every);
  };
  return spec;
}

// ---- latency ----------------------------------------------------------------------

// Send times are steady_clock nanoseconds: CLOCK_MONOTONIC on Linux, one clock for
// every process of the machine, so a child's send time is comparable with ours.
std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string ping_stream(std::size_t i) {
  return "ping-" + std::to_string(i % Workload::kStreams);
}

// An event whose data carries its send time: {"sent_ns":123}.
NewEvent ping(std::int64_t sent_ns) {
  return NewEvent{.type = "Ping",
                  .data = "{\"sent_ns\":" + std::to_string(sent_ns) + "}",
                  .metadata = "{}",
                  .id = {}};
}

std::int64_t sent_ns_of(std::string_view data) {
  const auto colon = data.find(':');
  std::int64_t sent = 0;
  if (colon == std::string::npos ||
      std::from_chars(data.data() + colon + 1, data.data() + data.size(), sent).ec !=
          std::errc())
    throw std::runtime_error("not a ping: " + std::string(data));
  return sent;
}

std::int64_t sent_ns_of(const Event& e) {
  return sent_ns_of(e.data);
}

// What a latency handler saw: each event's latency, in delivery order.
// Thread safety: safe to share.
class Seen {
 public:
  void record(Seq seq, std::int64_t latency_ns) {
    {
      std::lock_guard lock(mu_);
      samples_.push_back(latency_ns);
      last_ = std::max(last_, seq);
    }
    cv_.notify_all();
  }
  // Waits until the handler saw `seq`; throws after kSeenTimeout.
  void wait_for(Seq seq) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kSeenTimeout, [&] { return last_ >= seq; }))
      throw std::runtime_error("the handler did not see seq " + std::to_string(seq));
  }
  // The samples after the first `warmup`; throws unless there were `total`.
  std::vector<std::int64_t> timed(std::size_t warmup, std::size_t total) {
    std::lock_guard lock(mu_);
    if (samples_.size() != total)
      throw std::runtime_error("the handler saw " + std::to_string(samples_.size()) +
                               " events, expected " + std::to_string(total));
    return {samples_.begin() + static_cast<std::ptrdiff_t>(warmup), samples_.end()};
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::int64_t> samples_;  // guarded by mu_
  Seq last_ = 0;                       // guarded by mu_
};

// Nearest-rank quantile `q` of `ns`, in milliseconds.
double quantile_ms(std::vector<std::int64_t> ns, double q) {
  if (ns.empty()) throw std::logic_error("no latency samples");
  const auto rank =
      static_cast<std::size_t>(std::ceil(q * static_cast<double>(ns.size())));
  const std::size_t i = std::clamp<std::size_t>(rank, 1, ns.size()) - 1;
  std::nth_element(ns.begin(), ns.begin() + static_cast<std::ptrdiff_t>(i), ns.end());
  return static_cast<double>(ns[i]) / 1e6;
}

// A processor (default options) on a new store, with one subscription recording the
// latency of each event it sees into `seen` and then calling `after`.
struct LatencyRig {
  LatencyRig(const std::filesystem::path& path, std::function<void()> after = {})
      : store(Store::open(path)), processor(store) {
    processor.subscribe("latency",
                        [this, after = std::move(after)](const eventlite::Context& c) {
                          const std::int64_t now = now_ns();
                          seen.record(c.event().seq, now - sent_ns_of(c.event()));
                          if (after) after();
                        });
    processor.start();
    if (!processor.wait_idle(10s))
      throw std::runtime_error("the processor did not start");
  }

  Seen seen;
  Store store;
  Processor processor;
};

// Figure 8: this thread appends one event at a time (Store::append, durability full)
// and waits until the handler saw it before the next.
std::vector<std::int64_t> latency_in_process(Context& ctx) {
  const std::size_t warmup = ctx.sizes().latency_warmup;
  const std::size_t total = warmup + ctx.sizes().latency_events;
  const ScratchFile file(ctx.new_path("latency-eventlite"));
  LatencyRig rig(file.path());
  for (std::size_t i = 0; i < total; ++i)
    rig.seen.wait_for(rig.store.append(ping_stream(i), ping(now_ns())));
  rig.processor.stop();
  return rig.seen.timed(warmup, total);
}

// A socket pair: [0] stays here, [1] becomes a child's stdin.
class SocketPair {
 public:
  SocketPair() {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds_) != 0)
      throw_errno("socketpair");
  }
  ~SocketPair() {
    close_child_end();
    ::close(fds_[0]);
  }
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
  int ours() const noexcept { return fds_[0]; }
  int childs() const noexcept { return fds_[1]; }
  void close_child_end() noexcept {
    if (fds_[1] >= 0) ::close(fds_[1]);
    fds_[1] = -1;
  }

 private:
  int fds_[2] = {-1, -1};
};

// This executable run again with `args` and `stdin_fd` as its stdin; killed and reaped
// on destruction unless waited for.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& args, int stdin_fd) {
    const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(exe.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, stdin_fd, STDIN_FILENO);
    const int rc =
        posix_spawn(&pid_, exe.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      errno = rc;
      throw_errno("spawn " + exe);
    }
  }
  ~ChildProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Waits for the child to exit; throws unless it exited with 0.
  void wait() {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0)
      if (errno != EINTR) throw_errno("waitpid");
    pid_ = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw std::runtime_error("the appender child process failed");
  }

 private:
  pid_t pid_ = 0;
};

// Figure 9: a child process appends one event at a time (its own Store, durability
// full); this process's processor sees it through PRAGMA data_version, and its
// handler acknowledges each event on the child's stdin before the child sends the
// next.
std::vector<std::int64_t> latency_other_process(Context& ctx) {
  const std::size_t warmup = ctx.sizes().latency_warmup;
  const std::size_t total = warmup + ctx.sizes().latency_events;
  const ScratchFile file(ctx.new_path("latency-eventlite"));
  SocketPair socket;
  const int ack_fd = socket.ours();
  LatencyRig rig(file.path(), [ack_fd] {
    const char ack = 'a';
    if (::send(ack_fd, &ack, 1, MSG_NOSIGNAL) != 1) throw_errno("send ack");
  });
  ChildProcess child({"--processor-child", "append", "--processor-file",
                      file.path().string(), "--processor-events", std::to_string(total)},
                     socket.childs());
  socket.close_child_end();
  child.wait();
  rig.processor.stop();
  return rig.seen.timed(warmup, total);
}

// The baselines of figures 8 and 9: the raw commit alone. One thread commits one event
// per transaction (BEGIN IMMEDIATE, INSERT, COMMIT under synchronous=FULL), timing
// each commit: what the append costs before any processor is involved.
std::vector<std::int64_t> latency_raw_commit(Context& ctx) {
  const std::size_t warmup = ctx.sizes().latency_warmup;
  const std::size_t total = warmup + ctx.sizes().latency_events;
  const ScratchFile file(ctx.new_path("latency-baseline"));
  create_schema(file.path());
  RawDb db(file.path(), RawDb::Sync::full);
  RawAppender appender(db, ctx.workload());
  std::vector<std::int64_t> samples;
  samples.reserve(total);
  for (std::size_t i = 0; i < total; ++i) {
    const std::int64_t sent = now_ns();
    appender.append_one(i, i);
    if (i >= warmup) samples.push_back(now_ns() - sent);
  }
  return samples;
}

// Figure 8's ceilings: a commit (`append(i)` commits event i), then one hand-off to a
// thread standing in for a handler (a mutex and a condition variable, as little as any
// delivery off the appending thread needs), which records now - send time and
// acknowledges. The processor's path has one more hand-off (the loop, then a worker)
// and a read of the event back from the file.
std::vector<std::int64_t> latency_handoff(Context& ctx,
                                          const std::function<void(std::size_t)>& append) {
  const std::size_t warmup = ctx.sizes().latency_warmup;
  const std::size_t total = warmup + ctx.sizes().latency_events;
  std::vector<std::int64_t> samples;
  samples.reserve(total);
  std::mutex mu;
  std::condition_variable cv;
  std::int64_t sent_at = -1;  // guarded by mu: an event for the handler
  bool acked = false;         // guarded by mu
  bool done = false;          // guarded by mu
  std::thread handler([&] {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [&] { return sent_at >= 0 || done; });
      if (done) return;
      samples.push_back(now_ns() - sent_at);
      sent_at = -1;
      acked = true;
      cv.notify_all();
    }
  });
  for (std::size_t i = 0; i < total; ++i) {
    const std::int64_t sent = now_ns();
    append(i);
    std::unique_lock lock(mu);
    sent_at = sent;
    cv.notify_all();
    cv.wait(lock, [&] { return acked; });
    acked = false;
  }
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  handler.join();
  samples.erase(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(warmup));
  return samples;
}

// The raw commit of the baseline, then the hand-off.
std::vector<std::int64_t> latency_raw_handoff(Context& ctx) {
  const ScratchFile file(ctx.new_path("latency-handoff"));
  create_schema(file.path());
  RawDb db(file.path(), RawDb::Sync::full);
  RawAppender appender(db, ctx.workload());
  return latency_handoff(ctx, [&](std::size_t i) { appender.append_one(i, i); });
}

// Store::append of figure 8's events (no processor), then the hand-off: what is left
// for the processor once the append itself is paid for.
std::vector<std::int64_t> latency_store_handoff(Context& ctx) {
  const ScratchFile file(ctx.new_path("latency-store-handoff"));
  Store store = Store::open(file.path());
  return latency_handoff(
      ctx, [&](std::size_t i) { store.append(ping_stream(i), ping(now_ns())); });
}

FigureSpec latency_figure(Context& ctx, bool other_process, double q) {
  FigureSpec spec;
  spec.name = std::string("append-to-handler latency ") + (q == 0.5 ? "p50" : "p99") +
              (other_process ? ", other process" : ", in-process");
  spec.unit = "ms";
  spec.better = Better::lower;
  // From another process: p50 <= 0.5 ms, p99 <= 1.5 ms (woken by the change watch).
  // In-process: p99 at most 1.3 times the raw commit's p99 of the same run.
  if (other_process)
    spec.threshold = Threshold::eventlite_at_most(q == 0.5 ? 0.5 : 1.5);
  else if (q != 0.5)
    spec.threshold = Threshold::ratio_at_most(1.3);
  spec.eventlite = [&ctx, other_process, q] {
    return quantile_ms(
        other_process ? latency_other_process(ctx) : latency_in_process(ctx), q);
  };
  spec.baseline = [&ctx, q] { return quantile_ms(latency_raw_commit(ctx), q); };
  return spec;
}

// ---- idle CPU -------------------------------------------------------------------

// User plus system CPU time of this whole process (every thread) so far.
std::chrono::microseconds process_cpu() {
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) != 0) throw_errno("getrusage");
  auto us = [](const timeval& t) {
    return std::chrono::seconds(t.tv_sec) + std::chrono::microseconds(t.tv_usec);
  };
  return us(usage.ru_utime) + us(usage.ru_stime);
}

// The CPU this process uses over `window`, in % of one core; the calling thread
// sleeps meanwhile, so what is counted is the other threads' work.
double cpu_percent_over(std::chrono::milliseconds window) {
  const auto before = process_cpu();
  const Stopwatch wall;
  std::this_thread::sleep_for(window);
  const auto used = process_cpu() - before;
  return 100.0 * std::chrono::duration<double>(used).count() / wall.seconds();
}

// Figure 11: a started processor (default options) with one no-op subscription on a
// new store, idle: nothing is appended while it is measured.
double idle_cpu_eventlite(Context& ctx) {
  const ScratchFile file(ctx.new_path("idle-eventlite"));
  auto store = Store::open(file.path());
  Processor processor(store);
  processor.subscribe("idle", [](const eventlite::Context&) {});
  processor.start();
  if (!processor.wait_idle(10s)) throw std::runtime_error("the processor did not start");
  const double percent = cpu_percent_over(ctx.sizes().idle_window);
  processor.stop();
  return percent;
}

// Figure 11's baseline: the least a loop that looks for other processes' commits by
// polling can do: one thread running PRAGMA data_version on its own connection every
// change_check_interval (2 ms), and nothing else.
double idle_cpu_baseline(Context& ctx) {
  const ScratchFile file(ctx.new_path("idle-baseline"));
  create_schema(file.path());
  RawDb db(file.path(), RawDb::Sync::full);
  Statement version(db.get(), "PRAGMA data_version");
  const auto interval = ProcessorOptions{}.change_check_interval;
  std::atomic<bool> done{false};
  std::thread poller([&] {
    auto next = std::chrono::steady_clock::now();
    while (!done) {
      next += interval;
      std::this_thread::sleep_until(next);
      sqlite3_step(version.get());
      sqlite3_reset(version.get());
    }
  });
  const double percent = cpu_percent_over(ctx.sizes().idle_window);
  done = true;
  poller.join();
  return percent;
}

// ---- the change watch, ahead of its integration -----------------------------------

// Figure 12's idle twin: the loop the integration will have, idle: an io_context
// thread with a ChangeWatch on the file and the fallback poll (PRAGMA data_version)
// every poll_interval (1 s). Its baseline is figure 11's: the 2 ms poll alone.
double idle_cpu_watch_loop(Context& ctx) {
  const ScratchFile file(ctx.new_path("idle-watch"));
  create_schema(file.path());
  RawDb db(file.path(), RawDb::Sync::full);
  Statement version(db.get(), "PRAGMA data_version");
  auto check = [&] {
    sqlite3_step(version.get());
    sqlite3_reset(version.get());
    return detail::ChangeWatch::Check::unchanged;
  };
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::optional<detail::ChangeWatch> change_watch(std::in_place, io, file.path(), check);
  if (!change_watch->active())
    throw std::runtime_error("the change watch is inactive: " +
                             change_watch->inactive_reason());
  boost::asio::steady_timer timer(io);
  bool stopping = false;  // the loop thread
  std::function<void()> arm = [&] {
    timer.expires_after(ProcessorOptions{}.poll_interval);
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      check();
      arm();
    });
  };
  arm();
  std::thread loop([&] { io.run(); });
  const double percent = cpu_percent_over(ctx.sizes().idle_window);
  boost::asio::post(io, [&] {
    stopping = true;
    timer.cancel();
    change_watch.reset();
    guard.reset();
  });
  loop.join();
  return percent;
}

// Figure 12: what a loop woken by detail::ChangeWatch reaches. A child process
// appends (figure 9's appender: its own Store, durability full, a random 0-3 ms pause
// before each append, one acknowledgement awaited after each); this process runs an
// io_context thread that, when woken, checks PRAGMA data_version on its read
// connection and, on a change, reads the new events, records now - send time and
// acknowledges each on the child's stdin. `watch` false: the same loop woken instead
// by a timer every change_check_interval (2 ms), as the processor is today.
// Handlers, the worker pool and checkpoints are left out: this measures the wake-up.
std::vector<std::int64_t> wake_latency(Context& ctx, bool watch) {
  const std::size_t warmup = ctx.sizes().latency_warmup;
  const std::size_t total = warmup + ctx.sizes().latency_events;
  const ScratchFile file(ctx.new_path(watch ? "wake-watch" : "wake-poll"));
  { auto store = Store::open(file.path()); }  // the schema; the child appends
  RawDb reader(file.path(), RawDb::Sync::full);
  Statement version(reader.get(), "PRAGMA data_version");
  Statement fresh(reader.get(),
                  "SELECT seq, data FROM eventlite_events WHERE seq > ?1 ORDER BY seq");
  SocketPair socket;
  const int ack_fd = socket.ours();

  // The loop thread only, until it is joined.
  std::vector<std::int64_t> samples;
  samples.reserve(total);
  std::int64_t seen_version = -1;
  std::int64_t last = 0;
  bool failed = false;
  using Check = detail::ChangeWatch::Check;
  auto check = [&]() -> Check {
    if (sqlite3_step(version.get()) != SQLITE_ROW) failed = true;
    const std::int64_t v = sqlite3_column_int64(version.get(), 0);
    sqlite3_reset(version.get());
    if (v == seen_version) return Check::unchanged;
    seen_version = v;
    fresh.bind(1, last);
    while (sqlite3_step(fresh.get()) == SQLITE_ROW) {
      const std::int64_t now = now_ns();
      last = sqlite3_column_int64(fresh.get(), 0);
      const auto* data =
          reinterpret_cast<const char*>(sqlite3_column_text(fresh.get(), 1));
      samples.push_back(now - sent_ns_of(std::string_view(data)));
      const char ack = 'a';
      if (::send(ack_fd, &ack, 1, MSG_NOSIGNAL) != 1) failed = true;
    }
    sqlite3_reset(fresh.get());
    return Check::changed;
  };
  check();  // the starting data_version

  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::optional<detail::ChangeWatch> change_watch;
  boost::asio::steady_timer timer(io);
  std::function<void()> arm;
  bool stopping = false;  // the loop thread: a wait completed before cancel() still runs
  if (watch) {
    change_watch.emplace(io, file.path(), check);
    if (!change_watch->active())
      throw std::runtime_error("the change watch is inactive: " +
                               change_watch->inactive_reason());
  } else {
    arm = [&] {
      timer.expires_after(ProcessorOptions{}.change_check_interval);
      timer.async_wait([&](const boost::system::error_code& ec) {
        if (ec || stopping) return;
        check();
        arm();
      });
    };
    arm();
  }
  std::thread loop([&] { io.run(); });
  ChildProcess child({"--processor-child", "append", "--processor-file",
                      file.path().string(), "--processor-events", std::to_string(total)},
                     socket.childs());
  socket.close_child_end();
  child.wait();
  boost::asio::post(io, [&] {
    stopping = true;
    timer.cancel();
    change_watch.reset();  // on the loop thread, as the header asks
    guard.reset();
  });
  loop.join();
  if (failed) throw std::runtime_error("the wake-up loop failed to read or acknowledge");
  if (samples.size() != total)
    throw std::runtime_error("the loop saw " + std::to_string(samples.size()) +
                             " events, expected " + std::to_string(total));
  return {samples.begin() + static_cast<std::ptrdiff_t>(warmup), samples.end()};
}

// ---- child modes ------------------------------------------------------------------

// Figure 9's appender: one event at a time, then one acknowledgement byte on stdin.
// Before each append it pauses a random 0-3 ms (untimed): the acknowledgement comes
// right after one of the processor's change checks, so an appender that sent at once
// would always commit just after a check and wait out the whole check interval;
// commits of independent writers fall anywhere in it.
int append_child(const std::filesystem::path& file, std::size_t events) {
  auto store = Store::open(file, {.create_if_missing = false});
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> pause_us(0, 3000);
  for (std::size_t i = 0; i < events; ++i) {
    std::this_thread::sleep_for(std::chrono::microseconds(pause_us(rng)));
    store.append(ping_stream(i), ping(now_ns()));
    pollfd in{STDIN_FILENO, POLLIN, 0};
    const int ready =
        ::poll(&in, 1, static_cast<int>(std::chrono::milliseconds(kSeenTimeout).count()));
    char ack = 0;
    if (ready != 1 || ::read(STDIN_FILENO, &ack, 1) != 1) {
      std::cerr << "eventlite_bench: no acknowledgement for event " << i << '\n';
      return 1;
    }
  }
  return 0;
}

}  // namespace

void add_dispatch_figures(Bench& bench, Context& ctx) {
  bench.add(dispatch_figure(ctx, 1));
  bench.add(dispatch_figure(ctx, 1, true));
  bench.add(dispatch_figure(ctx, ctx.sizes().subscriptions));
  bench.add(dispatch_figure(ctx, ctx.sizes().subscriptions, true));
}

void add_latency_figures(Bench& bench, Context& ctx) {
  for (bool other_process : {false, true}) {
    for (double q : {0.5, 0.99}) bench.add(latency_figure(ctx, other_process, q));
    if (other_process) continue;
    // What any delivery off the appending thread costs here: figure 8's ceiling.
    bench.add(FigureSpec{
        .name = "ceiling: raw commit and one hand-off to a handler thread, p99",
        .unit = "ms",
        .better = Better::lower,
        .threshold = std::nullopt,
        .eventlite = [&ctx] { return quantile_ms(latency_raw_handoff(ctx), 0.99); },
        .baseline = [&ctx] { return quantile_ms(latency_raw_commit(ctx), 0.99); },
    });
    bench.add(FigureSpec{
        .name = "ceiling: Store::append and one hand-off to a handler thread, p99",
        .unit = "ms",
        .better = Better::lower,
        .threshold = std::nullopt,
        .eventlite = [&ctx] { return quantile_ms(latency_store_handoff(ctx), 0.99); },
        .baseline = [&ctx] { return quantile_ms(latency_raw_commit(ctx), 0.99); },
    });
  }
}

void add_dispatch_rss_figure(Bench& bench, Context& ctx) {
  const std::size_t n = ctx.sizes().stored_events;
  // Each drain runs in a fresh process on a copy of its own, so its VmHWM is the
  // drain's alone.
  auto child = [&ctx, n](const char* mode) {
    const ScratchFile file(ctx.new_path("dispatch-rss"));
    copy_file_synced(ctx.fixture(n), file.path());
    std::istringstream out(
        run_self({"--processor-child", mode, "--processor-file", file.path().string()}));
    std::size_t kib = 0;
    Seq position = 0;
    if (!(out >> kib >> position))
      throw std::runtime_error("unexpected output from the drain child process");
    if (position != static_cast<Seq>(n))
      throw std::runtime_error("the drain child stopped at " + std::to_string(position));
    return static_cast<double>(kib) / 1024;
  };
  bench.add(FigureSpec{.name = "peak RSS, dispatch " + count_label(n) + " backlog",
                       .unit = "MiB",
                       .better = Better::lower,
                       .threshold = Threshold::eventlite_below(64),
                       .eventlite = [child] { return child("drain-eventlite"); },
                       .baseline = [child] { return child("drain-baseline"); }});
}

void add_idle_cpu_figure(Bench& bench, Context& ctx) {
  const auto window =
      std::chrono::duration_cast<std::chrono::seconds>(ctx.sizes().idle_window);
  bench.add(FigureSpec{.name = "CPU of an idle started processor, " +
                               std::to_string(window.count()) + " s",
                       .unit = "% core",
                       .better = Better::lower,
                       .threshold = Threshold::eventlite_at_most(1),
                       .eventlite = [&ctx] { return idle_cpu_eventlite(ctx); },
                       .baseline = [&ctx] { return idle_cpu_baseline(ctx); }});
}

void add_wake_latency_figures(Bench& bench, Context& ctx) {
  const auto window =
      std::chrono::duration_cast<std::chrono::seconds>(ctx.sizes().idle_window);
  bench.add(FigureSpec{.name = "CPU of an idle change-watch loop, " +
                               std::to_string(window.count()) + " s (prototype)",
                       .unit = "% core",
                       .better = Better::lower,
                       .threshold = std::nullopt,
                       .eventlite = [&ctx] { return idle_cpu_watch_loop(ctx); },
                       .baseline = [&ctx] { return idle_cpu_baseline(ctx); }});
  for (double q : {0.5, 0.99})
    bench.add(FigureSpec{
        .name = std::string("change watch wake-up latency ") +
                (q == 0.5 ? "p50" : "p99") + ", other process (prototype)",
        .unit = "ms",
        .better = Better::lower,
        .threshold = std::nullopt,
        .eventlite = [&ctx, q] { return quantile_ms(wake_latency(ctx, true), q); },
        .baseline = [&ctx, q] { return quantile_ms(wake_latency(ctx, false), q); }});
}

int run_processor_child(std::string_view mode, const std::filesystem::path& file,
                        std::size_t events) {
  if (mode == "append") return append_child(file, events);
  Seq position = 0;
  if (mode == "drain-eventlite") {
    auto store = Store::open(file, {.create_if_missing = false});
    Processor processor(store);
    processor.subscribe(subscription_name(0), [](const eventlite::Context&) {});
    processor.start();
    drain(processor, store.head());
    position = processor.metrics().at(0).position;
    processor.stop();
  } else if (mode == "drain-baseline") {
    RawDb db(file, RawDb::Sync::full);
    RawCheckpointLoop loop(db, subscription_name(0));
    loop.drain();
    position = loop.position();
  } else {
    throw std::invalid_argument(
        "--processor-child must be append, drain-eventlite or "
        "drain-baseline");
  }
  std::cout << peak_rss_kib() << ' ' << position << '\n';
  return 0;
}

}  // namespace eventlite::bench
