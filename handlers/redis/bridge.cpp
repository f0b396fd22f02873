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

// `o` as the inbox's options, once the bridge's own are checked.
InboxOptions inbox_options(const BridgeOptions& o) {
  Url::parse(o.url);  // throws for a malformed one, before anything is made
  if (o.key.empty()) throw InvalidArgument("redis bridge: the key is empty");
  if (o.group.empty()) throw InvalidArgument("redis bridge: the group is empty");
  if (o.batch == 0) throw InvalidArgument("redis bridge: the batch is 0");
  return {.name = o.name,
          .broker = "redis",
          .source = o.key,
          .lease_time = o.lease_time,
          .rejected_prefix = o.rejected_prefix,
          .idle_wait = std::chrono::milliseconds(0),  // XREADGROUP blocks
          .logger = o.logger};
}

}  // namespace

struct Bridge::Impl {
  Impl(BridgeOptions o, Inbox& in)
      : options(std::move(o)),
        url(Url::parse(options.url)),
        inbox(in),
        count(std::to_string(options.batch)),
        block(std::to_string(options.block.count())),
        claim_idle(std::to_string(options.claim_idle.count())) {}

  const BridgeOptions options;
  const Url url;
  Inbox& inbox;
  const std::string count, block, claim_idle;  // the options as command arguments
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
};

Bridge::Bridge(Store& store, BridgeOptions options)
    : InboxBridge(store, inbox_options(options)),
      impl_(std::make_unique<Impl>(std::move(options), inbox())) {}

Bridge::~Bridge() = default;

// What this consumer was given and did not acknowledge (after a reconnect: a tenure
// starts connected anew), then entries another consumer left pending, then new ones.
std::size_t Bridge::read_batch(std::vector<InboxEntry>& out, bool) {
  Impl& m = *impl_;
  m.batch.clear();
  m.connect();
  if (!m.own_pending_done) {
    m.read(true);
    if (m.batch.empty()) m.own_pending_done = true;
  }
  if (m.batch.empty()) m.claim();
  if (m.batch.empty()) m.read(false);
  const std::size_t n = m.batch.size();
  out.swap(m.batch.entries);
  return n;
}

void Bridge::ack(std::span<const InboxEntry> stored) {
  Impl& m = *impl_;
  std::vector<std::string_view> args{"XACK", m.options.key, m.options.group};
  for (const InboxEntry& e : stored) args.push_back(e.id);
  for (const std::string& id : m.batch.gone) args.push_back(id);
  m.conn->command(args, "acknowledge entries");
}

void Bridge::disconnect() noexcept {
  impl_->conn.reset();
}

}  // namespace eventlite::redis
