// What a handler receives with each delivery.

#include <spdlog/logger.h>

#include <algorithm>
#include <string>

#include "eventlite/errors.hpp"
#include "eventlite/handlers.hpp"
#include "processor/delivery.hpp"

namespace eventlite {

Transaction& Context::transaction() const {
  if (!transaction_)
    throw InvalidArgument("subscription \"" + std::string(subscription_) +
                          "\" is not transactional: its handler has no transaction");
  return *transaction_;
}

void Context::progress(double fraction, std::string_view message) const {
  fraction = std::clamp(fraction, 0.0, 1.0);
  if (!scope_ || !scope_->observer || !scope_->observer->on_progress) return;
  try {
    scope_->observer->on_progress(*this, fraction, message);
  } catch (const std::exception& e) {
    // An observer must not fail a delivery.
    scope_->logger->warn("observer threw, ignored: {}", e.what());
  } catch (...) {
    scope_->logger->warn("observer threw, ignored");
  }
}

}  // namespace eventlite
