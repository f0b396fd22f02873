#include "processor/checkpoints.hpp"

#include <spdlog/logger.h>

#include "store/clock.hpp"

namespace eventlite::detail {

std::vector<SubscriptionState*> Checkpointer::dirty(
    std::span<SubscriptionState* const> subs) {
  std::vector<SubscriptionState*> out;
  for (SubscriptionState* sub : subs) {
    if (!sub->leased()) continue;
    if (sub->options.transactional && sub->in_flight) continue;  // it fences on it
    if (sub->position() != sub->committed || !sub->pending_rows.empty() ||
        (sub->sink() && sub->sink()->health_dirty))
      out.push_back(sub);
  }
  return out;
}

bool Checkpointer::due(bool force, bool ignore_backoff, SteadyTime now) const {
  if (!force && now - last_commit_ < interval_) return false;
  return ignore_backoff || now >= retry_at_;
}

std::optional<CommitOutcome> Checkpointer::commit(
    Writer& writer, std::span<SubscriptionState* const> dirty, const std::string& owner,
    SysTime now, SteadyTime steady_now) {
  last_commit_ = steady_now;
  CommitOutcome out;
  try {
    const std::string now_text = format_time(now);
    writer.run([&](Queries& q) {
      for (SubscriptionState* sub : dirty) {
        if (!q.fence_holds(sub->name, sub->committed, owner, sub->lease.token)) {
          out.lost.push_back(sub);
          continue;
        }
        q.write_rows(sub->name, sub->pending_rows, now_text);
        if (sub->position() != sub->committed)
          q.write_position(sub->name, sub->position(), now_text);
        if (const SinkSession* sink = sub->sink())
          q.write_sink_health(sub->name, owner,
                              sink->row(sub->delivered.load(std::memory_order_relaxed),
                                        sub->failed.load(std::memory_order_relaxed)),
                              now_text);
        out.committed.push_back({sub, sub->position(), sub->pending_rows.size()});
        out.rows = out.rows || !sub->pending_rows.empty();
      }
    });
  } catch (const std::exception& e) {
    const auto wait = backoff_.next();
    retry_at_ = steady_now + wait;
    logger_->warn("checkpoint commit failed, retrying in {}ms: {}", wait.count(),
                  e.what());
    return std::nullopt;
  }
  backoff_.reset();
  for (const auto& c : out.committed)
    logger_->debug("checkpoint: subscription={} position={} rows={}", c.sub->name,
                   c.position, c.rows);
  return out;
}

}  // namespace eventlite::detail
