// Figures 13 and 14: forwarding to a Redis Stream, and bridging one in. A redis-server of
// the benchmark's own (127.0.0.1, a free port, no persistence: the broker's disk is not
// what is measured) takes the same entries from both sides:
// - eventlite: a processor with the Redis sink (eventlite::redis) drains a copy of a
//   200k-event file into the stream `events`: reading the events, encoding each
//   envelope, pipelining XADD <seq>-0 a batch at a time, checkpoints;
// - the baseline: a raw hiredis loop pipelining the same XADDs (the envelopes encoded
//   beforehand, untimed), a batch of the processor's batch_size at a time, each
//   batch's replies read before the next.
// Figure 14 fills the stream with those entries (untimed), then drains it through a
// new consumer group into a new file (durability full):
// - eventlite: redis::Bridge::run_until_idle (XREADGROUP 512 at a time, each batch
//   appended in one transaction idempotently by id, then XACK);
// - the baseline: a raw loop of XREADGROUP 512, each envelope parsed with simdjson,
//   its fields inserted with a prepared statement in one BEGIN IMMEDIATE ... COMMIT
//   per batch (versions kept in memory, no id check), then XACK.

#include <hiredis/hiredis.h>

#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "bench/broker_server.hpp"
#include "bench/raw_inbox.hpp"
#include "bench/scenarios.hpp"
#include "eventlite/envelope.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/redis.hpp"
#include "eventlite/store.hpp"

namespace eventlite::bench {

namespace {

using namespace std::chrono_literals;

struct ContextFree {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using Connection = std::unique_ptr<redisContext, ContextFree>;

Connection connect(int port) {
  Connection c(redisConnect("127.0.0.1", port));
  if (!c || c->err) return nullptr;
  return c;
}

void command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!r) throw std::runtime_error("redis: connection lost");
  const bool error = r->type == REDIS_REPLY_ERROR;
  freeReplyObject(r);
  if (error) throw std::runtime_error("redis refused " + args.front());
}

long long xlen(redisContext* c) {
  auto* r = static_cast<redisReply*>(redisCommand(c, "XLEN events"));
  if (!r) throw std::runtime_error("redis: connection lost");
  const long long n = r->integer;
  freeReplyObject(r);
  return n;
}

// redis-server for the benchmark's figures, started on first use, killed at exit.
struct Server {
  explicit Server(const std::filesystem::path& dir)
      : process({"redis-server", "--port", "{port}", "--bind", "127.0.0.1", "--dir",
                 dir.string(), "--save", "", "--appendonly", "no"},
                [](int port) { return connect(port) != nullptr; }) {}
  int port() const noexcept { return process.port(); }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port()); }
  BrokerServer process;
};

Server& server(Context& ctx) {
  static Server s(ctx.new_path("redis").parent_path());
  return s;
}

double forward_eventlite(Context& ctx, std::size_t n) {
  Server& redis = server(ctx);
  Connection c = connect(redis.port());
  command(c.get(), {"DEL", "events"});
  const ScratchFile file(ctx.new_path("forward"));
  copy_file_synced(ctx.fixture(n), file.path());
  Store store = Store::open(file.path());
  Processor processor(store);
  redis::SinkOptions options;
  options.url = redis.url();
  SubscriptionOptions sub;
  sub.max_lanes = 1;
  processor.sink("to-redis", redis::make_sink(options), sub);
  const double seconds = drain_sink(processor, static_cast<Seq>(n));
  if (xlen(c.get()) != static_cast<long long>(n))
    throw std::runtime_error("the stream does not hold every event");
  return static_cast<double>(n) / seconds;
}

// The fixture's events as stream entries: ids and envelopes.
struct Entries {
  std::vector<std::string> ids, payloads;
};

const Entries& entries_of(Context& ctx, std::size_t n) {
  static std::map<std::size_t, Entries> cache;
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  Entries out;
  StoreOptions options;
  options.read_only = true;
  const Store store = Store::open(ctx.fixture(n), options);
  for (const Event& e : store.read_all()) {
    out.ids.push_back(redis::entry_id(e.seq));
    out.payloads.push_back(to_envelope(e));
  }
  return cache.emplace(n, std::move(out)).first->second;
}

// A store id as the sink sends it (the raw loop sends the same bytes).
constexpr std::string_view kStoreId = "0193a2b4-5c6d-4e7f-8a9b-0c1d2e3f4a5b";

// XADDs every entry, `batch` a pipeline, with the fields the sink writes: the
// envelope and the store's id.
void xadd_all(redisContext* c, const Entries& entries, std::size_t batch) {
  const std::size_t n = entries.ids.size();
  const char* argv[7] = {"XADD",  "events", nullptr,        "event",
                         nullptr, "store",  kStoreId.data()};
  size_t lens[7] = {4, 6, 0, 5, 0, 5, kStoreId.size()};
  for (std::size_t at = 0; at < n; at += batch) {
    const std::size_t end = std::min(n, at + batch);
    for (std::size_t i = at; i < end; ++i) {
      argv[2] = entries.ids[i].data();
      lens[2] = entries.ids[i].size();
      argv[4] = entries.payloads[i].data();
      lens[4] = entries.payloads[i].size();
      redisAppendCommandArgv(c, 7, argv, lens);
    }
    for (std::size_t i = at; i < end; ++i) {
      void* r = nullptr;
      if (redisGetReply(c, &r) != REDIS_OK || !r)
        throw std::runtime_error("redis: connection lost");
      const bool error = static_cast<redisReply*>(r)->type == REDIS_REPLY_ERROR;
      freeReplyObject(r);
      if (error) throw std::runtime_error("redis refused an XADD");
    }
  }
}

double forward_raw(Context& ctx, std::size_t n) {
  Server& redis = server(ctx);
  Connection c = connect(redis.port());
  command(c.get(), {"DEL", "events"});
  const Entries& entries = entries_of(ctx, n);  // encoded beforehand, untimed
  const Stopwatch watch;
  xadd_all(c.get(), entries, ProcessorOptions{}.batch_size);
  const double seconds = watch.seconds();
  return static_cast<double>(n) / seconds;
}

// A full stream and a new group for one drain (untimed); returns the group's name.
std::string fill_for_bridge(Context& ctx, redisContext* c, std::size_t n) {
  static int groups = 0;
  command(c, {"DEL", "events"});
  xadd_all(c, entries_of(ctx, n), 512);
  const std::string group = "bench-" + std::to_string(++groups);
  command(c, {"XGROUP", "CREATE", "events", group, "0"});
  return group;
}

double bridge_eventlite(Context& ctx, std::size_t n) {
  Server& redis = server(ctx);
  Connection c = connect(redis.port());
  redis::BridgeOptions options;
  options.url = redis.url();
  options.group = fill_for_bridge(ctx, c.get(), n);
  options.block = std::chrono::milliseconds(1);
  const ScratchFile file(ctx.new_path("bridge"));
  Store store = Store::open(file.path());
  redis::Bridge bridge(store, options);
  const Stopwatch watch;
  const std::size_t taken = bridge.run_until_idle();
  const double seconds = watch.seconds();
  if (taken != n || store.head() != static_cast<Seq>(n))
    throw std::runtime_error("the bridge took in " + std::to_string(taken) + " entries");
  return static_cast<double>(n) / seconds;
}

double bridge_raw(Context& ctx, std::size_t n) {
  Server& redis = server(ctx);
  Connection c = connect(redis.port());
  const std::string group = fill_for_bridge(ctx, c.get(), n);
  const ScratchFile file(ctx.new_path("bridge-baseline"));
  RawInbox inbox(file.path());
  std::size_t taken = 0;
  const Stopwatch watch;
  for (;;) {
    auto* r = static_cast<redisReply*>(redisCommand(
        c.get(), "XREADGROUP GROUP %s raw COUNT 512 STREAMS events >", group.c_str()));
    if (!r) throw std::runtime_error("redis: connection lost");
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
      freeReplyObject(r);
      break;
    }
    const redisReply* list = r->element[0]->element[1];
    std::vector<const char*> ack = {"XACK", "events", group.c_str()};
    std::vector<size_t> ack_lens = {4, 6, group.size()};
    inbox.begin();
    for (std::size_t i = 0; i < list->elements; ++i) {
      const redisReply* entry = list->element[i];
      const redisReply* value = entry->element[1]->element[1];
      inbox.insert(std::string_view(value->str, value->len));
      ack.push_back(entry->element[0]->str);
      ack_lens.push_back(entry->element[0]->len);
    }
    inbox.commit();
    taken += list->elements;
    auto* acked = static_cast<redisReply*>(redisCommandArgv(
        c.get(), static_cast<int>(ack.size()), ack.data(), ack_lens.data()));
    freeReplyObject(r);
    if (!acked) throw std::runtime_error("redis: connection lost");
    freeReplyObject(acked);
  }
  const double seconds = watch.seconds();
  if (taken != n)
    throw std::runtime_error("the raw bridge took " + std::to_string(taken));
  return static_cast<double>(n) / seconds;
}

}  // namespace

void add_redis_figures(Bench& bench, Context& ctx) {
  const std::size_t n = ctx.sizes().forward_events;
  bench.add(FigureSpec{
      .name = "forward " + count_label(n) + " events to a Redis Stream",
      .unit = "events/s",
      .better = Better::higher,
      .threshold = Threshold::ratio_at_least(0.7),
      .eventlite = [&ctx, n] { return forward_eventlite(ctx, n); },
      .baseline = [&ctx, n] { return forward_raw(ctx, n); },
  });
  bench.add(FigureSpec{
      .name = "bridge " + count_label(n) + " events in from a Redis Stream",
      .unit = "events/s",
      .better = Better::higher,
      .threshold = Threshold::ratio_at_least(0.5),
      .eventlite = [&ctx, n] { return bridge_eventlite(ctx, n); },
      .baseline = [&ctx, n] { return bridge_raw(ctx, n); },
  });
}

}  // namespace eventlite::bench
