// What a handler receives with each delivery.

#include <algorithm>
#include <string>

#include "eventlite/errors.hpp"
#include "eventlite/handlers.hpp"
#include "processor/delivery.hpp"

namespace eventlite {
namespace {

[[noreturn]] void no_transaction(std::string_view subscription) {
  throw InvalidArgument("subscription \"" + std::string(subscription) +
                        "\" is not transactional: its handler has no transaction");
}

}  // namespace

Transaction& Context::transaction() const {
  if (!transaction_) no_transaction(subscription_);
  return *transaction_;
}

Transaction& BatchContext::transaction() const {
  if (!transaction_) no_transaction(subscription_);
  return *transaction_;
}

void Context::progress(double fraction, std::string_view message) const {
  if (!env_ || !env_->observer) return;
  detail::notify(*env_, env_->observer->on_progress, *this, std::clamp(fraction, 0.0, 1.0),
                 message);
}

}  // namespace eventlite
