#pragma once

// What a handler is and what it receives: a Context per delivery, plain handlers over
// events, typed handlers over C++ types (nlohmann `from_json`), and a HandlerMap that
// routes one subscription's events to a handler per event type.

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/event.hpp"

namespace eventlite {

class Transaction;

namespace detail {
struct DeliveryScope;
}

// One delivery of one event to one subscription's handler.
// Thread safety: one thread at a time (the handler's); valid during the call only.
class Context {
 public:
  const Event& event() const noexcept { return *event_; }
  std::string_view subscription() const noexcept { return subscription_; }
  // 1 on the first delivery, then 2, 3... on retries.
  int attempt() const noexcept { return attempt_; }
  bool transactional() const noexcept { return transaction_ != nullptr; }
  // The transaction in which this delivery's checkpoint advances, for the handler's
  // own writes (transaction().database()) and appends (transaction().append()): they
  // commit with the checkpoint, or not at all. Do not commit() or rollback() it: the
  // processor does; a handler that ends it fails its delivery, and anything it
  // committed early is not covered by the checkpoint. If SQLite rolls it back (disk
  // full, I/O error), nothing of the batch is stored, the failed attempt still counts,
  // and the batch is delivered again after the backoff. Throws InvalidArgument for a
  // handler that was not subscribed as transactional.
  Transaction& transaction() const;
  // Reports progress of a long delivery to the processor's observer (on_progress).
  // `fraction` is clamped to [0, 1].
  void progress(double fraction, std::string_view message = {}) const;

  Context(const Event& event, std::string_view subscription, int attempt,
          Transaction* transaction, const detail::DeliveryScope* scope) noexcept
      : event_(&event),
        subscription_(subscription),
        attempt_(attempt),
        transaction_(transaction),
        scope_(scope) {}

 private:
  const Event* event_;
  std::string_view subscription_;
  int attempt_;
  Transaction* transaction_;
  const detail::DeliveryScope* scope_;
};

// A handler: returns when the event is handled; throws to fail the delivery (it is
// retried, then parked as dead). Called on a worker thread.
using Handler = std::function<void(const Context&)>;

// A handler over `T`, converted from the event's data with nlohmann's from_json.
// Data that does not convert fails the delivery with InvalidEvent.
template <class T, class F>
Handler typed(F fn) {
  return [fn = std::move(fn)](const Context& ctx) {
    T value;
    try {
      value = ctx.event().data_json().template get<T>();
    } catch (const nlohmann::json::exception& e) {
      throw InvalidEvent(0, "data",
                         "event seq " + std::to_string(ctx.event().seq) + " of type \"" +
                             ctx.event().type + "\" does not convert: " + e.what());
    }
    fn(std::as_const(value), ctx);
  };
}

// Routes events to a handler per event type; a subscription made with a HandlerMap
// and no explicit type filter receives only the types it names.
// Thread safety: build it on one thread; calling it is safe from many once built.
class HandlerMap {
 public:
  HandlerMap& on(std::string type, Handler handler) {
    handlers_[std::move(type)] = std::move(handler);
    return *this;
  }
  // on<UserCreated>("UserCreated", [](const UserCreated& u, const Context& ctx) {...})
  template <class T, class F>
  HandlerMap& on(std::string type, F fn) {
    return on(std::move(type), typed<T>(std::move(fn)));
  }

  std::vector<std::string> types() const {
    std::vector<std::string> out;
    for (const auto& [type, handler] : handlers_) out.push_back(type);
    return out;
  }

  // Calls the handler for the event's type; events of other types are done as-is.
  void operator()(const Context& ctx) const {
    auto it = handlers_.find(ctx.event().type);
    if (it != handlers_.end()) it->second(ctx);
  }

 private:
  std::map<std::string, Handler, std::less<>> handlers_;
};

}  // namespace eventlite
