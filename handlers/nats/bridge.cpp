// The NATS bridge (nats.hpp): a JetStream durable pull consumer's messages into the
// local store, acknowledged only after the local commit.
//
// A step, while this process holds the bridge's lease: fetch up to `batch` messages
// (waiting up to `block`), store them through the Inbox (one fenced transaction,
// idempotent by event id, rejections kept, its position recorded), then ack each and
// flush the acks. Whatever goes wrong between fetch and ack (an error, a lost lease,
// a redelivery) drops the connection, and the next connection finds the messages
// never acknowledged and starts the consumer again from its ack floor
// (ensure_consumer): they are not redelivered after newer ones, and the local file
// keeps the stream's order.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
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

// `o`, once its URL and names are checked (before the inbox is made of them).
BridgeOptions checked(BridgeOptions o) {
  detail::check_url(o.url, "nats bridge");
  detail::refuse_name("nats bridge", "stream", o.stream, detail::name_problem(o.stream));
  detail::refuse_name("nats bridge", "durable", o.durable,
                      detail::name_problem(o.durable));
  if (!o.filter_subject.empty())
    detail::refuse_name("nats bridge", "filter_subject", o.filter_subject,
                        detail::subject_problem(o.filter_subject, true));
  if (o.batch == 0) throw InvalidArgument("nats bridge: the batch is 0");
  return o;
}

InboxOptions inbox_options(const BridgeOptions& o) {
  return {.name = o.name,
          .broker = "nats",
          .source = o.stream,
          .lease_time = o.lease_time,
          .rejected_prefix = o.rejected_prefix,
          .idle_wait = std::chrono::milliseconds(0),  // a fetch waits `block`
          .logger = o.logger};
}

}  // namespace

struct Bridge::Impl {
  Impl(BridgeOptions o, Inbox& in)
      : options(std::move(o)), where(redacted(options.url)), inbox(in) {}

  const BridgeOptions options;
  const std::string where;  // the redacted URL
  Inbox& inbox;
  detail::ConnPtr conn;
  detail::JsPtr js;
  std::unique_ptr<natsSubscription, detail::SubFree> sub;
  Fetched fetched;  // the last batch, until it is acknowledged

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

  // The stream seq of the last message a bridge of this name stored (0: none).
  std::uint64_t last_stored() {
    const std::optional<std::string> last = inbox.last_entry();
    std::uint64_t seq = 0;
    if (last) std::from_chars(last->data(), last->data() + last->size(), seq);
    return seq;
  }

  std::uint64_t stream_last_seq() {
    jsStreamInfo* raw = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s =
        js_GetStreamInfo(&raw, js.get(), options.stream.c_str(), nullptr, &code);
    std::unique_ptr<jsStreamInfo, detail::InfoFree> info(raw);
    if (code == JSStreamNotFoundErr) stream_missing();
    check(s, where, "read the stream's state");
    return info->State.LastSeq;
  }

  // A consumer of this durable name that the bridge cannot use as its own: refused
  // before anything is changed on the server.
  void check_consumer(const jsConsumerConfig& c) const {
    const std::string_view filter = c.FilterSubject ? c.FilterSubject : "";
    if (c.AckPolicy != js_AckExplicit || filter != options.filter_subject)
      throw BrokerError(
          "nats", false,
          fmt::format("consumer {} of stream {} on {} is not this bridge's (it wants "
                      "explicit acks and filter subject \"{}\"): give the bridge a "
                      "durable of its own",
                      options.durable, options.stream, where, options.filter_subject));
  }

  // Makes the durable consumer ready. A missing one is created from where the file
  // says this bridge stands (eventlite_bridges), or the stream's start. One with
  // messages handed out and never acknowledged (by a bridge that died, or by this one
  // before its connection broke or its lease moved) is created again from past both
  // its ack floor and the file's position, so that they come again before anything
  // newer and the file keeps the stream's order.
  void ensure_consumer() {
    jsConsumerInfo* raw = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s = js_GetConsumerInfo(&raw, js.get(), options.stream.c_str(),
                                      options.durable.c_str(), nullptr, &code);
    std::unique_ptr<jsConsumerInfo, ConsumerInfoFree> info(raw);
    if (code == JSStreamNotFoundErr) stream_missing();
    const bool exists = s == NATS_OK;
    if (!exists && s != NATS_NOT_FOUND && code != JSConsumerNotFoundErr)
      detail::fail(where, "read the consumer", s);
    if (exists) {
      check_consumer(*info->Config);
      if (info->NumAckPending == 0) return;
    }
    std::uint64_t from = last_stored();
    if (from > stream_last_seq()) {
      inbox.logger().warn(
          "nats bridge {}: stream {} ends before seq {}, where this bridge stood: it "
          "was created again; reading it from its start",
          options.name, options.stream, from);
      from = 0;
    }
    if (exists) from = std::max<std::uint64_t>(from, info->AckFloor.Stream);
    jsConsumerConfig cfg;
    jsConsumerConfig_Init(&cfg);
    cfg.Durable = options.durable.c_str();
    cfg.AckPolicy = js_AckExplicit;
    cfg.DeliverPolicy = from == 0 ? js_DeliverAll : js_DeliverByStartSequence;
    cfg.OptStartSeq = from == 0 ? 0 : from + 1;
    cfg.AckWait = nanos(options.ack_wait);
    cfg.MaxAckPending = static_cast<std::int64_t>(options.batch);
    if (!options.filter_subject.empty()) cfg.FilterSubject = options.filter_subject.c_str();
    if (exists) {
      inbox.logger().info(
          "nats bridge {}: {} messages of consumer {} were never acknowledged; it "
          "starts again from stream seq {}",
          options.name, info->NumAckPending, options.durable, from + 1);
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
};

Bridge::Bridge(Store& store, BridgeOptions options)
    : InboxBridge(store, inbox_options(checked(options))),
      impl_(std::make_unique<Impl>(checked(std::move(options)), inbox())) {}

Bridge::~Bridge() = default;

std::size_t Bridge::read_batch(std::vector<InboxEntry>& out, bool) {
  Impl& m = *impl_;
  m.connect();
  natsMsgList_Destroy(&m.fetched.list);
  m.fetched.list = {};
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s = natsSubscription_Fetch(&m.fetched.list, m.sub.get(),
                                              static_cast<int>(m.options.batch),
                                              m.options.block.count(), &code);
  if (s == NATS_TIMEOUT) return 0;
  check(s, m.where, "fetch from the durable consumer");
  const int n = m.fetched.list.Count;
  bool redelivered = false;
  for (int i = 0; i < n; ++i) {
    natsMsg* msg = m.fetched.list.Msgs[i];
    InboxEntry e;
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK && meta) {
      e.id = std::to_string(meta->Sequence.Stream);
      redelivered = redelivered || meta->NumDelivered > 1;
      jsMsgMetaData_Destroy(meta);
    } else {
      e.id = natsMsg_GetSubject(msg);
    }
    e.payload = std::string(natsMsg_GetData(msg),
                            static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
    out.push_back(std::move(e));
  }
  if (redelivered) {
    // Sent again after ack_wait (a step that stalled): newer messages may have been
    // handed out before them. Start the consumer again from its ack floor.
    m.inbox.logger().info(
        "nats bridge {}: messages came again after ack_wait; starting the consumer "
        "again from its ack floor to keep the stream's order",
        m.options.name);
    disconnect();
    out.clear();
    return 0;
  }
  return static_cast<std::size_t>(n);
}

void Bridge::ack(std::span<const InboxEntry>) {
  Impl& m = *impl_;
  for (int i = 0; i < m.fetched.list.Count; ++i)
    check(natsMsg_Ack(m.fetched.list.Msgs[i], nullptr), m.where, "acknowledge");
  check(natsConnection_FlushTimeout(m.conn.get(), m.options.timeout.count()), m.where,
        "flush the acks");
}

void Bridge::disconnect() noexcept {
  Impl& m = *impl_;
  natsMsgList_Destroy(&m.fetched.list);
  m.fetched.list = {};
  m.sub.reset();
  m.js.reset();
  m.conn.reset();
}

}  // namespace eventlite::nats
