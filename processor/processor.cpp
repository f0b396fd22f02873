// The processor's loop.
//
// One thread (the loop: an io_context, or the caller of run_until_idle) owns every
// subscription's state and a read connection of its own. It wakes when this process
// commits (the store's notifier), when another process commits (PRAGMA data_version
// on its connection, checked every change_check_interval: a few microseconds, no
// table is read), when a retry, a lease renewal or a periodic task falls due, and
// when a unit of work finishes. Each wake-up is a step:
//   1. leases: renew the ones held, take the ones free or expired (fencing token + 1);
//   2. periodic tasks that are due and whose lease this process wins;
//   3. for every leased subscription with no unit in flight: owed deliveries that are
//      due (retries, and deliveries waiting behind one) form a unit; otherwise the
//      next batch of events past its position does. Batches are read once for all
//      subscriptions at the same position (a small cache of full batches), so ten
//      subscriptions cost one read, not ten;
//   4. checkpoints of finished units are committed, at most every
//      checkpoint_interval, at once when a unit wrote delivery rows.
// A unit runs on the worker pool: split into lanes by stream hash (one stream's events
// stay in one lane, in seq order; a subscription's next unit starts only after this
// one finished, so no strand is needed) or, for a transactional subscription, in one
// write transaction that checks the fence, runs each delivery in a savepoint, writes
// the rows and moves the checkpoint, and commits.
//
// Invariants: a subscription's position only moves past an event that is done or
// has a row in eventlite_deliveries, written in the same transaction; a checkpoint is
// only written while the file still shows this owner's lease token and the position
// this owner last saw (another owner, or a rewind, makes the write fail and the
// subscription is reloaded).

#include "eventlite/processor.hpp"

#include <spdlog/logger.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "eventlite/transaction.hpp"
#include "processor/delivery.hpp"
#include "processor/queries.hpp"
#include "store/clock.hpp"
#include "store/sqlite_util.hpp"
#include "store/store_impl.hpp"

namespace eventlite {

namespace asio = boost::asio;
using detail::Queries;
using detail::RowWrite;
using detail::SubscriptionState;
using detail::WorkItem;
using SysTime = std::chrono::system_clock::time_point;

namespace {

constexpr std::size_t kCachedBatches = 16;
// Caps on what one batch and the batch cache hold in event data and metadata.
constexpr std::size_t kBatchBytes = std::size_t{4} << 20;
constexpr std::size_t kCacheBytes = std::size_t{16} << 20;
constexpr Seq kNoStop = std::numeric_limits<Seq>::max();
// After a unit failed on a storage error, wait at least this long before redoing it.
constexpr std::chrono::milliseconds kStoragePause{500};

std::string default_owner() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::random_device rd;
  return fmt::format("{}:{}:{:06x}", host, getpid(), rd() & 0xffffff);
}

struct Batch {
  std::vector<Event> events;
  std::size_t bytes = 0;  // data and metadata
  bool full = false;      // stopped at a cap: more may follow at once
};

struct PeriodicTask {
  std::string name;
  std::string lease_name;
  std::chrono::milliseconds interval{};
  std::function<void()> fn;
  SysTime check_at{};  // the loop's thread only
  std::atomic<bool> running{false};
};

}  // namespace

namespace detail {

// A unit of work for one subscription: a batch of new events (last > 0) or owed
// deliveries that fell due.
struct Unit {
  SubscriptionState* sub = nullptr;
  std::shared_ptr<const Batch> batch;   // keeps the batch's events alive
  std::deque<Event> owned;              // owed units: the events, loaded by seq
  std::deque<std::string> park_errors;  // errors of items parked without delivery
  std::vector<std::vector<WorkItem>> lanes;
  std::vector<std::vector<RowWrite>> lane_rows;
  std::vector<std::exception_ptr> lane_errors;
  std::unordered_set<std::string> blocked;
  std::atomic<Seq> stop_at{kNoStop};
  std::atomic<int> remaining{0};
  std::atomic<std::size_t> delivered{0};
  Seq last = 0;             // batch units: the last seq read (position once done)
  std::uint64_t epoch = 0;  // the subscription's lease epoch at dispatch
  // Transactional units: done in their own transaction.
  Seq expected = 0;
  std::int64_t token = 0;
  bool committed = false;
  bool lost = false;
  Seq new_position = 0;
};

}  // namespace detail

using detail::Unit;

struct Processor::Impl {
  Impl(const Store& s, ProcessorOptions o);
  ~Impl() {
    stop();
    release_leases();  // held since the last run_until_idle
  }

  // Public members' work.
  void subscribe(std::string name, Handler handler, SubscriptionOptions o);
  void every(std::string name, std::chrono::milliseconds interval,
             std::function<void()> task);
  void start();
  void stop() noexcept;
  std::size_t run_until_idle();
  bool wait_idle(std::chrono::milliseconds timeout);
  std::vector<SubscriptionMetrics> metrics() const;

  // The loop.
  void open_loop_connection();
  void kick();
  void arm_timer();
  void safe_step() noexcept;
  bool step();
  void check_changes();
  void maintain_leases(SysTime now);
  void lose(SubscriptionState& sub, SysTime now);
  void run_tasks(SysTime now);
  bool schedule(SubscriptionState& sub, SysTime now);
  std::shared_ptr<const Batch> read_batch(Seq after);
  void dispatch_batch(SubscriptionState& sub, std::shared_ptr<const Batch> batch);
  void dispatch_owed(SubscriptionState& sub, const std::vector<std::string>& streams);
  void dispatch(const std::shared_ptr<Unit>& unit, std::vector<WorkItem> items);
  void apply_unrecorded(Unit& unit, std::vector<WorkItem>& items);
  void run_lane(const std::shared_ptr<Unit>& unit, std::size_t lane) noexcept;
  void run_transactional(Unit& unit) noexcept;
  void complete(const std::shared_ptr<Unit>& unit);
  void finish(Unit& unit);
  void commit(bool force);
  void release_leases() noexcept;
  void finish_stop_if_drained();
  void publish_idle(bool dispatched, std::uint64_t requests);
  std::vector<SubscriptionState*> subscriptions() const;
  std::vector<PeriodicTask*> periodic_tasks() const;

  Store store;                              // constant after construction
  std::shared_ptr<Store::Impl> store_impl;  // constant after construction
  ProcessorOptions options;                 // constant after construction
  std::shared_ptr<const Clock> clock;       // constant after construction
  std::shared_ptr<spdlog::logger> logger;   // constant after construction
  std::string owner;                        // constant after construction
  detail::DeliveryEnv env;                  // constant after construction

  mutable std::mutex mu;
  std::vector<std::unique_ptr<SubscriptionState>> subs;  // guarded by mu (elements live
                                                         // as long as the processor)
  std::vector<std::unique_ptr<PeriodicTask>> tasks;      // guarded by mu, likewise
  bool started = false;                                  // guarded by mu
  bool driving = false;  // guarded by mu: run_until_idle is running

  // The driving thread only (the loop thread, or run_until_idle's caller).
  std::unique_ptr<SQLite::Database> conn;
  std::unique_ptr<Queries> reads;
  std::int64_t data_version = -1;
  std::uint64_t generation = 1;
  std::chrono::steady_clock::time_point last_poll{};
  std::chrono::steady_clock::time_point last_commit{};
  std::chrono::steady_clock::time_point commit_retry_at{};
  int commit_failures = 0;
  std::map<Seq, std::shared_ptr<const Batch>> cache;
  std::size_t cached_bytes = 0;
  int in_flight = 0;
  bool inline_mode = false;
  bool stopping = false;
  std::size_t deliveries = 0;
  std::unordered_map<const SubscriptionState*, std::uint64_t> epochs;
  // Subscriptions held back after a unit failed: on a storage error, for a growing
  // real-time pause; after a delivery SQLite rolled back, until its retry is due on
  // the injected clock.
  struct Pause {
    std::chrono::steady_clock::time_point until{};
    SysTime held_until{};
    int failures = 0;
  };
  std::unordered_map<const SubscriptionState*, Pause> paused;
  std::mt19937_64 rng{std::random_device{}()};

  // Started mode.
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::unique_ptr<asio::steady_timer> timer;
  std::unique_ptr<asio::thread_pool> pool;
  std::thread loop_thread;
  std::atomic<bool> kick_pending{false};
  int step_failures = 0;                                     // the loop thread only
  std::chrono::steady_clock::time_point step_pause_until{};  // the loop thread only
  std::mutex stop_mu;                                        // one stop() at a time
  std::uint64_t listener = 0;

  std::mutex idle_mu;
  std::condition_variable idle_cv;
  std::uint64_t idle_served = 0;  // guarded by idle_mu
  std::atomic<std::uint64_t> idle_requests{0};
};

namespace {

void validate(const RetryPolicy& r, const std::string& what) {
  if (r.max_attempts < 1)
    throw InvalidArgument(what + ": retry.max_attempts must be at least 1");
  if (r.base.count() < 0 || r.cap.count() < 0)
    throw InvalidArgument(what + ": retry waits must not be negative");
  if (!(r.factor >= 1.0)) throw InvalidArgument(what + ": retry.factor must be >= 1");
  if (!(r.jitter >= 0.0 && r.jitter <= 1.0))
    throw InvalidArgument(what + ": retry.jitter must be within [0, 1]");
}

}  // namespace

Processor::Impl::Impl(const Store& s, ProcessorOptions o)
    : store(detail::StoreAccess::make(detail::StoreAccess::impl(s))),
      store_impl(detail::StoreAccess::impl(s)),
      options(std::move(o)) {
  if (!store_impl) throw InvalidArgument("processor: the store was moved from");
  if (store_impl->options.read_only)
    throw InvalidArgument("processor: the store is read-only");
  if (options.batch_size == 0) throw InvalidArgument("processor: batch_size must be > 0");
  if (options.worker_threads == 0)
    throw InvalidArgument("processor: worker_threads must be > 0");
  if (options.change_check_interval.count() <= 0 || options.poll_interval.count() <= 0)
    throw InvalidArgument("processor: check and poll intervals must be > 0");
  if (options.lease_time.count() < 3)
    throw InvalidArgument("processor: lease_time must be at least 3 ms");
  if (options.checkpoint_interval.count() < 0)
    throw InvalidArgument("processor: checkpoint_interval must not be negative");
  validate(options.retry, "processor");
  clock = options.clock ? options.clock : std::make_shared<SystemClock>();
  logger = options.logger ? options.logger : store_impl->logger;
  owner = options.owner.empty() ? default_owner() : options.owner;
  env = detail::DeliveryEnv{&options.observer, logger.get(), clock.get()};
}

void Processor::Impl::subscribe(std::string name, Handler handler,
                                SubscriptionOptions o) {
  if (name.empty() || name.size() > 1024)
    throw InvalidArgument("subscribe: a subscription name must be 1 to 1024 bytes");
  if (name.starts_with("every:"))
    throw InvalidArgument("subscribe: \"every:\" names are kept for periodic tasks");
  if (!handler) throw InvalidArgument("subscribe: the handler is empty");
  auto sub = std::make_unique<SubscriptionState>();
  sub->retry = o.retry.value_or(options.retry);
  validate(sub->retry, "subscription \"" + name + "\"");
  sub->name = std::move(name);
  sub->handler = std::move(handler);
  sub->types.insert(o.types.begin(), o.types.end());
  sub->options = std::move(o);
  {
    std::lock_guard lock(mu);
    for (const auto& s : subs)
      if (s->name == sub->name)
        throw InvalidArgument("subscribe: \"" + sub->name + "\" is already subscribed");
    subs.push_back(std::move(sub));
  }
  kick();
}

void Processor::Impl::every(std::string name, std::chrono::milliseconds interval,
                            std::function<void()> fn) {
  if (name.empty() || name.size() > 1000)
    throw InvalidArgument("every: a task name must be 1 to 1000 bytes");
  if (interval.count() <= 0) throw InvalidArgument("every: the interval must be > 0");
  if (!fn) throw InvalidArgument("every: the task is empty");
  auto task = std::make_unique<PeriodicTask>();
  task->lease_name = "every:" + name;
  task->name = std::move(name);
  task->interval = interval;
  task->fn = std::move(fn);
  {
    std::lock_guard lock(mu);
    for (const auto& t : tasks)
      if (t->name == task->name)
        throw InvalidArgument("every: \"" + task->name + "\" is already registered");
    tasks.push_back(std::move(task));
  }
  kick();
}

std::vector<SubscriptionState*> Processor::Impl::subscriptions() const {
  std::lock_guard lock(mu);
  std::vector<SubscriptionState*> out;
  out.reserve(subs.size());
  for (const auto& s : subs) out.push_back(s.get());
  return out;
}

std::vector<PeriodicTask*> Processor::Impl::periodic_tasks() const {
  std::lock_guard lock(mu);
  std::vector<PeriodicTask*> out;
  for (const auto& t : tasks) out.push_back(t.get());
  return out;
}

void Processor::Impl::open_loop_connection() {
  if (conn) return;
  conn = detail::open_connection(store_impl->config, detail::Role::reader);
  reads = std::make_unique<Queries>(conn->getHandle());
}

// ---- started mode ---------------------------------------------------------------

void Processor::Impl::start() {
  {
    std::lock_guard lock(mu);
    if (started) throw InvalidArgument("processor: already started");
    if (driving) throw InvalidArgument("processor: run_until_idle is running");
    started = true;
  }
  try {
    open_loop_connection();
  } catch (...) {
    std::lock_guard lock(mu);
    started = false;
    throw;
  }
  inline_mode = false;
  stopping = false;
  kick_pending = false;
  io.restart();
  work.emplace(io.get_executor());
  timer = std::make_unique<asio::steady_timer>(io);
  pool = std::make_unique<asio::thread_pool>(options.worker_threads);
  listener = store_impl->notifier->add_listener([this] { kick(); });
  arm_timer();
  asio::post(io, [this] { safe_step(); });
  logger->info("processor started: owner={} workers={} batch={}", owner,
               options.worker_threads, options.batch_size);
  loop_thread = std::thread([this] {
    try {
      io.run();
    } catch (const std::exception& e) {
      logger->error("processor loop ended: {}", e.what());
    }
  });
}

void Processor::Impl::stop() noexcept {
  std::lock_guard stop_lock(stop_mu);
  {
    std::lock_guard lock(mu);
    if (!started) return;
  }
  asio::post(io, [this] {
    stopping = true;
    finish_stop_if_drained();
  });
  if (loop_thread.joinable()) loop_thread.join();
  store_impl->notifier->remove_listener(listener);
  pool->join();
  pool.reset();
  timer.reset();
  // Anything a unit posted after the loop ended is dropped with the io_context's
  // queue on restart; nothing is in flight once the loop ended drained.
  {
    std::lock_guard lock(mu);
    started = false;
  }
  {
    std::lock_guard lock(idle_mu);
    idle_served = idle_requests.load();
  }
  idle_cv.notify_all();
  logger->info("processor stopped: owner={}", owner);
}

void Processor::Impl::finish_stop_if_drained() {
  if (in_flight > 0) return;
  commit(true);
  release_leases();
  if (timer) timer->cancel();
  work.reset();
  io.stop();
}

void Processor::Impl::kick() {
  bool was = kick_pending.exchange(true);
  if (was) return;
  asio::post(io, [this] {
    kick_pending = false;
    ++generation;
    safe_step();
  });
}

void Processor::Impl::arm_timer() {
  timer->expires_after(options.change_check_interval);
  timer->async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping) return;
    safe_step();
    arm_timer();
  });
}

void Processor::Impl::safe_step() noexcept {
  if (stopping) return;
  const auto steady_now = std::chrono::steady_clock::now();
  if (steady_now < step_pause_until) return;
  try {
    step();
    step_failures = 0;
  } catch (const std::exception& e) {
    // A broken file would fail every tick: back off, up to a second, and say so once
    // per pause, not 500 times a second.
    ++step_failures;
    const auto pause = std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(10) * (1 << std::min(step_failures, 7)),
        std::chrono::seconds(1));
    step_pause_until = steady_now + pause;
    logger->error("processor step failed (retrying in {}ms): {}", pause.count(),
                  e.what());
  }
}

bool Processor::Impl::wait_idle(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(mu);
    if (!started) throw InvalidArgument("wait_idle: the processor is not started");
  }
  const std::uint64_t ticket = ++idle_requests;
  asio::post(io, [this] {
    ++generation;
    safe_step();
  });
  std::unique_lock lock(idle_mu);
  return idle_cv.wait_for(lock, timeout, [&] { return idle_served >= ticket; });
}

// ---- run_until_idle -------------------------------------------------------------

std::size_t Processor::Impl::run_until_idle() {
  {
    std::lock_guard lock(mu);
    if (started) throw InvalidArgument("run_until_idle: the processor is started");
    if (driving) throw InvalidArgument("run_until_idle: already running");
    driving = true;
  }
  struct Done {
    Impl* self;
    ~Done() {
      std::lock_guard lock(self->mu);
      self->driving = false;
    }
  } done{this};
  open_loop_connection();
  inline_mode = true;
  stopping = false;
  deliveries = 0;
  ++generation;
  while (step()) {
  }
  commit(true);
  return deliveries;
}

// ---- a step ---------------------------------------------------------------------

bool Processor::Impl::step() {
  const std::uint64_t requests = idle_requests.load();
  const SysTime now = clock->now();
  check_changes();
  maintain_leases(now);
  run_tasks(now);
  bool dispatched = false;
  for (SubscriptionState* sub : subscriptions()) {
    if (stopping) break;
    auto p = paused.find(sub);
    if (p != paused.end() && (std::chrono::steady_clock::now() < p->second.until ||
                              now < p->second.held_until))
      continue;
    if (schedule(*sub, now)) dispatched = true;
  }
  // Checkpoints wait for checkpoint_interval even when idle: committing after every
  // event of a trickle would add a commit (an fsync under full durability) per event,
  // competing with the appends. Someone waiting in wait_idle() gets it at once.
  bool waited_for;
  {
    std::lock_guard lock(idle_mu);
    waited_for = requests > idle_served;
  }
  commit(waited_for && !dispatched && in_flight == 0);
  publish_idle(dispatched, requests);
  return dispatched;
}

void Processor::Impl::check_changes() {
  const std::int64_t v = reads->data_version();
  if (v != data_version) {
    data_version = v;
    ++generation;
  }
  const auto steady_now = std::chrono::steady_clock::now();
  if (steady_now - last_poll >= options.poll_interval) {
    last_poll = steady_now;
    ++generation;
  }
}

void Processor::Impl::publish_idle(bool dispatched, std::uint64_t requests) {
  if (inline_mode || dispatched || in_flight > 0) return;
  for (SubscriptionState* sub : subscriptions()) {
    if (!sub->leased) continue;
    if (sub->position != sub->committed || !sub->pending_rows.empty()) return;
    if (sub->more || sub->read_generation != generation) return;
    if (sub->owed > 0 && !sub->stopped) return;
  }
  {
    std::lock_guard lock(idle_mu);
    if (idle_served >= requests) return;
    idle_served = requests;
  }
  idle_cv.notify_all();
}

// ---- leases ---------------------------------------------------------------------

void Processor::Impl::maintain_leases(SysTime now) {
  // A standby looks at the lease when the file changed: a holder that stopped
  // released it, and it is taken at once rather than when it would have expired.
  const std::string now_text_peek = detail::format_time(now);
  for (SubscriptionState* sub : subscriptions()) {
    if (sub->leased || sub->lease_check_at <= now || sub->lease_generation == generation)
      continue;
    sub->lease_generation = generation;
    auto row = reads->read_lease(sub->name);
    if (!row || row->expires <= now_text_peek) sub->lease_check_at = now;
  }
  std::vector<SubscriptionState*> due;
  for (SubscriptionState* sub : subscriptions())
    if (sub->lease_check_at <= now && !(sub->in_flight && !sub->leased))
      due.push_back(sub);
  if (due.empty() || stopping) return;

  enum class Result { acquired, renewed, held_elsewhere };
  struct Change {
    SubscriptionState* sub;
    Result result;
    std::int64_t token = 0;
    Seq position = 0;
    SysTime expires{};
  };
  std::vector<Change> changes;
  const std::string now_text = detail::format_time(now);
  const std::string expires_text = detail::format_time(now + options.lease_time);
  try {
    Transaction txn = store.transaction();
    Queries q(txn.database().getHandle());
    Seq head = -1;
    for (SubscriptionState* sub : due) {
      auto row = q.read_lease(sub->name);
      Change c{sub, Result::held_elsewhere};
      // Ours only if this instance holds it (owner and token); an owner name alone
      // may be shared by a restarted or a misconfigured second process.
      const bool ours = row && row->owner == owner && row->token == sub->token;
      if (ours && sub->leased) {
        c.result = Result::renewed;
        c.token = row->token;
      } else if (!row || ours || row->expires <= now_text) {
        c.result = Result::acquired;
        c.token = row ? row->token + 1 : 1;
      } else {
        c.expires = detail::parse_time(row->expires).value_or(now + options.lease_time);
      }
      if (c.result == Result::held_elsewhere) {
        changes.push_back(c);
        continue;
      }
      q.write_lease(sub->name, owner, expires_text, c.token);
      if (c.result == Result::acquired) {
        Seq start = 0;
        if (sub->options.start_at == StartAt::head) {
          if (head < 0) head = q.head();
          start = head;
        }
        c.position = q.ensure_subscription(sub->name, start, now_text);
      }
      changes.push_back(c);
    }
    txn.commit();
  } catch (const std::exception& e) {
    logger->warn("lease maintenance failed, will retry: {}", e.what());
    for (SubscriptionState* sub : due)
      sub->lease_check_at = now + std::chrono::seconds(1);
    return;
  }
  const auto renew_every = options.lease_time / 3;
  for (const Change& c : changes) {
    SubscriptionState& sub = *c.sub;
    switch (c.result) {
      case Result::renewed:
        sub.lease_check_at = now + renew_every;
        sub.lease_expires = now + options.lease_time;
        break;
      case Result::acquired:
        // Taken again while believed held (a rewind moved the token on): drop what
        // the old tenure kept in memory first.
        if (sub.leased) lose(sub, now);
        logger->info("lease acquired: subscription={} owner={} token={} position={}",
                     sub.name, owner, c.token, c.position);
        sub.leased = true;
        sub.token = c.token;
        sub.committed = sub.position = c.position;
        sub.pending_rows.clear();
        sub.more = true;
        sub.retry_generation = 0;
        sub.stopped = false;
        ++epochs[&sub];
        sub.lease_check_at = now + renew_every;
        sub.lease_expires = now + options.lease_time;
        sub.position_view = c.position;
        sub.leased_view = true;
        break;
      case Result::held_elsewhere:
        if (sub.leased) {
          logger->warn("lease lost: subscription={} owner={}", sub.name, owner);
          lose(sub, now);
        }
        // Look again when the holder's lease runs out (it renews before that).
        sub.lease_check_at = c.expires + std::chrono::milliseconds(1);
        break;
    }
  }
}

void Processor::Impl::lose(SubscriptionState& sub, SysTime now) {
  sub.leased = false;
  sub.leased_view = false;
  sub.pending_rows.clear();
  sub.unrecorded.clear();
  sub.position = sub.committed;
  paused.erase(&sub);
  ++epochs[&sub];
  sub.lease_check_at = now;
}

void Processor::Impl::release_leases() noexcept {
  std::vector<SubscriptionState*> held;
  for (SubscriptionState* sub : subscriptions())
    if (sub->leased) held.push_back(sub);
  if (held.empty()) return;
  try {
    Transaction txn = store.transaction();
    Queries q(txn.database().getHandle());
    const std::string now_text = detail::format_time(clock->now());
    for (SubscriptionState* sub : held)
      q.release_lease(sub->name, owner, sub->token, now_text);
    txn.commit();
  } catch (const std::exception& e) {
    logger->warn("releasing leases failed (they expire by themselves): {}", e.what());
  }
  for (SubscriptionState* sub : held) {
    sub->leased = false;
    sub->leased_view = false;
    sub->lease_check_at = {};
  }
}

// ---- periodic tasks -------------------------------------------------------------

void Processor::Impl::run_tasks(SysTime now) {
  if (stopping) return;
  for (PeriodicTask* task : periodic_tasks()) {
    if (task->check_at > now || task->running) continue;
    bool claimed = false;
    try {
      Transaction txn = store.transaction();
      Queries q(txn.database().getHandle());
      auto row = q.read_lease(task->lease_name);
      const std::string now_text = detail::format_time(now);
      if (!row || row->expires <= now_text) {
        q.write_lease(task->lease_name, owner, detail::format_time(now + task->interval),
                      row ? row->token + 1 : 1);
        claimed = true;
        task->check_at = now + task->interval;
      } else {
        task->check_at = detail::parse_time(row->expires).value_or(now + task->interval);
      }
      txn.commit();
    } catch (const std::exception& e) {
      logger->warn("periodic task claim failed, will retry: task={}: {}", task->name,
                   e.what());
      task->check_at = now + std::chrono::seconds(1);
      continue;
    }
    if (!claimed) continue;
    task->running = true;
    auto body = [this, task] {
      try {
        task->fn();
        logger->debug("periodic task ran: task={}", task->name);
      } catch (const std::exception& e) {
        logger->error("periodic task failed: task={}: {}", task->name, e.what());
      } catch (...) {
        logger->error("periodic task failed: task={}", task->name);
      }
      task->running = false;
    };
    if (inline_mode) {
      body();
    } else {
      asio::post(*pool, body);
    }
  }
}

// ---- scheduling work ------------------------------------------------------------

bool Processor::Impl::schedule(SubscriptionState& sub, SysTime now) {
  if (!sub.leased || sub.in_flight) return false;
  if (now >= sub.lease_expires) {
    // Not renewed in time (the writer was busy): another process may own it now.
    logger->warn("lease expired before renewal: subscription={} owner={}", sub.name,
                 owner);
    lose(sub, now);
    return inline_mode;  // run_until_idle goes on: the next step takes it again
  }
  // Failures not yet committed (the commit failed): the file does not show the
  // blocked streams yet, so nothing more is dispatched until they are written.
  if (!sub.pending_rows.empty()) return false;
  if (sub.retry_generation != generation || (sub.next_due && *sub.next_due <= now)) {
    const auto row = reads->subscription(sub.name);
    if (row.position != sub.committed) {
      // Moved by someone else (a rewind): reload it with the lease.
      logger->info("checkpoint moved outside this processor: subscription={}", sub.name);
      lose(sub, now);
      return inline_mode;  // run_until_idle goes on: the next step takes it again
    }
    sub.retry_generation = generation;
    sub.owed = row.owed;
    sub.next_due.reset();
    if (row.next_due) sub.next_due = detail::parse_time(*row.next_due);
    if (sub.options.on_dead == OnDead::stop) {
      const bool was = sub.stopped;
      sub.stopped = row.has_dead;
      sub.stopped_view = sub.stopped;
      if (sub.stopped && !was)
        logger->error("subscription stopped at a dead letter: subscription={}", sub.name);
    }
    if (!sub.stopped && row.owed > 0) {
      auto streams =
          reads->due_streams(sub.name, detail::format_time(now), options.batch_size);
      if (!streams.empty()) {
        dispatch_owed(sub, streams);
        return true;
      }
    }
  }
  if (sub.stopped) return false;
  if (!sub.more && sub.read_generation == generation) return false;
  auto batch = read_batch(sub.position);
  sub.more = batch->full;
  sub.read_generation = generation;
  if (batch->events.empty()) return false;
  dispatch_batch(sub, std::move(batch));
  return true;
}

std::shared_ptr<const Batch> Processor::Impl::read_batch(Seq after) {
  auto it = cache.find(after);
  if (it != cache.end()) return it->second;
  auto batch = std::make_shared<Batch>();
  batch->events.reserve(options.batch_size);
  batch->full = reads->read_events(after, options.batch_size, kBatchBytes, batch->events);
  for (const Event& e : batch->events) batch->bytes += e.data.size() + e.metadata.size();
  // Only a full batch is final: a short one may grow with the next append. Large
  // events make small batches and a small cache, so memory stays bounded whatever
  // the events weigh.
  if (batch->full) {
    cache.emplace(after, batch);
    cached_bytes += batch->bytes;
    while (cache.size() > kCachedBatches ||
           (cache.size() > 1 && cached_bytes > kCacheBytes)) {
      cached_bytes -= cache.begin()->second->bytes;
      cache.erase(cache.begin());
    }
  }
  return batch;
}

void Processor::Impl::dispatch_batch(SubscriptionState& sub,
                                     std::shared_ptr<const Batch> batch) {
  std::vector<WorkItem> items;
  for (const Event& e : batch->events)
    if (sub.matches(e)) items.push_back(WorkItem{&e, 1, false});
  const Seq last = batch->events.back().seq;
  if (items.empty()) {
    sub.position = last;
    sub.position_view = last;
    return;
  }
  auto unit = std::make_shared<Unit>();
  unit->sub = &sub;
  unit->batch = std::move(batch);
  unit->last = last;
  if (!sub.options.transactional && sub.owed > 0)
    unit->blocked = reads->blocked_streams(sub.name);
  dispatch(unit, std::move(items));
}

void Processor::Impl::dispatch_owed(SubscriptionState& sub,
                                    const std::vector<std::string>& streams) {
  auto unit = std::make_shared<Unit>();
  unit->sub = &sub;
  std::vector<WorkItem> items;
  std::size_t bytes = 0;  // capped like a batch; a stream's rest follows next pass
  for (const std::string& stream : streams) {
    if (items.size() >= options.batch_size || bytes >= kBatchBytes) break;
    for (const detail::OwedRow& row :
         reads->owed_rows(sub.name, stream, options.batch_size - items.size())) {
      if (bytes >= kBatchBytes) break;
      auto event = reads->event_at(row.seq);
      if (!event) continue;
      bytes += event->data.size() + event->metadata.size();
      unit->owned.push_back(std::move(*event));
      items.push_back(
          WorkItem{&unit->owned.back(), static_cast<int>(row.attempts) + 1, true});
    }
  }
  if (items.empty()) return;
  dispatch(unit, std::move(items));
}

// Failed attempts that SQLite rolled back with their transaction still count: the
// next delivery of that event is the following attempt, and after the last one it is
// parked without running the handler again (a handler that always fills the disk must
// not be retried for ever).
void Processor::Impl::apply_unrecorded(Unit& unit, std::vector<WorkItem>& items) {
  SubscriptionState& sub = *unit.sub;
  if (sub.unrecorded.empty()) return;
  for (WorkItem& item : items) {
    auto it = sub.unrecorded.find(item.event->seq);
    if (it == sub.unrecorded.end()) continue;
    item.attempt = it->second.first + 1;
    if (it->second.first >= sub.retry.max_attempts) {
      unit.park_errors.push_back(it->second.second);
      item.park_error = &unit.park_errors.back();
    }
  }
}

void Processor::Impl::dispatch(const std::shared_ptr<Unit>& unit,
                               std::vector<WorkItem> items) {
  SubscriptionState& sub = *unit->sub;
  apply_unrecorded(*unit, items);
  unit->epoch = epochs[&sub];
  unit->expected = sub.committed;
  unit->token = sub.token;
  sub.in_flight = true;
  ++in_flight;
  if (sub.options.transactional) {
    unit->lanes.push_back(std::move(items));
    unit->lane_rows.resize(1);
    unit->lane_errors.resize(1);
    unit->remaining = 1;
    if (inline_mode) {
      run_transactional(*unit);
      complete(unit);
    } else {
      asio::post(*pool, [this, unit] {
        run_transactional(*unit);
        complete(unit);
      });
    }
    return;
  }
  // Lanes by stream: a stream's items stay in one lane, in order.
  std::unordered_map<std::string_view, std::size_t> stream_lane;
  const std::size_t max_lanes = inline_mode ? 1 : options.worker_threads;
  std::vector<std::vector<WorkItem>> lanes;
  for (const WorkItem& item : items) {
    auto [it, fresh] = stream_lane.try_emplace(item.event->stream, 0);
    if (fresh) {
      it->second = lanes.size() < max_lanes
                       ? lanes.size()
                       : std::hash<std::string_view>{}(item.event->stream) % max_lanes;
      if (it->second == lanes.size()) lanes.emplace_back();
    }
    lanes[it->second].push_back(item);
  }
  unit->lanes = std::move(lanes);
  unit->lane_rows.resize(unit->lanes.size());
  unit->lane_errors.resize(unit->lanes.size());
  unit->remaining = static_cast<int>(unit->lanes.size());
  for (std::size_t i = 0; i < unit->lanes.size(); ++i) {
    if (inline_mode) {
      run_lane(unit, i);
    } else {
      asio::post(*pool, [this, unit, i] { run_lane(unit, i); });
    }
  }
}

void Processor::Impl::run_lane(const std::shared_ptr<Unit>& unit,
                               std::size_t lane) noexcept {
  try {
    unit->delivered +=
        detail::deliver_items(env, *unit->sub, unit->lanes[lane], unit->blocked, nullptr,
                              unit->stop_at, unit->lane_rows[lane]);
  } catch (...) {
    unit->lane_errors[lane] = std::current_exception();
  }
  if (--unit->remaining == 0) complete(unit);
}

void Processor::Impl::run_transactional(Unit& unit) noexcept {
  SubscriptionState& sub = *unit.sub;
  try {
    Transaction txn = store.transaction();
    Queries q(txn.database().getHandle());
    if (!q.fence_holds(sub.name, unit.expected, owner, unit.token)) {
      unit.lost = true;
      return;  // rolled back by txn's destructor
    }
    if (unit.last > 0) unit.blocked = q.blocked_streams(sub.name);
    std::vector<RowWrite> rows;
    unit.delivered += detail::deliver_items(env, sub, unit.lanes[0], unit.blocked, &txn,
                                            unit.stop_at, rows);
    Seq position = unit.expected;
    if (unit.last > 0) {
      position = unit.stop_at < kNoStop ? unit.stop_at.load() : unit.last;
      std::erase_if(rows, [&](const RowWrite& r) { return r.seq > position; });
    }
    const std::string now_text = detail::format_time(clock->now());
    q.write_rows(sub.name, rows, now_text);
    if (position != unit.expected) q.write_position(sub.name, position, now_text);
    txn.commit();
    unit.committed = true;
    unit.new_position = position;
  } catch (...) {
    unit.lane_errors[0] = std::current_exception();
  }
}

void Processor::Impl::complete(const std::shared_ptr<Unit>& unit) {
  if (inline_mode) {
    finish(*unit);
    return;
  }
  asio::post(io, [this, unit] {
    try {
      finish(*unit);
    } catch (const std::exception& e) {
      logger->error("processor: finishing a unit failed: {}", e.what());
    }
    if (stopping) {
      finish_stop_if_drained();
    } else {
      safe_step();
    }
  });
}

void Processor::Impl::finish(Unit& unit) {
  SubscriptionState& sub = *unit.sub;
  sub.in_flight = false;
  --in_flight;
  deliveries += unit.delivered;
  const SysTime now = clock->now();
  if (unit.epoch != epochs[&sub]) return;  // the lease changed hands meanwhile
  for (const auto& error : unit.lane_errors) {
    if (!error) continue;
    // Nothing of the unit counts: it is delivered again after a pause.
    Pause& pause = paused[&sub];
    try {
      std::rethrow_exception(error);
    } catch (const detail::DeliveryRolledBack& e) {
      sub.unrecorded[e.seq()] = {e.attempt(), e.error()};
      const auto wait = e.attempt() < sub.retry.max_attempts
                            ? detail::retry_delay(sub.retry, e.attempt(), rng)
                            : std::chrono::milliseconds(0);
      pause.held_until = now + wait;
      logger->warn(
          "delivery failed and its transaction was rolled back: subscription={} seq={} "
          "attempt={}/{} retry_in={}ms: {}",
          sub.name, e.seq(), e.attempt(), sub.retry.max_attempts, wait.count(),
          e.error());
    } catch (const std::exception& e) {
      const auto wait = std::min<std::chrono::milliseconds>(
          kStoragePause * (1 << std::min(pause.failures++, 6)), std::chrono::seconds(30));
      pause.until = std::chrono::steady_clock::now() + wait;
      logger->error("delivery unit failed, retrying in {}ms: subscription={}: {}",
                    wait.count(), sub.name, e.what());
    }
    sub.more = true;
    return;
  }
  paused.erase(&sub);
  if (sub.options.transactional) {
    if (unit.lost) {
      logger->warn("lease lost or checkpoint moved: subscription={} owner={}", sub.name,
                   owner);
      lose(sub, now);
      return;
    }
    sub.committed = sub.position = unit.new_position;
    sub.position_view = sub.position;
    for (const WorkItem& item : unit.lanes[0]) sub.unrecorded.erase(item.event->seq);
    ++generation;  // rows may have changed
    if (unit.stop_at < kNoStop) sub.retry_generation = 0;
    return;
  }
  const bool stopped = unit.stop_at < kNoStop;
  bool wrote_rows = false;
  if (unit.last > 0) {
    const Seq position = stopped ? unit.stop_at.load() : unit.last;
    for (auto& rows : unit.lane_rows)
      for (auto& row : rows)
        if (row.seq <= position) {
          sub.pending_rows.push_back(std::move(row));
          wrote_rows = true;
        }
    sub.position = position;
    sub.position_view = position;
  } else {
    for (auto& rows : unit.lane_rows)
      for (auto& row : rows) {
        sub.pending_rows.push_back(std::move(row));
        wrote_rows = true;
      }
  }
  if (wrote_rows || stopped) commit(true);
}

// ---- checkpoints ----------------------------------------------------------------

void Processor::Impl::commit(bool force) {
  std::vector<SubscriptionState*> dirty;
  for (SubscriptionState* sub : subscriptions()) {
    if (!sub->leased) continue;
    if (sub->options.transactional && sub->in_flight) continue;  // it fences on it
    if (sub->position != sub->committed || !sub->pending_rows.empty())
      dirty.push_back(sub);
  }
  if (dirty.empty()) return;
  const auto steady_now = std::chrono::steady_clock::now();
  if (!force && steady_now - last_commit < options.checkpoint_interval) return;
  // After failed commits (the file locked by another process, disk full), wait longer
  // each time, up to 10 s; run_until_idle's caller decides for itself when to retry.
  if (!inline_mode && !stopping && steady_now < commit_retry_at) return;
  last_commit = steady_now;
  const SysTime now = clock->now();
  std::vector<SubscriptionState*> done;
  std::vector<SubscriptionState*> lost;
  try {
    Transaction txn = store.transaction();
    Queries q(txn.database().getHandle());
    const std::string now_text = detail::format_time(now);
    for (SubscriptionState* sub : dirty) {
      if (!q.fence_holds(sub->name, sub->committed, owner, sub->token)) {
        lost.push_back(sub);
        continue;
      }
      q.write_rows(sub->name, sub->pending_rows, now_text);
      if (sub->position != sub->committed)
        q.write_position(sub->name, sub->position, now_text);
      done.push_back(sub);
    }
    txn.commit();
  } catch (const std::exception& e) {
    const auto wait = std::min<std::chrono::milliseconds>(
        std::chrono::milliseconds(100) * (1 << std::min(commit_failures++, 7)),
        std::chrono::seconds(10));
    commit_retry_at = steady_now + wait;
    logger->warn("checkpoint commit failed, retrying in {}ms: {}", wait.count(),
                 e.what());
    return;
  }
  commit_failures = 0;
  bool rows = false;
  for (SubscriptionState* sub : done) {
    logger->debug("checkpoint: subscription={} position={} rows={}", sub->name,
                  sub->position, sub->pending_rows.size());
    rows = rows || !sub->pending_rows.empty();
    sub->committed = sub->position;
    sub->pending_rows.clear();
  }
  for (SubscriptionState* sub : lost) {
    logger->warn("lease lost or checkpoint moved: subscription={} owner={}", sub->name,
                 owner);
    lose(*sub, now);
  }
  if (rows) ++generation;
}

// ---- metrics ----------------------------------------------------------------------

std::vector<SubscriptionMetrics> Processor::Impl::metrics() const {
  const Seq head = store.head();
  std::vector<SubscriptionMetrics> out;
  std::lock_guard lock(mu);
  for (const auto& sub : subs) {
    SubscriptionMetrics m;
    m.name = sub->name;
    m.delivered = sub->delivered.load();
    m.failed = sub->failed.load();
    m.retried = sub->retried.load();
    m.dead = sub->dead.load();
    m.position = sub->position_view.load();
    m.lag = std::max<Seq>(0, head - m.position);
    m.leased = sub->leased_view.load();
    m.stopped = sub->stopped_view.load();
    m.latency_p50 = sub->latency.quantile(0.5);
    m.latency_p99 = sub->latency.quantile(0.99);
    m.latency_max = sub->latency.max();
    out.push_back(std::move(m));
  }
  return out;
}

// ---- Processor --------------------------------------------------------------------

Processor::Processor(const Store& store, ProcessorOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}
Processor::Processor(Processor&&) noexcept = default;
Processor& Processor::operator=(Processor&&) noexcept = default;
Processor::~Processor() = default;

void Processor::subscribe(std::string name, Handler handler,
                          SubscriptionOptions options) {
  impl_->subscribe(std::move(name), std::move(handler), std::move(options));
}

void Processor::subscribe(std::string name, const HandlerMap& handlers,
                          SubscriptionOptions options) {
  if (options.types.empty()) options.types = handlers.types();
  impl_->subscribe(std::move(name), Handler(handlers), std::move(options));
}

void Processor::every(std::string name, std::chrono::milliseconds interval,
                      std::function<void()> task) {
  impl_->every(std::move(name), interval, std::move(task));
}

void Processor::start() {
  impl_->start();
}
void Processor::stop() noexcept {
  if (impl_) impl_->stop();
}
std::size_t Processor::run_until_idle() {
  return impl_->run_until_idle();
}
bool Processor::wait_idle(std::chrono::milliseconds timeout) {
  return impl_->wait_idle(timeout);
}
std::vector<SubscriptionMetrics> Processor::metrics() const {
  return impl_->metrics();
}

std::size_t Processor::retry_dead_letters(std::string_view subscription,
                                          std::span<const Seq> seqs) {
  return eventlite::retry_dead_letters(impl_->store, subscription, seqs);
}
std::size_t Processor::discard_dead_letters(std::string_view subscription,
                                            std::span<const Seq> seqs) {
  return eventlite::discard_dead_letters(impl_->store, subscription, seqs);
}

}  // namespace eventlite
