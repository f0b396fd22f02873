// The Redis bridge (redis.hpp): a consumer group's entries into the local store, acked
// only after the local commit.
//
// A step, while this process holds the bridge's lease:
//   1. this consumer's own pending entries (XREADGROUP ... 0): what a bridge of this
//      name was given before it was killed and had not acknowledged;
//   2. when none, entries other consumers of the group left pending for claim_idle
//      (XAUTOCLAIM), at most once per claim_idle / 2;
//   3. when none, new entries (XREADGROUP ... >, blocking up to `block`).
// The batch is stored by the Inbox (inbox.hpp: one fenced transaction, idempotent by
// event id, rejections kept), then XACKed.

#include <spdlog/spdlog.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/inbox.hpp"
#include "eventlite/redis.hpp"
#include "handlers/redis/connection.hpp"

namespace eventlite::redis {

namespace {

using detail::Connection;
using detail::Reply;

constexpr std::string_view kField = "event";

std::string_view text_of(const redisReply& r) {
  return {r.str, r.len};
}

// The entries of one read: those to store, and the ids of those the stream no longer
// holds (trimmed after they were handed out), acknowledged with the rest.
struct Batch {
  std::vector<InboxEntry> entries;
  std::vector<std::string> gone;
  bool empty() const { return entries.empty() && gone.empty(); }
  std::size_t size() const { return entries.size() + gone.size(); }
  void clear() {
    entries.clear();
    gone.clear();
  }
};

// [id, [field, value, ...]] elements of `entries` (an array reply) into `out`.
void collect(const redisReply& entries, Batch& out) {
  if (entries.type != REDIS_REPLY_ARRAY) return;
  for (std::size_t i = 0; i < entries.elements; ++i) {
    const redisReply* e = entries.element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 1) continue;
    InboxEntry entry;
    entry.id = std::string(text_of(*e->element[0]));
    if (e->elements < 2 || e->element[1]->type != REDIS_REPLY_ARRAY) {
      out.gone.push_back(std::move(entry.id));
      continue;
    }
    const redisReply* fields = e->element[1];
    for (std::size_t f = 0; f + 1 < fields->elements; f += 2)
      if (text_of(*fields->element[f]) == kField)
        entry.payload = std::string(text_of(*fields->element[f + 1]));
    if (!entry.payload) entry.why_none = "the entry has no \"event\" field";
    out.entries.push_back(std::move(entry));
  }
}

// XREADGROUP's reply: [[key, entries]] or nil.
void collect_read(const redisReply& reply, Batch& out) {
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements == 0) return;
  const redisReply* stream = reply.element[0];
  if (stream->type == REDIS_REPLY_ARRAY && stream->elements >= 2)
    collect(*stream->element[1], out);
}

}  // namespace

struct Bridge::Impl {
  Impl(Store& s, BridgeOptions o)
      : options(std::move(o)),
        url(Url::parse(options.url)),
        inbox(s, {.name = options.name,
                  .broker = "redis",
                  .source = options.key,
                  .lease_time = options.lease_time,
                  .rejected_prefix = options.rejected_prefix,
                  .idle_wait = std::chrono::milliseconds(0),  // XREADGROUP blocks
                  .logger = options.logger}) {
    if (options.key.empty()) throw InvalidArgument("redis bridge: the key is empty");
    if (options.group.empty()) throw InvalidArgument("redis bridge: the group is empty");
    if (options.batch == 0) throw InvalidArgument("redis bridge: the batch is 0");
    count = std::to_string(options.batch);
    block = std::to_string(options.block.count());
    claim_idle = std::to_string(options.claim_idle.count());
  }

  const BridgeOptions options;
  const Url url;
  Inbox inbox;
  std::string count, block, claim_idle;  // the options as command arguments
  std::optional<Connection> conn;
  bool own_pending_done = false;  // this connection read its own pending entries
  std::chrono::steady_clock::time_point next_claim{};
  Batch batch;

  void connect() {
    if (conn) return;
    conn.emplace(url, options.timeout);
    const std::array<std::string_view, 6> create{"XGROUP",      "CREATE", options.key,
                                                 options.group, "0",      "MKSTREAM"};
    try {
      conn->command(create, "create the consumer group");
    } catch (const BrokerError& e) {
      if (std::string_view(e.what()).find("BUSYGROUP") == std::string_view::npos) throw;
    }
    own_pending_done = false;
  }

  void read(bool own) {
    std::vector<std::string_view> args{"XREADGROUP", "GROUP", options.group,
                                       options.name, "COUNT", count};
    if (!own) {
      args.push_back("BLOCK");
      args.push_back(block);
    }
    args.push_back("STREAMS");
    args.push_back(options.key);
    args.push_back(own ? "0" : ">");
    const Reply r = conn->command(args, "read the stream");
    collect_read(*r, batch);
  }

  void claim() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_claim) return;
    next_claim = now + options.claim_idle / 2;
    const std::array<std::string_view, 8> args{"XAUTOCLAIM", options.key, options.group,
                                               options.name, claim_idle,  "0-0",
                                               "COUNT",      count};
    const Reply r = conn->command(args, "claim entries left pending");
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2)
      collect(*r->element[1], batch);
    if (!batch.empty())
      inbox.logger().info(
          "redis bridge {}: claimed {} entries left pending by another consumer",
          options.name, batch.size());
  }

  void ack() {
    std::vector<std::string_view> args{"XACK", options.key, options.group};
    for (const InboxEntry& e : batch.entries) args.push_back(e.id);
    for (const std::string& id : batch.gone) args.push_back(id);
    conn->command(args, "acknowledge entries");
  }

  std::size_t step() {
    const Inbox::Hold hold = inbox.hold();
    if (hold == Inbox::Hold::standing_by) return 0;
    if (hold == Inbox::Hold::taken) own_pending_done = false;  // read what was left
    batch.clear();
    try {
      connect();
      if (!own_pending_done) {
        read(true);
        if (batch.empty()) own_pending_done = true;
      }
      if (batch.empty()) claim();
      if (batch.empty()) read(false);
      if (batch.empty()) return 0;
      if (!inbox.append(batch.entries)) return 0;  // the lease moved: theirs now
      ack();
    } catch (const BrokerError&) {
      conn.reset();  // the next step connects again
      throw;
    }
    return batch.size();
  }
};

Bridge::Bridge(Store& store, BridgeOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}

Bridge::~Bridge() = default;

std::size_t Bridge::step() {
  return impl_->step();
}

std::size_t Bridge::run_until_idle() {
  std::size_t total = 0;
  while (const std::size_t n = impl_->step()) total += n;
  return total;
}

void Bridge::run() {
  impl_->inbox.run([this] { return impl_->step(); });
}

void Bridge::stop() noexcept {
  impl_->inbox.stop();
}

bool Bridge::active() const noexcept {
  return impl_->inbox.held();
}

}  // namespace eventlite::redis
