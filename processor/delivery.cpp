// Delivering one lane of work items to one subscription.
//
// The dispatcher splits a unit (a batch of new events, or owed deliveries that fell
// due) into lanes by stream: a stream's items are all in one lane, in seq order. Here
// each lane's items are delivered in order:
//   - an item of a stream that is blocked (it has an owed delivery in the file, or
//     one failed earlier in this lane) is not delivered: it becomes a waiting row;
//   - a delivery that returns is done (an existing row is deleted);
//   - a delivery that throws becomes a retrying row due after the backoff, and blocks
//     the rest of its stream; when its attempts have run out, or the error is one no
//     retry can mend (is_permanent), it becomes a dead row instead, and its stream
//     goes on (OnDead::park), stays blocked (OnDead::hold), or the unit stops there
//     (OnDead::stop: `stop_at`).
// A batch handler or a sink takes the lane's deliverable items at once and says how
// far it got; the failed item is treated as a single failed delivery, and the items
// left over that its failure does not block are handed over again in the next call.
// The caller writes the rows and the checkpoint together, so "position plus rows"
// always names every event not yet done.

#include "processor/delivery.hpp"

#include <spdlog/logger.h>

#include <optional>

#include "eventlite/transaction.hpp"
#include "processor/backoff.hpp"
#include "store/clock.hpp"
#include "store/sqlite_util.hpp"

namespace eventlite::detail {
namespace {

std::mt19937_64& thread_rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

struct Failure {
  std::string error;
  bool permanent = false;
};

Failure failure_of(const std::exception_ptr& error) {
  if (!error) return Failure{"the batch handler reported a failure without an error"};
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return Failure{e.what(), is_permanent(e)};
  } catch (...) {
    return Failure{"unknown exception"};
  }
}

void lower(std::atomic<Seq>& stop_at, Seq seq) noexcept {
  Seq current = stop_at.load(std::memory_order_acquire);
  while (seq < current &&
         !stop_at.compare_exchange_weak(current, seq, std::memory_order_acq_rel)) {
  }
}

// A savepoint around one transactional delivery (or batch call), so a failure undoes
// the handler's writes and nothing else.
class DeliverySavepoint {
 public:
  explicit DeliverySavepoint(Transaction* txn)
      : txn_(txn), db_(txn ? txn->database().getHandle() : nullptr) {
    if (txn_) exec(db_, "SAVEPOINT eventlite_delivery", "begin delivery savepoint");
  }
  ~DeliverySavepoint() { undo(); }
  DeliverySavepoint(const DeliverySavepoint&) = delete;
  DeliverySavepoint& operator=(const DeliverySavepoint&) = delete;

  // Whether the handler ended the transaction (or SQLite rolled it back).
  bool ended() const { return txn_ && (!txn_->active() || sqlite3_get_autocommit(db())); }
  void release() {
    if (!txn_ || !open_) return;
    open_ = false;
    exec(db(), "RELEASE eventlite_delivery", "release delivery savepoint");
  }
  void undo() noexcept {
    if (!txn_ || !open_) return;
    open_ = false;
    if (sqlite3_get_autocommit(db())) return;  // SQLite rolled everything back
    if (sqlite3_exec(db(), "ROLLBACK TO eventlite_delivery; RELEASE eventlite_delivery",
                     nullptr, nullptr, nullptr) != SQLITE_OK)
      rollback_quietly(db());
  }

 private:
  sqlite3* db() const noexcept { return db_; }
  Transaction* txn_;
  sqlite3* db_;  // kept: database() throws once the handler ended the transaction
  bool open_ = true;
};

// The delivery of one lane: the rows it writes and the streams its failures block.
class LaneRun {
 public:
  LaneRun(const DeliveryEnv& env, SubscriptionState& sub, const LaneWork& lane)
      : env_(env), sub_(sub), lane_(lane) {}
  // Counters are gathered here and added once per lane: lanes on several threads do
  // not fight over the subscription's cache lines for every event.
  ~LaneRun() {
    if (ok_) sub_.delivered.fetch_add(ok_, std::memory_order_relaxed);
    if (retried_) sub_.retried.fetch_add(retried_, std::memory_order_relaxed);
    if (ok_) sub_.latency.add(latency_);
  }
  LaneRun(const LaneRun&) = delete;
  LaneRun& operator=(const LaneRun&) = delete;

  std::size_t run() {
    mark_ = std::chrono::steady_clock::now();
    if (sub_.handler()) {
      for (const WorkItem& item : lane_.items) {
        if (stopped(item)) break;
        if (!deliverable(item)) continue;
        if (!deliver_one(item)) break;
      }
    } else {
      std::vector<const WorkItem*> pending;
      for (const WorkItem& item : lane_.items) {
        if (stopped(item)) break;
        if (deliverable(item)) pending.push_back(&item);
      }
      while (!pending.empty() && deliver_batch(pending)) {
      }
    }
    return delivered_;
  }

 private:
  // One clock read per delivery: a delivery's end is the next one's start (what lies
  // between, a few bookkeeping steps, counts towards the next).
  SteadyTime clock_mark() const noexcept { return mark_; }
  std::chrono::microseconds since(SteadyTime started) noexcept {
    mark_ = std::chrono::steady_clock::now();
    return std::chrono::duration_cast<std::chrono::microseconds>(mark_ - started);
  }

  bool stopped(const WorkItem& item) const {
    return item.event->seq > lane_.stop_at->load(std::memory_order_acquire);
  }

  // A sink forwards nothing past an event that gets a row in this unit.
  void cut_after(Seq seq) {
    if (sub_.sink()) lower(*lane_.stop_at, seq);
  }

  bool blocked(const std::string& stream) const {
    return lane_.blocked->count(stream) || failed_streams_.count(stream);
  }

  // False when the item only waits or is parked without delivery.
  bool deliverable(const WorkItem& item) {
    const Event& e = *item.event;
    if (blocked(e.stream)) {
      if (!item.has_row) {
        lane_.rows->push_back(RowWrite{e.seq, e.stream});
        cut_after(e.seq);
      }
      return false;
    }
    if (!item.park_error) return true;
    const Context ctx =
        ContextAccess::make(e, sub_.name, item.attempt, lane_.transaction, &env_);
    failed(ctx, Failure{*item.park_error}, true);
    return false;
  }

  void on_success(const Context& ctx, const WorkItem& item,
                  std::chrono::microseconds took) {
    latency_.record(took);
    ++ok_;
    if (item.attempt > 1) ++retried_;
    env_.logger->trace("delivered: subscription={} seq={} attempt={}", sub_.name,
                       item.event->seq, item.attempt);
    notify(env_, env_.observer->on_delivered, ctx, took);
    if (item.has_row)
      lane_.rows->push_back(
          RowWrite{item.event->seq, item.event->stream, RowWrite::Status::done});
  }

  // Records a failed delivery (`parked`: its last attempt failed earlier and no row
  // could record it). Returns false when the lane must stop (OnDead::stop).
  bool failed(const Context& ctx, const Failure& f, bool parked = false) {
    const Event& e = ctx.event();
    if (!parked) {
      if (ctx.attempt() > 1) sub_.retried.fetch_add(1, std::memory_order_relaxed);
      sub_.failed.fetch_add(1, std::memory_order_relaxed);
      notify(env_, env_.observer->on_failed, ctx, std::string_view(f.error));
    }
    RowWrite row{e.seq, e.stream, RowWrite::Status::retrying, ctx.attempt(), {}, f.error};
    if (parked) row.attempts = ctx.attempt() - 1;
    if (!parked && !f.permanent && ctx.attempt() < sub_.retry.max_attempts) {
      const auto wait = retry_delay(sub_.retry, ctx.attempt(), thread_rng());
      row.next_attempt = format_time(env_.clock->now() + wait);
      env_.logger->warn(
          "delivery failed: subscription={} seq={} attempt={}/{} retry_in={}ms: {}",
          sub_.name, e.seq, ctx.attempt(), sub_.retry.max_attempts, wait.count(),
          f.error);
      lane_.rows->push_back(std::move(row));
      failed_streams_.insert(e.stream);
      cut_after(e.seq);
      return true;
    }
    row.status = RowWrite::Status::dead;
    sub_.dead.fetch_add(1, std::memory_order_relaxed);
    env_.logger->error("event dead: subscription={} seq={} stream={} attempts={}{}: {}",
                       sub_.name, e.seq, e.stream, row.attempts,
                       f.permanent ? " (not retryable)" : "", f.error);
    notify(env_, env_.observer->on_dead, ctx, std::string_view(f.error));
    lane_.rows->push_back(std::move(row));
    cut_after(e.seq);
    if (sub_.options.on_dead == OnDead::stop) {
      lower(*lane_.stop_at, e.seq);
      return false;
    }
    if (sub_.holds_streams()) failed_streams_.insert(e.stream);
    return true;
  }

  bool deliver_one(const WorkItem& item) {
    const Context ctx = ContextAccess::make(*item.event, sub_.name, item.attempt,
                                            lane_.transaction, &env_);
    notify(env_, env_.observer->on_start, ctx);
    DeliverySavepoint savepoint(lane_.transaction);
    const auto started = clock_mark();
    std::exception_ptr error;
    try {
      (*sub_.handler())(ctx);
    } catch (...) {
      error = std::current_exception();
    }
    const auto took = since(started);
    ++delivered_;
    if (savepoint.ended()) ended(ctx, error);
    if (!error) {
      savepoint.release();
      on_success(ctx, item, took);
      return true;
    }
    savepoint.undo();
    return failed(ctx, failure_of(error));
  }

  // A handler that ended the delivery's transaction (or whose transaction SQLite
  // rolled back): nothing of the unit can be stored.
  [[noreturn]] void ended(const Context& ctx, const std::exception_ptr& error) {
    std::string text = error
                           ? failure_of(error).error
                           : std::string("the handler ended the delivery's transaction");
    sub_.failed.fetch_add(1, std::memory_order_relaxed);
    notify(env_, env_.observer->on_failed, ctx, std::string_view(text));
    throw DeliveryRolledBack(ctx.event().seq, ctx.attempt(), text);
  }

  // One call of the batch handler or sink with `pending`; leaves in `pending` what
  // the next call gets. Returns false when the lane must stop.
  bool deliver_batch(std::vector<const WorkItem*>& pending) {
    std::vector<const Event*> events;
    std::vector<int> attempts;
    events.reserve(pending.size());
    attempts.reserve(pending.size());
    for (const WorkItem* item : pending) {
      events.push_back(item->event);
      attempts.push_back(item->attempt);
      notify(env_, env_.observer->on_start,
             ContextAccess::make(*item->event, sub_.name, item->attempt,
                                 lane_.transaction, &env_));
    }
    const BatchContext batch(events, attempts, sub_.name, lane_.transaction);
    SinkSession* const sink = sub_.sink();
    DeliverySavepoint savepoint(lane_.transaction);
    const auto started = std::chrono::steady_clock::now();
    std::optional<BatchResult> result;
    try {
      if (lane_.open_error)
        result = BatchResult::failed(0, lane_.open_error);
      else
        result = sink ? sink->publish(batch) : (*sub_.batch_handler())(batch);
    } catch (...) {
      result = BatchResult::failed(0, std::current_exception());
    }
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    // A failure reported past the batch's end is taken as its last event's.
    const std::size_t done =
        result->all_done() ? pending.size()
                           : std::min(result->done(pending.size()), pending.size() - 1);
    delivered_ += result->all_done() ? done : done + 1;
    if (savepoint.ended()) {
      const WorkItem& at = *pending[std::min(done, pending.size() - 1)];
      ended(
          ContextAccess::make(*at.event, sub_.name, at.attempt, lane_.transaction, &env_),
          result->all_done() ? nullptr : result->error());
    }
    if (result->all_done()) {
      savepoint.release();
      succeed(pending, 0, pending.size(), took);
      pending.clear();
      return true;
    }
    const WorkItem& bad = *pending[done];
    const Context ctx =
        ContextAccess::make(*bad.event, sub_.name, bad.attempt, lane_.transaction, &env_);
    Failure f = failure_of(result->error());
    if (sink && !f.permanent) {
      // The broker is down or timed out: what it acknowledged counts, and the lane
      // stops before the failed event, which is sent again after the backoff, once
      // the sink is open again.
      savepoint.release();
      succeed(pending, 0, done, took);
      sub_.failed.fetch_add(1, std::memory_order_relaxed);
      notify(env_, env_.observer->on_failed, ctx, std::string_view(f.error));
      lower(*lane_.stop_at, bad.event->seq - 1);
      if (lane_.unavailable)
        *lane_.unavailable = result->error()
                                 ? result->error()
                                 : std::make_exception_ptr(std::runtime_error(f.error));
      pending.clear();
      return false;
    }
    std::vector<const WorkItem*> next;
    if (lane_.transaction) {
      // The call's writes are undone: the events before the failed one go again.
      savepoint.undo();
      next.assign(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(done));
    } else {
      savepoint.release();
      succeed(pending, 0, done, done > 0 ? took / static_cast<int>(done + 1) : took);
    }
    const bool go_on = failed(ctx, f);
    for (std::size_t i = done + 1; go_on && i < pending.size(); ++i) {
      if (stopped(*pending[i])) break;
      if (deliverable(*pending[i])) next.push_back(pending[i]);
    }
    pending = std::move(next);
    // A transactional call stopped at a dead letter still owes the events before it,
    // whose writes it undid: they are delivered again before the lane stops.
    return go_on || (lane_.transaction != nullptr && !pending.empty());
  }

  void succeed(const std::vector<const WorkItem*>& items, std::size_t from,
               std::size_t to, std::chrono::microseconds took) {
    if (to <= from) return;
    const auto each = took / static_cast<int>(to - from);
    for (std::size_t i = from; i < to; ++i) {
      const WorkItem& item = *items[i];
      on_success(ContextAccess::make(*item.event, sub_.name, item.attempt,
                                     lane_.transaction, &env_),
                 item, each);
    }
  }

  const DeliveryEnv& env_;
  SubscriptionState& sub_;
  const LaneWork& lane_;
  std::unordered_set<std::string> failed_streams_;
  std::size_t delivered_ = 0;
  std::uint64_t ok_ = 0;
  std::uint64_t retried_ = 0;
  SteadyTime mark_{};
  LatencyHistogram::Local latency_;
};

}  // namespace

std::size_t deliver_lane(const DeliveryEnv& env, SubscriptionState& sub,
                         const LaneWork& lane) {
  return LaneRun(env, sub, lane).run();
}

}  // namespace eventlite::detail
