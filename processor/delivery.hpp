#pragma once

// Delivering one lane of work items to a subscription's handler, batch handler or
// sink: retries and dead letters are decided here, written by the caller.

#include <spdlog/logger.h>
#include <sqlite3.h>

#include <atomic>
#include <limits>
#include <exception>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/processor.hpp"
#include "processor/queries.hpp"
#include "processor/state.hpp"

namespace eventlite::detail {

constexpr Seq kNoStop = std::numeric_limits<Seq>::max();

// What delivering needs besides the subscription; Context::progress reaches the
// observer through it.
struct DeliveryEnv {
  const Observer* observer;
  spdlog::logger* logger;
  const Clock* clock;
};

// The processor's way to a Context that reports to its observer (handlers.hpp).
struct ContextAccess {
  static Context make(const Event& event, std::string_view subscription, int attempt,
                      Transaction* transaction, const DeliveryEnv* env) noexcept {
    return Context(event, subscription, attempt, transaction, env, false);
  }
};

// Calls an observer's callback; a throw is logged and ignored (an observer must not
// fail a delivery).
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

// One delivery to make: an event, its attempt number, and whether it already has a
// row in eventlite_deliveries (a retry, or one that waited).
struct WorkItem {
  const Event* event = nullptr;
  int attempt = 1;
  bool has_row = false;
  // Set when its attempts ran out in deliveries whose transaction SQLite rolled back
  // (so no row could record them): it is parked with this error, not delivered.
  const std::string* park_error = nullptr;
};

// A transactional delivery ended its transaction (SQLite rolled it back after disk
// full or an I/O error, or the handler committed or rolled it back): nothing of the
// unit is stored, and the failure is kept in memory (SubscriptionState::unrecorded).
class DeliveryRolledBack : public StorageError {
 public:
  DeliveryRolledBack(Seq seq, int attempt, std::string error)
      : StorageError(SQLITE_ERROR, SQLITE_ERROR,
                     "the transaction of the delivery of seq " + std::to_string(seq) +
                         " ended inside the handler: " + error),
        seq_(seq),
        attempt_(attempt),
        error_(std::move(error)) {}
  Seq seq() const noexcept { return seq_; }
  int attempt() const noexcept { return attempt_; }
  const std::string& error() const noexcept { return error_; }

 private:
  Seq seq_;
  int attempt_;
  std::string error_;
};

// One lane of a unit: its items, in order, and where its results go.
struct LaneWork {
  std::span<const WorkItem> items;
  // Streams that only wait: they have owed deliveries in the file.
  const std::unordered_set<std::string>* blocked = nullptr;
  // Transactional units: each delivery (or batch call) runs in a savepoint that a
  // failure rolls back.
  Transaction* transaction = nullptr;
  // A dead letter of an OnDead::stop subscription lowers it to its seq; items past
  // it are left undelivered (another lane may lower it too).
  std::atomic<Seq>* stop_at = nullptr;
  std::vector<RowWrite>* rows = nullptr;  // the rows to write, appended
  // Sinks: set to the error when the sink failed in a way a retry can help; the lane
  // then stops before the event that failed (`stop_at`), keeping what went before.
  std::exception_ptr* unavailable = nullptr;
  // Sinks: open() failed in a way no retry mends (a refused password, a key of the
  // wrong type): each call fails at once with it, so the events are parked with the
  // broker's message instead of being retried for ever.
  std::exception_ptr open_error = nullptr;
};

// Delivers a lane's items in order: a failure blocks the rest of its stream, which
// become waiting rows. For a sink, a row (waiting, retrying, dead) ends the lane just
// after it (`stop_at`), so that nothing past an event that has a row is forwarded
// before that row is committed: the outside copy's last entry then never stands past
// an event that is neither forwarded nor recorded, and reconciling to it loses
// nothing. Returns the deliveries made (handler or batch calls counted per event).
// Throws DeliveryRolledBack as described there.
std::size_t deliver_lane(const DeliveryEnv& env, SubscriptionState& sub,
                         const LaneWork& lane);

}  // namespace eventlite::detail
