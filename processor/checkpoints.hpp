#pragma once

// Checkpoints: the positions and delivery rows of finished units, committed in
// batches.
//
// A subscription's position and its rows are written in one transaction, and only
// behind its fence: the file must still show the position this processor last saw
// and this owner's lease token (Queries::fence_holds). A subscription whose fence
// fails (another owner, a rewind) is returned as lost, for the loop to reload. Work
// that went well is committed at most every checkpoint_interval; failures (rows) and
// stops commit at once. A failed commit keeps everything in memory and is tried
// again after a growing pause (100 ms up to 10 s).

#include <chrono>
#include <span>
#include <string>
#include <vector>

#include "processor/backoff.hpp"
#include "processor/state.hpp"
#include "processor/writer.hpp"

namespace spdlog {
class logger;
}

namespace eventlite::detail {

// Thread safety: one thread at a time (the loop's).
class Checkpointer {
 public:
  Checkpointer(std::chrono::milliseconds interval, spdlog::logger* logger)
      : interval_(interval), logger_(logger) {}

  // Leased subscriptions whose position or rows are not committed yet (a
  // transactional one in flight commits its own).
  static std::vector<SubscriptionState*> dirty(std::span<SubscriptionState* const> subs);

  // Whether to commit now: `force`, or checkpoint_interval since the last commit;
  // after failures, not before the backoff ran out unless `ignore_backoff`.
  bool due(bool force, bool ignore_backoff, SteadyTime now) const;

  // Commits `dirty` in one transaction; those whose fence holds now have their
  // position committed and their rows cleared. Returns the subscriptions whose fence
  // failed, or nothing when the commit failed (logged; retried after the backoff).
  std::optional<std::vector<SubscriptionState*>> commit(
      Writer& writer, std::span<SubscriptionState* const> dirty, const std::string& owner,
      SysTime now, SteadyTime steady_now);

 private:
  std::chrono::milliseconds interval_;
  spdlog::logger* logger_;
  SteadyTime last_commit_{};
  SteadyTime retry_at_{};
  Backoff backoff_{std::chrono::milliseconds(100), std::chrono::seconds(10)};
};

}  // namespace eventlite::detail
