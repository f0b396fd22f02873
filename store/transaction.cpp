#include "eventlite/transaction.hpp"

#include "eventlite/errors.hpp"
#include "eventlite/upcast.hpp"
#include "store/stamp.hpp"
#include "store/clock.hpp"
#include "store/store_impl.hpp"

namespace eventlite {

Transaction::Transaction(std::unique_ptr<detail::TransactionState> state) noexcept
    : state_(std::move(state)) {}
Transaction::Transaction(Transaction&&) noexcept = default;

Transaction& Transaction::operator=(Transaction&& other) noexcept {
  if (this != &other) {
    rollback();
    state_ = std::move(other.state_);
  }
  return *this;
}

Transaction::~Transaction() {
  rollback();
}

bool Transaction::active() const noexcept {
  return state_ && state_->active;
}

std::vector<Seq> Transaction::append(std::string_view stream,
                                     std::span<const NewEvent> events,
                                     Expected expected) {
  if (!active()) throw InvalidArgument("append on a transaction that has ended");
  state_->store->writer->claim_exclusive();
  std::vector<NewEvent> stamped;
  events = detail::stamp_missing(state_->store->options.upcasters.get(), events, stamped);
  detail::validate(stream, events, state_->store->limits());
  auto& access = state_->access;
  sqlite3* db = access.database.getHandle();
  // SQLite ends a transaction by itself after some errors (disk full, I/O): a
  // savepoint now would start and commit a transaction of its own.
  if (sqlite3_get_autocommit(db))
    throw StorageError(SQLITE_ERROR, SQLITE_ERROR,
                       "append: the transaction was rolled back by SQLite after an "
                       "earlier error; nothing of it is stored");
  try {
    return detail::append_atomically(access.statements, access.ids, stream, events,
                                     expected, detail::now_text());
  } catch (const StorageError&) {
    // Disk full or an I/O error in the middle of an insert: SQLite rolled the whole
    // transaction back. Say so by ending it here too.
    if (sqlite3_get_autocommit(db)) rollback();
    throw;
  }
}

Seq Transaction::append(std::string_view stream, const NewEvent& event,
                        Expected expected) {
  return append(stream, std::span<const NewEvent>(&event, 1), expected).front();
}

SQLite::Database& Transaction::database() {
  if (!active()) throw InvalidArgument("database() on a transaction that has ended");
  state_->store->writer->claim_exclusive();
  if (sqlite3_get_autocommit(state_->access.database.getHandle()))
    throw StorageError(SQLITE_ERROR, SQLITE_ERROR,
                       "the transaction was rolled back by SQLite after an earlier "
                       "error; roll it back and start again");
  return state_->access.database;
}

void Transaction::commit() {
  if (!active()) throw InvalidArgument("commit on a transaction that has ended");
  sqlite3* db = state_->access.database.getHandle();
  state_->active = false;
  try {
    detail::commit_or_roll_back(db, "transaction");
  } catch (...) {
    state_->store->notifier->write_unlocked();
    state_->store->writer->release_exclusive();
    throw;
  }
  state_->store->notifier->write_unlocked();
  state_->store->writer->release_exclusive();
  state_->store->notifier->notify();
}

void Transaction::rollback() noexcept {
  if (!active()) return;
  state_->active = false;
  detail::rollback_quietly(state_->access.database.getHandle());
  state_->store->notifier->write_unlocked();
  state_->store->writer->release_exclusive();
}

}  // namespace eventlite
