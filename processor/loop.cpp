// The processor's loop.
//
// One thread (the loop: an io_context, or the caller of run_until_idle) owns every
// subscription's state and a read connection of its own. It wakes when this process
// commits (the store's notifier), when another process commits (a file watch on the
// database's directory, change_watch.hpp, confirmed by PRAGMA data_version on its
// connection; without a watch, data_version is checked every change_check_interval),
// when a retry, a lease renewal or a periodic task falls due, and when a unit of work
// finishes. With the watch active and nothing due, the timer sleeps until the
// earliest thing due or poll_interval, so an idle processor costs nothing. Each
// wake-up is a step:
//   1. leases (lease_keeper.hpp): renew the ones held, take the ones free or expired;
//   2. periodic tasks that are due and whose lease this process wins;
//   3. dispatch (dispatch.hpp): for every leased subscription with no unit in
//      flight, owed deliveries that are due form a unit; otherwise the next batch of
//      events past its position does;
//   4. checkpoints (checkpoints.hpp) of finished units, at most every
//      checkpoint_interval, at once when a unit wrote delivery rows.
// The parts decide and return; the loop applies what they return to the
// subscriptions (apply.cpp), so no part calls back into another and one place
// writes a subscription's checkpoint, lease tenure, rows and pause.
//
// Invariants: a subscription's position only moves past an event that is done or
// has a row in eventlite_deliveries, written in the same transaction; a checkpoint is
// only written while the file still shows this owner's lease token and the position
// this owner last saw (another owner, or a rewind, makes the write fail and the
// subscription is reloaded).

#include <spdlog/logger.h>
#include <sqlite3.h>

#include <boost/asio/post.hpp>

#include "eventlite/errors.hpp"
#include "eventlite/upcast.hpp"
#include "processor/processor_impl.hpp"
#include "store/clock.hpp"
#include "store/sqlite_util.hpp"

namespace eventlite {

namespace asio = boost::asio;
using detail::SubscriptionState;
using detail::SysTime;

void Processor::Impl::open_loop_connection() {
  if (conn) return;
  conn = detail::open_connection(store_impl->config, detail::Role::reader);
  reads = std::make_unique<detail::Queries>(conn->getHandle());

  dispatcher.set_reads(reads.get());
  if (const auto& up = store_impl->options.upcasters; up && !up->empty())
    dispatcher.set_upcasters(up.get());
}

void Processor::Impl::run_work(std::function<void()> job) {
  if (inline_mode) {
    job();
  } else {
    asio::post(*pool, std::move(job));
  }
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
  dispatcher.set_inline(false);
  stopping = false;
  kick_pending = false;
  io.restart();
  work.emplace(io.get_executor());
  timer = std::make_unique<asio::steady_timer>(io);
  pool = std::make_unique<asio::thread_pool>(options.worker_threads);
  listener = store_impl->notifier->add_listener([this] { kick(); });
  if (options.watch_file && !store_impl->config.memory) {
    const char* file = sqlite3_db_filename(conn->getHandle(), "main");
    watch = std::make_unique<detail::ChangeWatch>(
        io, file ? file : "",
        [this] {
          using Check = detail::ChangeWatch::Check;
          // A hint: step only if the file really changed (check_changes records it).
          const std::uint64_t epoch = store_impl->notifier->write_epoch();
          if (reads->data_version() != data_version) {
            safe_step();
            return Check::changed;
          }
          // Our writer held the write lock across the look: the writes were ours, and
          // its commit kicks the loop through the notifier.
          if (epoch % 2 == 1 && store_impl->notifier->write_epoch() == epoch)
            return Check::own_write;
          return Check::unchanged;
        },
        detail::ChangeWatchOptions{.logger = logger});
  }
  arm_timer();
  asio::post(io, [this] { safe_step(); });
  logger->info("processor started: owner={} workers={} batch={}", leases.owner(),
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
  watch.reset();
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
  logger->info("processor stopped: owner={}", leases.owner());
}

void Processor::Impl::finish_stop_if_drained() {
  if (dispatcher.in_flight() > 0) return;
  commit(true);
  release_leases();
  close_sinks(true);
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
  timer->expires_after(next_tick());
  timer->async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping) return;
    safe_step();
    arm_timer();
  });
}

// A step may have made something due sooner than the timer is set for (a retry, a
// checkpoint, a pause): setting the expiry again cancels the wait set before.
void Processor::Impl::rearm_if_sooner() {
  if (!timer || stopping) return;
  if (std::chrono::steady_clock::now() + next_tick() < timer->expiry()) arm_timer();
}

// Without an active watch, data_version is polled every change_check_interval. With
// one, the loop sleeps until the earliest thing due (a lease to renew or look at, a
// retry, the end of a pause, a periodic task), poll_interval at most; while work is
// in flight or checkpoints wait, it ticks as often as before.
std::chrono::milliseconds Processor::Impl::next_tick() const {
  const auto fast = options.change_check_interval;
  if (!watch || !watch->active() || dispatcher.in_flight() > 0) return fast;
  const SysTime now = clock->now();
  const auto steady_now = std::chrono::steady_clock::now();
  auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(options.poll_interval);
  auto at = [&](SysTime t) { wait = std::min(wait, std::chrono::nanoseconds(t - now)); };
  for (const SubscriptionState* sub : subscriptions()) {
    if (sub->position() != sub->committed || !sub->pending_rows.empty()) return fast;
    at(sub->lease.check_at);
    if (sub->leased()) at(sub->lease.expires);
    if (sub->next_due && !sub->stopped()) at(*sub->next_due);
    if (sub->pause.held_until > now) at(sub->pause.held_until);
    if (sub->pause.until > steady_now)
      wait = std::min(wait, std::chrono::nanoseconds(sub->pause.until - steady_now));
  }
  for (const detail::PeriodicTask* task : periodic_tasks())
    if (!task->running) at(task->check_at);
  if (step_pause_until > steady_now)
    wait = std::min(wait, std::chrono::nanoseconds(step_pause_until - steady_now));
  return std::max(fast, std::chrono::ceil<std::chrono::milliseconds>(wait));
}

void Processor::Impl::safe_step() noexcept {
  if (stopping) return;
  const auto steady_now = std::chrono::steady_clock::now();
  if (steady_now < step_pause_until) return;
  try {
    step();
    step_backoff.reset();
  } catch (const std::exception& e) {
    // A broken file would fail every tick: back off, up to a second, and say so once
    // per pause, not 500 times a second.
    const auto pause = step_backoff.next();
    step_pause_until = steady_now + pause;
    logger->error("processor step failed (retrying in {}ms): {}", pause.count(),
                  e.what());
  }
  rearm_if_sooner();
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
  dispatcher.set_inline(true);
  stopping = false;
  dispatcher.take_deliveries();
  ++generation;
  while (step()) {
  }
  commit(true);
  return dispatcher.take_deliveries();
}

// ---- a step ---------------------------------------------------------------------

bool Processor::Impl::step() {
  const std::uint64_t requests = idle_requests.load();
  const SysTime now = clock->now();
  check_changes();
  maintain_leases(now);
  announce_standbys(now);
  run_tasks(now);
  const auto all = subscriptions();
  close_sinks(false);
  dispatcher.forget_batches(all);
  bool dispatched = false;
  for (SubscriptionState* sub : all) {
    if (stopping) break;
    if (std::chrono::steady_clock::now() < sub->pause.until ||
        now < sub->pause.held_until)
      continue;
    if (apply(*sub, dispatcher.schedule(*sub, now, generation), now)) dispatched = true;
  }
  // Checkpoints wait for checkpoint_interval even when idle: committing after every
  // event of a trickle would add a commit (an fsync under full durability) per event,
  // competing with the appends. Someone waiting in wait_idle() gets it at once.
  bool waited_for;
  {
    std::lock_guard lock(idle_mu);
    waited_for = requests > idle_served;
  }
  commit(waited_for && !dispatched && dispatcher.in_flight() == 0);
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
  if (inline_mode || dispatched || dispatcher.in_flight() > 0) return;
  for (SubscriptionState* sub : subscriptions()) {
    if (!sub->leased()) continue;
    if (sub->position() != sub->committed || !sub->pending_rows.empty()) return;
    if (sub->more || sub->read_generation != generation) return;
    if (sub->owed > 0 && !sub->stopped()) return;
  }
  {
    std::lock_guard lock(idle_mu);
    if (idle_served >= requests) return;
    idle_served = requests;
  }
  idle_cv.notify_all();
}

// ---- finished units, checkpoints --------------------------------------------------

void Processor::Impl::complete(std::shared_ptr<detail::Unit> unit) {
  if (inline_mode) {
    // Called from a unit's noexcept job: a failure to finish is logged, as below;
    // the subscription's position and rows stay as they were, so nothing is lost.
    try {
      finish(*unit);
    } catch (const std::exception& e) {
      logger->error("processor: finishing a unit failed: {}", e.what());
    }
    return;
  }
  asio::post(io, [this, unit = std::move(unit)] {
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

void Processor::Impl::finish(detail::Unit& unit) {
  apply(dispatcher.finish(unit), clock->now());
}

void Processor::Impl::commit(bool force) {
  const auto all = subscriptions();
  const auto dirty = detail::Checkpointer::dirty(all);
  if (dirty.empty()) return;
  const auto steady_now = std::chrono::steady_clock::now();
  // After failed commits (the file locked by another process, disk full), wait longer
  // each time; run_until_idle's caller decides for itself when to retry.
  if (!checkpoints.due(force, inline_mode || stopping, steady_now)) return;
  const SysTime now = clock->now();
  if (auto out = checkpoints.commit(writer, dirty, leases.owner(), now, steady_now))
    apply(*out, now);
}

}  // namespace eventlite
