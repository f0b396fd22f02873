// Group commit.
//
// Under `full` durability a commit costs an fsync (hundreds of microseconds), while an
// insert costs a few. So appenders queue their requests and one of them, the leader,
// commits the requests at the front of the queue together: BEGIN IMMEDIATE, the
// requests (checked in memory, then inserted by multi-row INSERTs, see
// append_group()), one COMMIT. While the leader commits, new requests pile up and
// form the next group. (leveldb's DBImpl::Write and BuildBatchGroup follow the same
// plan.) Before its COMMIT the leader also takes in the requests that queued while it
// inserted: the appenders it just woke come back within microseconds, and left out
// they would wait out this commit and split every group in two.
//
// The queue holds batches, not requests: a request joins the batch at the back of the
// queue (or starts one when that is full or taken), and a leader commits one whole
// batch per round. The batch is also where its requests wait: one word that the
// leader sets and wakes with one futex call for all of them (a condition variable per
// request cost a system call, and often a preemption of the leader, per follower:
// waking took half as long as committing). The first request of a batch, its
// creator, waits on a word of its own, which also says "lead": so the leader can hand
// the writer to exactly one thread.
//
// Invariants:
// - At most one thread uses the writer connection: the owner, the thread for which
//   busy_ was set (a leader, or the owner of a Transaction). busy_ and the queue are
//   guarded by mu_. The queue is never empty while busy_ is false: a request that
//   finds the writer free takes it at once.
// - Ownership passes in one place, hand_off_locked(), with busy_ staying set: to a
//   waiting Transaction, or to the creator of the front batch (the asynchronous
//   thread if that request is asynchronous), or, with nothing waiting, busy_ falls.
//   A leader whose queue refilled while it committed leads again (kMaxLeadRounds at
//   most, so its own caller is not held long) unless a Transaction waits; after a
//   Transaction the queue goes first, so neither side starves.
// - Batches are committed in queue order, so two appends to one stream from one
//   thread keep their order.
// - A request's failure (conflict, bad event, id conflict) fails that request only:
//   the others in the group commit (append_group()). A failure that ends the
//   transaction (SQLite rolls back on some I/O errors, or the COMMIT fails) fails
//   every request of the group, and none of them is acknowledged.
// - A request is acknowledged only after COMMIT returned SQLITE_OK: the leader writes
//   the outcomes, then stores `done` with release order; a waiter reads its outcome
//   after loading `done` with acquire order. A synchronous request lives on its
//   appender's stack, so the leader touches none after that store; the batch itself
//   is shared, so the words outlive every wait and wake.
// - Wakes happen after mu_ is released (a thread woken under it would block on it).

#include "store/group_commit.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

// The values of a batch's wait words.
constexpr std::uint32_t kWaiting = 0;
constexpr std::uint32_t kLead = 1;  // creator_state only: the writer is yours, lead
constexpr std::uint32_t kDone = 2;  // every request of the batch has its outcome

// Waits until `word` leaves kWaiting; returns its value. On Linux straight on the
// futex: std::atomic::wait first spins with sched_yield, which on a loaded machine
// switches to another thread four times per wait (three times the context switches).
std::uint32_t wait_on(const std::atomic<std::uint32_t>& word) {
  for (;;) {
    const std::uint32_t v = word.load(std::memory_order_acquire);
    if (v != kWaiting) return v;
#ifdef __linux__
    // Returns at once if the word changed; spurious returns loop.
    ::syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, kWaiting, nullptr, nullptr, 0);
#else
    word.wait(kWaiting, std::memory_order_acquire);
#endif
  }
}

// Wakes every waiter of `word`, or one.
void wake(std::atomic<std::uint32_t>& word, bool all) {
#ifdef __linux__
  ::syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, all ? INT_MAX : 1, nullptr, nullptr, 0);
#else
  if (all)
    word.notify_all();
  else
    word.notify_one();
#endif
}

}  // namespace

struct GroupCommit::Request {
  GroupAppend append;  // stream, events, expected; seqs and error from the leader
  bool async = false;
  // Asynchronous requests own their data and report through the promise.
  std::string owned_stream;
  std::vector<NewEvent> owned_events;
  std::promise<std::vector<Seq>> promise;
};

struct GroupCommit::Batch {
  std::vector<Request*> requests;  // guarded by mu_ while queued, then the leader's
  std::size_t events = 0;          // likewise
  std::size_t cap = 0;             // constant: the events it may hold
  bool creator_async = false;      // constant: its first request is asynchronous
  bool creator_waits = false;      // guarded by mu_ while queued: its creator sleeps
  // Written by the owner, waited on without mu_.
  std::atomic<std::uint32_t> state{kWaiting};          // kDone
  std::atomic<std::uint32_t> creator_state{kWaiting};  // kLead, then kDone
};

// Whom hand_off_locked() passed the writer to, woken once mu_ is released.
struct GroupCommit::Handoff {
  bool exclusive = false;
  bool async = false;
  std::shared_ptr<Batch> creator;

  void wake(GroupCommit& gc) const {
    if (exclusive) gc.exclusive_cv_.notify_all();
    if (async) gc.async_cv_.notify_one();
    if (creator) detail::wake(creator->creator_state, false);
  }
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

// Adds `r` to the batch at the back of the queue, or to a new one (`created`).
std::shared_ptr<GroupCommit::Batch> GroupCommit::join_locked(Request* r, bool& created) {
  const std::size_t n = r->append.events.size();
  if (!queue_.empty()) {
    Batch& back = *queue_.back();
    if (back.requests.size() < kMaxGroupRequests && back.events + n <= back.cap) {
      back.requests.push_back(r);
      back.events += n;
      created = false;
      return queue_.back();
    }
  }
  auto batch = std::make_shared<Batch>();
  batch->requests.push_back(r);
  batch->events = n;
  batch->cap = n + kGroupExtraEvents;
  batch->creator_async = r->async;
  queue_.push_back(batch);
  created = true;
  return batch;
}

std::vector<Seq> GroupCommit::append(std::string_view stream,
                                     std::span<const NewEvent> events,
                                     Expected expected) {
  Request r;
  r.append.stream = stream;
  r.append.events = events;
  r.append.expected = expected;

  std::unique_lock lock(mu_);
  if (busy_ && exclusive_owner_ == std::this_thread::get_id())
    throw InvalidArgument(
        "append while this thread holds an open Transaction of the store: use "
        "Transaction::append, or end the transaction first");
  bool created = false;
  const std::shared_ptr<Batch> batch = join_locked(&r, created);
  if (!busy_) {
    // The writer is free, so the queue held nothing: lead, this batch first.
    busy_ = true;
    lead(lock);
  } else {
    if (created) batch->creator_waits = true;
    lock.unlock();
    if (wait_on(created ? batch->creator_state : batch->state) == kLead) {
      // Handed the writer: this batch is at the front.
      lock.lock();
      lead(lock);
    }
  }
  if (r.append.error) std::rethrow_exception(r.append.error);
  return std::move(r.append.seqs);
}

std::future<std::vector<Seq>> GroupCommit::append_async(std::string stream,
                                                        std::vector<NewEvent> events,
                                                        Expected expected) {
  auto r = std::make_unique<Request>();
  r->owned_stream = std::move(stream);
  r->owned_events = std::move(events);
  r->append.stream = r->owned_stream;
  r->append.events = r->owned_events;
  r->append.expected = expected;
  r->async = true;
  auto future = r->promise.get_future();

  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_) throw InvalidArgument("append_async on a store that is closing");
    if (!async_thread_.joinable()) async_thread_ = std::thread([this] { async_loop(); });
    bool created = false;
    join_locked(r.get(), created);
    r.release();  // the leader that commits it deletes it
    if (!busy_) {
      busy_ = true;
      async_turn_ = true;
      wake = true;
    }
  }
  if (wake) async_cv_.notify_one();
  return future;
}

void GroupCommit::async_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    async_cv_.wait(lock, [&] { return async_turn_ || (stopping_ && !busy_); });
    if (!async_turn_) return;  // stopping, and nothing left: the queue is empty
    async_turn_ = false;
    lead(lock);
    lock.lock();
  }
}

// Called with mu_ held by the owner of the writer, the queue not empty. Commits the
// front batch, and the batches queued while it inserts; while more wait, keeps
// leading (a few rounds at most, so that its own caller is not held long): handing
// over to a sleeping thread leaves the writer idle for a wake-up. Returns with mu_
// released.
void GroupCommit::lead(std::unique_lock<std::mutex>& lock) {
  for (int round = 1;; ++round) {
    taken_.clear();
    taken_.push_back(std::move(queue_.front()));
    queue_.pop_front();
    lock.unlock();

    commit_group(taken_);
    for (const auto& batch : taken_) {
      for (Request* r : batch->requests) {
        if (!r->async) continue;
        if (r->append.error)
          r->promise.set_exception(r->append.error);
        else
          r->promise.set_value(std::move(r->append.seqs));
        delete r;
      }
      // From here on the synchronous requests may vanish: touch only the batch. No
      // system call for a batch that nobody sleeps on (an uncontended append).
      const bool followers = batch->requests.size() > 1;
      batch->state.store(kDone, std::memory_order_release);
      if (followers) wake(batch->state, true);
      if (!batch->creator_async) {
        batch->creator_state.store(kDone, std::memory_order_release);
        if (batch->creator_waits) wake(batch->creator_state, false);
      }
    }
    taken_.clear();

    lock.lock();
    if (!queue_.empty() && round < kMaxLeadRounds && exclusive_waiters_ == 0) continue;
    const Handoff next = hand_off_locked(false);
    lock.unlock();
    next.wake(*this);
    return;
  }
}

// Called with mu_ held by the owner of the writer, who lets it go. Passes it on, busy_
// staying set: to a waiting Transaction or to the front batch, whichever `queue_first`
// does not put second; with nothing waiting, busy_ falls.
GroupCommit::Handoff GroupCommit::hand_off_locked(bool queue_first) {
  Handoff next;
  const bool to_exclusive =
      exclusive_waiters_ > 0 && !exclusive_turn_ && (!queue_first || queue_.empty());
  if (to_exclusive) {
    exclusive_turn_ = true;
    next.exclusive = true;
  } else if (!queue_.empty()) {
    const std::shared_ptr<Batch>& front = queue_.front();
    if (front->creator_async) {
      async_turn_ = true;
      next.async = true;
    } else {
      front->creator_state.store(kLead, std::memory_order_release);
      next.creator = front;
    }
  } else {
    busy_ = false;
    next.async = stopping_;  // the async thread may be waiting to stop
  }
  return next;
}

// Commits the batches in `taken` (one to begin with) in one transaction, taking into
// it the batches queued meanwhile, until none is left or the caps are reached.
void GroupCommit::commit_group(std::vector<std::shared_ptr<Batch>>& taken) {
  sqlite3* db = db_->getHandle();
  std::size_t requests = 0;
  std::size_t events = 0;
  const std::size_t cap = taken.front()->events + kGroupExtraEvents;
  try {
    const std::string time = now_text();
    WriteTxn txn(db, "append");
    const WriteLockMark locked(*notifier_);
    bool any_ok = false;
    for (std::size_t i = 0; i < taken.size(); ++i) {
      const Batch& batch = *taken[i];
      group_.clear();
      for (Request* r : batch.requests) group_.push_back(&r->append);
      requests += batch.requests.size();
      events += batch.events;
      if (append_group(statements_, ids_, group_, time)) any_ok = true;
      // Take in what queued while this batch went in: its appenders would otherwise
      // wait out this commit and form a group of their own, half the size.
      std::lock_guard lock(mu_);
      if (!queue_.empty() && exclusive_waiters_ == 0 &&
          requests + queue_.front()->requests.size() <= kMaxGroupRequests &&
          events + queue_.front()->events <= cap) {
        taken.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (any_ok) txn.commit();
  } catch (...) {
    const std::exception_ptr e = std::current_exception();
    for (const auto& batch : taken) {
      for (Request* r : batch->requests) {
        r->append.seqs.clear();
        r->append.error = e;
      }
    }
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
  if (busy_) {
    ++exclusive_waiters_;
    exclusive_cv_.wait(lock, [&] { return exclusive_turn_; });
    exclusive_turn_ = false;
    --exclusive_waiters_;
  } else {
    busy_ = true;
  }
  exclusive_owner_ = std::this_thread::get_id();
  return WriterAccess{*db_, statements_, ids_};
}

void GroupCommit::release_exclusive() noexcept {
  Handoff next;
  {
    std::lock_guard lock(mu_);
    exclusive_owner_ = {};
    next = hand_off_locked(true);
  }
  next.wake(*this);
}

}  // namespace eventlite::detail
