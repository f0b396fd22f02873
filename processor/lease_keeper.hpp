#pragma once

// Leases: one process dispatches a subscription (or runs a periodic task) at a time.
//
// A lease row names its owner, when it expires and a fencing token that grows
// whenever the lease changes hands. A lease is this processor's only while the row
// shows both its owner name and the token it took. The holder renews every third of
// the lease time; a standby looks at the row when the file changes (a holder that
// stopped released it, and it is taken at once) and when the holder's lease would
// run out. Taking a lease bumps the token, so a checkpoint written by the previous
// holder, which checks its own token in the same transaction, cannot land.
//
// The keeper decides and writes; it does not touch the subscriptions' state: the
// loop applies the changes it returns.

#include <chrono>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "processor/queries.hpp"
#include "processor/state.hpp"

namespace eventlite::detail {

// "host:pid:random": names a lease holder of this process in the file.
std::string generated_owner();

struct LeaseChange {
  enum class Kind { acquired, renewed, held_elsewhere };
  SubscriptionState* sub = nullptr;
  Kind kind = Kind::held_elsewhere;
  std::int64_t token = 0;
  Seq position = 0;   // acquired: the stored checkpoint
  SysTime expires{};  // held elsewhere: when the holder's lease ends
};

// Thread safety: immutable; its functions run on the loop's thread.
class LeaseKeeper {
 public:
  LeaseKeeper(std::string owner, std::chrono::milliseconds lease_time)
      : owner_(std::move(owner)), lease_time_(lease_time) {}
  const std::string& owner() const noexcept { return owner_; }
  std::chrono::milliseconds lease_time() const noexcept { return lease_time_; }
  std::chrono::milliseconds renew_every() const noexcept { return lease_time_ / 3; }

  // Standbys look at their lease row once per change of the file (`generation`).
  // Returns those it looked at, each with whether its lease is free or expired (then
  // it is due at once); the loop records both.
  std::vector<std::pair<SubscriptionState*, bool>> peek(
      Queries& reads, std::span<SubscriptionState* const> subs, SysTime now,
      std::uint64_t generation) const;
  // The subscriptions due for a renewal or a try to take their lease.
  std::vector<SubscriptionState*> due(std::span<SubscriptionState* const> subs,
                                      SysTime now) const;
  // In q's write transaction: renews, takes or finds held elsewhere each of `due`,
  // creating the checkpoint row of a subscription taken for the first time.
  std::vector<LeaseChange> acquire_or_renew(Queries& q,
                                            std::span<SubscriptionState* const> due,
                                            SysTime now) const;
  // In q's write transaction: ends the leases of `held` now.
  void release(Queries& q, std::span<SubscriptionState* const> held, SysTime now) const;
  // In q's write transaction: takes the periodic task's lease `name` for `interval`
  // when it is free. Returns whether it was taken and when to look again.
  std::pair<bool, SysTime> claim_task(Queries& q, const std::string& name,
                                      std::chrono::milliseconds interval,
                                      SysTime now) const;

 private:
  std::string owner_;
  std::chrono::milliseconds lease_time_;
};

}  // namespace eventlite::detail
