// The Redis bridge (redis.hpp): a consumer group's entries into the local store, acked
// only after the local commit.
//
// A step, while this process holds the bridge's lease:
//   1. this consumer's own pending entries (XREADGROUP ... 0): what a bridge of this
//      name was given before it was killed and had not acknowledged;
//   2. when none, entries other consumers of the group left pending for claim_idle
//      (XAUTOCLAIM), at most once per claim_idle / 2;
//   3. when none, new entries (XREADGROUP ... >, blocking up to `block`).
// The batch is appended in one transaction, each event idempotently by its id; then
// XACK. An entry that cannot be appended (not an envelope, an id stored with other
// content) becomes a BridgeEntryRejected event in the rejected stream, in the same
// transaction, and is acknowledged with the rest.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/lease.hpp"
#include "eventlite/redis.hpp"
#include "eventlite/transaction.hpp"
#include "handlers/redis/connection.hpp"

namespace eventlite::redis {

namespace {

using detail::Connection;
using detail::Reply;

constexpr std::string_view kField = "event";

std::string_view text_of(const redisReply& r) {
  return {r.str, r.len};
}

// One entry of a reply: its id and its `event` field, if it has one; deleted: the
// stream no longer holds it (trimmed after it was handed out).
struct Entry {
  std::string id;
  std::optional<std::string> payload;
  bool deleted = false;
};

// [id, [field, value, ...]] elements of `entries` (an array reply) into `out`.
void collect(const redisReply& entries, std::vector<Entry>& out) {
  if (entries.type != REDIS_REPLY_ARRAY) return;
  for (std::size_t i = 0; i < entries.elements; ++i) {
    const redisReply* e = entries.element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 1) continue;
    Entry entry;
    entry.id = std::string(text_of(*e->element[0]));
    if (e->elements < 2 || e->element[1]->type != REDIS_REPLY_ARRAY) {
      entry.deleted = true;
    } else {
      const redisReply* fields = e->element[1];
      for (std::size_t f = 0; f + 1 < fields->elements; f += 2)
        if (text_of(*fields->element[f]) == kField)
          entry.payload = std::string(text_of(*fields->element[f + 1]));
    }
    out.push_back(std::move(entry));
  }
}

// XREADGROUP's reply: [[key, entries]] or nil.
void collect_read(const redisReply& reply, std::vector<Entry>& out) {
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements == 0) return;
  const redisReply* stream = reply.element[0];
  if (stream->type == REDIS_REPLY_ARRAY && stream->elements >= 2)
    collect(*stream->element[1], out);
}

}  // namespace

struct Bridge::Impl {
  Impl(Store& s, BridgeOptions o)
      : store(s),
        options(std::move(o)),
        url(Url::parse(options.url)),
        lease(store, "bridge:" + options.name, options.lease_time),
        logger(options.logger ? options.logger : spdlog::default_logger()) {
    if (options.key.empty()) throw InvalidArgument("redis bridge: the key is empty");
    if (options.group.empty()) throw InvalidArgument("redis bridge: the group is empty");
    if (options.batch == 0) throw InvalidArgument("redis bridge: the batch is 0");
    count = std::to_string(options.batch);
    block = std::to_string(options.block.count());
    claim_idle = std::to_string(options.claim_idle.count());
  }

  Store& store;
  const BridgeOptions options;
  const Url url;
  Lease lease;
  std::shared_ptr<spdlog::logger> logger;
  std::string count, block, claim_idle;  // the options as command arguments
  std::optional<Connection> conn;
  bool own_pending_done = false;  // this connection read its own pending entries
  std::chrono::steady_clock::time_point next_claim{};
  std::chrono::steady_clock::time_point renewed{};
  std::vector<Entry> entries;

  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;  // guarded by stop_mu

  bool hold_lease() {
    const auto now = std::chrono::steady_clock::now();
    if (lease.held() && now - renewed < options.lease_time / 3) return true;
    const bool had = lease.held();
    if (!lease.acquire_or_renew()) {
      if (had)
        logger->warn("redis bridge {}: lease lost to another process", options.name);
      return false;
    }
    renewed = now;
    if (!had) {
      logger->info("redis bridge {}: took the lease (owner {})", options.name,
                   lease.owner());
      own_pending_done = false;  // a new tenure starts with what was left pending
    }
    return true;
  }

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
    collect_read(*r, entries);
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
      collect(*r->element[1], entries);
    if (!entries.empty())
      logger->info("redis bridge {}: claimed {} entries left pending by another consumer",
                   options.name, entries.size());
  }

  // The rejected entry as an event of the rejected stream, in `txn`.
  void reject(Transaction& txn, const Entry& e, const std::string& reason) {
    nlohmann::json data = {{"key", options.key}, {"entry", e.id}, {"reason", reason}};
    data["event"] = e.payload ? nlohmann::json(*e.payload) : nlohmann::json(nullptr);
    NewEvent rejected;
    rejected.type = "BridgeEntryRejected";
    rejected.data = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    rejected.metadata = "{}";
    txn.append(options.rejected_prefix + options.name, rejected);
    logger->warn("redis bridge {}: entry {} of {} rejected: {}", options.name, e.id,
                 options.key, reason);
  }

  void append_batch() {
    Transaction txn = store.transaction();
    // Fencing: a bridge that stalled past its lease must not append after the
    // process that took over (the entries stay pending and come to it).
    if (!lease.holds_in(txn)) {
      lease.release();  // ours no more: the next step takes it again or stands by
      throw BrokerError("redis", true,
                        fmt::format("bridge {} lost its lease before committing; its "
                                    "entries stay pending for the new holder",
                                    options.name));
    }
    for (const Entry& e : entries) {
      if (e.deleted) continue;  // gone from the stream: nothing to keep
      if (!e.payload) {
        reject(txn, e, "the entry has no \"event\" field");
        continue;
      }
      try {
        const DecodedEvent d = decode_envelope(*e.payload);
        txn.append(d.stream, d.event);  // an id already stored with this content: a no-op
      } catch (const InvalidEvent& bad) {
        reject(txn, e, std::string("not an envelope: ") + bad.what());
      } catch (const IdConflict& conflict) {
        reject(txn, e, conflict.what());
      }
    }
    txn.commit();
  }

  void ack() {
    std::vector<std::string_view> args{"XACK", options.key, options.group};
    for (const Entry& e : entries) args.push_back(e.id);
    conn->command(args, "acknowledge entries");
  }

  std::size_t step() {
    if (!hold_lease()) return 0;
    entries.clear();
    try {
      connect();
      if (!own_pending_done) {
        read(true);
        if (entries.empty()) own_pending_done = true;
      }
      if (entries.empty()) claim();
      if (entries.empty()) read(false);
      if (entries.empty()) return 0;
      append_batch();
      ack();
    } catch (const BrokerError&) {
      conn.reset();  // the next step connects again
      throw;
    }
    return entries.size();
  }

  // Waits `d` or until stop(); returns whether stopping.
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock lock(stop_mu);
    return stop_cv.wait_for(lock, d, [&] { return stopping; });
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
  {
    std::lock_guard lock(impl_->stop_mu);
    impl_->stopping = false;
  }
  auto failure_pause = std::chrono::milliseconds(100);
  for (;;) {
    {
      std::lock_guard lock(impl_->stop_mu);
      if (impl_->stopping) break;
    }
    try {
      impl_->step();
      failure_pause = std::chrono::milliseconds(100);
      if (!impl_->lease.held() && impl_->pause(impl_->options.lease_time / 3)) break;
    } catch (const std::exception& e) {
      impl_->logger->warn("redis bridge {}: {} (retrying in {} ms)", impl_->options.name,
                          e.what(), failure_pause.count());
      if (impl_->pause(failure_pause)) break;
      failure_pause = std::min(failure_pause * 2, std::chrono::milliseconds(5000));
    }
  }
  impl_->lease.release();
}

void Bridge::stop() noexcept {
  {
    std::lock_guard lock(impl_->stop_mu);
    impl_->stopping = true;
  }
  impl_->stop_cv.notify_all();
}

bool Bridge::active() const noexcept {
  return impl_->lease.held();
}

}  // namespace eventlite::redis
