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

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <string>
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
    if (options_.format == Format::cloudevents && options_.source.empty())
      throw InvalidArgument("redis sink: the CloudEvents source is empty");
    templated_ = options_.key.find(kTypeField) != std::string::npos ||
                 options_.key.find(kStreamField) != std::string::npos;
    if (options_.maxlen) maxlen_ = std::to_string(*options_.maxlen);
    logger_ = options_.logger ? options_.logger : spdlog::default_logger();
  }

  std::optional<Seq> open() override {
    conn_.emplace(url_, options_.timeout);
    if (options_.mode == Mode::pubsub || templated_) return std::nullopt;
    // Where the copy stands: the stream's last entry. A key of another type throws
    // here (WRONGTYPE, not retryable).
    const std::array<std::string_view, 6> args{"XREVRANGE", options_.key, "+",
                                               "-",         "COUNT",      "1"};
    const Reply r = conn_->command(args, "read the stream's last entry");
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return Seq{0};
    const redisReply* entry = r->element[0];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 1 ||
        entry->element[0]->type != REDIS_REPLY_STRING)
      return std::nullopt;
    const auto seq = seq_of_id(text_of(*entry->element[0]));
    if (!seq)
      logger_->warn(
          "redis sink: the last entry of {} has id {}, not one of ours (<seq>-0)",
          options_.key, text_of(*entry->element[0]));
    return seq;
  }

  BatchResult publish(const BatchContext& batch) override {
    if (!conn_) open();
    const std::size_t n = batch.size();
    // The scratch vectors keep their strings between batches: assigning into them
    // reuses their memory.
    payloads_.resize(n);
    ids_.resize(n);
    if (per_event_key()) keys_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const Event& e = batch.event(i);
      payloads_[i] = options_.format == Format::envelope
                         ? to_envelope(e)
                         : to_cloudevent(e, options_.source);
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
        resend_below_top(i, batch.event(i).seq);
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
    expand_key(options_.key, e, key);
  }

  std::string_view key(std::size_t i) const {
    return per_event_key() ? std::string_view(keys_[i]) : std::string_view(options_.key);
  }

  void queue(std::size_t i, std::string_view id) {
    if (options_.mode == Mode::pubsub) {
      const std::array<std::string_view, 3> args{"PUBLISH", key(i), payloads_[i]};
      conn_->append(args);
    } else if (maxlen_.empty()) {
      const std::array<std::string_view, 5> args{"XADD", key(i), id, kField,
                                                 payloads_[i]};
      conn_->append(args);
    } else {
      const std::array<std::string_view, 8> args{"XADD",  key(i), "MAXLEN", "~",
                                                 maxlen_, id,     kField,   payloads_[i]};
      conn_->append(args);
    }
  }

  // A refused id: delivered before, or missing below the top (see the file's comment).
  void resend_below_top(std::size_t i, Seq seq) {
    const std::array<std::string_view, 4> range{"XRANGE", key(i), ids_[i], ids_[i]};
    const Reply found = conn_->command(range, "look up a refused entry");
    if (found->type == REDIS_REPLY_ARRAY && found->elements > 0) return;
    const std::array<std::string_view, 6> last{"XREVRANGE", key(i),  "+",
                                               "-",         "COUNT", "1"};
    const Reply top = conn_->command(last, "read the stream's last entry");
    std::string id = "*";
    if (top->type == REDIS_REPLY_ARRAY && top->elements > 0 &&
        top->element[0]->elements > 0) {
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
    logger_->warn(
        "redis sink: seq {} came after later entries of {} (a retried dead "
        "letter or a trimmed entry sent again): appended as {}",
        seq, key(i), text_of(*added));
  }

  SinkOptions options_;
  Url url_;
  bool templated_ = false;
  std::string maxlen_;
  std::shared_ptr<spdlog::logger> logger_;
  std::optional<Connection> conn_;
  // Scratch of publish(), kept for their capacity.
  std::vector<std::string> payloads_;
  std::vector<std::string> keys_;
  std::vector<std::string> ids_;
  std::vector<std::size_t> refused_;
};

}  // namespace

std::shared_ptr<Sink> make_sink(SinkOptions options) {
  return std::make_shared<RedisSink>(std::move(options));
}

}  // namespace eventlite::redis
