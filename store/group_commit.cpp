// Group commit.
//
// Under `full` durability a commit costs an fsync (hundreds of microseconds), while an
// insert costs a few. So appenders queue their requests and one of them, the leader,
// commits the requests at the front of the queue together: BEGIN IMMEDIATE, each
// request in its own savepoint, one COMMIT. The others wait on their own condition
// variable; while the leader commits, new requests pile up and form the next group.
// (leveldb's DBImpl::Write and BuildBatchGroup follow the same plan.)
//
// Invariants:
// - At most one thread uses the writer connection: the one that set busy_ (a leader,
//   or the owner of a Transaction). busy_ and the queue are guarded by mu_.
// - Requests are committed in queue order, so two appends to one stream from one
//   thread keep their order.
// - A request's failure (conflict, bad event, id conflict) rolls back its savepoint
//   only: the others in the group commit. A failure that ends the transaction
//   (SQLite rolls back on some I/O errors, or the COMMIT fails) fails every request
//   of the group, and none of them is acknowledged.
// - Every time busy_ falls, the next leader is woken: the front request's thread,
//   the asynchronous thread if the front request is asynchronous, and one waiting
//   Transaction; whoever takes mu_ first and finds busy_ false goes on. A leader
//   whose queue refilled while it committed leads again (kMaxLeadRounds at most)
//   without letting busy_ fall, unless a Transaction waits.
// - Waking happens after mu_ is released (a thread woken under it would block on
//   it at once); a request's waiter is shared so it outlives the request.
// - A request is acknowledged only after COMMIT returned SQLITE_OK.

#include "store/group_commit.hpp"

#include <algorithm>

#include "eventlite/errors.hpp"
#include "store/clock.hpp"
#include "store/sqlite_util.hpp"

namespace eventlite::detail {
namespace {

// Cap the group: a small append must not wait out a huge one.
constexpr std::size_t kGroupExtraEvents = 4096;
constexpr std::size_t kMaxGroupRequests = 1024;
// Groups one leader commits in a row before handing over (see lead()).
constexpr int kMaxLeadRounds = 4;

}  // namespace

// Where a thread waits for its append. One per thread, shared so that a leader can
// still notify it after the request itself, on the appender's stack, is gone: the
// leader notifies after releasing mu_, so the woken thread does not block on it.
struct GroupCommit::Waiter {
  std::condition_variable cv;
};

struct GroupCommit::Request {
  std::string_view stream;
  std::span<const NewEvent> events;
  Expected expected = Expected::any();
  bool async = false;
  // Asynchronous requests own their data and report through the promise.
  std::string owned_stream;
  std::vector<NewEvent> owned_events;
  std::promise<std::vector<Seq>> promise;

  std::shared_ptr<Waiter> waiter;  // synchronous requests: the appending thread's
  bool done = false;               // guarded by mu_
  std::vector<Seq> seqs;           // written by the leader, read once done
  std::exception_ptr error;        // likewise
};

GroupCommit::GroupCommit(std::unique_ptr<SQLite::Database> db,
                         std::shared_ptr<Notifier> notifier)
    : db_(std::move(db)), statements_(db_->getHandle()), notifier_(std::move(notifier)) {}

GroupCommit::~GroupCommit() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  async_cv_.notify_all();
  if (async_thread_.joinable()) async_thread_.join();
}

std::vector<Seq> GroupCommit::append(std::string_view stream,
                                     std::span<const NewEvent> events,
                                     Expected expected) {
  Request r;
  r.stream = stream;
  r.events = events;
  r.expected = expected;

  std::unique_lock lock(mu_);
  if (busy_ && exclusive_owner_ == std::this_thread::get_id())
    throw InvalidArgument(
        "append while this thread holds an open Transaction of the store: use "
        "Transaction::append, or end the transaction first");
  queue_.push_back(&r);
  thread_local const auto waiter = std::make_shared<Waiter>();
  r.waiter = waiter;
  r.waiter->cv.wait(lock, [&] { return r.done || (!busy_ && queue_.front() == &r); });
  if (!r.done) lead(lock);
  if (r.error) std::rethrow_exception(r.error);
  return std::move(r.seqs);
}

std::future<std::vector<Seq>> GroupCommit::append_async(std::string stream,
                                                        std::vector<NewEvent> events,
                                                        Expected expected) {
  auto r = std::make_unique<Request>();
  r->owned_stream = std::move(stream);
  r->owned_events = std::move(events);
  r->stream = r->owned_stream;
  r->events = r->owned_events;
  r->expected = expected;
  r->async = true;
  auto future = r->promise.get_future();

  std::unique_lock lock(mu_);
  if (stopping_) throw InvalidArgument("append_async on a store that is closing");
  if (!async_thread_.joinable()) async_thread_ = std::thread([this] { async_loop(); });
  queue_.push_back(r.release());  // the leader that commits it deletes it
  if (!busy_ && queue_.front()->async) async_cv_.notify_one();
  return future;
}

void GroupCommit::async_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    async_cv_.wait(lock, [&] {
      return (!busy_ && !queue_.empty() && queue_.front()->async) ||
             (stopping_ && queue_.empty());
    });
    if (queue_.empty()) return;  // stopping, nothing left
    lead(lock);
  }
}

// Called with mu_ held, busy_ false and a request at the front of the queue. Commits
// the front of the queue; while more requests wait, keeps leading (a few rounds at
// most, so its own caller is not held long): handing over to a sleeping thread would
// leave the writer idle for a context switch per commit.
void GroupCommit::lead(std::unique_lock<std::mutex>& lock) {
  std::vector<Request*> group;
  std::vector<Request*> finished_async;
  std::vector<std::shared_ptr<Waiter>> wake;
  group.reserve(kMaxGroupRequests);  // may throw: before busy_
  finished_async.reserve(kMaxGroupRequests);
  wake.reserve(kMaxGroupRequests + 1);
  busy_ = true;
  for (int round = 1;; ++round) {
    group.clear();
    std::size_t events = 0;
    const std::size_t cap = queue_.front()->events.size() + kGroupExtraEvents;
    while (!queue_.empty() && group.size() < kMaxGroupRequests) {
      Request* next = queue_.front();
      if (!group.empty() && events + next->events.size() > cap) break;
      events += next->events.size();
      group.push_back(next);
      queue_.pop_front();
    }

    lock.unlock();
    commit_group(group);
    lock.lock();

    // Decide under mu_ whom to wake; wake them after releasing it. A synchronous
    // request may vanish once done is set and mu_ released: keep its waiter.
    finished_async.clear();
    wake.clear();
    for (Request* r : group) {
      if (r->async)
        finished_async.push_back(r);
      else
        wake.push_back(r->waiter);
      r->done = true;
    }
    const bool more =
        !queue_.empty() && round < kMaxLeadRounds && exclusive_waiters_ == 0;
    bool wake_async = false;
    bool wake_exclusive = false;
    if (!more) {
      busy_ = false;
      wake_async = stopping_;
      if (!queue_.empty()) {
        if (queue_.front()->async)
          wake_async = true;
        else
          wake.push_back(queue_.front()->waiter);
      }
      wake_exclusive = exclusive_waiters_ > 0;
    }
    lock.unlock();

    for (Request* r : finished_async) {
      if (r->error)
        r->promise.set_exception(r->error);
      else
        r->promise.set_value(std::move(r->seqs));
      delete r;
    }
    for (auto& w : wake) w->cv.notify_one();
    if (wake_exclusive) exclusive_cv_.notify_one();
    if (wake_async) async_cv_.notify_one();
    lock.lock();
    if (!more) return;  // else busy_ stayed set: the queue is still ours to lead
  }
}

void GroupCommit::wake_next_locked() {
  if (!queue_.empty()) {
    if (queue_.front()->async)
      async_cv_.notify_one();
    else
      queue_.front()->waiter->cv.notify_one();
  }
  if (exclusive_waiters_ > 0) exclusive_cv_.notify_one();
  if (stopping_) async_cv_.notify_one();
}

void GroupCommit::commit_group(std::vector<Request*>& group) {
  sqlite3* db = db_->getHandle();
  auto fail_all = [&](std::exception_ptr e) {
    for (Request* r : group) {
      r->seqs.clear();
      r->error = e;
    }
  };
  try {
    const std::string time = now_text();
    WriteTxn txn(db, "append");
    bool any_ok = false;
    for (Request* r : group) {
      try {
        r->seqs = group.size() == 1 ? append_events(statements_, ids_, r->stream,
                                                    r->events, r->expected, time)
                                    : append_atomically(statements_, ids_, r->stream,
                                                        r->events, r->expected, time);
        any_ok = true;
      } catch (...) {
        // SQLite may have rolled the whole transaction back (I/O error, disk full),
        // or the savepoint could not be undone: then nothing of the group stands.
        if (sqlite3_get_autocommit(db)) throw;
        r->error = std::current_exception();
      }
    }
    if (any_ok) txn.commit();
  } catch (...) {
    fail_all(std::current_exception());
    return;
  }
  notifier_->notify();
}

void GroupCommit::claim_exclusive() noexcept {
  std::lock_guard lock(mu_);
  exclusive_owner_ = std::this_thread::get_id();
}

WriterAccess GroupCommit::acquire_exclusive() {
  std::unique_lock lock(mu_);
  if (busy_ && exclusive_owner_ == std::this_thread::get_id())
    throw InvalidArgument("this thread already holds an open Transaction of the store");
  ++exclusive_waiters_;
  exclusive_cv_.wait(lock, [&] { return !busy_; });
  --exclusive_waiters_;
  busy_ = true;
  exclusive_owner_ = std::this_thread::get_id();
  return WriterAccess{*db_, statements_, ids_};
}

void GroupCommit::release_exclusive() noexcept {
  std::lock_guard lock(mu_);
  busy_ = false;
  exclusive_owner_ = {};
  wake_next_locked();
}

}  // namespace eventlite::detail
