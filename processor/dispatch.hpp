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
// asks it to schedule a subscription and hands it each finished unit; what either
// changes in the subscription's checkpoint, lease, rows or pause comes back as a
// Scheduled or a UnitEdit, which the loop applies. The dispatcher writes only its own
// view of the subscription's work (SubscriptionState's "the dispatcher's" fields).

#include <atomic>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
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

// What a finished unit changes in its subscription. Dispatcher::finish decides it
// from the unit alone; the loop applies it (processor/apply.cpp), as it applies lease
// changes and commits.
struct UnitEdit {
  enum class Kind {
    stale,      // the lease changed hands meanwhile: nothing applies
    failed,     // the unit failed as a whole: pause, then deliver it again
    lost,       // a transactional unit's fence failed: reload from the file
    delivered,  // the position moves, with rows to commit
  };
  SubscriptionState* sub = nullptr;
  Kind kind = Kind::stale;
  std::exception_ptr error;       // failed: why; delivered: why a sink's lane stopped
  Seq position = 0;               // delivered: the new position
  bool committed = false;         // delivered: position and rows are in the file already
  bool stopped = false;           // delivered: a stop (a dead letter) cut the unit short
  bool sent = false;              // delivered: something reached the handler or sink
  std::vector<RowWrite> rows;     // delivered: rows to commit with the position
  std::vector<Seq> recorded;      // delivered: rolled-back failures the file now records
  std::optional<Seq> reconciled;  // delivered: a sink's outside copy is further on
};

// What schedule() did with a subscription.
struct Scheduled {
  enum class Kind {
    nothing,     // no work, or not now
    started,     // a unit is in flight
    skipped,     // nothing past the position matches: it moves to `position`
    lease_gone,  // the lease ran out or the checkpoint moved: the loop drops the lease
  };
  Kind kind = Kind::nothing;
  Seq position = 0;
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

  // Starts the subscription's next unit if it has work.
  Scheduled schedule(SubscriptionState& sub, SysTime now, std::uint64_t generation);
  // What a finished unit changes in its subscription.
  UnitEdit finish(Unit& unit);
  // Drops cached batches that no subscription of `subs` will read again.
  void forget_batches(std::span<SubscriptionState* const> subs);

  int in_flight() const noexcept { return in_flight_; }
  // Deliveries made since the last take_deliveries().
  std::size_t take_deliveries() noexcept { return std::exchange(deliveries_, 0); }

 private:
  Scheduled dispatch_batch(SubscriptionState& sub, std::shared_ptr<const Batch> batch);
  void dispatch_owed(SubscriptionState& sub, const std::vector<std::string>& streams);
  void start(const std::shared_ptr<Unit>& unit, std::vector<WorkItem> items);
  void apply_unrecorded(Unit& unit, std::vector<WorkItem>& items);
  void apply_upcasters(Unit& unit, std::vector<WorkItem>& items);
  void split_lanes(Unit& unit, std::vector<WorkItem> items);
  void run_unit(const std::shared_ptr<Unit>& unit) noexcept;
  void skip_reconciled(Unit& unit, std::optional<Seq> reconciled);
  void run_lane(const std::shared_ptr<Unit>& unit, std::size_t lane) noexcept;
  void run_transactional(Unit& unit) noexcept;

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
};

}  // namespace eventlite::detail
