// The public named lease (include/eventlite/lease.hpp), on the processor's lease
// queries and the store's one writer.

#include "eventlite/lease.hpp"

#include "eventlite/errors.hpp"
#include "processor/lease_keeper.hpp"
#include "processor/writer.hpp"
#include "store/time_text.hpp"

namespace eventlite {

Lease::Lease(Store& store, std::string name, std::chrono::milliseconds duration,
             std::string owner)
    : writer_(std::make_unique<detail::Writer>(
          detail::StoreAccess::make(detail::StoreAccess::impl(store)))),
      name_(std::move(name)),
      duration_(duration),
      owner_(owner.empty() ? detail::generated_owner() : std::move(owner)) {
  if (name_.empty()) throw InvalidArgument("lease: the name is empty");
  if (duration_.count() <= 0)
    throw InvalidArgument("lease: the duration must be positive");
}

Lease::~Lease() {
  release();
}

bool Lease::acquire_or_renew() {
  const auto started = std::chrono::steady_clock::now();
  const auto now = std::chrono::system_clock::now();
  const std::string now_text = detail::format_time(now);
  const std::string until_text = detail::format_time(now + duration_);
  try {
    token_ = writer_->run([&](detail::Queries& q) {
      return q.take_lease(name_, owner_, token_, token_ != 0, now_text, until_text).token;
    });
  } catch (...) {
    token_ = 0;
    throw;
  }
  until_ = started + duration_;
  return token_ != 0;
}

bool Lease::held() const noexcept {
  return token_ != 0 && std::chrono::steady_clock::now() < until_;
}

bool Lease::holds_in(Transaction& txn) {
  if (token_ == 0) return false;
  const auto row = writer_->queries(txn).read_lease(name_);
  return row && row->owner == owner_ && row->token == token_ &&
         row->expires > detail::format_time(std::chrono::system_clock::now());
}

void Lease::release() noexcept {
  if (token_ == 0) return;
  try {
    const std::string now_text = detail::format_time(std::chrono::system_clock::now());
    writer_->run(
        [&](detail::Queries& q) { q.release_lease(name_, owner_, token_, now_text); });
  } catch (...) {  // it expires by itself
  }
  token_ = 0;
}

}  // namespace eventlite
