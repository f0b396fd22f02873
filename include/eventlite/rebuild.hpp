#pragma once

// Rebuilding a transactional subscription's read model from the log, while the
// application runs.
//
// In place: the read model is reset and rebuilt in its own tables, in checkpointed
// steps. The rebuild holds the subscription's lease meanwhile, so the processor that
// dispatches it (in this or another process) pauses that subscription and resumes
// it from the head afterwards; its other subscriptions go on.
//
// Without downtime: the new version is built into shadow tables that the
// application names, while the old one keeps serving readers and receiving live
// events. When the shadow has caught up, one write transaction delivers the last
// events to it, swaps the tables (the application's `swap`) and moves the
// subscription's checkpoint to the head, so a reader sees the old read model or
// the new one, never a half-built one.
//
//   eventlite::rebuild_with_shadow(store, "totals", {
//       .create = [](eventlite::Transaction& t) {
//         t.database().exec("DROP TABLE IF EXISTS totals_next;"
//                           "CREATE TABLE totals_next(stream TEXT PRIMARY KEY, n INT)");
//       },
//       .handler = count_into("totals_next"),
//       .swap = [](eventlite::Transaction& t) {
//         t.database().exec("DROP TABLE totals; ALTER TABLE totals_next RENAME TO
//         totals");
//       }});
//
// The handler gets a Context whose transaction() is the step's and whose replay() is
// true: side effects (mails, payments) are skipped as in any replay.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "eventlite/event.hpp"
#include "eventlite/handlers.hpp"

namespace eventlite {

class Store;
class Transaction;

// Thread safety: a value.
struct RebuildOptions {
  Seq from = 1;  // the first event to deliver again
  // The subscription's filters (as in SubscriptionOptions), so that the rebuild
  // delivers what the subscription would.
  std::vector<std::string> types = {};
  std::string stream_prefix = {};
  // Events per step (1 to 65536): one write transaction, so also the longest an
  // appender waits.
  std::size_t batch_size = 512;
  // The rebuild's lease; a rebuild that dies is taken over (or resumed) after it.
  std::chrono::milliseconds lease_time{15'000};
  // Called after each step with the position reached and the head then.
  std::function<void(Seq position, Seq head)> on_progress = {};
};

// What a rebuild did, for a log line or `eventlite status`.
// Thread safety: a value.
struct RebuildReport {
  std::string subscription = {};
  Seq from = 1;
  Seq position_before = 0;   // the subscription's checkpoint when it began
  Seq position_after = 0;    // where it stands now: the head at the end
  std::uint64_t events = 0;  // events handed to the handler
  std::uint64_t steps = 0;   // write transactions, the swap included
  // Retrying or dead deliveries of the subscription that were dropped: their events
  // are in the rebuilt read model.
  std::uint64_t dropped = 0;
  std::string previous_owner = {};  // the processor whose lease it took; empty: none
  bool resumed = false;             // a shadow build found and went on from
  std::chrono::milliseconds took{0};
  // The longest step, the swap included: the longest an appender waited for it.
  std::chrono::milliseconds longest_step{0};
};

// Resets the read model (`reset`, in the first step's transaction, which also moves
// the checkpoint to from - 1, drops the deliveries owed at or after `from` and takes
// the subscription's lease from whoever holds it) and delivers the events from
// `from` to the head to `handler`, in steps that each commit the handler's writes
// with the checkpoint. Returns when it reached the head; the lease is then released
// and the subscription's processor goes on from there. A handler that throws ends
// the rebuild with its exception: the steps before it are committed, the lease is
// released, and the subscription's processor goes on from them with its own
// handler. Throws InvalidArgument for an unknown subscription, an empty handler or
// reset, a `from` below 1, a batch_size of 0 or a read-only store; StorageError if
// SQLite fails.
RebuildReport rebuild_in_place(Store& store, std::string_view subscription,
                               const Handler& handler,
                               const std::function<void(Transaction&)>& reset,
                               RebuildOptions options = {});

// The application's side of a rebuild without downtime.
// Thread safety: a value.
struct ShadowBuild {
  // Creates the shadow tables, empty (dropping what a failed earlier build left).
  // Not called when an interrupted build of the same subscription is resumed.
  std::function<void(Transaction&)> create = {};
  // Delivers one event into the shadow tables, through ctx.transaction().
  Handler handler = {};
  // Makes the shadow tables the live ones (DROP and ALTER TABLE ... RENAME TO), in
  // the transaction that moves the subscription's checkpoint. The place to switch
  // this process's live handler to the new version too (and back if the rebuild
  // throws): the next live batch runs after this transaction. Processes of the old
  // code go on writing the old way until they are replaced.
  std::function<void(Transaction&)> swap = {};
  // Names the new code: an interrupted build goes on only with the same version,
  // from and filters; otherwise create() starts it over.
  std::string version = {};
};

// Builds the read model into shadow tables from `options.from` while the live one
// keeps serving (its processor keeps delivering to it), then delivers the last events
// and swaps, in one transaction that also moves the subscription to the head: its
// deliveries owed or dead are dropped, and a batch its processor had in flight is
// fenced off and delivered from the new position. The shadow's progress is kept in
// eventlite_rebuilds, so a build that was interrupted (a crash, a throw) goes on
// from its last step when it is run again with the same version, from and filters. Two
// builds of one subscription never run at once (the lease "rebuild:<subscription>").
// Throws InvalidArgument for an unknown subscription, a missing callback, a `from` below
// 1, a batch_size of 0, a read-only store or a build another process is running;
// StorageError if SQLite fails; a handler's or callback's exception as it is (the shadow
// kept as far as it got, the live read model untouched).
RebuildReport rebuild_with_shadow(Store& store, std::string_view subscription,
                                  const ShadowBuild& build, RebuildOptions options = {});

}  // namespace eventlite
