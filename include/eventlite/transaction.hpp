#pragma once

// A write transaction on the store's connection: the application's SQL and its events
// commit or roll back together (the transactional outbox).

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "eventlite/event.hpp"

namespace SQLite {
class Database;
}

namespace eventlite {

namespace detail {
struct TransactionState;
}

// Created by Store::transaction(). Rolls back on destruction unless committed.
// While it is open, the store's other appends wait for it.
// Thread safety: one thread at a time.
class Transaction {
 public:
  Transaction(Transaction&&) noexcept;
  Transaction& operator=(Transaction&&) noexcept;
  ~Transaction();  // Rolls back if neither committed nor rolled back. Never throws.

  // As Store::append, inside this transaction. A failure leaves the transaction open
  // with none of this call's events in it, except a storage failure that made SQLite
  // roll the whole transaction back (disk full, I/O error): then nothing of the
  // transaction is stored and active() is false. append, database() and commit() throw
  // InvalidArgument once the transaction has ended.
  std::vector<Seq> append(std::string_view stream, std::span<const NewEvent> events,
                          Expected expected = Expected::any());
  Seq append(std::string_view stream, const NewEvent& event,
             Expected expected = Expected::any());

  // The connection, for the application's own statements in this transaction.
  // Valid until commit() or rollback(). Do not BEGIN, COMMIT or ROLLBACK on it.
  SQLite::Database& database();

  // Commits. Throws StorageError if the commit fails; the transaction is then
  // rolled back and nothing of it is stored.
  void commit();
  // Rolls back everything done in this transaction. Never throws.
  void rollback() noexcept;
  bool active() const noexcept;

 private:
  friend class Store;
  explicit Transaction(std::unique_ptr<detail::TransactionState> state) noexcept;
  std::unique_ptr<detail::TransactionState> state_;
};

}  // namespace eventlite
