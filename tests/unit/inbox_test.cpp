// The Inbox (inbox.hpp), the core of every bridge, without a broker: batches stored
// idempotently, rejections kept once and capped, CloudEvents taken in, the position
// recorded, the fence, and the run loop's handling of errors.

#include "eventlite/inbox.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

InboxOptions options_for(std::string name = "in") {
  return {.name = std::move(name), .broker = "kafka", .source = "orders"};
}

// Another service's events, as a broker would carry them: entries "1".."n".
std::vector<InboxEntry> entries_from_a(std::size_t n, bool cloudevents = false) {
  Store a = Store::open(":memory:");
  for (std::size_t i = 0; i < n; ++i)
    a.append("order-" + std::to_string(i % 2), event("OrderPlaced", "{\"n\":1}"));
  std::vector<InboxEntry> out;
  for (const Event& e : a.read_all())
    out.push_back({std::to_string(e.seq),
                   cloudevents ? to_cloudevent(e, "eventlite://a") : to_envelope(e)});
  return out;
}

std::vector<Event> events_of(const Store& store) {
  std::vector<Event> out;
  for (const Event& e : store.read_all()) out.push_back(e);
  return out;
}

TEST(Inbox, StoresABatchIdempotentlyAndRecordsWhereItStands) {
  TempDir dir;
  Store store = Store::open(dir / "b.db", fast_options());
  Inbox inbox(store, options_for());
  ASSERT_EQ(inbox.hold(), Inbox::Hold::taken);
  EXPECT_EQ(inbox.last_entry(), std::nullopt);
  const auto entries = entries_from_a(3);
  ASSERT_TRUE(inbox.append(entries));
  ASSERT_TRUE(inbox.append(entries));  // sent again: found stored
  EXPECT_EQ(store.head(), 3);
  for (std::size_t i = 0; i < 3; ++i)
    EXPECT_EQ(events_of(store)[i].id, decode_envelope(*entries[i].payload).event.id);
  EXPECT_EQ(inbox.last_entry(), "3");
  const StatusReport report = status(store);
  ASSERT_EQ(report.bridges.size(), 1u);
  EXPECT_EQ(report.bridges[0].name, "in");
  EXPECT_EQ(report.bridges[0].broker, "kafka");
  EXPECT_EQ(report.bridges[0].source, "orders");
  EXPECT_EQ(report.bridges[0].stored, 6u);  // taken in, twice
  EXPECT_EQ(report.bridges[0].rejected, 0u);
  ASSERT_TRUE(report.bridges[0].lease);
  EXPECT_EQ(report.bridges[0].lease->owner.empty(), false);
}

TEST(Inbox, TakesCloudEventsInAsWell) {
  TempDir dir;
  Store store = Store::open(dir / "b.db", fast_options());
  Inbox inbox(store, options_for());
  inbox.hold();
  const auto entries = entries_from_a(2, /*cloudevents=*/true);
  ASSERT_TRUE(inbox.append(entries));
  const auto events = events_of(store);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].stream, "order-0");
  EXPECT_EQ(events[0].id, decode_cloudevent(*entries[0].payload).event.id);
}

// Another producer's CloudEvents carry `time` in any RFC 3339 form: stored, in the
// store's form. A rejection says what is wrong: the entry's shape, or what the store
// refuses in an event that decoded; never a batch index.
TEST(Inbox, ForeignTimesAreStoredNormalizedAndRejectionsNameTheProblem) {
  TempDir dir;
  Store store = Store::open(dir / "b.db", fast_options());
  Inbox inbox(store, options_for());
  inbox.hold();
  const std::string head =
      R"({"specversion":"1.0","id":"shop-1","source":"/shop","type":"OrderPlaced",)"
      R"("subject":"order-1","data":{},"time":)";
  const std::vector<InboxEntry> entries = {
      {"1", head + R"("2026-11-23T11:00:00+01:00"})"},
      {"2",
       R"({"stream":"s","type":"T","data":{},"id":")" + std::string(2000, 'x') + R"("})"},
      {"3", R"({"specversion":"1.0","id":"shop-3","source":"/shop","type":"OrderPlaced",)"
            R"("subject":"order-1","data":{},"time":"yesterday"})"}};
  ASSERT_TRUE(inbox.append(entries));
  const auto events = events_of(store);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].id, "shop-1");
  EXPECT_EQ(events[0].time, "2026-11-23T10:00:00.000Z");
  const auto reason = [&](std::size_t i) {
    return nlohmann::json::parse(events[i].data).at("reason").get<std::string>();
  };
  EXPECT_EQ(reason(1).rfind("the store refuses the event: id: ", 0), 0u) << reason(1);
  EXPECT_EQ(reason(2).rfind("cannot be decoded: time: must be an RFC 3339", 0), 0u)
      << reason(2);
  for (std::size_t i : {1u, 2u})
    EXPECT_EQ(reason(i).find("index"), std::string::npos) << reason(i);
}

// The same entry rejected again (redelivered after a crash between commit and ack)
// is kept once; an oversized one keeps its first 4 KiB and its size, and does not
// wedge the batch.
TEST(Inbox, RejectionsAreKeptOnceAndCapped) {
  TempDir dir;
  Store store = Store::open(dir / "b.db", fast_options());
  Inbox inbox(store, options_for());
  inbox.hold();
  const std::string big(2 << 20, 'x');  // 2 MiB: over the store's event size
  const std::vector<InboxEntry> bad = {
      {"7", std::string("not json")}, {"8", std::nullopt, "no field"}, {"9", big}};
  ASSERT_TRUE(inbox.append(bad));
  ASSERT_TRUE(inbox.append(bad));
  const auto events = events_of(store);
  ASSERT_EQ(events.size(), 3u);
  for (const Event& e : events) {
    EXPECT_EQ(e.stream, "eventlite-rejected-in");
    EXPECT_EQ(e.type, "BridgeEntryRejected");
  }
  const auto first = nlohmann::json::parse(events[0].data);
  EXPECT_EQ(first.at("broker"), "kafka");
  EXPECT_EQ(first.at("source"), "orders");
  EXPECT_EQ(first.at("entry"), "7");
  EXPECT_EQ(first.at("event"), "not json");
  EXPECT_EQ(
      first.at("reason").get<std::string>().rfind("cannot be decoded: envelope: ", 0), 0u)
      << first.at("reason");
  EXPECT_EQ(nlohmann::json::parse(events[1].data).at("reason"), "no field");
  const auto third = nlohmann::json::parse(events[2].data);
  EXPECT_EQ(third.at("bytes"), big.size());
  EXPECT_EQ(third.at("event").get<std::string>().size(), 4096u);
  EXPECT_EQ(status(store).bridges.at(0).rejected, 6u);
}

TEST(Inbox, AHolderThatLostItsLeaseStoresNothing) {
  TempDir dir;
  Store store = Store::open(dir / "b.db", fast_options());
  Inbox inbox(store, options_for());
  ASSERT_EQ(inbox.hold(), Inbox::Hold::taken);
  RawDb(dir / "b.db")
      .exec(
          "UPDATE eventlite_leases SET owner = 'elsewhere', token = token + 1, "
          "expires = '2999-01-01T00:00:00.000Z' WHERE name = 'bridge:in'");
  EXPECT_FALSE(inbox.append(entries_from_a(3)));
  EXPECT_EQ(store.head(), 0);
  EXPECT_FALSE(inbox.held());
  EXPECT_EQ(inbox.hold(), Inbox::Hold::standing_by);
  EXPECT_EQ(inbox.last_entry(), std::nullopt);
}

// A retryable error is retried; one no retry can mend ends run() with it.
TEST(Inbox, RunRetriesABrokerThatIsDownAndStopsAtAPermanentError) {
  TempDir dir;
  Store store = Store::open(dir / "b.db", fast_options());
  Inbox inbox(store, options_for());
  int steps = 0;
  EXPECT_THROW(inbox.run([&]() -> std::size_t {
    ++steps;
    inbox.hold();
    if (steps < 3) throw BrokerError("kafka", true, "connection refused");
    throw BrokerError("kafka", false, "authentication failed");
  }),
               BrokerError);
  EXPECT_EQ(steps, 3);
  EXPECT_FALSE(inbox.held());  // released for another process
}

TEST(Inbox, RunEndsAtStopWhenTheStepTakesNothing) {
  TempDir dir;
  Store store = Store::open(dir / "b.db", fast_options());
  Inbox inbox(store, options_for());
  int steps = 0;
  inbox.run([&]() -> std::size_t {
    inbox.hold();
    if (++steps == 3) inbox.stop();
    return 0;  // nothing came: run() waits idle_wait, it does not spin
  });
  EXPECT_EQ(steps, 3);
}

TEST(Inbox, RefusesOptionsItCannotWorkWith) {
  TempDir dir;
  Store store = Store::open(dir / "b.db", fast_options());
  EXPECT_THROW(Inbox(store, {.name = "", .broker = "b", .source = "s"}), InvalidArgument);
  EXPECT_THROW(Inbox(store, {.name = "n", .broker = "", .source = "s"}), InvalidArgument);
  EXPECT_THROW(Inbox(store, {.name = std::string(2000, 'n'), .broker = "b", .source = "s"}),
               InvalidArgument);
}

}  // namespace
}  // namespace eventlite
