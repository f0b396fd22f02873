// The Redis bridge against a real redis-server: service A forwards its events to a
// Redis Stream, service B's bridge brings them into its own file; crashes between
// B's commit and its XACK, entries another consumer left pending, entries that are
// not envelopes, and two bridges of one name.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/redis.hpp"
#include "broker_test_support.hpp"
#include "eventlite/store.hpp"
#include "redis_server.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

redis::BridgeOptions bridge_from(const RedisServer& server) {
  redis::BridgeOptions o;
  o.url = server.url();
  o.block = std::chrono::milliseconds(10);
  return o;
}

// Service A: n events over four streams, forwarded to the stream `events`.
void forward_from_a(const std::filesystem::path& db, const RedisServer& server,
                    std::size_t n) {
  Store a = Store::open(db, fast_options());
  append_order_events(a, n);
  Processor processor(a);
  redis::SinkOptions sink;
  sink.url = server.url();
  SubscriptionOptions o;
  o.max_lanes = 1;
  processor.sink("to-redis", redis::make_sink(sink), o);
  processor.run_until_idle();
}

long long pending(RedisClient& client) {
  auto r = client.run({"XPENDING", "events", "eventlite"});
  return r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0]->integer : -1;
}

TEST(RedisBridge, BringsAnotherServicesEventsInAndItsProcessorHandlesThem) {
  RedisServer server;
  TempDir dir;
  forward_from_a(dir / "a.db", server, 300);
  Store b = Store::open(dir / "b.db", fast_options());
  redis::Bridge bridge(b, bridge_from(server));
  EXPECT_EQ(bridge.run_until_idle(), 300u);
  EXPECT_TRUE(bridge.active());

  Store a = Store::open(dir / "a.db", fast_options());
  expect_same_events(a, b);
  RedisClient client = server.client();
  EXPECT_EQ(pending(client), 0);  // every entry acknowledged

  // Service B's processor handles A's events like its own.
  std::atomic<int> mailed{0};
  Processor processor(b);
  processor.subscribe("mailer", [&](const eventlite::Context& c) {
    if (c.event().type == "OrderPlaced") ++mailed;
  });
  processor.run_until_idle();
  EXPECT_EQ(mailed.load(), 150);

  // Nothing new: the next step takes nothing in.
  EXPECT_EQ(bridge.step(), 0u);
}

// Killed after B's commit and before its XACK: the entries are still pending for its
// consumer name; the next bridge of that name takes them in again, finds them stored,
// and acknowledges them.
TEST(RedisBridge, EntriesCommittedButNotAcknowledgedAreNotStoredTwice) {
  RedisServer server;
  TempDir dir;
  forward_from_a(dir / "a.db", server, 50);
  RedisClient client = server.client();
  client.run({"XGROUP", "CREATE", "events", "eventlite", "0"});
  // What the dead bridge had read (and committed): in its consumer's pending list.
  auto read = client.run({"XREADGROUP", "GROUP", "eventlite", "redis-bridge", "COUNT",
                          "30", "STREAMS", "events", ">"});
  ASSERT_EQ(read->element[0]->element[1]->elements, 30u);
  Store b = Store::open(dir / "b.db", fast_options());
  {
    const redisReply* entries = read->element[0]->element[1];
    for (std::size_t i = 0; i < entries->elements; ++i) {
      const redisReply* fields = entries->element[i]->element[1];
      const DecodedEvent d = decode_envelope(
          std::string_view(fields->element[1]->str, fields->element[1]->len));
      b.append(d.stream, d.event);
    }
  }
  ASSERT_EQ(pending(client), 30);

  redis::Bridge bridge(b, bridge_from(server));
  EXPECT_EQ(bridge.run_until_idle(), 50u);  // the 30 again, then the 20 new
  Store a = Store::open(dir / "a.db", fast_options());
  expect_same_events(a, b);
  EXPECT_EQ(pending(client), 0);
}

TEST(RedisBridge, ClaimsEntriesADeadConsumerLeftPending) {
  RedisServer server;
  TempDir dir;
  forward_from_a(dir / "a.db", server, 20);
  RedisClient client = server.client();
  client.run({"XGROUP", "CREATE", "events", "eventlite", "0"});
  client.run({"XREADGROUP", "GROUP", "eventlite", "dead-consumer", "COUNT", "20",
              "STREAMS", "events", ">"});
  Store b = Store::open(dir / "b.db", fast_options());
  auto options = bridge_from(server);
  options.claim_idle = std::chrono::milliseconds(50);
  redis::Bridge bridge(b, options);
  // Not before they have been idle for claim_idle.
  ASSERT_TRUE(wait_until([&] { return bridge.step() == 20u; }, 5s));
  Store a = Store::open(dir / "a.db", fast_options());
  expect_same_events(a, b);
  EXPECT_EQ(pending(client), 0);
}

TEST(RedisBridge, EntriesThatAreNotEnvelopesAreKeptAsRejectedAndAcknowledged) {
  RedisServer server;
  TempDir dir;
  RedisClient client = server.client();
  client.run({"XADD", "events", "*", "event", "not json"});
  client.run({"XADD", "events", "*", "payload", "{}"});
  client.run({"XADD", "events", "*", "event",
              R"({"seq":1,"id":"01930000-0000-7000-8000-000000000001","stream":"s",)"
              R"("version":1,"type":"T","time":"2026-11-23T10:00:00.123Z","data":{},)"
              R"("metadata":{}})"});
  Store b = Store::open(dir / "b.db", fast_options());
  redis::Bridge bridge(b, bridge_from(server));
  EXPECT_EQ(bridge.run_until_idle(), 3u);
  EXPECT_EQ(pending(client), 0);

  const auto events = events_of(b);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].stream, "eventlite-rejected-redis-bridge");
  EXPECT_EQ(events[0].type, "BridgeEntryRejected");
  EXPECT_NE(events[0].data.find("cannot be decoded: envelope: "), std::string::npos)
      << events[0].data;
  EXPECT_NE(events[0].data.find("\"event\":\"not json\""), std::string::npos)
      << events[0].data;
  EXPECT_NE(events[1].data.find("no \\\"event\\\" field"), std::string::npos)
      << events[1].data;
  EXPECT_EQ(events[2].stream, "s");
  EXPECT_EQ(events[2].time, "2026-11-23T10:00:00.123Z");  // the original time
}

TEST(RedisBridge, OneBridgePerNameAcrossStoresOfOneFile) {
  RedisServer server;
  TempDir dir;
  forward_from_a(dir / "a.db", server, 10);
  Store b1 = Store::open(dir / "b.db", fast_options());
  Store b2 = Store::open(dir / "b.db", fast_options());
  redis::Bridge first(b1, bridge_from(server));
  redis::Bridge second(b2, bridge_from(server));
  EXPECT_EQ(first.step(), 10u);
  EXPECT_EQ(second.step(), 0u);  // stands by
  EXPECT_FALSE(second.active());
  EXPECT_TRUE(first.active());
}

// Fencing: a bridge whose lease another process took (while it stalled) appends
// nothing; the entries stay pending for the new holder.
TEST(RedisBridge, BridgeThatLostItsLeaseAppendsNothing) {
  RedisServer server;
  TempDir dir;
  forward_from_a(dir / "a.db", server, 5);
  Store b = Store::open(dir / "b.db", fast_options());
  redis::Bridge bridge(b, bridge_from(server));
  EXPECT_EQ(bridge.run_until_idle(), 5u);
  forward_from_a(dir / "a.db", server, 5);  // five more
  // Another process takes the lease over, as after this one stalled past it.
  RawDb(dir / "b.db")
      .exec(
          "UPDATE eventlite_leases SET owner = 'elsewhere', token = token + 1, "
          "expires = '2999-01-01T00:00:00.000Z' WHERE name = 'bridge:redis-bridge'");
  const Seq head = b.head();
  EXPECT_EQ(bridge.step(), 0u);  // read the five, found the lease gone, stored none
  EXPECT_EQ(b.head(), head);
  EXPECT_FALSE(bridge.active());
  EXPECT_EQ(bridge.step(), 0u);  // stands by
  RedisClient client = server.client();
  EXPECT_EQ(pending(client), 5);  // left for the holder
}

// redis-server killed (SIGKILL) while the bridge runs, and started again on its data
// (appendfsync always): the bridge retries until it is back, reads what it was given
// and had not acknowledged, and B ends with each of A's events once.
TEST(RedisBridge, ServerKilledMidWayLosesAndDoublesNothing) {
  RedisServer server;
  TempDir dir;
  constexpr std::size_t kEvents = 5000;
  forward_from_a(dir / "a.db", server, kEvents);
  Store b = Store::open(dir / "b.db", fast_options());
  auto options = bridge_from(server);
  options.batch = 50;
  options.timeout = std::chrono::milliseconds(500);
  redis::Bridge bridge(b, options);
  std::thread running([&] { bridge.run(); });
  ASSERT_TRUE(wait_until([&] { return b.head() > 1000; }, 20s));
  server.stop(SIGKILL);
  EXPECT_LT(b.head(), static_cast<Seq>(kEvents)) << "it finished before the kill";
  server.start();
  const bool done = wait_until([&] { return b.head() == static_cast<Seq>(kEvents); }, 30s);
  RedisClient client = server.client();
  const bool acked = wait_until([&] { return pending(client) == 0; }, 10s);
  bridge.stop();
  running.join();
  ASSERT_TRUE(done) << "head " << b.head();
  EXPECT_TRUE(acked);
  Store a = Store::open(dir / "a.db", fast_options());
  expect_same_events(a, b);
}

TEST(RedisBridge, DownServerIsARetryableBrokerErrorAndLosesNothing) {
  TempDir dir;
  Store b = Store::open(dir / "b.db", fast_options());
  redis::BridgeOptions options;
  options.url = "redis://127.0.0.1:" + std::to_string(free_port());
  redis::Bridge bridge(b, options);
  try {
    bridge.step();
    FAIL() << "no error";
  } catch (const BrokerError& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_EQ(e.broker(), "redis");
  }
  EXPECT_EQ(b.head(), 0);
}

}  // namespace
}  // namespace eventlite
