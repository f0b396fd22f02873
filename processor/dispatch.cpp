#include "processor/dispatch.hpp"

#include <fmt/format.h>
#include <spdlog/logger.h>

#include "eventlite/errors.hpp"
#include "eventlite/sink.hpp"
#include "eventlite/transaction.hpp"
#include "eventlite/upcast.hpp"
#include "processor/backoff.hpp"
#include "store/clock.hpp"

namespace eventlite::detail {

Dispatcher::Dispatcher(DeliveryEnv env, Writer& writer, std::string owner,
                       std::size_t batch_size, RunWork run_work, Done done)
    : env_(env),
      writer_(writer),
      owner_(std::move(owner)),
      batch_size_(batch_size),
      run_work_(std::move(run_work)),
      done_(std::move(done)),
      batches_(batch_size) {}

Scheduled Dispatcher::schedule(SubscriptionState& sub, SysTime now,
                               std::uint64_t generation) {
  using Kind = Scheduled::Kind;
  if (!sub.leased() || sub.in_flight) return {};
  if (now >= sub.lease.expires) {
    // Not renewed in time (the writer was busy): another process may own it now.
    env_.logger->warn("lease expired before renewal: subscription={} owner={}", sub.name,
                      owner_);
    return {Kind::lease_gone};
  }
  // Failures not yet committed (the commit failed): the file does not show the
  // blocked streams yet, so nothing more is dispatched until they are written.
  if (!sub.pending_rows.empty()) return {};
  if (sub.retry_generation != generation || (sub.next_due && *sub.next_due <= now)) {
    const auto row = reads_->subscription(sub.name);
    if (row.position != sub.committed) {
      // Moved by someone else (a rewind): reload it with the lease.
      env_.logger->info("checkpoint moved outside this processor: subscription={}",
                        sub.name);
      return {Kind::lease_gone};
    }
    sub.retry_generation = generation;
    sub.owed = row.owed;
    sub.next_due.reset();
    if (row.next_due) sub.next_due = parse_time(*row.next_due);
    if (sub.options.on_dead == OnDead::stop) {
      const bool was = sub.stopped();
      sub.set_stopped(row.has_dead);
      if (sub.stopped() && !was)
        env_.logger->error("subscription stopped at a dead letter: subscription={}",
                           sub.name);
    }
    if (!sub.stopped() && row.owed > 0) {
      auto streams = reads_->due_streams(sub.name, format_time(now), batch_size_,
                                         sub.holds_streams());
      if (!streams.empty()) {
        dispatch_owed(sub, streams);
        return {Kind::started};
      }
    }
  }
  if (sub.stopped()) return {};
  if (!sub.more && sub.read_generation == generation) return {};
  auto batch = batches_.read(*reads_, sub.position());
  sub.more = batch->full;
  sub.read_generation = generation;
  if (batch->size == 0) return {};
  return dispatch_batch(sub, std::move(batch));
}

Scheduled Dispatcher::dispatch_batch(SubscriptionState& sub,
                                     std::shared_ptr<const Batch> batch) {
  std::vector<WorkItem> items;
  items.reserve(batch->size);
  for (const Event& e : batch->events())
    if (sub.matches(e)) items.push_back(WorkItem{&e, 1, false});
  const Seq last = batch->events().back().seq;
  if (items.empty()) return {Scheduled::Kind::skipped, last};
  auto unit = std::make_shared<Unit>();
  unit->sub = &sub;
  unit->work = BatchWork{std::move(batch), last};
  if (!sub.options.transactional && (sub.owed > 0 || sub.holds_streams()))
    unit->blocked = reads_->blocked_streams(sub.name, sub.holds_streams());
  const bool full = unit->batch()->batch->full;
  start(unit, std::move(items));
  // Read the next batch while this one is delivered: the read and the handlers
  // overlap, and the next schedule() finds it in the cache.
  if (full && !inline_) {
    try {
      batches_.read(*reads_, last);
    } catch (const std::exception& e) {
      env_.logger->debug("read ahead failed, read again when due: {}", e.what());
    }
  }
  return {Scheduled::Kind::started};
}

void Dispatcher::dispatch_owed(SubscriptionState& sub,
                               const std::vector<std::string>& streams) {
  auto unit = std::make_shared<Unit>();
  unit->sub = &sub;
  auto& owned = unit->work.emplace<OwedWork>().events;
  std::vector<WorkItem> items;
  std::size_t bytes = 0;  // capped like a batch; a stream's rest follows next pass
  for (const std::string& stream : streams) {
    if (items.size() >= batch_size_ || bytes >= kBatchBytes) break;
    for (const OwedRow& row :
         reads_->owed_rows(sub.name, stream, batch_size_ - items.size())) {
      if (bytes >= kBatchBytes) break;
      auto event = reads_->event_at(row.seq);
      if (!event) continue;
      bytes += event->data.size() + event->metadata.size();
      owned.push_back(std::move(*event));
      items.push_back(WorkItem{&owned.back(), static_cast<int>(row.attempts) + 1, true});
    }
  }
  if (items.empty()) return;
  start(unit, std::move(items));
}

// Failed attempts that SQLite rolled back with their transaction still count: the
// next delivery of that event is the following attempt, and after the last one it is
// parked without running the handler again (a handler that always fills the disk must
// not be retried for ever).
void Dispatcher::apply_unrecorded(Unit& unit, std::vector<WorkItem>& items) {
  SubscriptionState& sub = *unit.sub;
  if (sub.unrecorded.empty()) return;
  for (WorkItem& item : items) {
    auto it = sub.unrecorded.find(item.event->seq);
    if (it == sub.unrecorded.end()) continue;
    item.attempt = it->second.first + 1;
    if (it->second.first >= sub.retry.max_attempts) {
      unit.park_errors.push_back(it->second.second);
      item.park_error = &unit.park_errors.back();
    }
  }
}

// Old payloads made current for handlers (a sink forwards the stored bytes). An
// event whose steps throw is parked at once: no retry makes it convert.
void Dispatcher::apply_upcasters(Unit& unit, std::vector<WorkItem>& items) {
  if (!upcasters_ || unit.sub->sink()) return;
  for (WorkItem& item : items) {
    if (item.park_error || !upcasters_->covers(item.event->type)) continue;
    Event copy = *item.event;
    try {
      if (!upcasters_->apply(copy)) continue;
    } catch (const std::exception& e) {
      unit.park_errors.push_back(fmt::format("upcasting failed: {}", e.what()));
      item.park_error = &unit.park_errors.back();
      continue;
    }
    unit.upcast.push_back(std::move(copy));
    item.event = &unit.upcast.back();
  }
}

void Dispatcher::start(const std::shared_ptr<Unit>& unit, std::vector<WorkItem> items) {
  SubscriptionState& sub = *unit->sub;
  apply_unrecorded(*unit, items);
  apply_upcasters(*unit, items);
  unit->epoch = sub.lease.epoch;
  unit->expected = sub.committed;
  unit->token = sub.lease.token;
  // A sink about to open: the head bounds what its reconciliation may skip to.
  if (SinkSession* sink = sub.sink(); sink && !sink->is_open())
    unit->head = reads_->head();
  sub.in_flight = true;
  ++in_flight_;
  split_lanes(*unit, std::move(items));
  run_work_([this, unit] { run_unit(unit); });
}

// Lanes by stream: a stream's items stay in one lane, in order. The first streams
// seen get a lane each (a few streams still run in parallel); later ones go by hash.
// No allocation per stream: a drain of many streams splits at memory speed.
void Dispatcher::split_lanes(Unit& unit, std::vector<WorkItem> items) {
  const SubscriptionState& sub = *unit.sub;
  const std::size_t max_lanes =
      inline_ || sub.options.transactional ? 1 : std::max<std::size_t>(sub.lanes, 1);
  if (max_lanes == 1) {
    unit.lanes.emplace_back().items = std::move(items);
  } else {
    std::vector<std::string_view> first;  // first[i]: the stream given lane i
    first.reserve(max_lanes);
    unit.lanes.resize(max_lanes);
    for (const WorkItem& item : items) {
      const std::string_view stream = item.event->stream;
      std::size_t lane = max_lanes;
      for (std::size_t i = 0; i < first.size(); ++i)
        if (first[i] == stream) {
          lane = i;
          break;
        }
      if (lane == max_lanes) {
        if (first.size() < max_lanes) {
          lane = first.size();
          first.push_back(stream);
        } else {
          lane = std::hash<std::string_view>{}(stream) % max_lanes;
        }
      }
      unit.lanes[lane].items.push_back(item);
    }
    std::erase_if(unit.lanes, [](const Lane& l) { return l.items.empty(); });
  }
  unit.remaining = static_cast<int>(unit.lanes.size());
}

void Dispatcher::run_unit(const std::shared_ptr<Unit>& unit) noexcept {
  if (unit->sub->options.transactional) {
    run_transactional(*unit);
    done_(unit);
    return;
  }
  if (SinkSession* sink = unit->sub->sink()) {
    try {
      const SinkSession::Opened opened =
          sink->open(writer_.store(), *env_.logger, unit->sub->name, unit->epoch,
                     unit->head, unit->sub->lanes > 1);
      unit->open_error = opened.permanent;
      skip_reconciled(*unit, opened.reconciled);
    } catch (...) {
      // The broker is down: the whole unit waits the backoff.
      unit->lanes[0].error = std::current_exception();
      unit->remaining = 1;
      done_(unit);
      return;
    }
  }
  // The first lane runs here, the others on the pool.
  for (std::size_t i = 1; i < unit->lanes.size(); ++i)
    run_work_([this, unit, i] { run_lane(unit, i); });
  run_lane(unit, 0);
}

// Drops from a batch what a sink's outside copy already holds (SinkSession::open),
// and remembers where it stands, for finish() to skip to. Owed deliveries (retried
// dead letters) are sent whatever it holds.
void Dispatcher::skip_reconciled(Unit& unit, std::optional<Seq> reconciled) {
  unit.reconciled = reconciled;
  if (!reconciled || !unit.batch()) return;
  for (Lane& lane : unit.lanes)
    std::erase_if(lane.items,
                  [&](const WorkItem& w) { return w.event->seq <= *reconciled; });
}

void Dispatcher::run_lane(const std::shared_ptr<Unit>& unit, std::size_t at) noexcept {
  Lane& lane = unit->lanes[at];
  try {
    const LaneWork work{.items = lane.items,
                        .blocked = &unit->blocked,
                        .transaction = nullptr,
                        .stop_at = &unit->stop_at,
                        .rows = &lane.rows,
                        .unavailable = &lane.unavailable,
                        .open_error = unit->open_error};
    unit->delivered += deliver_lane(env_, *unit->sub, work);
  } catch (...) {
    lane.error = std::current_exception();
  }
  if (--unit->remaining == 0) done_(unit);
}

void Dispatcher::run_transactional(Unit& unit) noexcept {
  SubscriptionState& sub = *unit.sub;
  try {
    Transaction txn = writer_.store().transaction();
    Queries& q = writer_.queries(txn);
    if (!q.fence_holds(sub.name, unit.expected, owner_, unit.token)) {
      unit.txn = TxnOutcome{true, 0};
      return;  // rolled back by txn's destructor
    }
    if (unit.batch()) unit.blocked = q.blocked_streams(sub.name, sub.holds_streams());
    std::vector<RowWrite> rows;
    const LaneWork work{unit.lanes[0].items, &unit.blocked, &txn, &unit.stop_at, &rows};
    unit.delivered += deliver_lane(env_, sub, work);
    Seq position = unit.expected;
    if (const BatchWork* b = unit.batch()) {
      position = unit.stop_at < kNoStop ? unit.stop_at.load() : b->last;
      std::erase_if(rows, [&](const RowWrite& r) { return r.seq > position; });
    }
    // The handler may have appended through the transaction: the statements are
    // the writer's, whatever it ran in between.
    Queries& after = writer_.queries(txn);
    const std::string now_text = format_time(env_.clock->now());
    after.write_rows(sub.name, rows, now_text);
    if (position != unit.expected) after.write_position(sub.name, position, now_text);
    txn.commit();
    unit.txn = TxnOutcome{false, position};
  } catch (...) {
    unit.lanes[0].error = std::current_exception();
  }
}

UnitEdit Dispatcher::finish(Unit& unit) {
  using Kind = UnitEdit::Kind;
  SubscriptionState& sub = *unit.sub;
  sub.in_flight = false;
  --in_flight_;
  deliveries_ += unit.delivered;
  UnitEdit edit;
  edit.sub = &sub;
  if (unit.epoch != sub.lease.epoch) return edit;  // the lease changed hands meanwhile
  for (const Lane& lane : unit.lanes) {
    if (!lane.error) continue;
    // Nothing of the unit counts: it is delivered again after a pause.
    sub.more = true;
    edit.kind = Kind::failed;
    edit.error = lane.error;
    return edit;
  }
  edit.kind = Kind::delivered;
  edit.sent = unit.delivered > 0;
  edit.stopped = unit.stop_at < kNoStop;
  for (const Lane& lane : unit.lanes)
    if (lane.unavailable) edit.error = lane.unavailable;
  if (sub.options.transactional) {
    if (unit.txn->lost) {
      edit.kind = Kind::lost;
      return edit;
    }
    edit.committed = true;
    edit.position = unit.txn->position;
    for (const WorkItem& item : unit.lanes[0].items)
      edit.recorded.push_back(item.event->seq);
    if (edit.stopped) sub.retry_generation = 0;
    return edit;
  }
  const BatchWork* batch = unit.batch();
  edit.position = !batch         ? sub.position()
                  : edit.stopped ? unit.stop_at.load()
                                 : batch->last;
  for (Lane& lane : unit.lanes)
    for (RowWrite& row : lane.rows)
      if (!batch || row.seq <= edit.position) edit.rows.push_back(std::move(row));
  // The outside copy is further on than this batch (open() checked it against the
  // head): skip to it.
  if (batch && unit.reconciled && *unit.reconciled > edit.position && !edit.stopped) {
    edit.reconciled = unit.reconciled;
    sub.more = true;
  }
  return edit;
}

void Dispatcher::forget_batches(std::span<SubscriptionState* const> subs) {
  Seq lowest = kNoStop;
  for (const SubscriptionState* sub : subs) {
    // One not leased here may be taken over at its committed position.
    lowest = std::min(lowest, sub->leased() ? sub->position() : sub->committed);
  }
  batches_.drop_before(lowest);
}

}  // namespace eventlite::detail
