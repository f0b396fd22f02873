// The inbox (include/eventlite/inbox.hpp): a bridge's lease, its fenced idempotent
// batch transaction, its rejections and position, and its run loop.

#include "eventlite/inbox.hpp"

#include <SQLiteCpp/Database.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/lease.hpp"
#include "eventlite/transaction.hpp"
#include "processor/writer.hpp"
#include "store/clock.hpp"
#include "store/sqlite_util.hpp"
#include "store/store_impl.hpp"

namespace eventlite {

namespace {

constexpr std::size_t kKeptText = 4096;      // of a rejected entry's text
constexpr std::size_t kMaxNameBytes = 1024;  // as the store allows a stream name

// `text` cut to at most `n` bytes, not inside a UTF-8 sequence.
std::string_view prefix_of(std::string_view text, std::size_t n) {
  if (text.size() <= n) return text;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return text.substr(0, n);
}

// A UUID (version 8: its bits are ours) derived from `parts`, the same for the same
// parts: two 64-bit FNV-1a hashes of them, with different offsets.
std::string derived_id(std::initializer_list<std::string_view> parts) {
  std::array<std::uint64_t, 2> h = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL};
  for (std::string_view part : parts) {
    for (std::uint64_t& x : h) {
      for (unsigned char c : part) x = (x ^ c) * 0x100000001b3ULL;
      x = (x ^ 0xff) * 0x100000001b3ULL;  // a separator: ("ab","c") != ("a","bc")
    }
  }
  std::array<unsigned char, 16> b{};
  for (int i = 0; i < 8; ++i) {
    b[static_cast<std::size_t>(i)] = static_cast<unsigned char>(h[0] >> (56 - 8 * i));
    b[static_cast<std::size_t>(8 + i)] = static_cast<unsigned char>(h[1] >> (56 - 8 * i));
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x80);  // version 8
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // RFC 9562 variant
  return fmt::format(
      "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-"
      "{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
      b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
      b[13], b[14], b[15]);
}

// An entry's event: a CloudEvent if it says so, else an envelope; when the first
// reading fails, the other is tried, and the first one's error is the one thrown.
DecodedEvent decode(std::string_view text) {
  const bool cloudevent = text.find("\"specversion\"") != std::string_view::npos;
  try {
    return cloudevent ? decode_cloudevent(text) : decode_envelope(text);
  } catch (const InvalidEvent&) {
    try {
      return cloudevent ? decode_envelope(text) : decode_cloudevent(text);
    } catch (const InvalidEvent&) {
    }
    throw;
  }
}

bool permanent(const std::exception& e) {
  if (dynamic_cast<const InvalidArgument*>(&e)) return true;
  const auto* broker = dynamic_cast<const BrokerError*>(&e);
  return broker && !broker->retryable();
}

}  // namespace

struct Inbox::Impl {
  Impl(Store& s, InboxOptions o)
      : store(s),
        options(std::move(o)),
        lease(store, "bridge:" + options.name, options.lease_time),
        writer(detail::StoreAccess::make(detail::StoreAccess::impl(s))),
        logger(options.logger ? options.logger : detail::StoreAccess::impl(s)->logger),
        kind(options.broker + " bridge") {}

  Store& store;
  const InboxOptions options;
  Lease lease;
  detail::Writer writer;  // the store's statements on its write connection
  std::shared_ptr<spdlog::logger> logger;
  const std::string kind;  // "redis bridge", for log lines
  std::chrono::steady_clock::time_point renewed{};

  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;  // guarded by stop_mu

  // Waits `d`, or less if stop() is called; returns whether it was.
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock lock(stop_mu);
    return stop_cv.wait_for(lock, d, [&] { return stopping; });
  }

  void reject(Transaction& txn, const InboxEntry& e, const std::string& reason) {
    const std::string_view text = e.payload ? std::string_view(*e.payload) : "";
    nlohmann::json data = {{"broker", options.broker},
                           {"source", options.source},
                           {"entry", e.id},
                           {"reason", reason},
                           {"bytes", text.size()}};
    data["event"] = e.payload ? nlohmann::json(std::string(prefix_of(text, kKeptText)))
                              : nlohmann::json(nullptr);
    NewEvent rejected;
    rejected.id = derived_id({options.name, options.source, e.id, text});
    rejected.type = "BridgeEntryRejected";
    // An entry that is not UTF-8 is kept with U+FFFD in place of what is not.
    rejected.data = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    rejected.metadata = "{}";
    try {
      txn.append(options.rejected_prefix + options.name, rejected);
    } catch (const IdConflict&) {
      return;  // rejected before, for a reason worded otherwise: kept once
    }
    logger->warn("{} {}: entry {} of {} rejected: {}", kind, options.name, e.id,
                 options.source, reason);
  }

  void record_position(Transaction& txn, const InboxEntry& last, std::size_t stored,
                       std::size_t rejected) {
    writer.queries(txn).write_bridge(
        {options.name, options.broker, options.source, last.id, stored, rejected},
        detail::now_text());
  }
};

Inbox::Inbox(Store& store, InboxOptions options) {
  if (options.name.empty()) throw InvalidArgument("inbox: the name is empty");
  if (options.broker.empty() || options.source.empty())
    throw InvalidArgument("inbox: the broker or the source is empty");
  if ((options.rejected_prefix + options.name).size() > kMaxNameBytes)
    throw InvalidArgument(fmt::format(
        "inbox: the rejected stream (rejected_prefix + name) is longer than {} bytes",
        kMaxNameBytes));
  impl_ = std::make_unique<Impl>(store, std::move(options));
}

Inbox::~Inbox() = default;

Inbox::Hold Inbox::hold() {
  Impl& m = *impl_;
  const auto now = std::chrono::steady_clock::now();
  if (m.lease.held() && now - m.renewed < m.options.lease_time / 3) return Hold::holding;
  const bool had = m.lease.held();
  if (!m.lease.acquire_or_renew()) {
    if (had)
      m.logger->warn("{} {}: lease lost to another process", m.kind, m.options.name);
    return Hold::standing_by;
  }
  m.renewed = now;
  if (had) return Hold::holding;
  m.logger->info("{} {}: took the lease (owner {})", m.kind, m.options.name,
                 m.lease.owner());
  return Hold::taken;
}

bool Inbox::held() const noexcept {
  return impl_->lease.held();
}

bool Inbox::append(std::span<const InboxEntry> entries) {
  Impl& m = *impl_;
  if (entries.empty()) return true;
  Transaction txn = m.store.transaction();
  if (!m.lease.holds_in(txn)) {
    txn.rollback();
    m.lease.release();  // ours no more: the next hold() takes it again or stands by
    m.logger->warn(
        "{} {}: lost its lease before committing; its {} entries are left for the new "
        "holder",
        m.kind, m.options.name, entries.size());
    return false;
  }
  std::size_t rejected = 0;
  for (const InboxEntry& e : entries) {
    if (!e.payload) {
      m.reject(txn, e, e.why_none.empty() ? "the entry has no event in it" : e.why_none);
      ++rejected;
      continue;
    }
    // The reason names the problem: the entry's own shape, or what the store refuses
    // in an event that decoded.
    DecodedEvent d;
    try {
      d = decode(*e.payload);
    } catch (const InvalidEvent& bad) {
      m.reject(txn, e,
               fmt::format("cannot be decoded: {}: {}", bad.field(), bad.reason()));
      ++rejected;
      continue;
    }
    try {
      txn.append(d.stream, d.event);  // an id stored with this content: a no-op
    } catch (const InvalidEvent& bad) {
      m.reject(
          txn, e,
          fmt::format("the store refuses the event: {}: {}", bad.field(), bad.reason()));
      ++rejected;
    } catch (const IdConflict& conflict) {
      m.reject(txn, e, conflict.what());
      ++rejected;
    }
  }
  m.record_position(txn, entries.back(), entries.size(), rejected);
  txn.commit();
  return true;
}

std::optional<std::string> Inbox::last_entry() {
  // On a reader: the write lock is for writes.
  auto conn = detail::StoreAccess::impl(impl_->store)->readers->acquire();
  auto& q = conn->statement("SELECT last_entry FROM eventlite_bridges WHERE name = ?1");
  detail::StmtScope scope(q);
  q.bind(1, impl_->options.name);
  if (!q.step("read the bridge's position")) return std::nullopt;
  return std::string(q.column_text(0));
}

void Inbox::run(const std::function<std::size_t()>& step) {
  Impl& m = *impl_;
  auto failure_pause = std::chrono::milliseconds(100);
  for (;;) {
    {
      std::lock_guard lock(m.stop_mu);
      if (m.stopping) break;
    }
    try {
      const std::size_t n = step();
      failure_pause = std::chrono::milliseconds(100);
      if (!m.lease.held()) {
        if (m.pause(m.options.lease_time / 3)) break;
      } else if (n == 0 && m.options.idle_wait.count() > 0) {
        if (m.pause(m.options.idle_wait)) break;
      }
    } catch (const std::exception& e) {
      if (permanent(e)) {
        m.logger->error("{} {}: {} (stopping: retrying cannot mend it)", m.kind,
                        m.options.name, e.what());
        m.lease.release();
        throw;
      }
      m.logger->warn("{} {}: {} (retrying in {} ms)", m.kind, m.options.name, e.what(),
                     failure_pause.count());
      if (m.pause(failure_pause)) break;
      failure_pause = std::min(failure_pause * 2, std::chrono::milliseconds(5000));
    }
  }
  m.lease.release();
}

void Inbox::stop() noexcept {
  {
    std::lock_guard lock(impl_->stop_mu);
    impl_->stopping = true;
  }
  impl_->stop_cv.notify_all();
}

void Inbox::release() noexcept {
  impl_->lease.release();
}

const InboxOptions& Inbox::options() const noexcept {
  return impl_->options;
}

spdlog::logger& Inbox::logger() const noexcept {
  return *impl_->logger;
}

}  // namespace eventlite
