#pragma once

// What a handler is and what it receives: a Context per delivery (or a BatchContext
// per batch), plain handlers over events, batch handlers, typed handlers over C++
// types (nlohmann `from_json`), and a HandlerMap that routes one subscription's events
// to a handler per event type.

#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/event.hpp"

namespace eventlite {

class Transaction;

namespace detail {
struct DeliveryEnv;
struct ContextAccess;
}  // namespace detail

// One delivery of one event to one subscription's handler.
// Thread safety: one thread at a time (the handler's); valid during the call only.
class Context {
 public:
  // For testing a handler on its own, and for replays: with no transaction,
  // transaction() throws; progress() goes nowhere.
  Context(const Event& event, std::string_view subscription, int attempt = 1,
          Transaction* transaction = nullptr, bool replay = false) noexcept
      : Context(event, subscription, attempt, transaction, nullptr, replay) {}

  const Event& event() const noexcept { return *event_; }
  std::string_view subscription() const noexcept { return subscription_; }
  // 1 on the first delivery, then 2, 3... on retries.
  int attempt() const noexcept { return attempt_; }
  bool transactional() const noexcept { return transaction_ != nullptr; }
  // Whether this is a replay of the log (replay.hpp), not a live delivery: a handler
  // with side effects (a mail, a payment) skips them when it is.
  bool replay() const noexcept { return replay_; }
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

 private:
  friend struct detail::ContextAccess;  // the processor's deliveries, with their env
  Context(const Event& event, std::string_view subscription, int attempt,
          Transaction* transaction, const detail::DeliveryEnv* env, bool replay) noexcept
      : event_(&event),
        subscription_(subscription),
        attempt_(attempt),
        transaction_(transaction),
        env_(env),
        replay_(replay) {}

  const Event* event_;
  std::string_view subscription_;
  int attempt_;
  Transaction* transaction_;
  const detail::DeliveryEnv* env_;
  bool replay_;
};

// One call of a batch handler (or a sink): events of one lane, in seq order (every
// event of a stream that the batch holds is in it, in order).
// Thread safety: one thread at a time (the handler's); valid during the call only.
class BatchContext {
 public:
  // For the processor, and for testing a batch handler on its own. `attempts` has
  // one entry per event.
  BatchContext(std::span<const Event* const> events, std::span<const int> attempts,
               std::string_view subscription, Transaction* transaction = nullptr,
               bool replay = false) noexcept
      : events_(events),
        attempts_(attempts),
        subscription_(subscription),
        transaction_(transaction),
        replay_(replay) {}

  std::span<const Event* const> events() const noexcept { return events_; }
  std::size_t size() const noexcept { return events_.size(); }
  const Event& event(std::size_t i) const noexcept { return *events_[i]; }
  // The attempt of event i: 1 the first time, 2, 3... on retries.
  int attempt(std::size_t i) const noexcept { return attempts_[i]; }
  std::string_view subscription() const noexcept { return subscription_; }
  bool transactional() const noexcept { return transaction_ != nullptr; }
  // As Context::replay().
  bool replay() const noexcept { return replay_; }
  // As Context::transaction(): the batch's writes commit with its checkpoint.
  Transaction& transaction() const;

 private:
  std::span<const Event* const> events_;
  std::span<const int> attempts_;
  std::string_view subscription_;
  Transaction* transaction_;
  bool replay_;
};

// What a batch handler did with its batch: everything (ok()), or every event before
// `index`, the one at `index` having failed with `error`. A throw from the handler is
// failed(0, the exception).
// Thread safety: a value.
class BatchResult {
 public:
  static BatchResult ok() noexcept { return BatchResult(); }
  static BatchResult failed(std::size_t index, std::exception_ptr error) noexcept {
    BatchResult r;
    r.failed_ = true;
    r.index_ = index;
    r.error_ = std::move(error);
    return r;
  }
  bool all_done() const noexcept { return !failed_; }
  // The events done: all of them when all_done().
  std::size_t done(std::size_t batch_size) const noexcept {
    return failed_ ? std::min(index_, batch_size) : batch_size;
  }
  const std::exception_ptr& error() const noexcept { return error_; }

 private:
  BatchResult() noexcept = default;
  bool failed_ = false;
  std::size_t index_ = 0;
  std::exception_ptr error_;
};

// A batch handler: the events of the batch are done up to where its result says.
// The failed event and the rest of its stream are retried with the subscription's
// policy, exactly as single deliveries are; events of other streams after it are
// given to the handler again at once, in a following call. For a transactional
// subscription, a failure undoes the whole call's writes and the handler is called
// again with the events before the failed one. Called on a worker thread.
using BatchHandler = std::function<BatchResult(const BatchContext&)>;

// A handler: returns when the event is handled; throws to fail the delivery (it is
// retried, then parked as dead; a PermanentError or another error is_permanent()
// names is parked at once). Called on a worker thread.
using Handler = std::function<void(const Context&)>;

// A handler over `T`, converted from the event's data with nlohmann's from_json.
// Data that does not convert fails the delivery with InvalidEvent, which no retry can
// mend: the event is parked as a dead letter at once.
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
