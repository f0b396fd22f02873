#include "processor/sink_session.hpp"

#include <spdlog/logger.h>

#include "eventlite/errors.hpp"
#include "processor/backoff.hpp"
#include "store/time_text.hpp"

namespace eventlite::detail {

// Drops from the next batches what the outside copy already holds: what a forwarder
// killed between the broker's ack and its checkpoint sent is not sent again.
SinkSession::Opened SinkSession::open(const Store& store, spdlog::logger& logger,
                                      const std::string& name, std::uint64_t epoch,
                                      Seq head, bool parallel_lanes) {
  if (open_) return {};
  SinkContext context;
  context.store = store.identity();
  context.event_id = [&store](Seq seq) -> std::optional<std::string> {
    for (const Event& e : store.read_all({.from = seq, .to = seq, .limit = 1}))
      return e.id;
    return std::nullopt;
  };
  context.logger = &logger;
  Opened out;
  try {
    out.reconciled = sink_->open(context);
  } catch (const std::exception& e) {
    // A retry can mend it (the broker is down): the whole unit waits the backoff.
    // It cannot (a refused password): the lanes run and park their events.
    if (!is_permanent(e)) throw;
    logger.error("sink cannot open, parking what it is given: subscription={}: {}", name,
                 e.what());
    out.permanent = std::current_exception();
    return out;  // not open: the next unit tries again
  }
  open_ = true;
  epoch_ = epoch;
  logger.info("sink opened: subscription={} outside copy at={}", name,
              out.reconciled ? std::to_string(*out.reconciled) : "unknown");
  if (out.reconciled && *out.reconciled > head) {
    // A sink that does not check whose entries it reads (an application's own): never
    // skip what this store has not sent.
    logger.error(
        "sink's outside copy is at seq {}, past this store's head {}: not skipping; "
        "subscription={}",
        *out.reconciled, head, name);
    out.reconciled.reset();
  }
  // Lanes forward in parallel: the last entry does not say that everything before it
  // arrived.
  if (parallel_lanes) out.reconciled.reset();
  return out;
}

BatchResult SinkSession::publish(const BatchContext& batch) {
  const auto started = std::chrono::steady_clock::now();
  const auto record = [&] {
    const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    // A round trip takes time, if less than the microseconds it is counted in.
    round_trip_.record(std::max(took, std::chrono::microseconds(1)));
  };
  try {
    BatchResult result = sink_->publish(batch);
    record();
    return result;
  } catch (...) {
    record();
    throw;
  }
}

void SinkSession::close(bool all, bool leased, std::uint64_t lease_epoch,
                        spdlog::logger& logger, const std::string& name) noexcept {
  if (!open_) return;
  // Kept while this tenure of the lease lasts; a lease lost (even if taken again
  // since) closes it, so the next tenure opens and reconciles anew.
  if (!all && leased && lease_epoch == epoch_) return;
  sink_->close();
  open_ = false;
  logger.info("sink closed: subscription={}", name);
}

std::chrono::milliseconds SinkSession::failed(const std::exception_ptr& error,
                                              SysTime now, const RetryPolicy& retry,
                                              std::mt19937_64& rng,
                                              spdlog::logger& logger,
                                              const std::string& name) noexcept {
  close(true, false, 0, logger, name);
  const auto wait = retry_delay(retry, ++failures_, rng);
  std::string text = "unknown error";
  bool conflict = false;
  try {
    std::rethrow_exception(error);
  } catch (const DestinationConflict& e) {
    text = e.what();
    conflict = true;
  } catch (const std::exception& e) {
    text = e.what();
  } catch (...) {
  }
  try {
    std::lock_guard lock(mu_);
    if (!health_.failing_since) health_.failing_since = now;
    health_.last_error = text;
    health_.conflict = conflict;
  } catch (...) {  // bad_alloc: the figure in metrics() stays as it was
  }
  health_dirty = true;  // the failure count moved: the row shows it
  if (conflict)
    logger.error("sink refused its destination, retrying in {}ms: subscription={}: {}",
                 wait.count(), name, text);
  else
    logger.warn("sink failed, retrying in {}ms: subscription={}: {}", wait.count(), name,
                text);
  return wait;
}

void SinkSession::recovered(bool forwarded) noexcept {
  failures_ = 0;
  if (!forwarded) return;
  std::lock_guard lock(mu_);
  if (health_.failing_since) health_dirty = true;
  health_ = {};
}

SinkSession::Health SinkSession::health() const {
  std::lock_guard lock(mu_);
  return health_;
}

SinkHealthRow SinkSession::row(std::uint64_t forwarded, std::uint64_t failed) const {
  const Health h = health();
  SinkHealthRow row;
  if (h.failing_since) row.failing_since = format_time(*h.failing_since);
  row.last_error = h.last_error;
  row.forwarded = forwarded;
  row.failed = failed;
  row.round_trip_p50_us = round_trip_.quantile(0.5).count();
  row.round_trip_p99_us = round_trip_.quantile(0.99).count();
  return row;
}

}  // namespace eventlite::detail
