// The NATS sink against a real nats-server (nats_server.hpp): JetStream messages read
// back and compared with the file, core NATS to a live subscriber, and the faults.

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker_test_support.hpp"
#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/nats.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "nats_server.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

nats::SinkOptions jetstream_to(const NatsServer& server) {
  nats::SinkOptions o;
  o.url = server.url();
  o.jetstream = true;
  o.create_stream = true;
  o.timeout = std::chrono::milliseconds(2000);
  return o;
}

// The JetStream stream holds every event of the file once, in seq order.
void expect_stream_holds_the_file(const NatsServer& server, Store& store) {
  NatsConn conn = server.connect();
  const auto messages = stream_messages(conn.get(), "EVENTS");
  std::vector<Event> events;
  for (const Event& e : store.read_all()) events.push_back(e);
  ASSERT_EQ(messages.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    natsMsg* m = messages[i].get();
    EXPECT_EQ(std::string(natsMsg_GetSubject(m)), "events." + events[i].type);
    EXPECT_EQ(header(m, "Nats-Msg-Id"), events[i].id);
    EXPECT_EQ(header(m, "Eventlite-Seq"), std::to_string(events[i].seq));
    ASSERT_EQ(data_of(m), to_envelope(events[i]));
  }
}

TEST(NatsSink, JetStreamGetsEveryEventInOrderWithItsIdAndSeq) {
  NatsServer server;
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  append_user_events(store, 300);
  Processor processor(store);
  processor.sink("to-nats", nats::make_sink(jetstream_to(server)), sink_options());
  processor.run_until_idle();
  expect_stream_holds_the_file(server, store);
  EXPECT_EQ(status(store).subscriptions.at(0).position, 300);
}

// A forwarder whose checkpoint is behind what JetStream holds (killed after the acks,
// before its commit), after the duplicate window has passed: it reads the stream's
// last message and sends nothing again.
TEST(NatsSink, CheckpointBehindTheStreamResendsNothingAfterTheDedupWindow) {
  NatsServer server;
  TempDir dir;
  {
    Store store = Store::open(dir / "app.db", fast_options());
    append_user_events(store, 100);
  }
  std::filesystem::copy_file(dir / "app.db", dir / "before.db");
  auto options = jetstream_to(server);
  options.duplicate_window = std::chrono::milliseconds(100);
  const auto sent = std::chrono::steady_clock::now();
  {
    Store store = Store::open(dir / "app.db", fast_options());
    Processor processor(store);
    processor.sink("to-nats", nats::make_sink(options), sink_options());
    processor.run_until_idle();
  }
  Store behind = Store::open(dir / "before.db", fast_options());
  append_user_events(behind, 10, 100);
  // The server forgets the ids once the window has passed: only the reconciliation
  // can keep the copy from doubling now.
  ASSERT_TRUE(wait_until(
      [&] {
        return std::chrono::steady_clock::now() - sent > std::chrono::milliseconds(300);
      },
      5s));
  Processor processor(behind);
  processor.sink("to-nats", nats::make_sink(options), sink_options());
  processor.run_until_idle();
  expect_stream_holds_the_file(server, behind);
}

// The file is the source of truth: a rewind into a stream that still holds the
// events sends nothing again (the reconciliation moves past them, with a duplicate
// window far too short to help), and into a stream that was deleted it refills
// every event.
TEST(NatsSink, RewindDuplicatesNothingAndRefillsADeletedStream) {
  NatsServer server;
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  append_user_events(store, 40);
  auto options = jetstream_to(server);
  options.duplicate_window = std::chrono::milliseconds(100);
  auto run = [&] {
    Processor processor(store);
    processor.sink("to-nats", nats::make_sink(options), sink_options());
    processor.run_until_idle();
  };
  run();
  // Past the duplicate window, so the server's dedup cannot hide a resend.
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_until(
      [&] { return std::chrono::steady_clock::now() - sent > std::chrono::milliseconds(300); },
      5s));
  rewind(store, "to-nats", 1);
  {
    Processor processor(store);
    processor.sink("to-nats", nats::make_sink(options), sink_options());
    processor.run_until_idle();
    EXPECT_EQ(processor.metrics().at(0).delivered, 0u);  // nothing sent again
  }
  expect_stream_holds_the_file(server, store);

  NatsConn conn = server.connect();
  ASSERT_EQ(js_DeleteStream(jetstream(conn.get()).get(), "EVENTS", nullptr, nullptr),
            NATS_OK);
  ASSERT_EQ(stream_count(conn.get(), "EVENTS"), 0u);
  rewind(store, "to-nats", 1);
  run();
  expect_stream_holds_the_file(server, store);
}

TEST(NatsSink, CoreNatsReachesALiveSubscriber) {
  NatsServer server;
  NatsConn conn = server.connect();
  natsSubscription* raw = nullptr;
  ASSERT_EQ(natsConnection_SubscribeSync(&raw, conn.get(), "events.>"), NATS_OK);
  std::unique_ptr<natsSubscription, void (*)(natsSubscription*)> sub(
      raw, natsSubscription_Destroy);
  natsConnection_Flush(conn.get());
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  append_user_events(store, 20);
  nats::SinkOptions options;
  options.url = server.url();
  Processor processor(store);
  processor.sink("to-nats", nats::make_sink(options), sink_options());
  processor.run_until_idle();
  for (const Event& e : store.read_all()) {
    natsMsg* m = nullptr;
    ASSERT_EQ(natsSubscription_NextMsg(&m, sub.get(), 5000), NATS_OK) << "seq " << e.seq;
    NatsMsg msg(m);
    EXPECT_EQ(std::string(natsMsg_GetSubject(m)), "events.UserCreated");
    EXPECT_EQ(data_of(m), to_envelope(e));
  }
}

TEST(NatsSink, ServerDownMakesLagThenItCatchesUpAlone) {
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  append_user_events(store, 50);
  const int port = free_port();
  nats::SinkOptions options;
  options.url = "nats://127.0.0.1:" + std::to_string(port);
  options.jetstream = true;
  options.create_stream = true;
  options.timeout = std::chrono::milliseconds(500);
  ProcessorOptions popts;
  popts.checkpoint_interval = std::chrono::milliseconds(10);
  Processor processor(store, popts);
  processor.sink("to-nats", nats::make_sink(options), sink_options());
  processor.start();
  ASSERT_TRUE(wait_until([&] { return processor.metrics().at(0).failed >= 3; }, 10s));
  EXPECT_EQ(processor.metrics().at(0).lag, 50);
  EXPECT_FALSE(processor.metrics().at(0).last_error.empty());
  EXPECT_TRUE(dead_letters(store).empty());

  NatsServer server(NatsServer::Options{.user = {}, .password = {}, .port = port});
  ASSERT_TRUE(wait_until([&] { return processor.metrics().at(0).lag == 0; }, 15s));
  processor.stop();
  expect_stream_holds_the_file(server, store);
}

TEST(NatsSink, ServerKilledMidForwardingLosesAndDuplicatesNothing) {
  NatsServer server;
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  ProcessorOptions popts;
  popts.checkpoint_interval = std::chrono::milliseconds(5);
  Processor processor(store, popts);
  auto options = jetstream_to(server);
  options.timeout = std::chrono::milliseconds(500);
  processor.sink("to-nats", nats::make_sink(options), sink_options());
  processor.start();
  constexpr std::size_t kEvents = 3000;
  std::thread appender([&] {
    for (std::size_t i = 0; i < kEvents; i += 10) {
      std::vector<NewEvent> batch = numbered_events(10, "Numbered", i);
      store.append("s-" + std::to_string(i % 7), batch);
    }
  });
  ASSERT_TRUE(wait_until([&] { return processor.metrics().at(0).position >= 300; }, 20s));
  server.stop(SIGKILL);
  appender.join();
  server.start();
  ASSERT_TRUE(wait_until(
      [&] { return processor.metrics().at(0).position == static_cast<Seq>(kEvents); },
      30s));
  processor.stop();
  EXPECT_GE(processor.metrics().at(0).failed, 1u);
  expect_stream_holds_the_file(server, store);
}

TEST(NatsSink, WrongPasswordParksTheEventWithoutThePassword) {
  NatsServer server(
      NatsServer::Options{.user = "app", .password = "right-secret", .port = 0});
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  append_user_events(store, 1);
  nats::SinkOptions options;
  options.url = "nats://app:wrong-secret@127.0.0.1:" + std::to_string(server.port());
  Processor processor(store);
  processor.sink("to-nats", nats::make_sink(options), sink_options());
  processor.run_until_idle();
  const auto dead = dead_letters(store);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].attempts, 1);
  EXPECT_NE(dead[0].last_error.find("nats://app:***@127.0.0.1"), std::string::npos)
      << dead[0].last_error;
  EXPECT_EQ(dead[0].last_error.find("wrong-secret"), std::string::npos);
}

// A type that is not one subject token is parked at once, naming the type and why,
// and the events after it go on; what is stored is never changed. A '.' would put
// the event on a subject of more tokens than <prefix>.<type> (one that subscribers to
// events.* never see); a NUL would cut the subject short.
TEST(NatsSink, TypeThatIsNotASubjectTokenIsParked) {
  using namespace std::string_literals;
  NatsServer server;
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  // (A type with a NUL byte never gets this far: the store refuses it.)
  const std::vector<std::string> bad = {"Has Space", "user.created", "*",          ">",
                                        "Tab\there", "Line\nbreak",  "Bell\acut"s, ".x"};
  for (const std::string& type : bad) store.append("s", event(type));
  store.append("s", event("Fine"));
  Processor processor(store);
  processor.sink("to-nats", nats::make_sink(jetstream_to(server)), sink_options());
  processor.run_until_idle();
  const auto dead = dead_letters(store);
  ASSERT_EQ(dead.size(), bad.size());
  for (std::size_t i = 0; i < bad.size(); ++i) {
    SCOPED_TRACE(testing::PrintToString(bad[i]));
    EXPECT_EQ(dead[i].attempts, 1);  // no retry mends it
    EXPECT_NE(dead[i].last_error.find("not a valid subject token"), std::string::npos)
        << dead[i].last_error;
    EXPECT_EQ(dead[i].last_error.find('\n'), std::string::npos) << "one line";
  }
  EXPECT_NE(dead[1].last_error.find(R"(event type "user.created")"), std::string::npos)
      << dead[1].last_error;
  EXPECT_NE(dead[1].last_error.find("holds '.'"), std::string::npos);
  NatsConn conn = server.connect();
  const auto messages = stream_messages(conn.get(), "EVENTS");
  ASSERT_EQ(messages.size(), 1u);  // "Fine" went on
  EXPECT_EQ(std::string(natsMsg_GetSubject(messages[0].get())), "events.Fine");
  const auto stored = events_of(store);
  for (std::size_t i = 0; i < bad.size(); ++i) EXPECT_EQ(stored[i].type, bad[i]);
}

// JetStream carries the event id in the Nats-Msg-Id header, where a line break would
// end the header and start another (here a Nats-Expected-Stream). libnats sends the
// break as spaces instead, so the server would deduplicate by an id that is not the
// event's: either way the id cannot travel as it is stored, and the event is parked
// at once; other ids go on, the injected header nowhere.
TEST(NatsSink, IdThatCannotBeAHeaderValueIsParkedOnJetStream) {
  NatsServer server;
  TempDir dir;
  Store store = Store::open(dir / "app.db", fast_options());
  NewEvent injected = event("Created");
  injected.id = "x\r\nNats-Expected-Stream: OTHER";
  store.append("s", std::vector<NewEvent>{injected});
  NewEvent odd = event("Created");
  odd.id = "id with spaces: and a colon";  // a header value may hold these
  store.append("s", std::vector<NewEvent>{odd});
  Processor processor(store);
  processor.sink("to-nats", nats::make_sink(jetstream_to(server)), sink_options());
  processor.run_until_idle();
  const auto dead = dead_letters(store);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].seq, 1);
  EXPECT_NE(dead[0].last_error.find("cannot be the Nats-Msg-Id header"),
            std::string::npos)
      << dead[0].last_error;
  NatsConn conn = server.connect();
  const auto messages = stream_messages(conn.get(), "EVENTS");
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(header(messages[0].get(), "Nats-Msg-Id"), odd.id);
  EXPECT_EQ(header(messages[0].get(), "Nats-Expected-Stream"), "");
  EXPECT_EQ(events_of(store).at(0).id, injected.id);
}

// A URL libnats would refuse only at connect time is refused at once, with its
// password hidden: a typo in a config is not a backlog parked as dead letters.
TEST(NatsUrl, MalformedOnesAreRefusedAtOnceWithoutTheirPassword) {
  for (const char* url : {"nats://app:hunter2@127.0.0.1:notaport", "http://127.0.0.1:4222",
                          "nats://app:hun,ter2@127.0.0.1:4222",
                          "nats://app:hunter2@:4222", "nats://127.0.0.1:70000",
                          "nats://127.0.0.1:4222,nats://127.0.0.1:"}) {
    SCOPED_TRACE(url);
    try {
      nats::make_sink({.url = url});
      FAIL() << "accepted";
    } catch (const InvalidArgument& e) {
      EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("ter2"), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("hun"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("nats sink: the URL"), std::string::npos)
          << e.what();
    }
  }
  for (const char* url : {"nats://127.0.0.1:4222", "127.0.0.1", "tls://u:p@host:1,host2",
                          "nats://token@[::1]:4222"})
    EXPECT_NO_THROW(nats::make_sink({.url = url})) << url;
}

TEST(NatsUrl, RedactsPasswordsAndTokens) {
  EXPECT_EQ(nats::redacted("nats://u:p@h:4222"), "nats://u:***@h:4222");
  EXPECT_EQ(nats::redacted("nats://tok@h"), "nats://***@h");
  EXPECT_EQ(nats::redacted("nats://h:1,nats://a:b@g:2"), "nats://h:1,nats://a:***@g:2");
  // A password holding ',' or '@' is hidden whole.
  EXPECT_EQ(nats::redacted("nats://app:hun,ter@2@h:4222"), "nats://app:***@h:4222");
  EXPECT_EQ(nats::redacted("nats://app:a,b@h:1,tls://x:y,z@g:2"),
            "nats://app:***@h:1,tls://x:***@g:2");
  EXPECT_EQ(nats::redacted("h1,nats://tok@h2"), "h1,nats://***@h2");
}

}  // namespace
}  // namespace eventlite
