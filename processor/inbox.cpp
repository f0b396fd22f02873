// The inbox (include/eventlite/inbox.hpp): a bridge's lease, its fenced idempotent
// batch transaction, its rejections, and its run loop.

#include "eventlite/inbox.hpp"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/lease.hpp"
#include "eventlite/transaction.hpp"

namespace eventlite {

struct Inbox::Impl {
  Impl(Store& s, InboxOptions o)
      : store(s),
        options(std::move(o)),
        lease(store, "bridge:" + options.name, options.lease_time),
        logger(options.logger ? options.logger : spdlog::default_logger()) {}

  Store& store;
  const InboxOptions options;
  Lease lease;
  std::shared_ptr<spdlog::logger> logger;
  std::chrono::steady_clock::time_point renewed{};

  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;  // guarded by stop_mu

  void reject(Transaction& txn, const InboxEntry& e, const std::string& reason) {
    nlohmann::json data = {
        {"origin", options.origin}, {"entry", e.id}, {"reason", reason}};
    data["event"] = e.payload ? nlohmann::json(*e.payload) : nlohmann::json(nullptr);
    NewEvent rejected;
    rejected.type = "BridgeEntryRejected";
    // An entry that is not UTF-8 is kept with U+FFFD in place of what is not.
    rejected.data = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    rejected.metadata = "{}";
    txn.append(options.rejected_prefix + options.name, rejected);
    logger->warn("{} {}: entry {} of {} rejected: {}", options.kind, options.name, e.id,
                 options.origin, reason);
  }
};

Inbox::Inbox(Store& store, InboxOptions options) {
  if (options.name.empty()) throw InvalidArgument("inbox: the name is empty");
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
      m.logger->warn("{} {}: lease lost to another process", m.options.kind,
                     m.options.name);
    return Hold::standing_by;
  }
  m.renewed = now;
  if (had) return Hold::holding;
  m.logger->info("{} {}: took the lease (owner {})", m.options.kind, m.options.name,
                 m.lease.owner());
  return Hold::taken;
}

bool Inbox::held() const noexcept {
  return impl_->lease.held();
}

bool Inbox::append(std::span<const InboxEntry> entries) {
  Impl& m = *impl_;
  Transaction txn = m.store.transaction();
  if (!m.lease.holds_in(txn)) {
    txn.rollback();
    m.lease.release();  // ours no more: the next hold() takes it again or stands by
    m.logger->warn(
        "{} {}: lost its lease before committing; its {} entries are left for the new "
        "holder",
        m.options.kind, m.options.name, entries.size());
    return false;
  }
  for (const InboxEntry& e : entries) {
    if (!e.payload) {
      m.reject(txn, e, m.options.no_payload);
      continue;
    }
    try {
      const DecodedEvent d = decode_envelope(*e.payload);
      txn.append(d.stream, d.event);  // an id stored with this content: a no-op
    } catch (const InvalidEvent& bad) {
      m.reject(txn, e, std::string("not an envelope: ") + bad.what());
    } catch (const IdConflict& conflict) {
      m.reject(txn, e, conflict.what());
    }
  }
  txn.commit();
  return true;
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
      step();
      failure_pause = std::chrono::milliseconds(100);
      if (!m.lease.held() && pause(m.options.lease_time / 3)) break;
    } catch (const std::exception& e) {
      m.logger->warn("{} {}: {} (retrying in {} ms)", m.options.kind, m.options.name,
                     e.what(), failure_pause.count());
      if (pause(failure_pause)) break;
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

bool Inbox::pause(std::chrono::milliseconds d) {
  std::unique_lock lock(impl_->stop_mu);
  return impl_->stop_cv.wait_for(lock, d, [&] { return impl_->stopping; });
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
