#pragma once

// The processor's side of the store's one writer: write transactions with the
// processor's statements, prepared once for the store's life.

#include <memory>
#include <type_traits>

#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
#include "processor/queries.hpp"
#include "store/store_impl.hpp"

namespace eventlite::detail {

// Thread safety: safe to share; the statements are used only inside a write
// transaction, which the store hands to one thread at a time.
class Writer {
 public:
  explicit Writer(Store store) : store_(std::move(store)) {}
  ~Writer() {
    // Statements are finalized while holding the writer, as they are used.
    auto& impl = StoreAccess::impl(store_);
    if (!impl || !impl->writer || !queries_) return;
    impl->writer->acquire_exclusive();
    queries_.reset();
    impl->writer->release_exclusive();
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  Store& store() noexcept { return store_; }

  // The statements of `txn`'s connection (the store's writer, the same for its life).
  Queries& queries(Transaction& txn) {
    sqlite3* db = txn.database().getHandle();
    if (!queries_ || queries_->db() != db) queries_ = std::make_unique<Queries>(db);
    return *queries_;
  }

  // Runs fn(queries) in a write transaction and commits; a throw rolls it back.
  template <class F>
  auto run(F&& fn) {
    Transaction txn = store_.transaction();
    Queries& q = queries(txn);
    if constexpr (std::is_void_v<decltype(fn(q))>) {
      fn(q);
      txn.commit();
    } else {
      auto result = fn(q);
      txn.commit();
      return result;
    }
  }

 private:
  Store store_;
  std::unique_ptr<Queries> queries_;  // guarded by the store's writer (a transaction)
};

}  // namespace eventlite::detail
