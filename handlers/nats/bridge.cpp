// The NATS bridge (nats.hpp): a JetStream durable pull consumer's messages into the
// local store, acknowledged only after the local commit.
//
// A step, while this process holds the bridge's lease: fetch up to `batch` messages
// (waiting up to `block`), store them through the Inbox (one fenced transaction,
// idempotent by event id, rejections kept), then ack each and flush the acks. On
// each new connection, messages handed out and never acknowledged make the consumer
// start again from its ack floor (ensure_consumer), so they are not redelivered after
// newer ones: the local file keeps the stream's order.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <optional>
#include <string>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/inbox.hpp"
#include "eventlite/nats.hpp"
#include "handlers/nats/connection.hpp"

namespace eventlite::nats {

namespace {

using detail::check;

struct ConsumerInfoFree {
  void operator()(jsConsumerInfo* i) const noexcept { jsConsumerInfo_Destroy(i); }
};

// A fetched batch, destroyed with its messages.
struct Fetched {
  natsMsgList list{};
  Fetched() = default;
  Fetched(const Fetched&) = delete;
  Fetched& operator=(const Fetched&) = delete;
  ~Fetched() { natsMsgList_Destroy(&list); }
};

std::int64_t nanos(std::chrono::milliseconds d) {
  return static_cast<std::int64_t>(d.count()) * 1000000;
}

}  // namespace

struct Bridge::Impl {
  Impl(Store& s, BridgeOptions o)
      : options(std::move(o)),
        where(redacted(options.url)),
        inbox(s, {.name = options.name,
                  .origin = "jetstream stream " + options.stream,
                  .kind = "nats bridge",
                  .lease_time = options.lease_time,
                  .rejected_prefix = options.rejected_prefix,
                  .logger = options.logger}) {
    detail::check_url(options.url, "nats bridge");
    if (options.stream.empty()) throw InvalidArgument("nats bridge: the stream is empty");
    if (options.durable.empty() ||
        options.durable.find_first_of(". *>") != std::string::npos)
      throw InvalidArgument(
          "nats bridge: the durable name must be non-empty, without '.', ' ', '*' or "
          "'>'");
    if (options.batch == 0) throw InvalidArgument("nats bridge: the batch is 0");
  }

  const BridgeOptions options;
  const std::string where;  // the redacted URL
  Inbox inbox;
  detail::ConnPtr conn;
  detail::JsPtr js;
  std::unique_ptr<natsSubscription, detail::SubFree> sub;
  std::vector<InboxEntry> entries;

  void disconnect() noexcept {
    sub.reset();
    js.reset();
    conn.reset();
  }

  void connect() {
    if (sub) return;
    conn = detail::connect(detail::settings_of(options), where);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = options.timeout.count();
    jsCtx* raw_js = nullptr;
    check(natsConnection_JetStream(&raw_js, conn.get(), &jo), where, "open JetStream");
    js.reset(raw_js);
    ensure_consumer();
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = options.stream.c_str();
    so.Consumer = options.durable.c_str();
    so.ManualAck = true;
    natsSubscription* raw_sub = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const char* subject =
        options.filter_subject.empty() ? nullptr : options.filter_subject.c_str();
    check(js_PullSubscribe(&raw_sub, js.get(), subject, options.durable.c_str(), nullptr,
                           &so, &code),
          where, "subscribe to the durable consumer");
    sub.reset(raw_sub);
  }

  [[noreturn]] void stream_missing() const {
    throw BrokerError("nats", true,
                      fmt::format("JetStream stream {} not found on {}", options.stream,
                                  where));
  }

  // Makes the durable consumer ready: created when it is missing; created again from
  // its ack floor when messages were handed out and never acknowledged (by a bridge
  // that died, or by this one before its connection broke), so that they come again
  // before anything newer and the file keeps the stream's order.
  void ensure_consumer() {
    jsConsumerInfo* raw = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_GetConsumerInfo(&raw, js.get(), options.stream.c_str(),
                                      options.durable.c_str(), nullptr, &code);
    std::unique_ptr<jsConsumerInfo, ConsumerInfoFree> info(raw);
    if (code == JSStreamNotFoundErr) stream_missing();
    if (s == NATS_OK && info->NumAckPending == 0) {
      if (info->Config->AckPolicy != js_AckExplicit)
        throw BrokerError(
            "nats", false,
            fmt::format("consumer {} of stream {} on {} does not ask for explicit acks",
                        options.durable, options.stream, where));
      return;
    }
    if (s != NATS_OK && s != NATS_NOT_FOUND && code != JSConsumerNotFoundErr)
      detail::fail(where, "read the consumer", s);
    jsConsumerConfig cfg;
    jsConsumerConfig_Init(&cfg);
    cfg.Durable = options.durable.c_str();
    cfg.AckPolicy = js_AckExplicit;
    cfg.DeliverPolicy = js_DeliverAll;
    cfg.AckWait = nanos(options.ack_wait);
    cfg.MaxAckPending = static_cast<std::int64_t>(options.batch);
    if (!options.filter_subject.empty()) cfg.FilterSubject = options.filter_subject.c_str();
    if (s == NATS_OK) {
      const std::uint64_t from = info->AckFloor.Stream + 1;
      inbox.logger().info(
          "nats bridge {}: {} messages of consumer {} were never acknowledged; it "
          "starts again from stream seq {}",
          options.name, info->NumAckPending, options.durable, from);
      cfg.DeliverPolicy = js_DeliverByStartSequence;
      cfg.OptStartSeq = from;
      code = static_cast<jsErrCode>(0);
      s = js_DeleteConsumer(js.get(), options.stream.c_str(), options.durable.c_str(),
                            nullptr, &code);
      if (s != NATS_OK && code != JSConsumerNotFoundErr)
        detail::fail(where, "reset the consumer", s);
    }
    raw = nullptr;
    code = static_cast<jsErrCode>(0);
    s = js_AddConsumer(&raw, js.get(), options.stream.c_str(), &cfg, nullptr, &code);
    info.reset(raw);
    if (code == JSStreamNotFoundErr) stream_missing();
    check(s, where, "create the durable consumer");
  }

  std::size_t step() {
    if (inbox.hold() == Inbox::Hold::standing_by) return 0;
    try {
      connect();
      Fetched fetched;
      jsErrCode code = static_cast<jsErrCode>(0);
      const natsStatus s =
          natsSubscription_Fetch(&fetched.list, sub.get(), static_cast<int>(options.batch),
                                 options.block.count(), &code);
      if (s == NATS_TIMEOUT) return 0;
      check(s, where, "fetch from the durable consumer");
      const int n = fetched.list.Count;
      if (n == 0) return 0;
      entries.clear();
      for (int i = 0; i < n; ++i) {
        natsMsg* m = fetched.list.Msgs[i];
        InboxEntry e;
        jsMsgMetaData* meta = nullptr;
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK && meta) {
          e.id = std::to_string(meta->Sequence.Stream);
          jsMsgMetaData_Destroy(meta);
        } else {
          e.id = natsMsg_GetSubject(m);
        }
        e.payload = std::string(natsMsg_GetData(m),
                                static_cast<std::size_t>(natsMsg_GetDataLength(m)));
        entries.push_back(std::move(e));
      }
      if (!inbox.append(entries)) return 0;  // the lease moved: theirs now
      for (int i = 0; i < n; ++i)
        check(natsMsg_Ack(fetched.list.Msgs[i], nullptr), where, "acknowledge");
      check(natsConnection_FlushTimeout(conn.get(), options.timeout.count()), where,
            "flush the acks");
      return static_cast<std::size_t>(n);
    } catch (const BrokerError&) {
      disconnect();  // the next step connects again
      throw;
    }
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

}  // namespace eventlite::nats
