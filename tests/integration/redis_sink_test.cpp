// The Redis sink against a real redis-server (redis_server.hpp): what arrives is read
// back from Redis and compared with the file.

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker_test_support.hpp"
#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/redis.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "handlers/redis/url.hpp"
#include "redis_server.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

redis::SinkOptions stream_to(const RedisServer& server) {
  redis::SinkOptions o;
  o.url = server.url();
  o.timeout = std::chrono::milliseconds(2000);
  return o;
}

// The stream's entries: id and the `event` field, in order.
std::vector<std::pair<std::string, std::string>> entries(
    RedisClient& client, const std::string& key = "events") {
  auto r = client.run({"XRANGE", key, "-", "+"});
  std::vector<std::pair<std::string, std::string>> out;
  if (r->type != REDIS_REPLY_ARRAY) return out;
  for (std::size_t i = 0; i < r->elements; ++i) {
    const redisReply* e = r->element[i];
    const redisReply* fields = e->element[1];
    out.emplace_back(std::string(e->element[0]->str, e->element[0]->len),
                     std::string(fields->element[1]->str, fields->element[1]->len));
  }
  return out;
}

// Every event of the file, once and in seq order, as the stream's entries.
void expect_stream_holds_the_file(RedisClient& client, Store& store) {
  const auto got = entries(client);
  std::vector<Event> events;
  for (const Event& e : store.read_all()) events.push_back(e);
  ASSERT_EQ(got.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(got[i].first, redis::entry_id(events[i].seq));
    EXPECT_EQ(got[i].second, to_envelope(events[i]));
  }
}

TEST(RedisSink, StreamGetsEveryEventInSeqOrderWithItsEnvelope) {
  RedisServer server;
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  append_user_events(store, 250);
  Processor processor(store);
  processor.sink("to-redis", redis::make_sink(stream_to(server)), sink_options());
  processor.run_until_idle();

  RedisClient client = server.client();
  expect_stream_holds_the_file(client, store);
  EXPECT_EQ(status(store).subscriptions.at(0).position, 250);
}

TEST(RedisSink, CloudEventsFormatCarriesSubjectSeqAndStreamVersion) {
  RedisServer server;
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  append_user_events(store, 3);
  auto options = stream_to(server);
  options.format = PayloadFormat::cloudevents;
  options.source = "/signup";
  Processor processor(store);
  processor.sink("to-redis", redis::make_sink(options), sink_options());
  processor.run_until_idle();

  RedisClient client = server.client();
  const auto got = entries(client);
  ASSERT_EQ(got.size(), 3u);
  std::size_t i = 0;
  for (const Event& e : store.read_all())
    EXPECT_EQ(got[i++].second, to_cloudevent(e, "/signup"));
  const DecodedEvent back = decode_cloudevent(got[2].second);
  EXPECT_EQ(back.stream, "user-2");
  EXPECT_EQ(back.seq, std::optional<Seq>(3));
}

// A forwarder killed after Redis took the events but before its checkpoint commit
// comes back with its checkpoint behind: the copy of the file from before the
// forwarding stands for it. It reads the stream's last entry and sends nothing again.
TEST(RedisSink, ForwarderWhoseCheckpointIsBehindResendsNothing) {
  RedisServer server;
  TempDir dir;
  {
    Store store = Store::open(dir / "app.db", fast_options());
    append_user_events(store, 100);
  }
  std::filesystem::copy_file(dir / "app.db", dir / "before.db");
  {
    Store store = Store::open(dir / "app.db", fast_options());
    Processor processor(store);
    processor.sink("to-redis", redis::make_sink(stream_to(server)), sink_options());
    processor.run_until_idle();
  }
  Store behind = Store::open(dir / "before.db", fast_options());
  append_user_events(behind, 20, 100);  // and new events since
  RedisClient client = server.client();
  // The entries sent before; a resend would be refused, so count XADD calls instead.
  const auto calls_before = client.run({"INFO", "commandstats"});
  const std::string before(calls_before->str, calls_before->len);
  Processor processor(behind);
  processor.sink("to-redis", redis::make_sink(stream_to(server)), sink_options());
  processor.run_until_idle();

  const auto got = entries(client);
  ASSERT_EQ(got.size(), 120u);
  EXPECT_EQ(got.back().first, redis::entry_id(120));
  const auto info = client.run({"INFO", "commandstats"});
  const std::string after(info->str, info->len);
  // cmdstat_xadd:calls=N: 100 from the first forwarder, 20 from this one.
  EXPECT_NE(before.find("cmdstat_xadd:calls=100,"), std::string::npos) << before;
  EXPECT_NE(after.find("cmdstat_xadd:calls=120,"), std::string::npos) << after;
  EXPECT_EQ(status(behind).subscriptions.at(0).position, 120);
}

// A rewind re-sends from the file: into a stream that still holds the entries it
// adds nothing; into one that lost them (a flushed Redis) it refills them in order.
TEST(RedisSink, RewindDuplicatesNothingAndRefillsAFlushedRedis) {
  RedisServer server;
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  append_user_events(store, 40);
  auto run = [&] {
    Processor processor(store);
    processor.sink("to-redis", redis::make_sink(stream_to(server)), sink_options());
    processor.run_until_idle();
  };
  run();
  RedisClient client = server.client();
  rewind(store, "to-redis", 1);
  run();
  expect_stream_holds_the_file(client, store);

  client.run({"FLUSHALL"});
  ASSERT_EQ(client.integer({"EXISTS", "events"}), 0);
  rewind(store, "to-redis", 1);
  run();
  expect_stream_holds_the_file(client, store);
}

TEST(RedisSink, MaxlenTrimsTheStream) {
  RedisServer server;
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  append_user_events(store, 1000);
  auto options = stream_to(server);
  options.maxlen = 100;
  Processor processor(store);
  processor.sink("to-redis", redis::make_sink(options), sink_options());
  processor.run_until_idle();

  RedisClient client = server.client();
  const long long len = client.integer({"XLEN", "events"});
  EXPECT_GE(len, 100);
  EXPECT_LT(len, 1000);  // approximate trimming leaves whole nodes, never all
  EXPECT_EQ(entries(client).back().first, redis::entry_id(1000));
}

TEST(RedisSink, KeyTemplateGivesOneStreamPerType) {
  RedisServer server;
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  store.append("a", event("Created"));
  store.append("a", event("Renamed"));
  store.append("b", event("Created"));
  auto options = stream_to(server);
  options.key = "events:{type}";
  Processor processor(store);
  processor.sink("to-redis", redis::make_sink(options), sink_options());
  processor.run_until_idle();

  RedisClient client = server.client();
  const auto created = entries(client, "events:Created");
  ASSERT_EQ(created.size(), 2u);
  EXPECT_EQ(created[0].first, "1-0");
  EXPECT_EQ(created[1].first, "3-0");
  EXPECT_EQ(entries(client, "events:Renamed").size(), 1u);
}

// A type or stream holding "{stream}" or "{type}" is put into the key as it is: the
// template is expanded once, so no name moves another name's events elsewhere.
TEST(RedisSink, KeyTemplateExpandsOnceWhateverTheNamesHold) {
  RedisServer server;
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  store.append("s{type}", event("T{stream}"));
  store.append("plain", event("{type}"));
  auto options = stream_to(server);
  options.key = "ev:{type}:{stream}:{other}";
  Processor processor(store);
  processor.sink("to-redis", redis::make_sink(options), sink_options());
  processor.run_until_idle();

  RedisClient client = server.client();
  EXPECT_EQ(entries(client, "ev:T{stream}:s{type}:{other}").size(), 1u);
  EXPECT_EQ(entries(client, "ev:{type}:plain:{other}").size(), 1u);
  auto keys = client.run({"KEYS", "*"});
  ASSERT_EQ(keys->type, REDIS_REPLY_ARRAY);
  EXPECT_EQ(keys->elements, 2u);
  EXPECT_TRUE(dead_letters(store).empty());
}

// Keys and channels go to Redis as arguments of their own (binary-safe), never
// spliced into a command line: a type with spaces, quotes and a line break is one
// channel, and no command hides in it.
TEST(RedisSink, NamesWithSpacesAndLineBreaksAreOneKeyAndNoCommand) {
  RedisServer server;
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  const std::string type = "A b\r\nSET injected 1\r\n\"q\"";
  store.append("s x", event(type));
  auto options = stream_to(server);
  options.key = "events:{type}:{stream}";
  Processor processor(store);
  processor.sink("to-redis", redis::make_sink(options), sink_options());
  processor.run_until_idle();

  RedisClient client = server.client();
  EXPECT_EQ(entries(client, "events:" + type + ":s x").size(), 1u);
  EXPECT_EQ(client.integer({"EXISTS", "injected"}), 0);
  EXPECT_EQ(events_of(store).at(0).type, type);  // what is stored is as it was
}

TEST(RedisSink, PubSubReachesALivePatternSubscriber) {
  RedisServer server;
  RedisClient subscriber = server.client();
  subscriber.send({"PSUBSCRIBE", "events:*"});
  auto confirm = subscriber.next();
  ASSERT_TRUE(confirm);
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  store.append("user-1", event("UserCreated", R"({"email":"a@example.com"})"));
  store.append("user-1", event("EmailVerified"));
  auto options = stream_to(server);
  options.mode = redis::Mode::pubsub;
  Processor processor(store);
  processor.sink("to-redis", redis::make_sink(options), sink_options());
  processor.run_until_idle();

  std::vector<Event> events;
  for (const Event& e : store.read_all()) events.push_back(e);
  for (const Event& e : events) {
    auto m = subscriber.next();  // pmessage, pattern, channel, payload
    ASSERT_TRUE(m) << "no message for seq " << e.seq;
    ASSERT_EQ(m->elements, 4u);
    EXPECT_EQ(std::string(m->element[2]->str), "events:" + e.type);
    EXPECT_EQ(std::string(m->element[3]->str, m->element[3]->len), to_envelope(e));
  }
}

TEST(RedisSink, ServerDownMakesLagThenItCatchesUpAlone) {
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  append_user_events(store, 50);
  const int port = free_port();
  redis::SinkOptions options;
  // A password in the URL: it must not reach the status either.
  options.url = "redis://:hunter2@127.0.0.1:" + std::to_string(port);
  options.timeout = std::chrono::milliseconds(500);
  ProcessorOptions popts;
  popts.checkpoint_interval = std::chrono::milliseconds(10);
  Processor processor(store, popts);
  processor.sink("to-redis", redis::make_sink(options), sink_options());
  processor.start();
  // Nothing listens: the sink fails, retries, and nothing is parked.
  ASSERT_TRUE(wait_until([&] { return processor.metrics().at(0).failed >= 3; }, 10s));
  EXPECT_EQ(processor.metrics().at(0).dead, 0u);
  EXPECT_EQ(processor.metrics().at(0).lag, 50);
  EXPECT_TRUE(dead_letters(store).empty());
  // Another process's `status` reads it from the file: retrying, since when, why.
  const auto of_sink = [&] { return status(store).subscriptions.at(0); };
  ASSERT_TRUE(wait_until([&] { return of_sink().activity == Activity::retrying; }, 10s));
  const SubscriptionStatus failing = of_sink();
  ASSERT_TRUE(failing.sink && failing.sink->failing_since);
  EXPECT_NE(failing.sink->last_error.find("redis://:***@127.0.0.1"), std::string::npos)
      << failing.sink->last_error;
  EXPECT_EQ(failing.sink->last_error.find("hunter2"), std::string::npos);
  EXPECT_GT(failing.lag_time.count(), 0);

  // The server comes up on that port (it asks for the password): the sink finds it
  // on its next retry.
  RedisServer server(RedisServer::Options{.password = "hunter2", .port = port});
  ASSERT_TRUE(wait_until([&] { return processor.metrics().at(0).lag == 0; }, 10s));
  ASSERT_TRUE(wait_until([&] { return of_sink().activity == Activity::caught_up; }, 10s));
  // Acknowledged as this process saw it: a batch whose reply came too late (a loaded
  // machine, the 500 ms timeout) is found in the stream by the reconciliation instead.
  EXPECT_GE(of_sink().sink->forwarded, 1u);
  EXPECT_LE(of_sink().sink->forwarded, 50u);
  EXPECT_GT(processor.metrics().at(0).round_trip_p50.count(), 0);
  processor.stop();
  RedisClient client = server.client();
  expect_stream_holds_the_file(client, store);
  EXPECT_TRUE(dead_letters(store).empty());
}

// redis-server killed (SIGKILL) while events are forwarded, and started again on its
// data (appendfsync always): the sink retries until it is back, reconciles with the
// stream's last entry, and the stream ends with every event once, in order.
TEST(RedisSink, ServerKilledMidForwardingLosesAndDuplicatesNothing) {
  RedisServer server;
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  ProcessorOptions popts;
  popts.checkpoint_interval = std::chrono::milliseconds(5);
  Processor processor(store, popts);
  auto options = stream_to(server);
  options.timeout = std::chrono::milliseconds(500);
  processor.sink("to-redis", redis::make_sink(options), sink_options());
  processor.start();
  constexpr std::size_t kEvents = 3000;
  std::thread appender([&] {
    for (std::size_t i = 0; i < kEvents; i += 10) {
      std::vector<NewEvent> batch = numbered_events(10, "Numbered", i);
      store.append("s-" + std::to_string(i % 7), batch);
    }
  });
  RedisClient watcher = server.client();
  ASSERT_TRUE(wait_until(
      [&] {
        return watcher.integer({"XLEN", "events"}) >= 300;
      },
      20s));
  server.stop(SIGKILL);
  appender.join();
  server.start();
  ASSERT_TRUE(wait_until(
      [&] {
        const auto m = processor.metrics().at(0);
        return m.lag == 0 && m.position == static_cast<Seq>(kEvents);
      },
      30s));
  processor.stop();
  EXPECT_GE(processor.metrics().at(0).failed, 1u);  // it did see the server go away
  RedisClient client = server.client();
  expect_stream_holds_the_file(client, store);
}

TEST(RedisSink, WrongPasswordParksTheEventWithRedisMessageAndNoPassword) {
  RedisServer server(RedisServer::Options{.password = "right-secret"});
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  append_user_events(store, 2);
  redis::SinkOptions options;
  options.url = "redis://:wrong-secret@127.0.0.1:" + std::to_string(server.port());
  Processor processor(store);
  processor.sink("to-redis", redis::make_sink(options), sink_options());
  processor.run_until_idle();

  const auto dead = dead_letters(store);
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0].attempts, 1);  // parked at once, not retried
  EXPECT_NE(dead[0].last_error.find("WRONGPASS"), std::string::npos)
      << dead[0].last_error;
  EXPECT_NE(dead[0].last_error.find("redis://:***@127.0.0.1"), std::string::npos)
      << dead[0].last_error;
  EXPECT_EQ(dead[0].last_error.find("wrong-secret"), std::string::npos);
  RedisClient client = server.client();
  EXPECT_EQ(client.integer({"EXISTS", "events"}), 0);
}

TEST(RedisSink, NoPasswordForAServerThatWantsOneIsNoauth) {
  RedisServer server(RedisServer::Options{.password = "right-secret"});
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  append_user_events(store, 1);
  redis::SinkOptions options;
  options.url = "redis://127.0.0.1:" + std::to_string(server.port());
  Processor processor(store);
  processor.sink("to-redis", redis::make_sink(options), sink_options());
  processor.run_until_idle();

  const auto dead = dead_letters(store);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_NE(dead[0].last_error.find("NOAUTH"), std::string::npos) << dead[0].last_error;
}

TEST(RedisSink, KeyOfAnotherTypeParksTheEventWithWrongtype) {
  RedisServer server;
  RedisClient client = server.client();
  client.run({"SET", "events", "not a stream"});
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  append_user_events(store, 1);
  Processor processor(store);
  processor.sink("to-redis", redis::make_sink(stream_to(server)), sink_options());
  processor.run_until_idle();

  const auto dead = dead_letters(store);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].attempts, 1);
  EXPECT_NE(dead[0].last_error.find("WRONGTYPE"), std::string::npos)
      << dead[0].last_error;
  auto value = client.run({"GET", "events"});
  EXPECT_EQ(std::string(value->str, value->len), "not a stream");  // untouched
}

TEST(RedisSink, MalformedUrlIsRefusedAtOnceWithoutItsPassword) {
  for (const char* url :
       {"http://host:6379", "redis://:pw@host:notaport", "redis://:pw@host:99999",
        "redis://:p%zzw@host", "redis://", "redis://:pw/pw@host:6379/notadb",
        "redis://:pw@/pw@host:1/x"}) {
    try {
      redis::make_sink(redis::SinkOptions{.url = url});
      ADD_FAILURE() << "accepted " << url;
    } catch (const InvalidArgument& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.find("pw"), std::string::npos) << what;
      EXPECT_EQ(what.find("p%zzw"), std::string::npos) << what;
    }
  }
  EXPECT_THROW(redis::make_sink(redis::SinkOptions{.url = "rediss://host:6380"}),
               InvalidArgument);
}

TEST(RedisUrl, ParsesEveryPartAndRedactsThePassword) {
  EXPECT_EQ(redis::redacted("redis://app:s%40cret@cache.local:6390/3"),
            "redis://app:***@cache.local:6390/3");
  const auto u = redis::Url::parse("redis://app:s%40cret@cache.local:6390/3");
  EXPECT_EQ(u.user, "app");
  EXPECT_EQ(u.password, "s@cret");
  EXPECT_EQ(u.host, "cache.local");
  EXPECT_EQ(u.port, 6390);
  EXPECT_EQ(u.db, 3);
  EXPECT_EQ(u.redacted(), "redis://app:***@cache.local:6390/3");
  const auto plain = redis::Url::parse("redis://localhost");
  EXPECT_EQ(plain.port, 6379);
  EXPECT_EQ(plain.redacted(), "redis://localhost:6379");
  EXPECT_EQ(redis::Url::parse("redis://secret@h").password, "secret");
  // A password may hold '/' and '@' raw: the credentials end at the last '@', so the
  // rest of it never lands in the host or the database (or an error naming them).
  const auto raw = redis::Url::parse("redis://app:pa/ss@wo/rd@cache:6390/2");
  EXPECT_EQ(raw.user, "app");
  EXPECT_EQ(raw.password, "pa/ss@wo/rd");
  EXPECT_EQ(raw.host, "cache");
  EXPECT_EQ(raw.port, 6390);
  EXPECT_EQ(raw.db, 2);
  EXPECT_EQ(raw.redacted(), "redis://app:***@cache:6390/2");
  EXPECT_EQ(redis::Url::parse("redis://[::1]:7000").host, "::1");
}

}  // namespace
}  // namespace eventlite
