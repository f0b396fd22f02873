// The loop's side of leases and periodic tasks: asking the lease keeper
// (leases.hpp) for renewals and takeovers in one write transaction, and applying
// what it returns to the subscriptions; claiming and running due periodic tasks.
// Runs on the loop's thread (see loop.cpp).

#include <spdlog/logger.h>

#include <tuple>

#include "processor/processor_impl.hpp"

namespace eventlite {

using detail::SubscriptionState;
using detail::SysTime;

void Processor::Impl::maintain_leases(SysTime now) {
  const auto all = subscriptions();
  leases.peek(*reads, all, now, generation);
  const auto due = leases.due(all, now);
  if (due.empty() || stopping) return;
  std::vector<detail::LeaseChange> changes;
  try {
    changes = writer.run([&](detail::Queries& q) {
      return leases.acquire_or_renew(q, due, now);
    });
  } catch (const std::exception& e) {
    logger->warn("lease maintenance failed, will retry: {}", e.what());
    for (SubscriptionState* sub : due) sub->lease.check_at = now + std::chrono::seconds(1);
    return;
  }
  for (const auto& change : changes) apply(change, now);
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
      if (sub.leased()) detail::lose_lease(sub, now);
      logger->info("lease acquired: subscription={} owner={} token={} position={}",
                   sub.name, leases.owner(), c.token, c.position);
      sub.set_leased(true);
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
      if (sub.leased()) {
        logger->warn("lease lost: subscription={} owner={}", sub.name, leases.owner());
        detail::lose_lease(sub, now);
      }
      // Look again when the holder's lease runs out (it renews before that).
      sub.lease.check_at = c.expires < SysTime::max() - std::chrono::milliseconds(1)
                               ? c.expires + std::chrono::milliseconds(1)
                               : SysTime::max();
      break;
  }
}

void Processor::Impl::release_leases() noexcept {
  std::vector<SubscriptionState*> held;
  for (SubscriptionState* sub : subscriptions())
    if (sub->leased()) held.push_back(sub);
  if (held.empty()) return;
  try {
    writer.run([&](detail::Queries& q) { leases.release(q, held, clock->now()); });
  } catch (const std::exception& e) {
    logger->warn("releasing leases failed (they expire by themselves): {}", e.what());
  }
  for (SubscriptionState* sub : held) {
    sub->set_leased(false);
    sub->lease.check_at = {};
  }
}

void Processor::Impl::run_tasks(SysTime now) {
  if (stopping) return;
  for (detail::PeriodicTask* task : periodic_tasks()) {
    if (task->check_at > now || task->running) continue;
    bool claimed = false;
    try {
      std::tie(claimed, task->check_at) = writer.run([&](detail::Queries& q) {
        return leases.claim_task(q, task->lease_name, task->interval, now);
      });
    } catch (const std::exception& e) {
      logger->warn("periodic task claim failed, will retry: task={}: {}", task->name,
                   e.what());
      task->check_at = now + std::chrono::seconds(1);
      continue;
    }
    if (!claimed) continue;
    task->running = true;
    run_work([this, task] {
      try {
        task->fn();
        logger->debug("periodic task ran: task={}", task->name);
      } catch (const std::exception& e) {
        logger->error("periodic task failed: task={}: {}", task->name, e.what());
      } catch (...) {
        logger->error("periodic task failed: task={}", task->name);
      }
      task->running = false;
    });
  }
}

}  // namespace eventlite
