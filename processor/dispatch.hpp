#pragma once

// Dispatch: turning a subscription's next work into a unit, running the unit's lanes,
// and turning a finished unit back into the subscription's new state.
//
// A unit is a batch of new events past the position (BatchWork) or owed deliveries
// that fell due (OwedWork). A non-transactional unit is split into lanes by stream (at
// most the subscription's max_lanes; a stream's items stay in one lane, in seq
// order) that run in parallel on the pool; a transactional unit runs as one lane in
// one write transaction that checks the fence, delivers, writes the rows and the
// checkpoint, and commits. A subscription has at most one unit in flight, so its
// next unit starts after this one finished and no strand is needed.
//
// The dispatcher owns no subscription list and never calls into the loop: the loop
// asks it to schedule a subscription, hands it each finished unit, and acts on what
// finish() returns.

#include <atomic>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_set>
#include <variant>
#include <vector>

#include "processor/batches.hpp"
#include "processor/delivery.hpp"
#include "processor/state.hpp"
#include "processor/writer.hpp"

namespace eventlite {
class Upcasters;
}

namespace eventlite::detail {

struct BatchWork {
  std::shared_ptr<const Batch> batch;  // keeps the events alive
  Seq last = 0;                        // the last seq read: the position once done
};

struct OwedWork {
  std::deque<Event> events;  // loaded by seq
};

// How a transactional unit's own transaction ended.
struct TxnOutcome {
  bool lost = false;  // the fence failed: nothing was written
  Seq position = 0;   // committed
};

// One lane of a unit: its items, in seq order within each stream, and what running
// them left behind.
struct Lane {
  std::vector<WorkItem> items;
  std::vector<RowWrite> rows;      // rows to write (retrying, waiting, dead)
  std::exception_ptr error;        // the lane failed as a whole: nothing counts
  std::exception_ptr unavailable;  // sinks: a retryable failure stopped the lane
};

struct Unit {
  SubscriptionState* sub = nullptr;
  std::variant<BatchWork, OwedWork> work;
  std::deque<std::string> park_errors;  // errors of items parked without delivery
  std::deque<Event> upcast;             // items' events as the upcasters made them
  std::vector<Lane> lanes;
  std::unordered_set<std::string> blocked;
  std::atomic<Seq> stop_at{kNoStop};
  std::atomic<int> remaining{0};
  std::atomic<std::size_t> delivered{0};
  std::uint64_t epoch = 0;  // the subscription's lease epoch at dispatch
  Seq expected = 0;         // its committed position at dispatch
  std::int64_t token = 0;   // its lease token at dispatch
  std::optional<TxnOutcome> txn;
  // Sinks (SinkSession::open): where the outside copy stands, an open() that failed for
  // good (LaneWork), and the head at dispatch, which a reconciliation cannot pass.
  std::optional<Seq> reconciled;
  std::exception_ptr open_error;
  Seq head = 0;

  const BatchWork* batch() const noexcept { return std::get_if<BatchWork>(&work); }
};

// What the loop does after a unit finished.
struct Finished {
  bool commit_now = false;  // rows to write, or a stop: commit checkpoints at once
  bool changed = false;     // rows in the file changed: look for due work again
};

// Thread safety: one thread at a time (the loop's), but for the units' lanes, which
// run on the pool.
class Dispatcher {
 public:
  using RunWork = std::function<void(std::function<void()>)>;
  using Done = std::function<void(std::shared_ptr<Unit>)>;

  Dispatcher(DeliveryEnv env, Writer& writer, std::string owner, std::size_t batch_size,
             RunWork run_work, Done done);

  // The loop's read connection; set before the first schedule().
  void set_reads(Queries* reads) noexcept { reads_ = reads; }
  // Applied to the events of handlers' deliveries (not sinks'); null: none. Must
  // outlive this.
  void set_upcasters(const Upcasters* upcasters) noexcept { upcasters_ = upcasters; }
  // Run everything on the caller's thread, one lane at a time (run_until_idle).
  void set_inline(bool on) noexcept { inline_ = on; }

  // Starts the subscription's next unit if it has work. Returns whether anything
  // moved (a unit started, its position passed events it does not match, or its
  // lease was found gone and run_until_idle should go on).
  bool schedule(SubscriptionState& sub, SysTime now, std::uint64_t generation);
  // Applies a finished unit to its subscription.
  Finished finish(Unit& unit, SysTime now);
  // Drops cached batches that no subscription of `subs` will read again.
  void forget_batches(std::span<SubscriptionState* const> subs);
  // Closes the sinks of subscriptions that lost their lease, or of all (stopping).
  void close_sinks(std::span<SubscriptionState* const> subs, bool all) noexcept;

  int in_flight() const noexcept { return in_flight_; }
  // Deliveries made since the last take_deliveries().
  std::size_t take_deliveries() noexcept { return std::exchange(deliveries_, 0); }

 private:
  void dispatch_batch(SubscriptionState& sub, std::shared_ptr<const Batch> batch);
  void dispatch_owed(SubscriptionState& sub, const std::vector<std::string>& streams);
  void start(const std::shared_ptr<Unit>& unit, std::vector<WorkItem> items);
  void apply_unrecorded(Unit& unit, std::vector<WorkItem>& items);
  void apply_upcasters(Unit& unit, std::vector<WorkItem>& items);
  void split_lanes(Unit& unit, std::vector<WorkItem> items);
  void run_unit(const std::shared_ptr<Unit>& unit) noexcept;
  void skip_reconciled(Unit& unit, std::optional<Seq> reconciled);
  void run_lane(const std::shared_ptr<Unit>& unit, std::size_t lane) noexcept;
  void run_transactional(Unit& unit) noexcept;
  void on_failure(Unit& unit, const std::exception_ptr& error, SysTime now);
  void pause_sink(SubscriptionState& sub, SinkSession& sink,
                  const std::exception_ptr& error) noexcept;

  DeliveryEnv env_;  // constant after construction
  Writer& writer_;
  std::string owner_;       // constant after construction
  std::size_t batch_size_;  // constant after construction
  RunWork run_work_;        // constant after construction
  Done done_;               // constant after construction
  Queries* reads_ = nullptr;
  const Upcasters* upcasters_ = nullptr;
  bool inline_ = false;
  BatchReader batches_;
  int in_flight_ = 0;
  std::size_t deliveries_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace eventlite::detail
