#pragma once

#include <SQLiteCpp/Database.h>

#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "eventlite/event.hpp"
#include "store/append.hpp"
#include "store/notifier.hpp"
#include "store/uuid.hpp"

namespace eventlite::detail {

// The writer connection and what may use it: group commits of appends, and
// Transactions holding it exclusively.
struct WriterAccess {
  SQLite::Database& database;
  AppendStatements& statements;
  UuidV7& ids;
};

// Owns the process's one writer connection and shares its commits between concurrent
// appenders (see group_commit.cpp for the algorithm).
// Thread safety: safe to share.
class GroupCommit {
 public:
  GroupCommit(std::unique_ptr<SQLite::Database> db, std::shared_ptr<Notifier> notifier);
  ~GroupCommit();  // Finishes queued asynchronous appends, then stops.

  std::vector<Seq> append(std::string_view stream, std::span<const NewEvent> events,
                          Expected expected);
  std::future<std::vector<Seq>> append_async(std::string stream,
                                             std::vector<NewEvent> events,
                                             Expected expected);

  // Waits until the writer is free and takes it for a Transaction.
  WriterAccess acquire_exclusive();
  void release_exclusive() noexcept;
  // The Transaction moved to this thread: appends from it now fail fast instead of
  // waiting for the transaction they are inside.
  void claim_exclusive() noexcept;

 private:
  struct Request;
  struct Batch;
  struct Handoff;
  std::shared_ptr<Batch> join_locked(Request* r, bool& created);
  void lead(std::unique_lock<std::mutex>& lock);
  void commit_group(std::vector<std::shared_ptr<Batch>>& taken);
  Handoff hand_off_locked(bool queue_first);
  void async_loop();

  std::unique_ptr<SQLite::Database> db_;       // used only by the owner of the writer
  AppendStatements statements_;                // likewise
  UuidV7 ids_;                                 // likewise
  std::vector<std::shared_ptr<Batch>> taken_;  // likewise: the batches committing
  std::vector<GroupAppend*> group_;            // likewise: the batch being appended
  std::shared_ptr<Notifier> notifier_;         // constant after construction

  std::mutex mu_;
  std::deque<std::shared_ptr<Batch>> queue_;  // guarded by mu_
  // Whether a thread owns the writer: a leader, a Transaction, or one that was
  // handed it and is waking up. Guarded by mu_.
  bool busy_ = false;
  std::thread::id exclusive_owner_;       // guarded by mu_
  std::condition_variable exclusive_cv_;  // waits of acquire_exclusive()
  int exclusive_waiters_ = 0;             // guarded by mu_
  bool exclusive_turn_ = false;           // guarded by mu_: handed to a Transaction
  std::condition_variable async_cv_;      // the async thread's wake-ups
  bool async_turn_ = false;               // guarded by mu_: handed to the async thread
  std::thread async_thread_;              // guarded by mu_; started on first append_async
  bool stopping_ = false;                 // guarded by mu_
};

}  // namespace eventlite::detail
