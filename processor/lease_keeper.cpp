#include "processor/lease_keeper.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <random>

#include "store/clock.hpp"

namespace eventlite::detail {

std::string generated_owner() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::random_device rd;
  return fmt::format("{}:{}:{:06x}", host, getpid(), rd() & 0xffffff);
}

std::vector<std::pair<SubscriptionState*, bool>> LeaseKeeper::peek(
    Queries& reads, std::span<SubscriptionState* const> subs, SysTime now,
    std::uint64_t generation) const {
  const std::string now_text = format_time(now);
  std::vector<std::pair<SubscriptionState*, bool>> out;
  for (SubscriptionState* sub : subs) {
    if (sub->leased() || sub->lease.check_at <= now ||
        sub->lease.generation == generation)
      continue;
    const auto row = reads.read_lease(sub->name);
    out.emplace_back(sub, !row || row->expires <= now_text);
  }
  return out;
}

std::vector<SubscriptionState*> LeaseKeeper::due(std::span<SubscriptionState* const> subs,
                                                 SysTime now) const {
  std::vector<SubscriptionState*> out;
  for (SubscriptionState* sub : subs)
    // A unit of a lost lease still in flight: wait for it before taking it again.
    if (sub->lease.check_at <= now && !(sub->in_flight && !sub->leased()))
      out.push_back(sub);
  return out;
}

std::vector<LeaseChange> LeaseKeeper::acquire_or_renew(
    Queries& q, std::span<SubscriptionState* const> due, SysTime now) const {
  std::vector<LeaseChange> changes;
  const std::string now_text = format_time(now);
  const std::string expires_text = format_time(now + lease_time_);
  Seq head = -1;
  for (SubscriptionState* sub : due) {
    const auto take = q.take_lease(sub->name, owner_, sub->lease.token, sub->leased(),
                                   now_text, expires_text);
    LeaseChange c{sub};
    c.token = take.token;
    if (take.token == 0) {
      c.expires = parse_time(take.before->expires).value_or(now + lease_time_);
      changes.push_back(c);
      continue;
    }
    c.kind = take.renewed ? LeaseChange::Kind::renewed : LeaseChange::Kind::acquired;
    if (c.kind == LeaseChange::Kind::acquired) {
      Seq start = 0;
      if (sub->options.start_at == StartAt::head) {
        if (head < 0) head = q.head();
        start = head;
      }
      c.position = q.ensure_subscription(sub->name, start, now_text);
      if (sub->lease.standing_by) q.delete_standby(sub->name, owner_);
    }
    changes.push_back(c);
  }
  return changes;
}

void LeaseKeeper::release(Queries& q, std::span<SubscriptionState* const> held,
                          SysTime now) const {
  const std::string now_text = format_time(now);
  for (SubscriptionState* sub : held)
    q.release_lease(sub->name, owner_, sub->lease.token, now_text);
}

std::pair<bool, SysTime> LeaseKeeper::claim_task(Queries& q, const std::string& name,
                                                 std::chrono::milliseconds interval,
                                                 SysTime now) const {
  const auto take =
      q.take_lease(name, owner_, 0, false, format_time(now), format_time(now + interval));
  if (take.token != 0) return {true, now + interval};
  return {false, parse_time(take.before->expires).value_or(now + interval)};
}

}  // namespace eventlite::detail
