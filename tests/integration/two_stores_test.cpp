// Two services, each with its own store, forwarding with `eventlite forward` and the
// default options to one destination: one Redis key, one JetStream stream on the same
// subjects. Runs interleave, a forwarder is SIGKILLed in the middle of its window and
// started again after the stream's duplicate window has passed. What arrived is
// counted by reading the broker back: for every store, each of its seqs once (or, for
// the Redis key that cannot hold two stores, the second store refused with one line).

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cli_tool.hpp"
#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/redis.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "nats_server.hpp"
#include "redis_server.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

// One service: its own folder (the tool's output files), its own store.
struct Service {
  Service(const TempDir& root, const std::string& name) : dir(root / name) {
    std::filesystem::create_directories(dir);
    Tool init({"init", db().string()}, dir);
    EXPECT_EQ(init.wait(), 0) << init.err();
  }
  std::filesystem::path db() const { return dir / "app.db"; }
  StoreIdentity identity() const { return Store::open(db(), fast_options()).identity(); }
  void append(std::size_t n) const {
    Store store = Store::open(db(), fast_options());
    const Seq head = store.head();
    for (std::size_t i = 0; i < n; i += 100) {
      const std::size_t k = std::min<std::size_t>(100, n - i);
      store.append("s-" + std::to_string(i / 100 % 3),
                   numbered_events(k, "Numbered", static_cast<std::size_t>(head) + i));
    }
  }
  Seq head() const { return Store::open(db(), fast_options()).head(); }
  Seq position(const std::string& name) const {
    const Store store = Store::open(db(), fast_options());
    for (const SubscriptionStatus& s : status(store).subscriptions)
      if (s.name == name) return s.position;
    return 0;
  }
  // `forward DB ARGS... --until-idle`; returns the exit status, output in out/err.
  int forward_until_idle(std::vector<std::string> args) {
    args.insert(args.begin(), {"forward", db().string()});
    args.push_back("--until-idle");
    Tool tool(args, dir);
    const int rc = tool.wait(120s);
    out = tool.out();
    err = tool.err();
    return rc;
  }

  std::filesystem::path dir;
  std::string out, err;
};

// What a Redis stream holds, by store id: the seqs of its entries, in stream order.
std::map<std::string, std::vector<Seq>> redis_entries(RedisClient& client,
                                                      const std::string& key) {
  std::map<std::string, std::vector<Seq>> out;
  auto r = client.run({"XRANGE", key, "-", "+"});
  EXPECT_EQ(r->type, REDIS_REPLY_ARRAY);
  for (std::size_t i = 0; i < r->elements; ++i) {
    const redisReply* fields = r->element[i]->element[1];
    std::string store, payload;
    for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
      const std::string name = fields->element[f]->str;
      std::string value(fields->element[f + 1]->str, fields->element[f + 1]->len);
      if (name == "store") store = value;
      if (name == "event") payload = value;
    }
    out[store].push_back(*decode_envelope(payload).seq);
  }
  return out;
}

std::vector<Seq> one_to(Seq n) {
  std::vector<Seq> out;
  for (Seq s = 1; s <= n; ++s) out.push_back(s);
  return out;
}

TEST(TwoStores, RedisSecondStoreOnOneKeyIsRefusedWithTheFixAndLosesNothing) {
  RedisServer server;
  TempDir root;
  Service a(root, "a"), b(root, "b");
  a.append(50);
  b.append(100);
  ASSERT_EQ(a.forward_until_idle({"--redis", server.url()}), 0) << a.err;

  // B, with the same defaults: refused at once, in one line that names the key, the
  // other store and the fix; nothing of B's counted as forwarded.
  EXPECT_EQ(b.forward_until_idle({"--redis", server.url()}), 1) << b.out;
  EXPECT_EQ(std::count(b.err.begin(), b.err.end(), '\n'), 1) << b.err;
  EXPECT_NE(b.err.find("\"events\""), std::string::npos) << b.err;
  EXPECT_NE(b.err.find(a.identity().id), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("events:{store}"), std::string::npos) << b.err;
  EXPECT_EQ(b.position("forward-redis"), 0);

  RedisClient client = server.client();
  auto held = redis_entries(client, "events");
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[a.identity().id], one_to(50));

  // A goes on in its key; B, told the fix, forwards into a key of its own.
  a.append(10);
  ASSERT_EQ(a.forward_until_idle({"--redis", server.url()}), 0) << a.err;
  ASSERT_EQ(b.forward_until_idle({"--redis", server.url(), "--key", "events:{store}"}), 0)
      << b.err;
  held = redis_entries(client, "events");
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[a.identity().id], one_to(60));
  const auto own = redis_entries(client, "events:" + b.identity().id);
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(own.at(b.identity().id), one_to(100));
  EXPECT_EQ(b.position("forward-redis"), 100);
}

SinkContext context_of(const Store& store) {
  SinkContext c;
  c.store = store.identity();
  c.event_id = [&store](Seq seq) -> std::optional<std::string> {
    for (const Event& e : store.read_all({.from = seq, .to = seq})) return e.id;
    return std::nullopt;
  };
  return c;
}

BatchResult publish_all(Sink& sink, const Store& store) {
  std::vector<Event> events;
  for (const Event& e : store.read_all()) events.push_back(e);
  std::vector<const Event*> pointers;
  for (const Event& e : events) pointers.push_back(&e);
  const std::vector<int> attempts(events.size(), 1);
  return sink.publish(BatchContext(pointers, attempts, "forward", nullptr));
}

// The race open() cannot see: both sinks open on an empty key, B forwards first. A's
// ids are refused by Redis, and the entries found there are B's: a conflict, not a
// delivery.
TEST(TwoStores, RedisRefusedIdHoldingAnotherStoresEntryIsAConflict) {
  RedisServer server;
  TempDir root;
  Store a = Store::open(root / "a.db", fast_options());
  Store b = Store::open(root / "b.db", fast_options());
  a.append("s", numbered_events(5, "Numbered"));
  b.append("s", numbered_events(8, "Numbered"));
  const auto context = context_of;
  auto sink_a = redis::make_sink({.url = server.url()});
  auto sink_b = redis::make_sink({.url = server.url()});
  EXPECT_EQ(sink_a->open(context(a)), Seq{0});
  EXPECT_EQ(sink_b->open(context(b)), Seq{0});
  ASSERT_TRUE(publish_all(*sink_b, b).all_done());
  const BatchResult r = publish_all(*sink_a, a);
  ASSERT_FALSE(r.all_done());
  EXPECT_EQ(r.done(5), 0u) << "A's seq 1 is not delivered: entry 1-0 is B's";
  EXPECT_THROW(std::rethrow_exception(r.error()), DestinationConflict);
  RedisClient client = server.client();
  const auto held = redis_entries(client, "events");
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held.at(b.identity().id), one_to(8));
  // And A, opened again, is refused at open.
  EXPECT_THROW(sink_a->open(context(a)), DestinationConflict);
}

// A key per type, shared by two stores: the first time a session meets a key whose
// last entry is another store's, the batch stops there with a conflict.
TEST(TwoStores, RedisTypeKeysHoldingAnotherStoresEntriesAreAConflict) {
  RedisServer server;
  TempDir root;
  Store a = Store::open(root / "a.db", fast_options());
  Store b = Store::open(root / "b.db", fast_options());
  a.append("s", numbered_events(5, "Numbered"));
  b.append("s", numbered_events(8, "Numbered"));
  auto sink_b = redis::make_sink({.url = server.url(), .key = "events:{type}"});
  auto sink_a = redis::make_sink({.url = server.url(), .key = "events:{type}"});
  EXPECT_EQ(sink_b->open(context_of(b)), std::nullopt);
  ASSERT_TRUE(publish_all(*sink_b, b).all_done());
  EXPECT_EQ(sink_a->open(context_of(a)), std::nullopt);
  const BatchResult r = publish_all(*sink_a, a);
  ASSERT_FALSE(r.all_done());
  EXPECT_EQ(r.done(5), 0u);
  EXPECT_THROW(std::rethrow_exception(r.error()), DestinationConflict);
  RedisClient client = server.client();
  const auto held = redis_entries(client, "events:Numbered");
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held.at(b.identity().id), one_to(8));
}

// This store's own entry appended out of seq order (a retried dead letter, id
// <top>-1) is never taken for another store's: open() cannot tell how far the copy
// goes and says so, and the sink goes on.
TEST(TwoStores, RedisOwnEntryOutOfOrderOnTopIsNotAConflict) {
  RedisServer server;
  TempDir root;
  Store a = Store::open(root / "a.db", fast_options());
  a.append("s", numbered_events(5, "Numbered"));
  auto sink = redis::make_sink({.url = server.url()});
  EXPECT_EQ(sink->open(context_of(a)), Seq{0});
  ASSERT_TRUE(publish_all(*sink, a).all_done());
  Event third;
  for (const Event& e : a.read_all({.from = 3, .to = 3})) third = e;
  RedisClient client = server.client();
  client.run(
      {"XADD", "events", "5-*", "event", to_envelope(third), "store", a.identity().id});
  EXPECT_EQ(sink->open(context_of(a)), std::nullopt);
  a.append("s", numbered_events(1, "Numbered"));
  ASSERT_TRUE(publish_all(*sink, a).all_done());  // 1..5 refused as ours, 6 added
  EXPECT_EQ(client.integer({"XLEN", "events"}), 7);
}

// The store's name goes where a store is named: `{store}` in the key and the
// CloudEvents source, unless the options give one.
TEST(TwoStores, TheStoresNameIsTheKeysStoreAndTheCloudEventsSource) {
  RedisServer server;
  TempDir root;
  Store a = Store::open(root / "a.db", fast_options());
  a.set_name("billing");
  a.append("s", numbered_events(2, "Numbered"));
  auto sink = redis::make_sink({.url = server.url(),
                                .key = "events:{store}",
                                .format = PayloadFormat::cloudevents});
  EXPECT_EQ(sink->open(context_of(a)), Seq{0});
  ASSERT_TRUE(publish_all(*sink, a).all_done());
  RedisClient client = server.client();
  auto r = client.run({"XRANGE", "events:billing", "-", "+"});
  ASSERT_EQ(r->elements, 2u);
  const redisReply* payload = r->element[0]->element[1]->element[1];
  const auto ce = nlohmann::json::parse(std::string(payload->str, payload->len));
  EXPECT_EQ(ce.at("source"), "eventlite://billing");
  auto own = redis::make_sink({.url = server.url(),
                               .key = "other",
                               .format = PayloadFormat::cloudevents,
                               .source = "/billing-service"});
  own->open(context_of(a));
  ASSERT_TRUE(publish_all(*own, a).all_done());
  r = client.run({"XRANGE", "other", "-", "+"});
  ASSERT_EQ(r->elements, 2u);
  payload = r->element[0]->element[1]->element[1];
  EXPECT_EQ(nlohmann::json::parse(std::string(payload->str, payload->len)).at("source"),
            "/billing-service");
}

// For every store: the seqs its messages in the stream carry, in stream order.
std::map<std::string, std::vector<Seq>> nats_messages(NatsServer& server,
                                                      const std::string& stream) {
  const NatsConn conn = server.connect();
  std::map<std::string, std::vector<Seq>> out;
  for (const NatsMsg& m : stream_messages(conn.get(), stream))
    out[header(m.get(), "Eventlite-Store")].push_back(
        std::stoll(header(m.get(), "Eventlite-Seq")));
  return out;
}

TEST(TwoStores, JetStreamSharedStreamAndSubjectsInterleavedRunsLoseAndDoubleNothing) {
  NatsServer server;
  TempDir root;
  Service a(root, "a"), b(root, "b");
  const std::vector<std::string> defaults = {"--nats", server.url(), "--jetstream"};
  a.append(50);
  b.append(100);
  ASSERT_EQ(a.forward_until_idle(defaults), 0) << a.err;
  ASSERT_EQ(b.forward_until_idle(defaults), 0) << b.err;
  EXPECT_NE(b.out.find("position 100, 0 events parked"), std::string::npos) << b.out;
  a.append(10);
  ASSERT_EQ(a.forward_until_idle(defaults), 0) << a.err;
  ASSERT_EQ(b.forward_until_idle(defaults), 0) << b.err;  // nothing new: sends nothing
  b.append(20);
  ASSERT_EQ(b.forward_until_idle(defaults), 0) << b.err;
  const auto held = nats_messages(server, "EVENTS");
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held.at(a.identity().id), one_to(60));
  EXPECT_EQ(held.at(b.identity().id), one_to(120));
}

// Both forward at once; A is SIGKILLed with publishes in flight, and started again only
// after the stream's duplicate window has passed, so the server's deduplication cannot
// hide a resend: reconciliation alone must find where A's copy stands among B's.
TEST(TwoStores, JetStreamForwarderKilledMidWindowAndRestartedPastTheDedupWindow) {
  NatsServer server;
  {
    const NatsConn conn = server.connect();
    create_stream(conn.get(), "EVENTS", 1s);
  }
  TempDir root;
  Service a(root, "a"), b(root, "b");
  a.append(20000);
  b.append(3000);
  const std::vector<std::string> defaults = {"--nats", server.url(), "--jetstream"};
  const std::string a_id = a.identity().id;
  {
    Tool fa({"forward", a.db().string(), "--nats", server.url(), "--jetstream"}, a.dir);
    Tool fb({"forward", b.db().string(), "--nats", server.url(), "--jetstream"}, b.dir);
    // Kill A once some of its messages are in, well before all.
    const NatsConn conn = server.connect();
    ASSERT_TRUE(
        wait_until([&] { return stream_count(conn.get(), "EVENTS") > 3000; }, 60s));
    EXPECT_EQ(fa.signal(SIGKILL), -1);
    EXPECT_LT(nats_messages(server, "EVENTS")[a_id].size(), 20000u)
        << "A finished before the kill";
    EXPECT_EQ(fb.signal(SIGTERM), 0) << fb.err();
  }
  // B goes on after A's death: A's newest message is then followed by B's, which
  // reconciliation must look past.
  b.append(500);
  ASSERT_EQ(b.forward_until_idle(defaults), 0) << b.err;
  {
    const NatsConn conn = server.connect();
    const auto all = stream_messages(conn.get(), "EVENTS");
    ASSERT_FALSE(all.empty());
    ASSERT_NE(header(all.back().get(), "Eventlite-Store"), a_id);
  }
  // The duplicate window is a span of time: it must pass for this test to mean
  // anything, so here the wait is the point, not a synchronisation.
  std::this_thread::sleep_for(1500ms);
  ASSERT_EQ(a.forward_until_idle(defaults), 0) << a.err;
  const auto held = nats_messages(server, "EVENTS");
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held.at(a_id), one_to(20000));
  EXPECT_EQ(held.at(b.identity().id), one_to(3500));
}

}  // namespace
}  // namespace eventlite
