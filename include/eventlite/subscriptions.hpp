#pragma once

// Looking at and steering subscriptions without running a processor: what the
// `eventlite status`, `dead` and `rewind` commands do. Every function here works on a
// store that a processor in this or another process is dispatching; a processor sees
// the change on its next pass.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/event.hpp"
#include "eventlite/store.hpp"

namespace eventlite {

class Store;

// Who dispatches a subscription or periodic task, and until when.
// Thread safety: a value.
struct LeaseInfo {
  std::string owner = {};    // "host:pid:id" of the holding processor
  std::string expires = {};  // UTC ISO-8601; in the past: free to take
  std::int64_t token = 0;    // grows whenever the lease changes hands
  bool operator==(const LeaseInfo&) const = default;
};

// A sink's broker as the processor holding its lease last wrote it (with each
// checkpoint, and when the sink starts or stops failing).
// Thread safety: a value.
struct SinkStatus {
  std::string owner = {};  // the processor that wrote it
  // While the broker fails (down, refusing, timing out): since when (as
  // SubscriptionMetrics::failing_since), and its last error, the URL redacted.
  std::optional<std::chrono::system_clock::time_point> failing_since = {};
  std::string last_error = {};
  std::uint64_t forwarded = 0;  // events the broker acknowledged, by this owner
  std::uint64_t failed = 0;     // failed attempts, likewise
  // One publish call (a batch): median and 99th percentile, within a factor of two.
  std::chrono::microseconds round_trip_p50{0};
  std::chrono::microseconds round_trip_p99{0};
  std::string updated = {};  // when it was written, UTC ISO-8601
};

// A processor waiting for a lease another one holds.
// Thread safety: a value.
struct Standby {
  std::string owner = {};
  std::string since = {};  // UTC ISO-8601
};

// What a subscription is doing, at a glance.
enum class Activity {
  caught_up,    // nothing owed
  working,      // owed, and a processor holds its lease (a sink: sending)
  retrying,     // a sink whose broker fails: see SinkStatus::failing_since
  not_running,  // owed, and no processor holds its lease
};
// "caught up", "sending" (a sink) or "delivering", "retrying", "not running".
std::string_view activity_name(Activity a, bool sink) noexcept;

// One subscription as `eventlite status` prints it.
// Thread safety: a value.
struct SubscriptionStatus {
  std::string name = {};
  Seq position = 0;            // every event up to here is done or has a delivery row
  Seq lag = 0;                 // head - position
  // Deliveries owed: retrying, or waiting behind one (`status` shows them as
  // "retrying", the word its output has always used).
  std::uint64_t owed = 0;
  std::uint64_t dead = 0;      // parked dead letters
  // Streams held behind a dead letter (OnDead::hold): a later event of the stream
  // waits for the letter to be retried or discarded.
  std::uint64_t held = 0;
  // Age of the oldest event not yet delivered (the first past the position, or the
  // oldest owed one), measured on the system clock; 0 when nothing is owed.
  std::chrono::milliseconds lag_time{0};
  std::optional<LeaseInfo> lease = {};
  Activity activity = Activity::caught_up;
  std::optional<SinkStatus> sink = {};  // a sink that has run: its broker's health
  std::vector<Standby> standbys = {};   // processors waiting to take it over
};

// A bridge (inbox.hpp: redis::Bridge, nats::Bridge) as the file has it.
// Thread safety: a value.
struct BridgeStatus {
  std::string name = {};
  std::string broker = {};              // "redis", "nats"
  std::string source = {};              // the stream it reads
  std::string last_entry = {};          // the broker's id of the last entry it stored
  std::uint64_t stored = 0;             // entries taken in, rejections included
  std::uint64_t rejected = 0;           // of which kept as BridgeEntryRejected
  std::string updated = {};             // when it last stored a batch, UTC ISO-8601
  std::optional<LeaseInfo> lease = {};  // "bridge:<name>"
};

// A rebuild into shadow tables (rebuild.hpp) under way, or one that stopped before
// its swap (its lease then free): run again, it goes on from `position`.
// Thread safety: a value.
struct RebuildStatus {
  std::string subscription = {};
  Seq from = 1;
  Seq position = 0;  // the shadow holds every event of the subscription up to here
  std::string started = {};
  std::string updated = {};             // its last step, UTC ISO-8601
  std::optional<LeaseInfo> lease = {};  // "rebuild:<subscription>"
};

// Thread safety: a value.
struct StatusReport {
  StoreIdentity store = {};  // empty id: a read-only file of schema 5 or older
  Seq head = 0;
  std::vector<SubscriptionStatus> subscriptions = {};  // by name
  std::vector<BridgeStatus> bridges = {};              // by name
  std::vector<RebuildStatus> rebuilds = {};            // by subscription (schema 5)
};

// A delivery whose attempts ran out.
// Thread safety: a value.
struct DeadLetter {
  std::string subscription = {};
  Seq seq = 0;
  std::string stream = {};
  std::string type = {};
  std::int64_t attempts = 0;
  std::string last_error = {};
  std::string updated = {};  // when it was parked, UTC ISO-8601
};

// The head; every subscription's position, lag, owed and dead deliveries, lease,
// activity, sink health and standbys; every bridge; every shadow rebuild. On a file
// of an older schema version, what it has no table for comes empty. Throws StorageError
// if SQLite fails.
StatusReport status(const Store& store);

// Dead letters by subscription and seq; `subscription` empty: all subscriptions.
// Throws StorageError if SQLite fails.
std::vector<DeadLetter> dead_letters(const Store& store,
                                     std::string_view subscription = {});

// Makes the named dead letters of `subscription` due again at once (attempts start
// over); `seqs` empty: all of them. Returns how many changed. Seqs that are not dead
// letters of the subscription are left alone and not counted. Throws InvalidArgument
// for an unknown subscription or a read-only store, StorageError if SQLite fails
// (then nothing changed).
std::size_t retry_dead_letters(Store& store, std::string_view subscription,
                               std::span<const Seq> seqs = {});

// Deletes the named dead letters (or all, when `seqs` is empty); the events stay in
// the log. Returns how many were deleted. Throws as retry_dead_letters.
std::size_t discard_dead_letters(Store& store, std::string_view subscription,
                                 std::span<const Seq> seqs = {});

// What a rewind did, as `eventlite rewind` prints it.
// Thread safety: a value.
struct RewindReport {
  Seq position_before = 0;
  Seq position_after = 0;          // from - 1
  std::uint64_t owed_dropped = 0;  // retrying or waiting deliveries at or after from
  std::uint64_t dead_dropped = 0;  // dead letters at or after from
  std::optional<std::string> ended_lease_of = {};  // the processor whose lease it ended
};

// Moves `subscription` so that its next delivery is the first event at or after
// `from` (from = 1: everything again). Deliveries owed or dead at or after `from`
// are dropped: they are delivered again from the log. For a processor dispatching
// the subscription, its lease is ended and its token moved on, so work it had not
// committed cannot land, and it (or another process) picks the subscription up again
// from `from`. Throws InvalidArgument for an unknown subscription, a `from` below 1
// or a read-only store, StorageError if SQLite fails (then nothing changed).
RewindReport rewind(Store& store, std::string_view subscription, Seq from);

}  // namespace eventlite
