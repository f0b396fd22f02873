#pragma once

// Checkpoints: the positions and delivery rows of finished units, committed in
// batches.
//
// A subscription's position and its rows are written in one transaction, and only
// behind its fence: the file must still show the position this processor last saw
// and this owner's lease token (Queries::fence_holds). The checkpointer writes the
// file only: what a commit changes in the subscriptions (their committed position,
// the rows now written, the sink's health written, or the lease lost when a fence
// failed: another owner, a rewind) it returns as a CommitOutcome, which the loop
// applies (processor/apply.cpp). Work
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

// What a commit wrote, for the loop to apply to the subscriptions.
struct CommitOutcome {
  struct Committed {
    SubscriptionState* sub;
    Seq position;      // now the committed position
    std::size_t rows;  // the first `rows` of its pending rows are written
  };
  std::vector<Committed> committed;
  std::vector<SubscriptionState*> lost;  // the fence failed: reload from the file
  bool rows = false;                     // delivery rows were written
};

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

  // Commits `dirty` in one transaction, each behind its fence. Returns what was
  // written, or nothing when the commit failed (logged; retried after the backoff).
  // Reads the subscriptions, writes none of them.
  std::optional<CommitOutcome> commit(Writer& writer,
                                      std::span<SubscriptionState* const> dirty,
                                      const std::string& owner, SysTime now,
                                      SteadyTime steady_now);

 private:
  std::chrono::milliseconds interval_;
  spdlog::logger* logger_;
  SteadyTime last_commit_{};
  SteadyTime retry_at_{};
  Backoff backoff_{std::chrono::milliseconds(100), std::chrono::seconds(10)};
};

}  // namespace eventlite::detail
