// The NATS sink (nats.hpp), on libnats.
//
// JetStream batches: every message of the batch is published asynchronously
// (js_PublishMsgAsync; libnats stalls the caller while `window` are in flight), then
// js_PublishAsyncComplete waits for the acks, up to `timeout`. The ack handler records
// each message's outcome by its Eventlite-Seq header; the batch is done up to the
// first event whose ack did not come back positive. A duplicate ack (the server had
// the Nats-Msg-Id already) counts as delivered.
//
// Whose messages: each carries Eventlite-Store (the store's id) beside Eventlite-Seq
// and Nats-Msg-Id (the event id), so many stores may share one stream and its
// subjects. open() reads the stream back from its end, message by message, to this
// store's newest one (store id and event id matching this store's event at its seq),
// skipping every other store's; the checkpoint moves to it. Messages of one
// connection are stored in the order sent, so everything of this store before that
// message is in the stream too: nothing is sent twice, even past the duplicate
// window. The read-back costs one round trip per message published since by other
// stores, at most reconcile_limit (past it: nullopt, at least once).

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/nats.hpp"
#include "handlers/nats/connection.hpp"

namespace eventlite::nats {

// Each server's user information is what lies between its "://" and the last '@'
// before the next server's "://": a password holding ',' or '@' is still hidden
// whole. A server without a scheme keeps anything before an '@' hidden too.
std::string redacted(std::string_view url) {
  std::vector<std::size_t> starts;  // where each server's user information may start
  for (std::size_t at = url.find("://"); at != std::string_view::npos;
       at = url.find("://", at + 3))
    starts.push_back(at + 3);
  if (starts.empty() || url.substr(0, starts.front() - 3).find(',') != std::string_view::npos)
    starts.insert(starts.begin(), 0);  // "host1,nats://..." or no scheme at all
  std::string out(url.substr(0, starts.front()));
  for (std::size_t i = 0; i < starts.size(); ++i) {
    const std::size_t from = starts[i];
    // Up to the next server's scheme (minus the scheme's own name and its comma).
    std::size_t to = url.size();
    if (i + 1 < starts.size()) {
      to = starts[i + 1] - 3;
      const std::size_t comma = url.rfind(',', to);
      if (comma != std::string_view::npos && comma >= from) to = comma;
    }
    const std::string_view part = url.substr(from, to - from);
    const std::size_t userinfo_end = part.rfind('@');
    if (userinfo_end == std::string_view::npos) {
      out += part;
    } else {
      const std::string_view userinfo = part.substr(0, userinfo_end);
      const std::size_t colon = userinfo.find(':');
      out += colon == std::string_view::npos ? "***"  // a token
                                             : std::string(userinfo.substr(0, colon)) + ":***";
      out += part.substr(userinfo_end);
    }
    if (i + 1 < starts.size()) out += url.substr(to, starts[i + 1] - to);
  }
  return out;
}

namespace {

constexpr const char* kSeqHeader = "Eventlite-Seq";
constexpr const char* kStoreHeader = "Eventlite-Store";
constexpr const char* kMsgIdHeader = "Nats-Msg-Id";

// A header's value, or "" when the message has none.
std::string header_of(natsMsg* msg, const char* name) {
  const char* value = nullptr;
  if (natsMsgHeader_Get(msg, name, &value) != NATS_OK || !value) return {};
  return value;
}

using detail::InfoFree;
using detail::MsgFree;
using detail::retryable_status;
using detail::status_text;

// The outcomes of one batch's asynchronous publishes, written by libnats's thread.
struct Acks {
  std::mutex mu;
  Seq first = 0;                   // guarded by mu: seq of index 0
  std::vector<int> state;          // guarded by mu: 0 waiting, 1 acked, 2 failed
  std::vector<std::string> error;  // guarded by mu
  std::vector<bool> retryable;     // guarded by mu
};

void on_ack(jsCtx*, natsMsg* msg, jsPubAck*, jsPubAckErr* pae, void* closure) {
  auto* acks = static_cast<Acks*>(closure);
  const char* value = nullptr;
  Seq seq = 0;
  if (natsMsgHeader_Get(msg, kSeqHeader, &value) == NATS_OK && value)
    std::from_chars(value, value + std::strlen(value), seq);
  {
    std::lock_guard lock(acks->mu);
    const Seq i = seq - acks->first;
    if (i >= 0 && static_cast<std::size_t>(i) < acks->state.size()) {
      const auto at = static_cast<std::size_t>(i);
      if (pae == nullptr) {
        acks->state[at] = 1;
      } else {
        acks->state[at] = 2;
        acks->error[at] =
            pae->ErrText && *pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err);
        // A server error with a JetStream code (a payload or message refused) cannot
        // be mended by sending it again; timeouts and missing responders can.
        acks->retryable[at] = pae->ErrCode == 0;
      }
    }
  }
  natsMsg_Destroy(msg);  // ours to destroy; `pa` and `pae` belong to libnats
}

class NatsSink final : public Sink {
 public:
  explicit NatsSink(SinkOptions options)
      : options_(std::move(options)), where_(redacted(options_.url)) {
    detail::check_url(options_.url, "nats sink");
    // The prefix may be several tokens ("app.events"); the type adds exactly one.
    detail::refuse_name("nats sink", "subject_prefix", options_.subject_prefix,
                        detail::subject_problem(options_.subject_prefix, false));
    if (options_.jetstream)
      detail::refuse_name("nats sink", "stream", options_.stream,
                          detail::name_problem(options_.stream));
    if (options_.window == 0) throw InvalidArgument("nats sink: the window is 0");
  }
  ~NatsSink() override { close(); }

  std::optional<Seq> open(const SinkContext& context) override {
    close();
    context_ = context;
    if (context_.store.id.empty())
      throw InvalidArgument("nats sink: the store has no id (open it for writing)");
    logger_ = options_.logger ? options_.logger.get() : context_.logger;
    source_ =
        options_.source.empty() ? store_source(context_.store.label()) : options_.source;
    conn_ = detail::connect(detail::settings_of(options_), where_);
    if (!options_.jetstream) return std::nullopt;

    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = options_.timeout.count();
    jo.PublishAsync.MaxPending = static_cast<int64_t>(options_.window);
    jo.PublishAsync.StallWait = options_.timeout.count();
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = &acks_;
    jsCtx* js = nullptr;
    check(natsConnection_JetStream(&js, conn_.get(), &jo), "open JetStream");
    js_.reset(js);
    return last_forwarded();
  }

  BatchResult publish(const BatchContext& batch) override {
    if (!conn_) open(context_);
    const std::size_t n = batch.size();
    {
      std::lock_guard lock(acks_.mu);
      acks_.first = n ? batch.event(0).seq : 0;
      acks_.state.assign(n, 0);
      acks_.error.assign(n, {});
      acks_.retryable.assign(n, true);
    }
    // Events of one batch have consecutive seqs only when nothing between them was
    // filtered out; the ack handler finds an event by seq - first, so map gaps.
    bool consecutive = true;
    for (std::size_t i = 0; i < n; ++i)
      if (batch.event(i).seq != batch.event(0).seq + static_cast<Seq>(i))
        consecutive = false;
    if (!consecutive && options_.jetstream) {
      // Rare (a sink with a type filter): send one event a call instead.
      for (std::size_t i = 0; i < n; ++i) {
        const std::vector<const Event*> one{&batch.event(i)};
        const std::vector<int> attempts{batch.attempt(i)};
        const BatchContext single(one, attempts, batch.subscription(), nullptr);
        BatchResult r = publish(single);
        if (!r.all_done()) return BatchResult::failed(i, r.error());
      }
      return BatchResult::ok();
    }
    try {
      for (std::size_t i = 0; i < n; ++i) {
        const Event& e = batch.event(i);
        check_names(e);
        const std::string subject = options_.subject_prefix + "." + e.type;
        const std::string payload = encode(e, options_.format, source_);
        if (!options_.jetstream) {
          const natsStatus s =
              natsConnection_Publish(conn_.get(), subject.c_str(), payload.data(),
                                     static_cast<int>(payload.size()));
          if (s != NATS_OK) return failed_at(i, s, "publish");
          continue;
        }
        natsMsg* raw = nullptr;
        natsStatus s = natsMsg_Create(&raw, subject.c_str(), nullptr, payload.data(),
                                      static_cast<int>(payload.size()));
        std::unique_ptr<natsMsg, MsgFree> msg(raw);
        const std::string seq = std::to_string(e.seq);
        if (s == NATS_OK) s = natsMsgHeader_Set(msg.get(), kMsgIdHeader, e.id.c_str());
        if (s == NATS_OK) s = natsMsgHeader_Set(msg.get(), kSeqHeader, seq.c_str());
        if (s == NATS_OK)
          s = natsMsgHeader_Set(msg.get(), kStoreHeader, context_.store.id.c_str());
        if (s == NATS_OK) {
          natsMsg* owned = msg.release();
          s = js_PublishMsgAsync(js_.get(), &owned, nullptr);
          natsMsg_Destroy(owned);  // null when libnats took it
        }
        if (s != NATS_OK) {
          wait_acks();
          const std::size_t at = first_unacked(i);
          if (at < i) return failed_with_ack(at);
          return failed_at(i, s, "publish");
        }
      }
      if (!options_.jetstream) {
        const natsStatus s =
            natsConnection_FlushTimeout(conn_.get(), options_.timeout.count());
        if (s != NATS_OK) return failed_at(0, s, "flush");
        return BatchResult::ok();
      }
      wait_acks();
      const std::size_t at = first_unacked(n);
      if (at < n) return failed_with_ack(at);
      return BatchResult::ok();
    } catch (...) {
      const std::size_t at = options_.jetstream ? first_unacked(n) : 0;
      close();
      return BatchResult::failed(at, std::current_exception());
    }
  }

  // Publishes still awaiting acks are dropped with the context: they are sent again
  // after open(), from where the stream stands.
  void close() noexcept override {
    js_.reset();
    conn_.reset();
  }

 private:
  void check(natsStatus s, std::string_view what) const {
    detail::check(s, where_, what);
  }

  // An event whose type is not one subject token (or, on JetStream, whose id cannot
  // be a header value) cannot be sent as it is stored: no retry mends it, it is
  // parked. A type with a '.' would publish on a subject of more tokens than
  // <prefix>.<type>, one that subscribers to <prefix>.* never see; a line break in an
  // id would start another header (libnats sends it as spaces: the server would then
  // deduplicate by an id that is not the event's).
  void check_names(const Event& e) const {
    if (const std::string why = detail::token_problem(e.type); !why.empty())
      throw BrokerError("nats", false,
                        fmt::format("seq {}: event type {:?} is not a valid subject "
                                    "token: it {}",
                                    e.seq, e.type, why));
    if (!options_.jetstream) return;
    if (const std::string why = detail::header_value_problem(e.id); !why.empty())
      throw BrokerError("nats", false,
                        fmt::format("seq {}: event id {:?} cannot be the Nats-Msg-Id "
                                    "header: it {}",
                                    e.seq, e.id, why));
  }

  // The seq of this store's newest message in the stream (see the file's comment); 0
  // when it has none.
  std::optional<Seq> last_forwarded() {
    jsStreamInfo* raw = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    natsStatus s =
        js_GetStreamInfo(&raw, js_.get(), options_.stream.c_str(), nullptr, &code);
    std::unique_ptr<jsStreamInfo, InfoFree> info(raw);
    if (s == NATS_NOT_FOUND || code == JSStreamNotFoundErr) {
      if (!options_.create_stream)
        throw BrokerError(
            "nats", true,
            fmt::format("JetStream stream {} not found on {} (create it, or "
                        "let the sink: create_stream)",
                        options_.stream, where_));
      create_stream();
      return Seq{0};
    }
    check(s, "read the stream's state");
    if (info->State.Msgs == 0) return Seq{0};
    const std::uint64_t first = std::max<std::uint64_t>(info->State.FirstSeq, 1);
    std::uint64_t skipped = 0;
    for (std::uint64_t at = info->State.LastSeq; at >= first; --at) {
      if (skipped >= options_.reconcile_limit) {
        if (logger_)
          logger_->warn(
              "nats sink: stream {}: none of this store's messages among the last {}: "
              "sending from the checkpoint",
              options_.stream, skipped);
        return std::nullopt;
      }
      natsMsg* raw_msg = nullptr;
      code = static_cast<jsErrCode>(0);
      s = js_GetMsg(&raw_msg, js_.get(), options_.stream.c_str(), at, nullptr, &code);
      std::unique_ptr<natsMsg, MsgFree> msg(raw_msg);
      if (s == NATS_NOT_FOUND || code == JSNoMessageFoundErr) continue;  // deleted
      check(s, "read the stream back");
      if (const auto seq = ours(msg.get(), at)) {
        if (skipped > 0 && logger_)
          logger_->debug(
              "nats sink: stream {}: this store's newest message is seq {}, "
              "{} messages of other stores after it",
              options_.stream, *seq, skipped);
        return seq;
      }
      ++skipped;
    }
    return Seq{0};
  }

  // The seq of `msg` (stream seq `at`) when it is this store's event at that seq.
  // Throws DestinationConflict when it carries this store's id with another event:
  // another copy of this file forwards there too.
  std::optional<Seq> ours(natsMsg* msg, std::uint64_t at) const {
    const std::string store = header_of(msg, kStoreHeader);
    if (!store.empty() && store != context_.store.id) return std::nullopt;
    const std::string seq_text = header_of(msg, kSeqHeader);
    Seq seq = 0;
    const auto [end, ec] =
        std::from_chars(seq_text.data(), seq_text.data() + seq_text.size(), seq);
    if (seq_text.empty() || ec != std::errc() ||
        end != seq_text.data() + seq_text.size() || seq <= 0)
      return std::nullopt;
    const std::string msg_id = header_of(msg, kMsgIdHeader);
    const auto id = context_.event_id ? context_.event_id(seq) : std::nullopt;
    if (id && *id == msg_id) return seq;
    // Without a store header (an older eventlite, another producer): not ours.
    if (store.empty()) return std::nullopt;
    throw DestinationConflict(
        "nats",
        fmt::format(
            "stream {} on {}: message {} carries this store's id ({}) and seq {}, "
            "but event {:?}, not this store's event at that seq: another copy of "
            "this file forwards there too (each copy needs a store of its own)",
            options_.stream, where_, at, context_.store.id, seq, msg_id));
  }

  void create_stream() {
    const std::string subjects = options_.subject_prefix + ".>";
    const char* list[] = {subjects.c_str()};
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = options_.stream.c_str();
    cfg.Subjects = list;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = static_cast<int64_t>(options_.duplicate_window.count()) * 1000000;
    jsStreamInfo* raw = nullptr;
    jsErrCode code = static_cast<jsErrCode>(0);
    const natsStatus s = js_AddStream(&raw, js_.get(), &cfg, nullptr, &code);
    std::unique_ptr<jsStreamInfo, InfoFree> info(raw);
    check(s, "create the JetStream stream");
    if (logger_)
      logger_->info("nats sink: created JetStream stream {} for {}", options_.stream,
                    subjects);
  }

  void wait_acks() {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = options_.timeout.count();
    js_PublishAsyncComplete(js_.get(), &po);  // a timeout leaves some waiting
  }

  // The first index below `n` whose ack was not positive.
  std::size_t first_unacked(std::size_t n) {
    std::lock_guard lock(acks_.mu);
    for (std::size_t i = 0; i < n && i < acks_.state.size(); ++i)
      if (acks_.state[i] != 1) return i;
    return n;
  }

  BatchResult failed_with_ack(std::size_t at) {
    std::string error;
    bool retryable = true;
    {
      std::lock_guard lock(acks_.mu);
      if (acks_.state[at] == 2) {
        error = acks_.error[at];
        retryable = acks_.retryable[at];
      } else {
        error = "no acknowledgement within " + std::to_string(options_.timeout.count()) +
                " ms";
      }
    }
    close();
    return BatchResult::failed(
        at, std::make_exception_ptr(BrokerError(
                "nats", retryable, fmt::format("publish on {}: {}", where_, error))));
  }

  BatchResult failed_at(std::size_t at, natsStatus s, std::string_view what) {
    const bool retryable = retryable_status(s);
    const std::string text = fmt::format("{} on {}: {}", what, where_, status_text(s));
    close();
    return BatchResult::failed(
        at, std::make_exception_ptr(BrokerError("nats", retryable, text)));
  }

  SinkOptions options_;
  std::string where_;
  SinkContext context_;               // as of the last open()
  spdlog::logger* logger_ = nullptr;  // options_.logger, or the processor's
  std::string source_;                // the CloudEvents source
  detail::ConnPtr conn_;
  detail::JsPtr js_;
  Acks acks_;
};

}  // namespace

std::shared_ptr<Sink> make_sink(SinkOptions options) {
  return std::make_shared<NatsSink>(std::move(options));
}

}  // namespace eventlite::nats
