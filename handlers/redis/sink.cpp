// The Redis sink (redis.hpp): a batch is one pipeline, every command written before
// the first reply is read, and the replies are read in order; the first one that
// failed is where the batch stops.
//
// Stream mode dedup: Redis refuses an XADD whose id is at or below the stream's last
// one ("ERR The ID specified in XADD is equal or smaller than the target stream top
// item"). A refused entry is then looked up (XRANGE key id id): found, it was sent
// before and counts as delivered; missing (a dead letter retried after later events
// went out, or an entry trimmed by MAXLEN and re-sent by a rewind), it is appended
// after the last entry with an id Redis picks (<last ms>-*), its envelope still
// carrying its seq, and the log says so.
//
// Whose entries: each entry also carries the field `store` (the store's id). Entry
// ids are seqs, so one key holds one store's events: open() trusts the stream's last
// entry only when it is this store's event at that seq (store id and event id match),
// a refused id only when the entry found there is, an entry is appended after the
// last one only when that one is this store's, and each key of a {type} or {stream}
// template is checked the same way the first time a session meets it; anything else
// is a DestinationConflict that names the key, the other store and the fix (`{store}`
// in the key), and nothing is counted as delivered.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "handlers/redis/connection.hpp"

namespace eventlite::redis {

std::string entry_id(Seq seq) {
  return std::to_string(seq) + "-0";
}

namespace {

using detail::Connection;
using detail::Reply;

constexpr std::string_view kField = "event";
constexpr std::string_view kStoreField = "store";
constexpr std::string_view kTopItem = "The ID specified in XADD is equal or smaller";

std::string_view text_of(const redisReply& r) {
  return {r.str, r.len};
}

// The seq of an entry id "<seq>-0"; nullopt for ids this sink did not make.
std::optional<Seq> seq_of_id(std::string_view id) {
  const std::size_t dash = id.find('-');
  if (dash == std::string_view::npos || id.substr(dash + 1) != "0") return std::nullopt;
  Seq seq = 0;
  const auto [end, ec] = std::from_chars(id.data(), id.data() + dash, seq);
  if (ec != std::errc() || end != id.data() + dash || seq <= 0) return std::nullopt;
  return seq;
}

constexpr std::string_view kTypeField = "{type}";
constexpr std::string_view kStreamField = "{stream}";
constexpr std::string_view kStoreToken = "{store}";

// `key` with "{store}" replaced by the store's name (or id), once, at open.
std::string expand_store(std::string_view key, std::string_view store) {
  std::string out;
  std::size_t at = 0;
  for (std::size_t t = key.find(kStoreToken); t != std::string_view::npos;
       t = key.find(kStoreToken, at)) {
    out.append(key.substr(at, t - at));
    out += store;
    at = t + kStoreToken.size();
  }
  out.append(key.substr(at));
  return out;
}

// What an entry of a stream says of itself: its id, and its `store` field and the
// event id and seq in its payload when it has them.
struct EntryOwner {
  std::string entry_id;
  std::string store;       // empty: no store field (an older eventlite, another writer)
  std::string event_id;    // empty: the payload has no "id"
  std::optional<Seq> seq;  // the payload's "seq" (envelope and CloudEvent alike)
};

EntryOwner owner_of(const redisReply& entry) {
  EntryOwner out;
  if (entry.type != REDIS_REPLY_ARRAY || entry.elements < 2) return out;
  if (entry.element[0]->type == REDIS_REPLY_STRING)
    out.entry_id = std::string(text_of(*entry.element[0]));
  const redisReply& fields = *entry.element[1];
  if (fields.type != REDIS_REPLY_ARRAY) return out;
  for (std::size_t i = 0; i + 1 < fields.elements; i += 2) {
    const std::string_view name = text_of(*fields.element[i]);
    const std::string_view value = text_of(*fields.element[i + 1]);
    if (name == kStoreField) {
      out.store = std::string(value);
    } else if (name == kField) {
      const auto payload = nlohmann::json::parse(value, nullptr, false);
      if (!payload.is_object()) continue;
      if (payload.contains("id") && payload["id"].is_string())
        out.event_id = payload["id"].get<std::string>();
      if (payload.contains("seq") && payload["seq"].is_number_integer())
        out.seq = payload["seq"].get<Seq>();
    }
  }
  return out;
}

// `key` with "{type}" and "{stream}" replaced by the event's, in one pass over the
// template: a type or stream that holds "{stream}" or "{type}" itself is put in as it
// is, never expanded again (the key is binary-safe; no name changes another's place).
void expand_key(std::string_view key, const Event& e, std::string& out) {
  out.clear();
  std::size_t at = 0;
  while (at < key.size()) {
    const std::size_t brace = key.find('{', at);
    if (brace == std::string_view::npos) break;
    out.append(key.substr(at, brace - at));
    const std::string_view rest = key.substr(brace);
    if (rest.starts_with(kTypeField)) {
      out += e.type;
      at = brace + kTypeField.size();
    } else if (rest.starts_with(kStreamField)) {
      out += e.stream;
      at = brace + kStreamField.size();
    } else {
      out += '{';
      at = brace + 1;
    }
  }
  out.append(key.substr(std::min(at, key.size())));
}

class RedisSink final : public Sink {
 public:
  explicit RedisSink(SinkOptions options)
      : options_(std::move(options)), url_(Url::parse(options_.url)) {
    if (options_.mode == Mode::stream && options_.key.empty())
      throw InvalidArgument("redis sink: the stream key is empty");
    templated_ = options_.key.find(kTypeField) != std::string::npos ||
                 options_.key.find(kStreamField) != std::string::npos;
    if (options_.maxlen) maxlen_ = std::to_string(*options_.maxlen);
  }

  std::optional<Seq> open(const SinkContext& context) override {
    context_ = context;
    if (context_.store.id.empty())
      throw InvalidArgument("redis sink: the store has no id (open it for writing)");
    logger_ = options_.logger ? options_.logger.get() : context_.logger;
    source_ =
        options_.source.empty() ? store_source(context_.store.label()) : options_.source;
    key_ = expand_store(options_.key, context_.store.label());
    checked_keys_.clear();
    conn_.reset();
    conn_.emplace(url_, options_.timeout);
    if (options_.mode == Mode::pubsub || templated_) return std::nullopt;
    // Where this store's copy stands: the stream's last entry, if it is ours. A key of
    // another type throws here (WRONGTYPE, not retryable).
    const std::array<std::string_view, 6> args{"XREVRANGE", key_, "+", "-", "COUNT", "1"};
    const Reply r = conn_->command(args, "read the stream's last entry");
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return Seq{0};
    const EntryOwner top = owner_of(*r->element[0]);
    if (!ours(top)) refuse(top);
    const auto seq = seq_of_id(top.entry_id);
    if (seq && seq == top.seq) return seq;
    // This store's entry, appended out of seq order (a retried dead letter): the id
    // does not say how far the copy goes.
    if (logger_)
      logger_->warn(
          "redis sink: the last entry of {} is {}, seq {} appended out of order: "
          "sending from the checkpoint",
          key_, top.entry_id, top.seq.value_or(0));
    return std::nullopt;
  }

  BatchResult publish(const BatchContext& batch) override {
    if (!conn_) open(context_);
    const std::size_t n = batch.size();
    // The scratch vectors keep their strings between batches: assigning into them
    // reuses their memory.
    payloads_.resize(n);
    ids_.resize(n);
    if (per_event_key()) keys_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const Event& e = batch.event(i);
      payloads_[i] = encode(e, options_.format, source_);
      if (per_event_key()) key_into(e, keys_[i]);
      if (options_.mode == Mode::stream) {
        char buf[32];
        const auto end = std::to_chars(buf, buf + sizeof buf - 2, e.seq).ptr;
        ids_[i].assign(buf, end);
        ids_[i] += "-0";
      }
    }
    // Where the batch stops if something fails: the first event Redis has not
    // confirmed. A refused entry is confirmed only once it is resolved, after the
    // replies are read.
    std::size_t fail_at = 0;
    refused_.clear();
    try {
      if (options_.mode == Mode::stream && templated_)
        for (std::size_t i = 0; i < n; ++i) check_key(keys_[i]);
      for (std::size_t i = 0; i < n; ++i) queue(i, ids_[i]);
      std::size_t error_at = n;  // the first error reply that is not a refused id
      std::string error;
      for (std::size_t i = 0; i < n; ++i) {
        fail_at = std::min(error_at, refused_.empty() ? i : refused_.front());
        Reply r = conn_->reply("forward");
        if (r->type != REDIS_REPLY_ERROR || error_at < n) continue;
        const std::string_view text = text_of(*r);
        if (options_.mode == Mode::stream && text.find(kTopItem) != std::string::npos) {
          refused_.push_back(i);
        } else {
          // The rest of the pipeline is still read, so the connection stays in step;
          // the batch stops at this event whatever the later ones got.
          error_at = i;
          error = text;
        }
      }
      for (std::size_t i : refused_) {
        if (i > error_at) break;
        fail_at = i;
        resend_below_top(i, batch.event(i));
      }
      if (error_at < n) {
        fail_at = error_at;
        detail::throw_broker_error(
            url_, "forward seq " + std::to_string(batch.event(error_at).seq),
            detail::retryable_reply(error), error);
      }
    } catch (...) {
      conn_.reset();  // a connection with replies in flight cannot be used again
      return BatchResult::failed(fail_at, std::current_exception());
    }
    return BatchResult::ok();
  }

  void close() noexcept override { conn_.reset(); }

 private:
  // Whether each event has a key of its own (a channel, a key template).
  bool per_event_key() const noexcept {
    return options_.mode == Mode::pubsub || templated_;
  }

  void key_into(const Event& e, std::string& key) const {
    if (options_.mode == Mode::pubsub) {
      key.assign(options_.channel_prefix);
      key += e.type;
      return;
    }
    expand_key(key_, e, key);
  }

  std::string_view key(std::size_t i) const {
    return per_event_key() ? std::string_view(keys_[i]) : std::string_view(key_);
  }

  // Whether `entry` is this store's event at the seq its payload gives: the store id
  // and the event id match. An entry without a store field (written by an eventlite
  // before store ids) counts when its event id is this store's event's at that seq.
  bool ours(const EntryOwner& entry) const {
    if (!entry.store.empty() && entry.store != context_.store.id) return false;
    if (entry.event_id.empty() || !entry.seq) return false;
    const auto id = context_.event_id ? context_.event_id(*entry.seq) : std::nullopt;
    return id && *id == entry.event_id;
  }

  // A key of a template with {type} or {stream}, first met in this session: its last
  // entry must be this store's, or the key is another store's (refused, as at open).
  void check_key(std::string_view key) {
    if (!checked_keys_.emplace(key).second) return;
    const std::array<std::string_view, 6> args{"XREVRANGE", key, "+", "-", "COUNT", "1"};
    const Reply r = conn_->command(args, "read the stream's last entry");
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return;
    const EntryOwner top = owner_of(*r->element[0]);
    if (!ours(top)) refuse(top, key);
  }

  [[noreturn]] void refuse(const EntryOwner& entry) const { refuse(entry, key_); }
  [[noreturn]] void refuse(const EntryOwner& entry, std::string_view key) const {
    const std::string whose = entry.store.empty()
                                  ? std::string("an entry not written by this store")
                              : entry.store == context_.store.id
                                  ? std::string(
                                        "an entry of this store's id with another "
                                        "event (a copy of this file forwards there "
                                        "too, or it was restored from an older copy)")
                                  : fmt::format("an entry of store {}", entry.store);
    throw DestinationConflict(
        "redis",
        fmt::format(
            "stream {:?} on {} holds {} ({}) where this store's (id {}) go: entry "
            "ids are seqs, so one stream key takes one store's events; give "
            "each store a key of its own, e.g. \"{}:{{store}}\" (forward --key)",
            key, url_.redacted(), whose, entry.entry_id, context_.store.id,
            options_.key));
  }

  void queue(std::size_t i, std::string_view id) {
    const std::string_view store = context_.store.id;
    if (options_.mode == Mode::pubsub) {
      const std::array<std::string_view, 3> args{"PUBLISH", key(i), payloads_[i]};
      conn_->append(args);
    } else if (maxlen_.empty()) {
      const std::array<std::string_view, 7> args{"XADD",       key(i),      id,   kField,
                                                 payloads_[i], kStoreField, store};
      conn_->append(args);
    } else {
      const std::array<std::string_view, 10> args{
          "XADD", key(i), "MAXLEN",     "~",         maxlen_,
          id,     kField, payloads_[i], kStoreField, store};
      conn_->append(args);
    }
  }

  // A refused id: delivered before, or missing below the top (see the file's comment).
  // An entry found there that is not this store's event is a conflict, never a
  // delivery.
  void resend_below_top(std::size_t i, const Event& e) {
    const Seq seq = e.seq;
    const std::array<std::string_view, 4> range{"XRANGE", key(i), ids_[i], ids_[i]};
    const Reply found = conn_->command(range, "look up a refused entry");
    if (found->type == REDIS_REPLY_ARRAY && found->elements > 0) {
      const EntryOwner entry = owner_of(*found->element[0]);
      if (!ours(entry) || entry.event_id != e.id) refuse(entry, key(i));
      return;
    }
    const std::array<std::string_view, 6> last{"XREVRANGE", key(i),  "+",
                                               "-",         "COUNT", "1"};
    const Reply top = conn_->command(last, "read the stream's last entry");
    std::string id = "*";
    if (top->type == REDIS_REPLY_ARRAY && top->elements > 0 &&
        top->element[0]->elements > 0) {
      // Appended after the last entry only when that entry is this store's own.
      const EntryOwner owner = owner_of(*top->element[0]);
      if (!ours(owner)) refuse(owner, key(i));
      const std::string_view top_id = text_of(*top->element[0]->element[0]);
      id = std::string(top_id.substr(0, top_id.find('-'))) + "-*";
    }
    queue(i, id);
    const Reply added = conn_->reply("forward");
    if (added->type == REDIS_REPLY_ERROR) {
      const std::string_view text = text_of(*added);
      detail::throw_broker_error(url_, "forward seq " + std::to_string(seq),
                                 detail::retryable_reply(text), text);
    }
    if (logger_)
      logger_->warn(
          "redis sink: seq {} came after later entries of {} (a retried dead "
          "letter or a trimmed entry sent again): appended as {}",
          seq, key(i), text_of(*added));
  }

  SinkOptions options_;
  Url url_;
  bool templated_ = false;
  std::string maxlen_;
  SinkContext context_;               // as of the last open()
  spdlog::logger* logger_ = nullptr;  // options_.logger, or the processor's
  std::string source_;                // the CloudEvents source
  std::string key_;                   // options_.key with {store} put in
  std::optional<Connection> conn_;
  // Scratch of publish(), kept for their capacity.
  std::vector<std::string> payloads_;
  std::vector<std::string> keys_;
  std::vector<std::string> ids_;
  std::vector<std::size_t> refused_;
  std::unordered_set<std::string> checked_keys_;  // template keys checked this session
};

}  // namespace

std::shared_ptr<Sink> make_sink(SinkOptions options) {
  return std::make_shared<RedisSink>(std::move(options));
}

}  // namespace eventlite::redis
