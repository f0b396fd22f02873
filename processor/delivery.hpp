#pragma once

// One subscription's state and the delivery of work items to its handler: retries
// and dead letters are decided here, written by the caller (processor.cpp).

#include <sqlite3.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/processor.hpp"
#include "processor/queries.hpp"

namespace spdlog {
class logger;
}

namespace eventlite::detail {

// Handler run times on a log2 scale of microseconds.
// Thread safety: safe to share.
class LatencyHistogram {
 public:
  void record(std::chrono::microseconds took) noexcept;
  // The upper bound of the bucket holding quantile `q` (0..1); 0 when empty.
  std::chrono::microseconds quantile(double q) const noexcept;
  std::chrono::microseconds max() const noexcept {
    return std::chrono::microseconds(max_.load(std::memory_order_relaxed));
  }

 private:
  std::array<std::atomic<std::uint64_t>, 40> buckets_{};
  std::atomic<std::int64_t> max_{0};
};

// The wait before the retry that follows `failed_attempts` failures.
std::chrono::milliseconds retry_delay(const RetryPolicy& policy, int failed_attempts,
                                      std::mt19937_64& rng);

// A subscription: what the application registered, the loop's view of its
// checkpoint and lease, and its counters.
struct SubscriptionState {
  // Constant after subscribe().
  std::string name;
  Handler handler;
  SubscriptionOptions options;
  RetryPolicy retry;
  std::unordered_set<std::string> types;

  bool matches(const Event& e) const {
    if (!types.empty() && !types.count(e.type)) return false;
    return options.stream_prefix.empty() ||
           std::string_view(e.stream).starts_with(options.stream_prefix);
  }

  // The loop's thread only.
  bool leased = false;
  std::int64_t token = 0;
  Seq committed = 0;  // the position in the file, as this processor last saw it
  Seq position = 0;   // delivered (or owed in pending_rows) up to here
  std::vector<RowWrite> pending_rows;
  bool in_flight = false;
  bool stopped = false;
  bool more = true;                    // the last read filled a batch
  std::uint64_t read_generation = 0;   // change generation of the last empty read
  std::uint64_t retry_generation = 0;  // change generation of the last retry check
  std::int64_t owed = 0;               // owed deliveries at the last retry check
  std::optional<std::chrono::system_clock::time_point> next_due;
  std::chrono::system_clock::time_point lease_check_at{};
  std::chrono::system_clock::time_point lease_expires{};
  // Failed attempts that no row could record (see DeliveryRolledBack), by seq.
  std::map<Seq, std::pair<int, std::string>> unrecorded;
  std::uint64_t lease_generation = 0;  // change generation of the last lease look

  // Counters; read by metrics() from any thread.
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> failed{0};
  std::atomic<std::uint64_t> retried{0};
  std::atomic<std::uint64_t> dead{0};
  std::atomic<Seq> position_view{0};
  std::atomic<bool> leased_view{false};
  std::atomic<bool> stopped_view{false};
  LatencyHistogram latency;
};

// What Context::progress reaches.
struct DeliveryScope {
  const Observer* observer;
  spdlog::logger* logger;
};

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

// What delivering needs besides the subscription.
struct DeliveryEnv {
  const Observer* observer;
  spdlog::logger* logger;
  const Clock* clock;
};

// Delivers `items` in order (one stream's events stay in order: a failure blocks the
// rest of its stream, which become waiting rows). `blocked` streams only wait. With a
// transaction, each delivery runs in a savepoint that a throw rolls back. A dead
// letter of an OnDead::stop subscription lowers `stop_at` to its seq, and items past
// `stop_at` are left undelivered (another lane may lower it too). Appends the rows
// to write to `rows`; returns the deliveries made.
std::size_t deliver_items(const DeliveryEnv& env, SubscriptionState& sub,
                          std::span<const WorkItem> items,
                          const std::unordered_set<std::string>& blocked,
                          Transaction* transaction, std::atomic<Seq>& stop_at,
                          std::vector<RowWrite>& rows);

}  // namespace eventlite::detail
