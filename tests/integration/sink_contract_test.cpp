// What every sink promises (include/eventlite/sink.hpp, DESIGN.md "Sinks"), run
// against each broker's real server: a typed suite, so that a broker's sink is one
// fixture here, not a copy of these tests. Each fixture starts its server on a free
// 127.0.0.1 port, makes the sink with its defaults, and reads its destination back
// (the seqs each store has there, in order).

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "broker_test_support.hpp"
#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/nats.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/redis.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "nats_server.hpp"
#include "redis_server.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

using Held = std::map<std::string, std::vector<Seq>>;  // by store id, in order

// A Redis Stream, the key `events` (the defaults).
class RedisBroker {
 public:
  static constexpr bool kSharedByStores = false;  // entry ids are seqs: refused
  explicit RedisBroker(std::string password = {})
      : server_(RedisServer::Options{.password = std::move(password)}) {}
  std::string url() const { return server_.url(); }
  std::string url_with_password(const std::string& password) const {
    return "redis://:" + password + "@127.0.0.1:" + std::to_string(server_.port());
  }
  std::shared_ptr<Sink> sink(const std::string& url) const {
    return redis::make_sink({.url = url, .timeout = std::chrono::milliseconds(2000)});
  }
  Held held() const {
    RedisClient client = server_.client();
    Held out;
    auto r = client.run({"XRANGE", "events", "-", "+"});
    for (std::size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; ++i) {
      const redisReply* fields = r->element[i]->element[1];
      std::string store, payload;
      for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
        const std::string name = fields->element[f]->str;
        const std::string value(fields->element[f + 1]->str, fields->element[f + 1]->len);
        if (name == "store") store = value;
        if (name == "event") payload = value;
      }
      out[store].push_back(decode_envelope(payload).seq.value_or(0));
    }
    return out;
  }
  void lose_copy() { server_.client().run({"FLUSHALL"}); }
  void stop() { server_.stop(SIGKILL); }
  void start() { server_.start(); }

 private:
  RedisServer server_;
};

// A JetStream stream, EVENTS on events.> (created by the sink).
class NatsBroker {
 public:
  static constexpr bool kSharedByStores = true;
  explicit NatsBroker(std::string password = {})
      : server_(NatsServer::Options{.user = password.empty() ? "" : "app",
                                    .password = std::move(password)}) {}
  std::string url() const { return server_.url(); }
  std::string url_with_password(const std::string& password) const {
    return "nats://app:" + password + "@127.0.0.1:" + std::to_string(server_.port());
  }
  std::shared_ptr<Sink> sink(const std::string& url) const {
    return nats::make_sink({.url = url,
                            .jetstream = true,
                            .create_stream = true,
                            .timeout = std::chrono::milliseconds(2000)});
  }
  Held held() const {
    const NatsConn conn = server_.connect();
    Held out;
    for (const NatsMsg& m : stream_messages(conn.get(), "EVENTS"))
      out[header(m.get(), "Eventlite-Store")].push_back(
          std::stoll(header(m.get(), "Eventlite-Seq")));
    return out;
  }
  void lose_copy() {
    const NatsConn conn = server_.connect();
    const NatsJs js = jetstream(conn.get());
    js_DeleteStream(js.get(), "EVENTS", nullptr, nullptr);
  }
  void stop() { server_.stop(SIGKILL); }
  void start() { server_.start(); }

 private:
  NatsServer server_;
};

std::vector<Seq> one_to(Seq n) {
  std::vector<Seq> out;
  for (Seq s = 1; s <= n; ++s) out.push_back(s);
  return out;
}

template <class Broker>
class SinkContract : public ::testing::Test {
 protected:
  // Forwards `store` with the broker's default sink, as subscription "out", until idle.
  SubscriptionMetrics forward(Store& store, const std::string& url) {
    Processor processor(store);
    processor.sink("out", broker.sink(url), sink_options());
    processor.run_until_idle();
    return processor.metrics().at(0);
  }
  Seq position(const Store& store) { return status(store).subscriptions.at(0).position; }

  TempDir dir;
  Broker broker;
};

using Brokers = ::testing::Types<RedisBroker, NatsBroker>;
TYPED_TEST_SUITE(SinkContract, Brokers);

TYPED_TEST(SinkContract, ForwardsEveryEventOnceInSeqOrderCarryingTheStoresId) {
  Store store = Store::open(this->dir / "a.db", fast_options());
  append_user_events(store, 200);
  const SubscriptionMetrics m = this->forward(store, this->broker.url());
  EXPECT_FALSE(m.failing_since.has_value()) << m.last_error;
  const Held held = this->broker.held();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held.at(store.identity().id), one_to(200));
  EXPECT_EQ(this->position(store), 200);
}

// Killed between the broker's acknowledgement and the checkpoint: the checkpoint in
// the file is behind what the destination holds. Started again, nothing is sent twice.
TYPED_TEST(SinkContract, ACheckpointBehindTheDestinationResendsNothing) {
  Store store = Store::open(this->dir / "a.db", fast_options());
  append_user_events(store, 100);
  this->forward(store, this->broker.url());
  {
    RawDb raw(this->dir / "a.db");
    raw.exec("UPDATE eventlite_subscriptions SET position = 40 WHERE name = 'out'");
  }
  append_user_events(store, 20, 100);
  this->forward(store, this->broker.url());
  EXPECT_EQ(this->broker.held().at(store.identity().id), one_to(120));
  EXPECT_EQ(this->position(store), 120);
}

TYPED_TEST(SinkContract, RewindRefillsADestinationThatLostItsCopy) {
  Store store = Store::open(this->dir / "a.db", fast_options());
  append_user_events(store, 60);
  this->forward(store, this->broker.url());
  this->broker.lose_copy();
  rewind(store, "out", 1);
  this->forward(store, this->broker.url());
  EXPECT_EQ(this->broker.held().at(store.identity().id), one_to(60));
}

// Two services with the defaults: each store's events arrive once (a destination that
// can hold several stores), or the second is refused and forwards nothing (one that
// cannot); never is one store's entry taken for another's.
TYPED_TEST(SinkContract, TwoStoresAtOneDestinationLoseNothingOrTheSecondIsRefused) {
  Store a = Store::open(this->dir / "a.db", fast_options());
  Store b = Store::open(this->dir / "b.db", fast_options());
  append_user_events(a, 30);
  append_user_events(b, 50);
  this->forward(a, this->broker.url());
  const SubscriptionMetrics mb = this->forward(b, this->broker.url());
  append_user_events(a, 5, 30);
  this->forward(a, this->broker.url());
  const Held held = this->broker.held();
  EXPECT_EQ(held.at(a.identity().id), one_to(35));
  if (TypeParam::kSharedByStores) {
    EXPECT_EQ(held.at(b.identity().id), one_to(50));
    EXPECT_EQ(this->position(b), 50);
  } else {
    EXPECT_TRUE(mb.destination_conflict) << mb.last_error;
    EXPECT_NE(mb.last_error.find(a.identity().id), std::string::npos) << mb.last_error;
    EXPECT_EQ(held.count(b.identity().id), 0u);
    EXPECT_EQ(this->position(b), 0);
    EXPECT_TRUE(dead_letters(b).empty());
  }
}

TYPED_TEST(SinkContract, AWrongPasswordParksWithoutShowingIt) {
  TypeParam guarded("right-secret");
  Store store = Store::open(this->dir / "a.db", fast_options());
  append_user_events(store, 2);
  Processor processor(store);
  processor.sink("out", guarded.sink(guarded.url_with_password("wrong-secret")),
                 sink_options());
  processor.run_until_idle();
  const auto dead = dead_letters(store);
  ASSERT_FALSE(dead.empty());
  for (const DeadLetter& d : dead) {
    EXPECT_EQ(d.last_error.find("wrong-secret"), std::string::npos) << d.last_error;
    EXPECT_NE(d.last_error.find("***"), std::string::npos) << d.last_error;
  }
  EXPECT_TRUE(guarded.held().empty());
}

// The server is down: lag, not dead letters; back up, the sink catches up alone.
TYPED_TEST(SinkContract, AServerDownThenUpMakesLagThenCatchesUp) {
  Store store = Store::open(this->dir / "a.db", fast_options());
  append_user_events(store, 10);
  this->forward(store, this->broker.url());
  this->broker.stop();
  append_user_events(store, 40, 10);
  Processor processor(store);
  processor.sink("out", this->broker.sink(this->broker.url()), sink_options());
  processor.start();
  ASSERT_TRUE(wait_until([&] { return processor.metrics().at(0).failing_since.has_value(); },
                         20s));
  EXPECT_TRUE(dead_letters(store).empty());
  this->broker.start();
  ASSERT_TRUE(wait_until([&] { return processor.metrics().at(0).position == 50; }, 30s));
  processor.stop();
  EXPECT_EQ(this->broker.held().at(store.identity().id), one_to(50));
}

}  // namespace
}  // namespace eventlite
