// The loop's side of leases and periodic tasks: asking the lease keeper
// (lease_keeper.hpp) for renewals and takeovers in one write transaction (what it returns
// is applied in apply.cpp); announcing standbys; claiming and running due periodic
// tasks.
// Runs on the loop's thread (see loop.cpp).

#include <spdlog/logger.h>

#include <tuple>

#include "processor/processor_impl.hpp"

namespace eventlite {

using detail::SubscriptionState;
using detail::SysTime;

void Processor::Impl::maintain_leases(SysTime now) {
  const auto all = subscriptions();
  for (const auto& [sub, free] : leases.peek(*reads, all, now, generation)) {
    sub->lease.generation = generation;
    if (free) sub->lease.check_at = now;
  }
  const auto due = leases.due(all, now);
  if (due.empty() || stopping) return;
  std::vector<detail::LeaseChange> changes;
  try {
    changes = writer.run(
        [&](detail::Queries& q) { return leases.acquire_or_renew(q, due, now); });
  } catch (const std::exception& e) {
    logger->warn("lease maintenance failed, will retry: {}", e.what());
    for (SubscriptionState* sub : due)
      sub->lease.check_at = now + std::chrono::seconds(1);
    return;
  }
  for (const auto& change : changes) apply(change, now);
}

// Processes standing by say so in the file (eventlite_standbys), renewed every third
// of the lease time, so `eventlite status` in any process can show them.
void Processor::Impl::announce_standbys(SysTime now) {
  if (stopping || now < standby_announce_at) return;
  std::vector<const SubscriptionState*> waiting;
  for (const SubscriptionState* sub : subscriptions())
    if (sub->lease.standing_by && !sub->leased()) waiting.push_back(sub);
  if (waiting.empty()) return;
  standby_announce_at = now + leases.renew_every();
  try {
    const std::string now_text = detail::format_time(now);
    // Twice the lease time: the loop may sleep until a holder's lease runs out.
    const std::string expires = detail::format_time(now + 2 * leases.lease_time());
    writer.run([&](detail::Queries& q) {
      for (const SubscriptionState* sub : waiting)
        q.write_standby(sub->name, leases.owner(), now_text, expires);
    });
  } catch (const std::exception& e) {
    logger->debug("writing standbys failed, will retry: {}", e.what());
  }
}

void Processor::Impl::release_leases() noexcept {
  std::vector<SubscriptionState*> held, waiting;
  for (SubscriptionState* sub : subscriptions()) {
    if (sub->leased()) held.push_back(sub);
    if (sub->lease.standing_by) waiting.push_back(sub);
  }
  if (held.empty() && waiting.empty()) return;
  try {
    writer.run([&](detail::Queries& q) {
      leases.release(q, held, clock->now());
      for (SubscriptionState* sub : waiting) q.delete_standby(sub->name, leases.owner());
    });
  } catch (const std::exception& e) {
    logger->warn("releasing leases failed (they expire by themselves): {}", e.what());
  }
  for (SubscriptionState* sub : held) {
    sub->set_leased(false);
    sub->lease.check_at = {};
  }
  for (SubscriptionState* sub : waiting) sub->lease.standing_by = false;
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
