#pragma once

// A named lease in the store's file (the eventlite_leases table, as subscriptions
// and periodic tasks use it): one holder at a time across every process that opens
// the file, for work that must not run twice at once, such as a bridge that appends
// a broker's entries in order.
//
//   eventlite::Lease lease(store, "bridge:orders", std::chrono::seconds(15));
//   while (running) {
//     if (!lease.acquire_or_renew()) { wait(); continue; }  // another process has it
//     do_a_bounded_step();  // shorter than the lease time
//   }
//
// A holder that dies stops renewing; another takes the lease once it expires. Each
// change of hands bumps the fencing token, and a renewal succeeds only while the row
// still shows this holder's owner name and token.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"

namespace eventlite {

namespace detail {
class Writer;
}

// Thread safety: one thread at a time.
class Lease {
 public:
  // `owner` names this holder in the file (status shows it); empty: host:pid:random.
  // Takes nothing yet.
  Lease(Store& store, std::string name, std::chrono::milliseconds duration,
        std::string owner = {});
  ~Lease();  // release()
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // Renews the lease if this holder has it, else takes it if it is free or expired.
  // Returns whether this holder has it now, until now + duration. Throws
  // StorageError if the file cannot be written (the lease is then not held).
  bool acquire_or_renew();
  // Whether it was held after the last acquire_or_renew() and has not expired since.
  bool held() const noexcept;
  // Fencing: whether the file still shows this holder's lease, unexpired, read inside
  // `txn` (a write transaction of this lease's store), so that work committed in
  // `txn` cannot land after another process took over. Throws StorageError.
  bool holds_in(Transaction& txn);
  // Ends the lease now if held, so another process can take it at once. Never throws.
  void release() noexcept;

  const std::string& name() const noexcept { return name_; }
  const std::string& owner() const noexcept { return owner_; }
  std::int64_t token() const noexcept { return token_; }

 private:
  std::unique_ptr<detail::Writer> writer_;  // the store's writer, statements kept
  std::string name_;
  std::chrono::milliseconds duration_;
  std::string owner_;
  std::int64_t token_ = 0;  // 0: not held
  std::chrono::steady_clock::time_point until_{};
};

}  // namespace eventlite
