// The NATS bridge against a real nats-server: service A forwards its events to
// JetStream, service B's bridge brings them into its own file through a durable
// consumer; a bridge killed between fetch and commit or between commit and ack,
// messages that are not envelopes, two bridges of one name, and a server that is
// down.

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "broker_test_support.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/envelope.hpp"
#include "eventlite/nats.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "nats_server.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

nats::BridgeOptions bridge_from(const NatsServer& server) {
  nats::BridgeOptions o;
  o.url = server.url();
  o.block = std::chrono::milliseconds(50);
  o.timeout = std::chrono::milliseconds(2000);
  return o;
}

// Service A: n events forwarded to the JetStream stream EVENTS.
void forward_from_a(const std::filesystem::path& db, const NatsServer& server,
                    std::size_t n) {
  Store a = Store::open(db, fast_options());
  append_order_events(a, n);
  Processor processor(a);
  nats::SinkOptions sink;
  sink.url = server.url();
  sink.jetstream = true;
  sink.create_stream = true;
  processor.sink("to-nats", nats::make_sink(sink), sink_options());
  processor.run_until_idle();
}

// The durable consumer's count of messages handed out and not acknowledged, and of
// those not handed out yet.
struct ConsumerState {
  std::int64_t ack_pending = -1;
  std::uint64_t pending = 0;
};
ConsumerState consumer_state(natsConnection* conn, const char* durable = "eventlite") {
  const NatsJs js = jetstream(conn);
  jsConsumerInfo* info = nullptr;
  ConsumerState out;
  if (js_GetConsumerInfo(&info, js.get(), "EVENTS", durable, nullptr, nullptr) ==
      NATS_OK) {
    out = {info->NumAckPending, info->NumPending};
    jsConsumerInfo_Destroy(info);
  }
  return out;
}

// What a bridge killed before its ack leaves: `n` messages fetched through the
// durable consumer `durable` and never acknowledged. Returns their payloads.
std::vector<std::string> fetch_without_ack(natsConnection* conn, int n) {
  const NatsJs js = jetstream(conn);
  jsConsumerConfig cfg;
  jsConsumerConfig_Init(&cfg);
  cfg.Durable = "eventlite";
  cfg.AckPolicy = js_AckExplicit;
  cfg.MaxAckPending = 512;
  jsConsumerInfo* info = nullptr;
  if (js_AddConsumer(&info, js.get(), "EVENTS", &cfg, nullptr, nullptr) != NATS_OK)
    throw std::runtime_error("cannot create the consumer");
  jsConsumerInfo_Destroy(info);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = "EVENTS";
  so.Consumer = "eventlite";
  so.ManualAck = true;
  natsSubscription* sub = nullptr;
  if (js_PullSubscribe(&sub, js.get(), nullptr, "eventlite", nullptr, &so, nullptr) !=
      NATS_OK)
    throw std::runtime_error("cannot subscribe");
  natsMsgList list{};
  std::vector<std::string> out;
  if (natsSubscription_Fetch(&list, sub, n, 2000, nullptr) == NATS_OK)
    for (int i = 0; i < list.Count; ++i) out.push_back(data_of(list.Msgs[i]));
  natsMsgList_Destroy(&list);
  natsSubscription_Destroy(sub);
  return out;
}

// Ids in the order B's file holds them (the rejected stream left out).
std::vector<std::string> ids_in_order(const Store& store) {
  std::vector<std::string> out;
  for (const Event& e : events_of(store))
    if (e.stream.rfind("eventlite-rejected-", 0) != 0) out.push_back(e.id);
  return out;
}

TEST(NatsBridge, BringsAnotherServicesEventsInAndItsProcessorHandlesThem) {
  NatsServer server;
  TempDir dir;
  forward_from_a(dir / "a.db", server, 300);
  Store b = Store::open(dir / "b.db", fast_options());
  nats::Bridge bridge(b, bridge_from(server));
  EXPECT_EQ(bridge.run_until_idle(), 300u);
  EXPECT_TRUE(bridge.active());

  Store a = Store::open(dir / "a.db", fast_options());
  expect_same_events(a, b);
  EXPECT_EQ(ids_in_order(b), ids_in_order(a));  // the stream's order
  NatsConn conn = server.connect();
  const ConsumerState state = consumer_state(conn.get());
  EXPECT_EQ(state.ack_pending, 0);  // every message acknowledged
  EXPECT_EQ(state.pending, 0u);

  std::atomic<int> mailed{0};
  Processor processor(b);
  processor.subscribe("mailer", [&](const eventlite::Context& c) {
    if (c.event().type == "OrderPlaced") ++mailed;
  });
  processor.run_until_idle();
  EXPECT_EQ(mailed.load(), 150);
  EXPECT_EQ(bridge.step(), 0u);  // nothing new
}

// Killed after fetching and before committing: the fetched messages were never
// acknowledged. The next bridge starts the consumer again from its ack floor, so they
// come first and B's file keeps A's order (not the newer ones first, then the
// redelivery).
TEST(NatsBridge, MessagesFetchedButNotCommittedComeAgainFirstInOrder) {
  NatsServer server;
  TempDir dir;
  forward_from_a(dir / "a.db", server, 50);
  NatsConn conn = server.connect();
  ASSERT_EQ(fetch_without_ack(conn.get(), 10).size(), 10u);
  ASSERT_EQ(consumer_state(conn.get()).ack_pending, 10);

  Store b = Store::open(dir / "b.db", fast_options());
  nats::Bridge bridge(b, bridge_from(server));
  EXPECT_EQ(bridge.run_until_idle(), 50u);
  Store a = Store::open(dir / "a.db", fast_options());
  expect_same_events(a, b);
  EXPECT_EQ(ids_in_order(b), ids_in_order(a));
  EXPECT_EQ(consumer_state(conn.get()).ack_pending, 0);
}

// Killed after committing and before acknowledging: the messages come again and are
// found stored; nothing is appended twice.
TEST(NatsBridge, MessagesCommittedButNotAcknowledgedAreNotStoredTwice) {
  NatsServer server;
  TempDir dir;
  forward_from_a(dir / "a.db", server, 50);
  NatsConn conn = server.connect();
  Store b = Store::open(dir / "b.db", fast_options());
  for (const std::string& payload : fetch_without_ack(conn.get(), 30)) {
    const DecodedEvent d = decode_envelope(payload);
    b.append(d.stream, d.event);  // what the dead bridge committed
  }
  ASSERT_EQ(b.head(), 30);

  nats::Bridge bridge(b, bridge_from(server));
  EXPECT_EQ(bridge.run_until_idle(), 50u);  // the 30 again, then the 20 new
  EXPECT_EQ(b.head(), 50);
  Store a = Store::open(dir / "a.db", fast_options());
  expect_same_events(a, b);
  EXPECT_EQ(ids_in_order(b), ids_in_order(a));
  EXPECT_EQ(consumer_state(conn.get()).ack_pending, 0);
}

TEST(NatsBridge, MessagesThatAreNotEnvelopesAreKeptAsRejectedAndAcknowledged) {
  NatsServer server;
  TempDir dir;
  forward_from_a(dir / "a.db", server, 2);
  NatsConn conn = server.connect();
  {
    const NatsJs js = jetstream(conn.get());
    const std::string bad = "not json";
    ASSERT_EQ(js_Publish(nullptr, js.get(), "events.Junk", bad.data(),
                         static_cast<int>(bad.size()), nullptr, nullptr),
              NATS_OK);
  }
  Store b = Store::open(dir / "b.db", fast_options());
  nats::Bridge bridge(b, bridge_from(server));
  EXPECT_EQ(bridge.run_until_idle(), 3u);
  EXPECT_EQ(consumer_state(conn.get()).ack_pending, 0);  // not retried for ever

  const auto events = events_of(b);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].stream, "eventlite-rejected-nats-bridge");
  EXPECT_EQ(events[2].type, "BridgeEntryRejected");
  EXPECT_NE(events[2].data.find("\"entry\":\"3\""), std::string::npos) << events[2].data;
  EXPECT_NE(events[2].data.find("\"broker\":\"nats\""), std::string::npos)
      << events[2].data;
  EXPECT_NE(events[2].data.find("\"source\":\"EVENTS\""), std::string::npos)
      << events[2].data;
  EXPECT_NE(events[2].data.find("cannot be decoded: envelope: "), std::string::npos)
      << events[2].data;
  EXPECT_NE(events[2].data.find("\"event\":\"not json\""), std::string::npos)
      << events[2].data;
}

TEST(NatsBridge, OneBridgePerNameAcrossStoresOfOneFile) {
  NatsServer server;
  TempDir dir;
  forward_from_a(dir / "a.db", server, 10);
  Store b1 = Store::open(dir / "b.db", fast_options());
  Store b2 = Store::open(dir / "b.db", fast_options());
  auto options = bridge_from(server);
  options.batch = 5;  // messages are left for the second one, which must not take them
  nats::Bridge first(b1, options);
  nats::Bridge second(b2, options);
  EXPECT_EQ(first.step(), 5u);
  EXPECT_EQ(second.step(), 0u);  // stands by
  EXPECT_EQ(b1.head(), 5);
  EXPECT_FALSE(second.active());
  EXPECT_TRUE(first.active());
}

// nats-server killed (SIGKILL) while the bridge runs, and started again on its data:
// the bridge retries until it is back, starts the consumer again from its ack floor,
// and B ends with each of A's events once, in A's order.
TEST(NatsBridge, ServerKilledMidWayLosesAndDoublesNothing) {
  NatsServer server;
  TempDir dir;
  constexpr std::size_t kEvents = 5000;
  forward_from_a(dir / "a.db", server, kEvents);
  Store b = Store::open(dir / "b.db", fast_options());
  auto options = bridge_from(server);
  options.batch = 50;
  options.timeout = std::chrono::milliseconds(500);
  nats::Bridge bridge(b, options);
  std::thread running([&] { bridge.run(); });
  ASSERT_TRUE(wait_until([&] { return b.head() > 1000; }, 20s));
  server.stop(SIGKILL);
  EXPECT_LT(b.head(), static_cast<Seq>(kEvents)) << "it finished before the kill";
  server.start();
  const bool done = wait_until([&] { return b.head() == static_cast<Seq>(kEvents); }, 30s);
  NatsConn conn = server.connect();
  const bool acked =
      wait_until([&] { return consumer_state(conn.get()).ack_pending == 0; }, 10s);
  bridge.stop();
  running.join();
  ASSERT_TRUE(done) << "head " << b.head();
  EXPECT_TRUE(acked);
  Store a = Store::open(dir / "a.db", fast_options());
  expect_same_events(a, b);
  EXPECT_EQ(ids_in_order(b), ids_in_order(a));
}

// Fencing, then a takeover: a bridge whose lease another process took (while it
// stalled) stores nothing of the batch it fetched; the next holder gets that batch
// at once (not after ack_wait), in the stream's order.
TEST(NatsBridge, BatchOfABridgeThatLostItsLeaseGoesToTheNextHolderInOrder) {
  NatsServer server;
  TempDir dir;
  forward_from_a(dir / "a.db", server, 20);
  Store b1 = Store::open(dir / "b.db", fast_options());
  auto options = bridge_from(server);
  options.batch = 10;
  nats::Bridge stalled(b1, options);
  EXPECT_EQ(stalled.step(), 10u);
  RawDb(dir / "b.db")
      .exec(
          "UPDATE eventlite_leases SET owner = 'elsewhere', token = token + 1, "
          "expires = '2999-01-01T00:00:00.000Z' WHERE name = 'bridge:nats-bridge'");
  EXPECT_EQ(stalled.step(), 0u);  // fetched ten, found the lease gone, stored none
  EXPECT_EQ(b1.head(), 10);
  EXPECT_FALSE(stalled.active());
  NatsConn conn = server.connect();
  EXPECT_EQ(consumer_state(conn.get()).ack_pending, 10);

  // The process that took it over dies; this one takes the lease.
  RawDb(dir / "b.db")
      .exec(
          "UPDATE eventlite_leases SET expires = '2000-01-01T00:00:00.000Z' "
          "WHERE name = 'bridge:nats-bridge'");
  Store b2 = Store::open(dir / "b.db", fast_options());
  nats::Bridge next(b2, options);
  EXPECT_EQ(next.run_until_idle(), 10u);
  Store a = Store::open(dir / "a.db", fast_options());
  expect_same_events(a, b2);
  EXPECT_EQ(ids_in_order(b2), ids_in_order(a));
  EXPECT_EQ(consumer_state(conn.get()).ack_pending, 0);
}

// The consumer deleted on the server (by an operator, or a crash between reset and
// create): the bridge creates it again from where the file says it stands, not
// from the stream's start.
TEST(NatsBridge, DeletedConsumerResumesFromTheFilesPosition) {
  NatsServer server;
  TempDir dir;
  forward_from_a(dir / "a.db", server, 30);
  Store b = Store::open(dir / "b.db", fast_options());
  auto options = bridge_from(server);
  options.batch = 10;
  {
    nats::Bridge bridge(b, options);
    EXPECT_EQ(bridge.step(), 10u);
  }
  NatsConn conn = server.connect();
  {
    const NatsJs js = jetstream(conn.get());
    ASSERT_EQ(js_DeleteConsumer(js.get(), "EVENTS", "eventlite", nullptr, nullptr),
              NATS_OK);
  }
  nats::Bridge bridge(b, options);
  EXPECT_EQ(bridge.run_until_idle(), 20u);  // 11..30, nothing taken in twice
  Store a = Store::open(dir / "a.db", fast_options());
  expect_same_events(a, b);
  const StatusReport report = status(b);
  ASSERT_EQ(report.bridges.size(), 1u);
  EXPECT_EQ(report.bridges[0].last_entry, "30");
  EXPECT_EQ(report.bridges[0].stored, 30u);
  EXPECT_EQ(report.bridges[0].broker, "nats");
  EXPECT_EQ(report.bridges[0].source, "EVENTS");
}

TEST(NatsBridge, DownServerIsARetryableBrokerErrorNamingIt) {
  TempDir dir;
  Store b = Store::open(dir / "b.db", fast_options());
  nats::BridgeOptions options;
  options.url = "nats://app:secret@127.0.0.1:" + std::to_string(free_port());
  options.timeout = std::chrono::milliseconds(500);
  nats::Bridge bridge(b, options);
  try {
    bridge.step();
    FAIL() << "no error";
  } catch (const BrokerError& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_EQ(e.broker(), "nats");
    const std::string what = e.what();
    EXPECT_NE(what.find("nats://app:***@127.0.0.1"), std::string::npos) << what;
    EXPECT_EQ(what.find("secret"), std::string::npos) << what;
  }
  EXPECT_EQ(b.head(), 0);
}

TEST(NatsBridge, MissingStreamIsARetryableErrorNamingIt) {
  NatsServer server;
  TempDir dir;
  Store b = Store::open(dir / "b.db", fast_options());
  nats::Bridge bridge(b, bridge_from(server));
  try {
    bridge.step();
    FAIL() << "no error";
  } catch (const BrokerError& e) {
    EXPECT_TRUE(e.retryable());
    EXPECT_NE(std::string(e.what()).find("stream EVENTS not found"), std::string::npos)
        << e.what();
  }
}

TEST(NatsBridge, DurableNameWithADotIsRefused) {
  TempDir dir;
  Store b = Store::open(dir / "b.db", fast_options());
  nats::BridgeOptions options;
  options.durable = "a.b";
  EXPECT_THROW(nats::Bridge(b, options), InvalidArgument);
}

}  // namespace
}  // namespace eventlite
