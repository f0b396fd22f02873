// `eventlite forward` against a real redis-server: run to idle, stopped by SIGTERM,
// killed by SIGKILL in the middle and started again; the stream is read back and
// compared with the file each time.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli_tool.hpp"
#include "eventlite/envelope.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "redis_server.hpp"
#ifdef EVENTLITE_TEST_NATS
#include "nats_server.hpp"
#endif

namespace eventlite {
namespace {

using namespace eventlite::test;

void append_events(const std::filesystem::path& db, std::size_t n) {
  Store store = Store::open(db, fast_options());
  for (std::size_t i = 0; i < n; i += 100) {
    std::vector<NewEvent> batch = numbered_events(100, "Numbered", i);
    store.append("s-" + std::to_string(i / 100 % 5), batch);
  }
}

// The stream holds every event of the file once, in seq order, each its envelope.
void expect_stream_holds_the_file(RedisClient& client, const std::filesystem::path& db) {
  auto r = client.run({"XRANGE", "events", "-", "+"});
  ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
  Store store = Store::open(db, fast_options());
  std::size_t i = 0;
  for (const Event& e : store.read_all()) {
    ASSERT_LT(i, r->elements) << "missing from seq " << e.seq;
    const redisReply* entry = r->element[i++];
    EXPECT_EQ(std::string(entry->element[0]->str), std::to_string(e.seq) + "-0");
    const redisReply* payload = entry->element[1]->element[1];
    ASSERT_EQ(std::string(payload->str, payload->len), to_envelope(e));
  }
  EXPECT_EQ(i, r->elements) << "entries the file does not have";
}

// B's file holds A's events, each once, in A's order, with A's ids, streams,
// versions, times and data.
void expect_same_in_order(const std::filesystem::path& a, const std::filesystem::path& b) {
  Store from = Store::open(a, fast_options());
  Store to = Store::open(b, fast_options());
  std::vector<Event> source, copy;
  for (const Event& e : from.read_all()) source.push_back(e);
  for (const Event& e : to.read_all()) copy.push_back(e);
  ASSERT_EQ(copy.size(), source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    ASSERT_EQ(copy[i].id, source[i].id) << "at " << i;
    EXPECT_EQ(copy[i].stream, source[i].stream);
    EXPECT_EQ(copy[i].version, source[i].version);
    EXPECT_EQ(copy[i].time, source[i].time);
    EXPECT_EQ(copy[i].data, source[i].data);
  }
}

// Runs `bridge` (a bridge command without --until-idle) until B holds more than 2,000
// events, kills it with SIGKILL, then runs `bridge` + --until-idle to the end.
void bridge_killed_mid_way(std::vector<std::string> bridge, const TempDir& dir,
                           std::size_t events) {
  {
    Tool init({"init", (dir / "b.db").string()}, dir.path());
    ASSERT_EQ(init.wait(), 0) << init.err();
  }
  {
    Tool tool(bridge, dir.path());
    ASSERT_TRUE(wait_until(
        [&] {
          const Store store = Store::open(dir / "b.db", fast_options());
          return store.head() > 2000;
        },
        20s));
    EXPECT_EQ(tool.signal(SIGKILL), -1);
    const Store store = Store::open(dir / "b.db", fast_options());
    EXPECT_LT(store.head(), static_cast<Seq>(events)) << "it finished before the kill";
  }
  bridge.push_back("--until-idle");
  Tool rest(bridge, dir.path());
  ASSERT_EQ(rest.wait(), 0) << rest.err();
  EXPECT_NE(rest.out().find("bridged from"), std::string::npos) << rest.out();
}

TEST(CliForward, UntilIdleForwardsEverythingAndSaysWhere) {
  RedisServer server;
  TempDir dir;
  append_events(dir / "app.db", 500);
  Tool tool(
      {"forward", (dir / "app.db").string(), "--redis", server.url(), "--until-idle"},
      dir.path());
  ASSERT_EQ(tool.wait(), 0) << tool.err();
  EXPECT_NE(tool.out().find("position 500"), std::string::npos) << tool.out();
  RedisClient client = server.client();
  expect_stream_holds_the_file(client, dir / "app.db");
}

TEST(CliForward, UnreachableServerIsOneLineAfterRetryFor) {
  TempDir dir;
  append_events(dir / "app.db", 100);
  const std::string url = "redis://:hunter2@127.0.0.1:" + std::to_string(free_port());
  Tool tool({"forward", (dir / "app.db").string(), "--redis", url, "--until-idle",
             "--retry-for", "1"},
            dir.path());
  EXPECT_EQ(tool.wait(), 1);
  const std::string err = tool.err();
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find("redis://:***@127.0.0.1"), std::string::npos) << err;
  EXPECT_NE(err.find("100 events not forwarded"), std::string::npos) << err;
  EXPECT_EQ(err.find("hunter2"), std::string::npos) << err;
}

TEST(CliForward, SigtermStopsItCleanly) {
  RedisServer server;
  TempDir dir;
  append_events(dir / "app.db", 300);
  Tool tool({"forward", (dir / "app.db").string(), "--redis", server.url()}, dir.path());
  RedisClient client = server.client();
  ASSERT_TRUE(wait_until([&] { return client.integer({"XLEN", "events"}) == 300; }, 20s));
  EXPECT_EQ(tool.signal(SIGTERM), 0) << tool.err();
  EXPECT_NE(tool.out().find("position 300"), std::string::npos) << tool.out();
  // Its checkpoint was committed on the way out.
  Store store = Store::open(dir / "app.db", fast_options());
  EXPECT_EQ(status(store).subscriptions.at(0).position, 300);
}

// The forwarder killed with SIGKILL while it sends (between Redis's replies and its
// checkpoint commits), then started again: 0 lost, 0 duplicated.
TEST(CliForward, KilledMidForwardingAndRestartedLosesAndDuplicatesNothing) {
  RedisServer server;
  TempDir dir;
  constexpr std::size_t kEvents = 20000;
  append_events(dir / "app.db", kEvents);
  RedisClient client = server.client();
  for (int round = 0; round < 3; ++round) {
    Tool tool({"forward", (dir / "app.db").string(), "--redis", server.url(),
               "--lease-time", "1"},
              dir.path());
    const long long before = client.integer({"XLEN", "events"});
    ASSERT_TRUE(wait_until(
        [&] {
          return client.integer({"XLEN", "events"}) > before + 1000;
        },
        20s));
    EXPECT_EQ(tool.signal(SIGKILL), -1);
  }
  const long long sent = client.integer({"XLEN", "events"});
  EXPECT_LT(sent, static_cast<long long>(kEvents)) << "it finished before the kills";
  Tool rest({"forward", (dir / "app.db").string(), "--redis", server.url(),
             "--until-idle", "--lease-time", "1"},
            dir.path());
  ASSERT_EQ(rest.wait(), 0) << rest.err();
  expect_stream_holds_the_file(client, dir / "app.db");
}

#ifdef EVENTLITE_TEST_NATS
// The JetStream forwarder killed with SIGKILL mid-window (acks received, checkpoint
// not committed), into a stream whose duplicate window is 100 ms, so the server's
// dedup cannot hide a resend: every restart reconciles from the stream's last message.
TEST(CliForward, KilledMidJetStreamWindowPastTheDedupWindowDuplicatesNothing) {
  NatsServer server;
  TempDir dir;
  constexpr std::size_t kEvents = 20000;
  append_events(dir / "app.db", kEvents);
  NatsConn conn = server.connect();
  create_stream(conn.get(), "EVENTS", std::chrono::milliseconds(100));
  const auto stored = [&] { return stream_count(conn.get(), "EVENTS"); };
  for (int round = 0; round < 3; ++round) {
    Tool tool({"forward", (dir / "app.db").string(), "--nats", server.url(),
               "--jetstream", "--lease-time", "1"},
              dir.path());
    const std::uint64_t before = stored();
    ASSERT_TRUE(wait_until([&] { return stored() > before + 1000; }, 20s));
    EXPECT_EQ(tool.signal(SIGKILL), -1);
  }
  EXPECT_LT(stored(), kEvents) << "it finished before the kills";
  Tool rest({"forward", (dir / "app.db").string(), "--nats", server.url(), "--jetstream",
             "--until-idle", "--lease-time", "1"},
            dir.path());
  ASSERT_EQ(rest.wait(), 0) << rest.err();
  const auto messages = stream_messages(conn.get(), "EVENTS");
  Store store = Store::open(dir / "app.db", fast_options());
  ASSERT_EQ(messages.size(), kEvents);
  std::size_t i = 0;
  for (const Event& e : store.read_all())
    ASSERT_EQ(header(messages[i++].get(), "Eventlite-Seq"), std::to_string(e.seq));
}

// --nats --jetstream: the stream is created, every event lands once with its id, and
// a second run (its checkpoint caught up) sends nothing.
TEST(CliForward, ToJetStreamUntilIdle) {
  NatsServer server;
  TempDir dir;
  append_events(dir / "app.db", 300);
  for (int run = 0; run < 2; ++run) {
    Tool tool({"forward", (dir / "app.db").string(), "--nats", server.url(),
               "--jetstream", "--until-idle"},
              dir.path());
    ASSERT_EQ(tool.wait(), 0) << tool.err();
    EXPECT_EQ(tool.err(), "");
  }
  NatsConn conn = server.connect();
  const auto messages = stream_messages(conn.get(), "EVENTS");
  Store store = Store::open(dir / "app.db", fast_options());
  std::size_t i = 0;
  ASSERT_EQ(messages.size(), 300u);
  for (const Event& e : store.read_all()) {
    EXPECT_EQ(header(messages[i].get(), "Nats-Msg-Id"), e.id);
    EXPECT_EQ(data_of(messages[i++].get()), to_envelope(e));
  }
  EXPECT_EQ(status(store).subscriptions.at(0).name, "forward-nats");
}

TEST(CliBridge, UnreachableNatsServerIsOneLineAfterRetryFor) {
  TempDir dir;
  {
    Tool init({"init", (dir / "b.db").string()}, dir.path());
    ASSERT_EQ(init.wait(), 0) << init.err();
  }
  const std::string url = "nats://app:hunter2@127.0.0.1:" + std::to_string(free_port());
  Tool tool({"bridge", (dir / "b.db").string(), "--nats", url, "--until-idle",
             "--retry-for", "1"},
            dir.path());
  EXPECT_EQ(tool.wait(), 1);
  const std::string err = tool.err();
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find("cannot bridge from nats://app:***@127.0.0.1"), std::string::npos)
      << err;
  EXPECT_EQ(err.find("hunter2"), std::string::npos) << err;
}

TEST(CliBridge, FromJetStreamKilledMidWayAndRestartedBringsEveryEventOnce) {
  NatsServer server;
  TempDir dir;
  constexpr std::size_t kEvents = 20000;
  append_events(dir / "a.db", kEvents);
  const std::string a = (dir / "a.db").string(), b = (dir / "b.db").string();
  {
    Tool forward({"forward", a, "--nats", server.url(), "--jetstream", "--until-idle"},
                 dir.path());
    ASSERT_EQ(forward.wait(), 0) << forward.err();
  }
  bridge_killed_mid_way({"bridge", b, "--nats", server.url(), "--lease-time", "1"}, dir,
                        kEvents);
  expect_same_in_order(dir / "a.db", dir / "b.db");
}
#endif

// Service A forwards, service B bridges into its own file; the bridge is killed with
// SIGKILL mid-way and started again: B ends with each of A's events once, in order.
TEST(CliBridge, KilledMidWayAndRestartedBringsEveryEventOnce) {
  RedisServer server;
  TempDir dir;
  constexpr std::size_t kEvents = 20000;
  append_events(dir / "a.db", kEvents);
  const std::string a = (dir / "a.db").string(), b = (dir / "b.db").string();
  {
    Tool forward({"forward", a, "--redis", server.url(), "--until-idle"}, dir.path());
    ASSERT_EQ(forward.wait(), 0) << forward.err();
  }
  bridge_killed_mid_way({"bridge", b, "--redis", server.url(), "--lease-time", "1"}, dir,
                        kEvents);
  expect_same_in_order(dir / "a.db", dir / "b.db");
  RedisClient client = server.client();
  auto pending = client.run({"XPENDING", "events", "eventlite"});
  EXPECT_EQ(pending->element[0]->integer, 0);
}

}  // namespace
}  // namespace eventlite
