// Projection rebuilds (include/eventlite/rebuild.hpp): in place under the
// subscription's own lease, or into shadow tables under "rebuild:<name>" and swapped
// in one transaction.
//
// Events are read outside the step's write transaction (they never change once
// stored), so a step holds the writer only for the handler's writes and the
// checkpoint. The last step of a shadow build reads inside its transaction's write
// lock instead: no append can land between its read and the swap.

#include "eventlite/rebuild.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <future>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>

#include "eventlite/errors.hpp"
#include "eventlite/lease.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
#include "processor/lease_keeper.hpp"
#include "processor/writer.hpp"
#include "store/clock.hpp"
#include "store/sqlite_util.hpp"
#include "store/store_impl.hpp"

namespace eventlite {
namespace {

using steady = std::chrono::steady_clock;

std::chrono::milliseconds since(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t);
}

std::string long_ago() {
  return detail::format_time(std::chrono::system_clock::time_point{});
}

std::string until(std::chrono::milliseconds lease_time) {
  return detail::format_time(std::chrono::system_clock::now() + lease_time);
}

void check_options(Store& store, const RebuildOptions& o, const char* what) {
  detail::StoreAccess::impl(store)->require_writer(what);
  if (o.from < 1)
    throw InvalidArgument(
        fmt::format("{}: from must be a seq of 1 or more, not {}", what, o.from));
  if (o.batch_size == 0 || o.batch_size > 65536)
    throw InvalidArgument(
        fmt::format("{}: batch_size must be 1 to 65536, not {}", what, o.batch_size));
  if (o.lease_time.count() <= 0)
    throw InvalidArgument(fmt::format("{}: lease_time must be positive", what));
}

Seq require_position(detail::Queries& q, std::string_view subscription,
                     const char* what) {
  const auto position = q.position_of(subscription);
  if (!position)
    throw InvalidArgument(
        fmt::format("{}: unknown subscription \"{}\"", what, subscription));
  return *position;
}

// Reads and delivers the events past a position, one step at a time.
class Steps {
 public:
  Steps(std::string_view subscription, const Handler& handler,
        const RebuildOptions& options, RebuildReport& report)
      : subscription_(subscription),
        handler_(handler),
        options_(options),
        report_(report) {}

  // Reads the next step's events after `after` into `out`: at most batch_size, or
  // all up to `to` when it is given. Returns the head as it stood before the read:
  // a short read saw every event of the filters up to it. Safe to run beside
  // deliver() on another thread.
  Seq read(const Store& store, Seq after, std::vector<Event>& out,
           Seq to = std::numeric_limits<Seq>::max()) const {
    const Seq head = store.head();
    ReadOptions r;
    r.from = after + 1;
    r.to = to;
    r.types = options_.types;
    r.stream_prefix = options_.stream_prefix;
    if (to == std::numeric_limits<Seq>::max()) r.limit = options_.batch_size;
    r.page_size = std::clamp<std::size_t>(options_.batch_size, 1, 65536);
    EventRange range = store.read_all(std::move(r));
    range.next_page(out);
    if (to != std::numeric_limits<Seq>::max()) {
      for (std::vector<Event> more; range.next_page(more) > 0;)
        std::move(more.begin(), more.end(), std::back_inserter(out));
    }
    return head;
  }

  void deliver(Transaction& txn, const std::vector<Event>& events) {
    for (const Event& e : events)
      handler_(Context(e, subscription_, 1, &txn, /*replay=*/true));
    report_.events += events.size();
  }

  // A step's transaction ended (committed): counts it and reports progress.
  void stepped(steady::time_point began, Seq position, Seq head) {
    ++report_.steps;
    report_.longest_step = std::max(report_.longest_step, since(began));
    if (options_.on_progress) options_.on_progress(position, head);
  }

 private:
  std::string_view subscription_;
  const Handler& handler_;
  const RebuildOptions& options_;
  RebuildReport& report_;
};

// The build a shadow's rows belong to: only the same one may go on with them.
std::string build_key(const ShadowBuild& b, const RebuildOptions& o) {
  return nlohmann::json{{"version", b.version},
                        {"from", o.from},
                        {"types", o.types},
                        {"stream_prefix", o.stream_prefix}}
      .dump();
}

}  // namespace

RebuildReport rebuild_in_place(Store& store, std::string_view subscription,
                               const Handler& handler,
                               const std::function<void(Transaction&)>& reset,
                               RebuildOptions options) {
  constexpr const char* kWhat = "rebuild";
  check_options(store, options, kWhat);
  if (!handler) throw InvalidArgument("rebuild: the handler is empty");
  if (!reset) throw InvalidArgument("rebuild: reset is empty");
  const auto began = steady::now();
  RebuildReport report;
  report.subscription = std::string(subscription);
  report.from = options.from;
  detail::Writer writer(detail::StoreAccess::make(detail::StoreAccess::impl(store)));
  Steps steps(subscription, handler, options, report);
  const std::string owner = detail::generated_owner();
  std::int64_t token = 0;
  Seq position = options.from - 1;
  bool first = true;
  std::vector<Event> events;
  const auto release = [&]() noexcept {
    if (token == 0) return;
    try {
      writer.run([&](detail::Queries& q) {
        q.release_lease(subscription, owner, token, long_ago());
      });
    } catch (...) {
      // It expires on its own.
    }
  };
  try {
    for (;;) {
      const auto step_began = steady::now();
      const Seq head = steps.read(store, position, events);
      Transaction txn = store.transaction();
      if (first) {
        // Take the subscription's lease with a new token, so that a batch its
        // processor has in flight cannot land, move the checkpoint and reset.
        detail::Queries& q = writer.queries(txn);
        report.position_before = require_position(q, subscription, kWhat);
        const auto take = q.steal_lease(subscription, owner, until(options.lease_time));
        if (take.before && take.before->expires > detail::now_text())
          report.previous_owner = take.before->owner;
        token = take.token;
        report.dropped = q.drop_deliveries(subscription, options.from);
        q.write_position(subscription, position, detail::now_text());
        reset(txn);
      } else if (!writer.queries(txn).fence_holds(subscription, position, owner, token)) {
        throw InvalidArgument(fmt::format(
            "rebuild: \"{}\" was rewound or taken over by another process meanwhile",
            subscription));
      }
      steps.deliver(txn, events);
      // The handler may have run statements on the connection: ask for the
      // writer's statements again.
      detail::Queries& q = writer.queries(txn);
      if (!events.empty()) position = events.back().seq;
      // A short read found everything of the subscription's filters up to `head`.
      if (events.size() < options.batch_size) position = std::max(position, head);
      q.write_position(subscription, position, detail::now_text());
      // Renewed: the fence above showed this owner's token.
      q.take_lease(subscription, owner, token, true, detail::now_text(),
                   until(options.lease_time));
      txn.commit();
      const bool done = events.size() < options.batch_size;
      first = false;
      steps.stepped(step_began, position, head);
      if (done) break;
    }
  } catch (...) {
    release();
    throw;
  }
  release();
  report.position_after = position;
  report.took = since(began);
  return report;
}

RebuildReport rebuild_with_shadow(Store& store, std::string_view subscription,
                                  const ShadowBuild& build, RebuildOptions options) {
  constexpr const char* kWhat = "rebuild with shadow";
  check_options(store, options, kWhat);
  if (!build.create || !build.handler || !build.swap)
    throw InvalidArgument("rebuild with shadow: create, handler and swap are all needed");
  const auto began = steady::now();
  RebuildReport report;
  report.subscription = std::string(subscription);
  Lease lease(store, fmt::format("rebuild:{}", subscription), options.lease_time);
  if (!lease.acquire_or_renew())
    throw InvalidArgument(fmt::format(
        "rebuild with shadow: another process is rebuilding \"{}\"", subscription));
  detail::Writer writer(detail::StoreAccess::make(detail::StoreAccess::impl(store)));
  Steps steps(subscription, build.handler, options, report);

  // Start (create the shadow tables) or resume.
  detail::RebuildRow row;
  {
    Transaction txn = store.transaction();
    report.position_before = require_position(writer.queries(txn), subscription, kWhat);
    const std::string key = build_key(build, options);
    if (auto found = writer.queries(txn).read_rebuild(subscription);
        found && found->build == key) {
      row = *found;
      report.resumed = true;
    } else {
      // New, or another build's leftovers (other code, another from or filters):
      // from the start.
      row = {options.from, options.from - 1, key};
      build.create(txn);
      // create() may have run statements on the connection: ask for the writer's
      // statements again.
      detail::Queries& q = writer.queries(txn);
      q.delete_rebuild(subscription);
      q.write_rebuild(subscription, row, detail::now_text());
    }
    txn.commit();
  }
  report.from = row.from;
  auto renewed = steady::now();

  // Catch up, the live read model serving, until a read comes back short: then all
  // but what was appended since is in the shadow. Each step's events are read while
  // the step before writes and commits.
  std::vector<Event> events, ahead;
  Seq head = steps.read(store, row.position, events);
  for (;;) {
    if (since(renewed) > options.lease_time / 3) {
      if (!lease.acquire_or_renew())
        throw InvalidArgument(
            fmt::format("rebuild with shadow: lost the lease of \"{}\"", subscription));
      renewed = steady::now();
    }
    const auto step_began = steady::now();
    const bool last = events.size() < options.batch_size;
    Seq ahead_head = 0;
    std::future<void> next;
    if (!last)
      next = std::async(std::launch::async, [&, after = events.back().seq] {
        ahead_head = steps.read(store, after, ahead);
      });
    if (!events.empty()) {
      Transaction txn = store.transaction();
      if (!lease.holds_in(txn))
        throw InvalidArgument(
            fmt::format("rebuild with shadow: lost the lease of \"{}\"", subscription));
      steps.deliver(txn, events);
      row.position = events.back().seq;
      if (last) row.position = std::max(row.position, head);
      writer.queries(txn).write_rebuild(subscription, row, detail::now_text());
      txn.commit();
      steps.stepped(step_began, row.position, head);
    } else {
      row.position = std::max(row.position, head);
    }
    if (last) break;
    next.get();
    events.swap(ahead);
    head = ahead_head;
  }

  // The swap: the rest, read under the write lock, then the tables and the
  // checkpoint, in one transaction.
  const auto step_began = steady::now();
  Transaction txn = store.transaction();
  if (!lease.holds_in(txn))
    throw InvalidArgument(
        fmt::format("rebuild with shadow: lost the lease of \"{}\"", subscription));
  head = writer.queries(txn).head();
  steps.read(store, row.position, events, head);
  steps.deliver(txn, events);
  build.swap(txn);
  // The swap may have run statements on the connection: ask for the writer's
  // statements again.
  detail::Queries& q = writer.queries(txn);
  require_position(q, subscription, kWhat);  // not dropped by the swap
  // Deliveries owed or dead from `from` on: their events are in the new tables.
  report.dropped = q.drop_deliveries(subscription, row.from);
  // The live subscription goes on from the head, with a new token: a batch its
  // processor has in flight was delivered to the old tables and must not land.
  q.write_position(subscription, head, detail::now_text());
  if (const auto live = q.revoke_lease(subscription, long_ago()))
    if (live->expires > detail::now_text()) report.previous_owner = live->owner;
  q.delete_rebuild(subscription);
  txn.commit();
  steps.stepped(step_began, head, head);
  report.position_after = head;
  report.took = since(began);
  return report;
}

}  // namespace eventlite
