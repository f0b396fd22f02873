// Where the loop applies what the parts return. The lease keeper returns lease
// changes, the dispatcher what a schedule or a finished unit changes, the
// checkpointer what a commit wrote; only the functions below write a subscription's
// checkpoint, lease tenure, rows and pause, all on the loop's thread (see loop.cpp).

#include <spdlog/logger.h>

#include "eventlite/errors.hpp"
#include "processor/processor_impl.hpp"

namespace eventlite {

using detail::SubscriptionState;
using detail::SysTime;

namespace {

// Forgets what this tenure of the lease kept in memory: the position goes back to the
// committed one, rows not yet written and failures no row recorded are dropped, the
// epoch moves on (a unit in flight is ignored when it finishes), and the lease is
// looked at again at once.
void drop_tenure(SubscriptionState& sub, SysTime now) noexcept {
  sub.set_leased(false);
  sub.pending_rows.clear();
  sub.unrecorded.clear();
  sub.set_position(sub.committed);
  sub.pause = {};
  if (detail::SinkSession* sink = sub.sink()) sink->recovered(false);  // a new backoff
  ++sub.lease.epoch;
  sub.lease.check_at = now;
}

}  // namespace

void Processor::Impl::lose_lease(SubscriptionState& sub, SysTime now) noexcept {
  logger->warn(
      "lease lost or checkpoint moved elsewhere (a rewind, a rebuild, a takeover): "
      "subscription={} owner={}; its uncommitted work is dropped and it goes on "
      "from the position in the file",
      sub.name, leases.owner());
  drop_tenure(sub, now);
}

void Processor::Impl::apply(const detail::LeaseChange& c, SysTime now) {
  using Kind = detail::LeaseChange::Kind;
  SubscriptionState& sub = *c.sub;
  switch (c.kind) {
    case Kind::renewed:
      sub.lease.check_at = now + leases.renew_every();
      sub.lease.expires = now + leases.lease_time();
      break;
    case Kind::acquired:
      // Taken again while believed held (a rewind moved the token on): drop what
      // the old tenure kept in memory first.
      if (sub.leased()) drop_tenure(sub, now);
      logger->info("lease acquired: subscription={} owner={} token={} position={}",
                   sub.name, leases.owner(), c.token, c.position);
      sub.set_leased(true);
      sub.lease.standing_by = false;
      sub.lease.token = c.token;
      sub.committed = c.position;
      sub.set_position(c.position);
      sub.pending_rows.clear();
      sub.more = true;
      sub.retry_generation = 0;
      sub.set_stopped(false);
      ++sub.lease.epoch;
      sub.lease.check_at = now + leases.renew_every();
      sub.lease.expires = now + leases.lease_time();
      break;
    case Kind::held_elsewhere:
      if (!sub.lease.standing_by) standby_announce_at = now;  // say so at once
      sub.lease.standing_by = true;
      if (sub.leased()) {
        logger->warn("lease lost: subscription={} owner={}", sub.name, leases.owner());
        drop_tenure(sub, now);
      }
      // Look again when the holder's lease runs out (it renews before that).
      sub.lease.check_at = c.expires < SysTime::max() - std::chrono::milliseconds(1)
                               ? c.expires + std::chrono::milliseconds(1)
                               : SysTime::max();
      break;
  }
}

bool Processor::Impl::apply(SubscriptionState& sub, const detail::Scheduled& s,
                            SysTime now) {
  using Kind = detail::Scheduled::Kind;
  switch (s.kind) {
    case Kind::nothing: return false;
    case Kind::started: return true;
    case Kind::skipped: sub.set_position(s.position); return true;
    case Kind::lease_gone:
      drop_tenure(sub, now);
      return inline_mode;  // run_until_idle goes on: the next step takes it again
  }
  return false;
}

void Processor::Impl::apply(detail::UnitEdit edit, SysTime now) {
  using Kind = detail::UnitEdit::Kind;
  SubscriptionState& sub = *edit.sub;
  detail::SinkSession* sink = sub.sink();
  switch (edit.kind) {
    case Kind::stale: return;
    case Kind::failed: pause_after(sub, edit.error, now); return;
    case Kind::lost: lose_lease(sub, now); return;
    case Kind::delivered: break;
  }
  if (!edit.error) {
    sub.pause = {};
    if (sink) sink->recovered(edit.sent);
  }
  if (edit.committed) {
    // A transactional unit: its position and rows are in the file.
    sub.committed = edit.position;
    sub.set_position(edit.position);
    for (const Seq seq : edit.recorded) sub.unrecorded.erase(seq);
    if (edit.stopped) sub.retry_generation = 0;
    ++generation;  // rows may have changed: look for due work again
    return;
  }
  bool commit_now = edit.stopped || !edit.rows.empty();
  for (detail::RowWrite& row : edit.rows) sub.pending_rows.push_back(std::move(row));
  sub.set_position(edit.position);
  if (edit.reconciled) {
    logger->info("sink reconciled: subscription={} position {} -> {}", sub.name,
                 edit.position, *edit.reconciled);
    sub.set_position(*edit.reconciled);
    commit_now = true;
  }
  if (edit.error && sink) pause_sink(sub, *sink, edit.error);
  if (commit_now) commit(true);
}

void Processor::Impl::apply(const detail::CommitOutcome& out, SysTime now) {
  for (const auto& c : out.committed) {
    SubscriptionState& sub = *c.sub;
    sub.committed = c.position;
    sub.pending_rows.erase(
        sub.pending_rows.begin(),
        sub.pending_rows.begin() + static_cast<std::ptrdiff_t>(c.rows));
    if (detail::SinkSession* sink = sub.sink()) sink->health_dirty = false;
  }
  for (SubscriptionState* sub : out.lost) lose_lease(*sub, now);
  if (out.rows) ++generation;
}

// A unit failed as a whole. A delivery SQLite rolled back waits for its retry on the
// injected clock (or is parked at once after its last attempt); a sink that could not
// open waits its backoff; a storage error pauses the subscription for a growing
// real-time pause.
void Processor::Impl::pause_after(SubscriptionState& sub, const std::exception_ptr& error,
                                  SysTime now) {
  detail::Pause& pause = sub.pause;
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
        sub.name, e.seq(), e.attempt(), sub.retry.max_attempts, wait.count(), e.error());
  } catch (const std::exception& e) {
    if (detail::SinkSession* sink = sub.sink()) {
      // open() failed (the broker is down): a failed attempt at the batch.
      sub.failed.fetch_add(1, std::memory_order_relaxed);
      pause_sink(sub, *sink, std::current_exception());
      return;
    }
    const auto wait = pause.storage.next();
    pause.until = std::chrono::steady_clock::now() + wait;
    logger->error("delivery unit failed, retrying in {}ms: subscription={}: {}",
                  wait.count(), sub.name, e.what());
  }
}

// The broker is down or timed out: close, wait the retry policy's backoff (never
// parked: lag grows instead), open again and reconcile.
void Processor::Impl::pause_sink(SubscriptionState& sub, detail::SinkSession& sink,
                                 const std::exception_ptr& error) noexcept {
  const auto wait = sink.failed(error, clock->now(), sub.retry, rng, *logger, sub.name);
  sub.pause.until = std::chrono::steady_clock::now() + wait;
}

void Processor::Impl::close_sinks(bool all) noexcept {
  for (SubscriptionState* sub : subscriptions()) {
    // A unit in flight owns its sink's session until it completes: look only after.
    detail::SinkSession* sink = sub->sink();
    if (!sink || sub->in_flight) continue;
    sink->close(all, sub->leased(), sub->lease.epoch, *logger, sub->name);
  }
}

}  // namespace eventlite
