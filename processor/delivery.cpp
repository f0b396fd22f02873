// Delivering work items to one subscription's handler.
//
// A work unit is a batch of new events or a set of owed deliveries that fell due. The
// processor splits a non-transactional unit into lanes by stream (a stream's items are
// all in one lane, in seq order) and runs the lanes in parallel; a transactional unit
// runs as one lane inside one write transaction. Here each lane's items are delivered
// in order:
//   - an item of a stream that is blocked (it has an owed delivery in the file, or
//     one failed earlier in this lane) is not delivered: it becomes a waiting row;
//   - a delivery that returns is done (an existing row is deleted);
//   - a delivery that throws becomes a retrying row due after the backoff, and blocks
//     the rest of its stream; when its attempts have run out it becomes a dead row
//     instead, and its stream goes on (OnDead::park) or the unit stops there
//     (OnDead::stop: `stop_at`).
// The caller writes the rows and the checkpoint together, so "position plus rows"
// always names every event not yet done.

#include "processor/delivery.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <bit>
#include <cmath>

#include "eventlite/transaction.hpp"
#include "store/clock.hpp"
#include "store/sqlite_util.hpp"

namespace eventlite::detail {

void LatencyHistogram::record(std::chrono::microseconds took) noexcept {
  const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(took.count(), 0));
  const std::size_t bucket =
      std::min<std::size_t>(static_cast<std::size_t>(std::bit_width(us)), 39);
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  auto prev = max_.load(std::memory_order_relaxed);
  while (took.count() > prev &&
         !max_.compare_exchange_weak(prev, took.count(), std::memory_order_relaxed)) {
  }
}

std::chrono::microseconds LatencyHistogram::quantile(double q) const noexcept {
  std::uint64_t total = 0;
  for (const auto& b : buckets_) total += b.load(std::memory_order_relaxed);
  if (total == 0) return std::chrono::microseconds(0);
  const auto want = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total)));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i].load(std::memory_order_relaxed);
    if (seen >= std::max<std::uint64_t>(want, 1)) {
      // Bucket i holds values below 2^i microseconds.
      return std::min(std::chrono::microseconds(std::int64_t{1} << i), max());
    }
  }
  return max();
}

std::chrono::milliseconds retry_delay(const RetryPolicy& policy, int failed_attempts,
                                      std::mt19937_64& rng) {
  double wait = static_cast<double>(policy.base.count()) *
                std::pow(policy.factor, std::max(failed_attempts - 1, 0));
  wait = std::min(wait, static_cast<double>(policy.cap.count()));
  if (policy.jitter > 0) {
    std::uniform_real_distribution<double> spread(1.0 - policy.jitter,
                                                  1.0 + policy.jitter);
    wait *= spread(rng);
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(wait)));
}

namespace {

std::mt19937_64& thread_rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

template <class F, class... Args>
void notify(const DeliveryEnv& env, const F& callback, Args&&... args) noexcept {
  if (!callback) return;
  try {
    callback(std::forward<Args>(args)...);
  } catch (const std::exception& e) {
    env.logger->warn("observer threw, ignored: {}", e.what());
  } catch (...) {
    env.logger->warn("observer threw, ignored");
  }
}

// Runs the handler once. Returns the error text of a throw, or nothing.
std::optional<std::string> run_handler(const DeliveryEnv& env, SubscriptionState& sub,
                                       const Context& ctx) {
  notify(env, env.observer->on_start, ctx);
  const auto started = std::chrono::steady_clock::now();
  std::optional<std::string> error;
  try {
    sub.handler(ctx);
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception";
  }
  if (!error) {
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    sub.latency.record(took);
    sub.delivered.fetch_add(1, std::memory_order_relaxed);
    if (ctx.attempt() > 1) sub.retried.fetch_add(1, std::memory_order_relaxed);
    env.logger->trace("delivered: subscription={} seq={} attempt={}", sub.name,
                      ctx.event().seq, ctx.attempt());
    notify(env, env.observer->on_delivered, ctx, took);
    return std::nullopt;
  }
  if (ctx.attempt() > 1) sub.retried.fetch_add(1, std::memory_order_relaxed);
  sub.failed.fetch_add(1, std::memory_order_relaxed);
  return error;
}

void lower(std::atomic<Seq>& stop_at, Seq seq) noexcept {
  Seq current = stop_at.load(std::memory_order_acquire);
  while (seq < current &&
         !stop_at.compare_exchange_weak(current, seq, std::memory_order_acq_rel)) {
  }
}

// The row for a delivery that failed on attempt `ctx.attempt()` (`parked`: its last
// attempt failed earlier, and it is parked now).
RowWrite failure_row(const DeliveryEnv& env, SubscriptionState& sub, const Context& ctx,
                     const std::string& error, bool parked = false) {
  const Event& e = ctx.event();
  RowWrite row{e.seq, e.stream, RowWrite::Status::retrying, ctx.attempt(), {}, error};
  if (parked) row.attempts = ctx.attempt() - 1;
  if (parked || ctx.attempt() >= sub.retry.max_attempts) {
    row.status = RowWrite::Status::dead;
    sub.dead.fetch_add(1, std::memory_order_relaxed);
    env.logger->error("event dead: subscription={} seq={} stream={} attempts={}: {}",
                      sub.name, e.seq, e.stream, row.attempts, error);
    if (!parked) notify(env, env.observer->on_failed, ctx, std::string_view(error));
    notify(env, env.observer->on_dead, ctx, std::string_view(error));
    return row;
  }
  const auto wait = retry_delay(sub.retry, ctx.attempt(), thread_rng());
  row.next_attempt = format_time(env.clock->now() + wait);
  env.logger->warn(
      "delivery failed: subscription={} seq={} attempt={}/{} retry_in={}ms: {}", sub.name,
      e.seq, ctx.attempt(), sub.retry.max_attempts, wait.count(), error);
  notify(env, env.observer->on_failed, ctx, std::string_view(error));
  return row;
}

// A savepoint around one transactional delivery, so a throw undoes the handler's
// writes and nothing else.
class DeliverySavepoint {
 public:
  explicit DeliverySavepoint(sqlite3* db) : db_(db) {
    exec(db_, "SAVEPOINT eventlite_delivery", "begin delivery savepoint");
  }
  ~DeliverySavepoint() {
    if (open_) undo();
  }
  DeliverySavepoint(const DeliverySavepoint&) = delete;
  DeliverySavepoint& operator=(const DeliverySavepoint&) = delete;
  void release() {
    open_ = false;
    exec(db_, "RELEASE eventlite_delivery", "release delivery savepoint");
  }
  void undo() noexcept {
    open_ = false;
    if (sqlite3_get_autocommit(db_)) return;  // SQLite rolled everything back
    if (sqlite3_exec(db_, "ROLLBACK TO eventlite_delivery; RELEASE eventlite_delivery",
                     nullptr, nullptr, nullptr) != SQLITE_OK)
      rollback_quietly(db_);
  }

 private:
  sqlite3* db_;
  bool open_ = true;
};

}  // namespace

std::size_t deliver_items(const DeliveryEnv& env, SubscriptionState& sub,
                          std::span<const WorkItem> items,
                          const std::unordered_set<std::string>& blocked,
                          Transaction* transaction, std::atomic<Seq>& stop_at,
                          std::vector<RowWrite>& rows) {
  const DeliveryScope scope{env.observer, env.logger};
  std::unordered_set<std::string> failed_streams;
  std::size_t delivered = 0;
  for (const WorkItem& item : items) {
    const Event& e = *item.event;
    if (e.seq > stop_at.load(std::memory_order_acquire)) break;
    if (blocked.count(e.stream) || failed_streams.count(e.stream)) {
      if (!item.has_row) rows.push_back(RowWrite{e.seq, e.stream});
      continue;
    }
    const Context ctx(e, sub.name, item.attempt, transaction, &scope);
    if (item.park_error) {
      rows.push_back(failure_row(env, sub, ctx, *item.park_error, true));
      if (sub.options.on_dead == OnDead::stop) {
        lower(stop_at, e.seq);
        break;
      }
      continue;
    }
    std::optional<std::string> error;
    if (transaction) {
      sqlite3* db = transaction->database().getHandle();
      DeliverySavepoint savepoint(db);
      error = run_handler(env, sub, ctx);
      if (!transaction->active() || sqlite3_get_autocommit(db)) {
        if (!error) {
          sub.failed.fetch_add(1, std::memory_order_relaxed);
          error = "the handler ended the delivery's transaction";
        }
        notify(env, env.observer->on_failed, ctx, std::string_view(*error));
        throw DeliveryRolledBack(e.seq, item.attempt, *error);
      }
      if (error) {
        savepoint.undo();
      } else {
        savepoint.release();
      }
    } else {
      error = run_handler(env, sub, ctx);
    }
    ++delivered;
    if (!error) {
      if (item.has_row) rows.push_back(RowWrite{e.seq, e.stream, RowWrite::Status::done});
      continue;
    }
    RowWrite row = failure_row(env, sub, ctx, *error);
    const bool dead = row.status == RowWrite::Status::dead;
    rows.push_back(std::move(row));
    if (!dead) {
      failed_streams.insert(e.stream);
    } else if (sub.options.on_dead == OnDead::stop) {
      lower(stop_at, e.seq);
      break;
    }
  }
  return delivered;
}

}  // namespace eventlite::detail
