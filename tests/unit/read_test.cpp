#include "eventlite/read.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
#include "store/reader.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

std::vector<Seq> seqs_of(const std::vector<Event>& events) {
  std::vector<Seq> out;
  for (const auto& e : events) out.push_back(e.seq);
  return out;
}

std::vector<Seq> range(Seq first, Seq last) {
  std::vector<Seq> out;
  for (Seq s = first; s <= last; ++s) out.push_back(s);
  return out;
}

// ReadOptions built field by field (designated initializers would leave the
// others to -Wmissing-field-initializers).
ReadOptions starting(Seq from, std::uint64_t limit = 0) {
  ReadOptions o;
  o.from = from;
  o.limit = limit;
  return o;
}
ReadOptions between(Seq from, Seq to) {
  ReadOptions o;
  o.from = from;
  o.to = to;
  return o;
}
ReadOptions of_types(std::vector<std::string> types) {
  ReadOptions o;
  o.types = std::move(types);
  return o;
}
ReadOptions with_prefix(std::string prefix) {
  ReadOptions o;
  o.stream_prefix = std::move(prefix);
  return o;
}
ReadOptions paged(std::size_t page_size) {
  ReadOptions o;
  o.page_size = page_size;
  return o;
}

// seq 1..6: user-1 x2, order-1, user-2, users, user-1.
Store mixed_store() {
  auto store = Store::open(":memory:");
  store.append("user-1",
               std::vector<NewEvent>{event("UserCreated"), event("UserRenamed")});
  store.append("order-1", event("OrderPlaced"));
  store.append("user-2", event("UserCreated"));
  store.append("users", event("UserCreated"));
  store.append("user-1", event("UserDeleted"));
  return store;
}

TEST(ReadAll, ReturnsEveryEventInSeqOrderWithAllColumns) {
  auto store = Store::open(":memory:");
  NewEvent e = event("UserCreated", R"({"name":"ada"})");
  e.metadata = R"({"user":"admin"})";
  e.id = "id-1";
  store.append("user-1", e);
  store.append("user-2", numbered_events(2));

  auto events = store.read_all().to_vector();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(seqs_of(events), range(1, 3));
  EXPECT_EQ(events[0].id, "id-1");
  EXPECT_EQ(events[0].stream, "user-1");
  EXPECT_EQ(events[0].version, 1);
  EXPECT_EQ(events[0].type, "UserCreated");
  EXPECT_EQ(events[0].data, R"({"name":"ada"})");
  EXPECT_EQ(events[0].metadata, R"({"user":"admin"})");
  EXPECT_FALSE(events[0].time.empty());
  EXPECT_EQ(events[2].stream, "user-2");
  EXPECT_EQ(events[2].version, 2);
  EXPECT_EQ(events[2].data, R"({"i":1})");
}

TEST(ReadAll, EmptyStoreYieldsNothing) {
  auto store = Store::open(":memory:");
  EXPECT_TRUE(store.read_all().to_vector().empty());
  int n = 0;
  for (const auto& e : store.read_all()) {
    (void)e;
    ++n;
  }
  EXPECT_EQ(n, 0);
}

TEST(ReadAll, FromIsInclusive) {
  auto store = mixed_store();
  EXPECT_EQ(seqs_of(store.read_all(starting(4)).to_vector()), range(4, 6));
  EXPECT_TRUE(store.read_all(starting(7)).to_vector().empty());
}

TEST(ReadAll, LimitCapsTheCount) {
  auto store = mixed_store();
  EXPECT_EQ(seqs_of(store.read_all(starting(1, 2)).to_vector()), range(1, 2));
  EXPECT_EQ(seqs_of(store.read_all(starting(3, 2)).to_vector()), range(3, 4));
  EXPECT_EQ(seqs_of(store.read_all(starting(1, 100)).to_vector()), range(1, 6));
}

TEST(ReadAll, FiltersByTypes) {
  auto store = mixed_store();
  EXPECT_EQ(seqs_of(store.read_all(of_types({"UserCreated"})).to_vector()),
            (std::vector<Seq>{1, 4, 5}));
  EXPECT_EQ(seqs_of(store.read_all(of_types({"OrderPlaced", "UserDeleted"})).to_vector()),
            (std::vector<Seq>{3, 6}));
  EXPECT_TRUE(store.read_all(of_types({"Nothing"})).to_vector().empty());
}

TEST(ReadAll, FiltersByStreamPrefix) {
  auto store = mixed_store();
  EXPECT_EQ(seqs_of(store.read_all(with_prefix("user-")).to_vector()),
            (std::vector<Seq>{1, 2, 4, 6}));
  EXPECT_EQ(seqs_of(store.read_all(with_prefix("user")).to_vector()),
            (std::vector<Seq>{1, 2, 4, 5, 6}));
  EXPECT_EQ(seqs_of(store.read_all(with_prefix("order-1")).to_vector()),
            (std::vector<Seq>{3}));
}

TEST(ReadAll, FiltersByOneExactStream) {
  auto store = mixed_store();
  store.append("user-10", event("UserCreated"));
  ReadOptions options;
  options.stream = "user-1";
  EXPECT_EQ(seqs_of(store.read_all(options).to_vector()), (std::vector<Seq>{1, 2, 6}));
  options.types = {"UserRenamed", "UserDeleted"};
  EXPECT_EQ(seqs_of(store.read_all(options).to_vector()), (std::vector<Seq>{2, 6}));
  options.stream = "user";
  options.types.clear();
  EXPECT_TRUE(store.read_all(options).to_vector().empty());
}

TEST(ReadAll, ToIsAnInclusiveUpperBound) {
  auto store = mixed_store();
  EXPECT_EQ(seqs_of(store.read_all(between(1, 4)).to_vector()), range(1, 4));
  EXPECT_EQ(seqs_of(store.read_all(between(2, 2)).to_vector()), (std::vector<Seq>{2}));
  EXPECT_EQ(seqs_of(store.read_all(between(5, 100)).to_vector()), range(5, 6));
  EXPECT_TRUE(store.read_all(between(4, 3)).to_vector().empty());
  EXPECT_TRUE(store.read_all(between(1, 0)).to_vector().empty());
  EXPECT_TRUE(store.read_all(between(0, -5)).to_vector().empty());
  ReadOptions o = between(2, 5);
  o.types = {"UserCreated"};
  o.stream_prefix = "user";
  EXPECT_EQ(seqs_of(store.read_all(o).to_vector()), (std::vector<Seq>{4, 5}));
}

TEST(ReadAll, ToHoldsAcrossPages) {
  auto store = Store::open(":memory:");
  store.append("s", numbered_events(50));
  ReadOptions o = between(7, 33);
  o.page_size = 4;
  EXPECT_EQ(seqs_of(store.read_all(o).to_vector()), range(7, 33));
}

TEST(ReadAll, OneExactStreamHonoursFromToTypesAndLimit) {
  auto store = mixed_store();  // user-1 is seq 1, 2 and 6
  ReadOptions o;
  o.stream = "user-1";
  o.from = 2;
  EXPECT_EQ(seqs_of(store.read_all(o).to_vector()), (std::vector<Seq>{2, 6}));
  o.from = 1;
  o.to = 5;
  EXPECT_EQ(seqs_of(store.read_all(o).to_vector()), (std::vector<Seq>{1, 2}));
  o.from = 2;
  o.to = 2;
  EXPECT_EQ(seqs_of(store.read_all(o).to_vector()), (std::vector<Seq>{2}));
  o.from = 3;
  o.to = 5;
  EXPECT_TRUE(store.read_all(o).to_vector().empty());
  o = ReadOptions{};
  o.stream = "user-1";
  o.types = {"UserCreated", "UserDeleted"};
  EXPECT_EQ(seqs_of(store.read_all(o).to_vector()), (std::vector<Seq>{1, 6}));
  o.limit = 1;
  EXPECT_EQ(seqs_of(store.read_all(o).to_vector()), (std::vector<Seq>{1}));
  o.limit = 0;
  o.stream_prefix = "order";  // both filters hold: none
  EXPECT_TRUE(store.read_all(o).to_vector().empty());
}

TEST(ReadAll, OneExactStreamPagesInVersionOrderBetweenSeqs) {
  auto store = Store::open(":memory:");
  for (int i = 0; i < 30; ++i) {
    store.append("a", event("Numbered", "{\"i\":" + std::to_string(i) + "}"));
    store.append("b", event("Other"));
  }
  ReadOptions o;
  o.stream = "a";
  o.from = 10;  // a's events are the odd seqs
  o.to = 40;
  o.page_size = 3;
  std::vector<Seq> want;
  for (Seq s = 11; s <= 39; s += 2) want.push_back(s);
  const auto events = store.read_all(o).to_vector();
  EXPECT_EQ(seqs_of(events), want);
  for (const Event& e : events) EXPECT_EQ(e.stream, "a");
  o.limit = 4;
  EXPECT_EQ(seqs_of(store.read_all(o).to_vector()), (std::vector<Seq>{11, 13, 15, 17}));
}

// SQLite's plan for a read's SQL, one line per step.
std::string query_plan(RawDb& db, const ReadOptions& options) {
  const std::string sql = "EXPLAIN QUERY PLAN " + detail::plan_read_all(options)->sql;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
    throw std::runtime_error("prepare failed: " + sql + ": " + db.error());
  std::string plan;
  while (sqlite3_step(stmt) == SQLITE_ROW)
    plan +=
        reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3)) + std::string("\n");
  sqlite3_finalize(stmt);
  return plan;
}

TEST(ReadAll, OneExactStreamWalksTheStreamVersionIndexWithoutASort) {
  TempDir dir;
  {
    auto store = Store::open(dir / "plan.db", fast_options());
    for (int i = 0; i < 200; ++i) store.append("s-" + std::to_string(i % 7), event("T"));
  }
  RawDb db(dir / "plan.db");
  ReadOptions o;
  o.stream = "s-3";
  for (int variant = 0; variant < 4; ++variant) {
    if (variant == 1) o.from = 50;
    if (variant == 2) o.to = 120;
    if (variant == 3) o.types = {"T", "U"};
    const std::string plan = query_plan(db, o);
    SCOPED_TRACE(plan);
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos);
    EXPECT_NE(plan.find("USING INDEX"), std::string::npos);
    EXPECT_NE(plan.find("(stream=? AND version>?)"), std::string::npos);
  }
  // Every other read walks the rowid, in seq order.
  for (ReadOptions other : {between(3, 90), of_types({"T"}), with_prefix("s-")}) {
    const std::string plan = query_plan(db, other);
    SCOPED_TRACE(plan);
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos);
  }
}

TEST(ReadAll, StreamPrefixIsLiteralNotAPattern) {
  auto store = Store::open(":memory:");
  store.append("a_b-1", event("T"));
  store.append("axb-1", event("T"));
  store.append("50%-1", event("T"));
  store.append("500-1", event("T"));
  store.append("A_B-1", event("T"));
  EXPECT_EQ(seqs_of(store.read_all(with_prefix("a_b")).to_vector()),
            (std::vector<Seq>{1}));
  EXPECT_EQ(seqs_of(store.read_all(with_prefix("50%")).to_vector()),
            (std::vector<Seq>{3}));
}

TEST(ReadAll, CombinesFromLimitTypesAndPrefix) {
  auto store = mixed_store();
  ReadOptions options;
  options.from = 2;
  options.limit = 2;
  options.types = {"UserCreated", "UserDeleted", "UserRenamed"};
  options.stream_prefix = "user-";
  EXPECT_EQ(seqs_of(store.read_all(options).to_vector()), (std::vector<Seq>{2, 4}));
}

TEST(ReadAll, PagingAcrossManyPagesYieldsEveryEventOnceInOrder) {
  auto store = Store::open(":memory:");
  constexpr Seq kEvents = 2500;
  for (int i = 0; i < 5; ++i)
    store.append("s-" + std::to_string(i), numbered_events(500));
  std::vector<Seq> seen;
  for (const auto& e : store.read_all(paged(7))) seen.push_back(e.seq);
  EXPECT_EQ(seen, range(1, kEvents));
}

TEST(ReadAll, FilterAndLimitHoldAcrossPages) {
  auto store = Store::open(":memory:");
  std::vector<NewEvent> events;
  for (int i = 0; i < 900; ++i) events.push_back(event(i % 3 == 0 ? "Wanted" : "Other"));
  store.append("s", events);
  ReadOptions options;
  options.types = {"Wanted"};
  options.limit = 250;
  options.page_size = 5;
  std::vector<Seq> expected;
  for (Seq s = 1; expected.size() < 250; s += 3) expected.push_back(s);
  EXPECT_EQ(seqs_of(store.read_all(options).to_vector()), expected);
}

TEST(ReadAll, PageSizeOutsideOneTo65536IsInvalidArgument) {
  auto store = mixed_store();
  for (std::size_t page_size : {std::size_t{0}, std::size_t{65537}}) {
    EXPECT_THROW(
        {
          auto r = store.read_all(paged(page_size));
          (void)r.to_vector();
        },
        InvalidArgument)
        << page_size;
  }
  EXPECT_EQ(store.read_all(paged(65536)).to_vector().size(), 6u);
  EXPECT_EQ(store.read_all(paged(1)).to_vector().size(), 6u);
}

TEST(ReadAll, SeesEventsCommittedBeforeTheirPageIsFetched) {
  auto store = Store::open(":memory:");
  store.append("s", numbered_events(3));
  auto events = store.read_all(paged(2));
  std::vector<Seq> seen;
  auto it = events.begin();
  seen.push_back(it->seq);
  ++it;
  seen.push_back(it->seq);
  store.append("s", numbered_events(3, "Numbered", 3));  // before the second page
  for (++it; !(it == events.end()); ++it) seen.push_back(it->seq);
  EXPECT_EQ(seen, range(1, 6));
}

TEST(ReadAll, RangeBeingIteratedDoesNotPinTheWal) {
  TempDir dir;
  const auto path = dir / "app.db";
  auto store = Store::open(path, fast_options());
  store.append("s", numbered_events(3));
  auto events = store.read_all(paged(1));
  auto it = events.begin();  // a page is fetched; the range stays open
  ASSERT_EQ(it->seq, 1);
  // 60 commits of ~200 KB: about 3000 pages of WAL if nothing can be checkpointed,
  // about 1000 (the auto-checkpoint) plus one commit otherwise.
  const std::string big = "\"" + std::string(200000, 'x') + "\"";
  for (int i = 0; i < 60; ++i) store.append("big", event("Big", big));
  EXPECT_LT(std::filesystem::file_size(path.string() + "-wal"), 8u * 1024 * 1024)
      << "the WAL grew as if a reader pinned it";
  ++it;
  EXPECT_EQ(it->seq, 2);
}

TEST(ReadAll, IteratorExposesTheCurrentEvent) {
  auto store = mixed_store();
  auto events = store.read_all(starting(3, 1));
  auto it = events.begin();
  ASSERT_FALSE(it == events.end());
  EXPECT_EQ((*it).stream, "order-1");
  EXPECT_EQ(it->type, "OrderPlaced");
  ++it;
  EXPECT_TRUE(it == events.end());
}

TEST(ReadAll, MovedRangeContinuesWhereItWas) {
  auto store = mixed_store();
  auto events = store.read_all(paged(2));
  EventRange moved = std::move(events);
  EXPECT_EQ(seqs_of(moved.to_vector()), range(1, 6));
}

TEST(ReadStream, ReturnsOnlyThatStreamFromAVersionInclusive) {
  auto store = mixed_store();
  auto events = store.read_stream("user-1").to_vector();
  EXPECT_EQ(seqs_of(events), (std::vector<Seq>{1, 2, 6}));
  std::vector<Version> versions;
  for (const auto& e : events) versions.push_back(e.version);
  EXPECT_EQ(versions, (std::vector<Version>{1, 2, 3}));
  EXPECT_EQ(seqs_of(store.read_stream("user-1", 2).to_vector()),
            (std::vector<Seq>{2, 6}));
  EXPECT_EQ(seqs_of(store.read_stream("user-1", 3).to_vector()), (std::vector<Seq>{6}));
  EXPECT_TRUE(store.read_stream("user-1", 4).to_vector().empty());
}

TEST(ReadStream, LimitCapsTheCount) {
  auto store = mixed_store();
  EXPECT_EQ(seqs_of(store.read_stream("user-1", 1, 2).to_vector()),
            (std::vector<Seq>{1, 2}));
  EXPECT_EQ(seqs_of(store.read_stream("user-1", 2, 1).to_vector()),
            (std::vector<Seq>{2}));
}

TEST(ReadStream, UnknownStreamAndPrefixOfAStreamYieldNothing) {
  auto store = mixed_store();
  EXPECT_TRUE(store.read_stream("nobody").to_vector().empty());
  EXPECT_TRUE(store.read_stream("user").to_vector().empty());
  EXPECT_TRUE(store.read_stream("user-%").to_vector().empty());
}

TEST(ReadStream, LongStreamIsReadWholeAcrossPages) {
  auto store = Store::open(":memory:");
  store.append("long", numbered_events(1300));
  store.append("other", numbered_events(10));
  store.append("long", numbered_events(5, "Numbered", 1300));
  auto events = store.read_stream("long").to_vector();
  ASSERT_EQ(events.size(), 1305u);
  for (std::size_t i = 0; i < events.size(); ++i) {
    ASSERT_EQ(events[i].version, static_cast<Version>(i + 1));
    ASSERT_EQ(events[i].data, "{\"i\":" + std::to_string(i) + "}");
  }
  EXPECT_EQ(events.back().seq, 1315);
}

TEST(Head, IsZeroWhenEmptyThenTheHighestSeq) {
  auto store = Store::open(":memory:");
  EXPECT_EQ(store.head(), 0);
  store.append("s", numbered_events(4));
  EXPECT_EQ(store.head(), 4);
  store.append("t", event("T"));
  EXPECT_EQ(store.head(), 5);
}

TEST(StreamVersion, IsZeroForAnUnknownStreamThenItsLastVersion) {
  auto store = mixed_store();
  EXPECT_EQ(store.stream_version("nobody"), 0);
  EXPECT_EQ(store.stream_version("user-1"), 3);
  EXPECT_EQ(store.stream_version("user-2"), 1);
  EXPECT_EQ(store.stream_version("user"), 0);
}

TEST(Streams, ListsEachStreamByNameWithVersionAndLastSeq) {
  auto store = mixed_store();
  EXPECT_EQ(store.streams(),
            (std::vector<StreamInfo>{
                {"order-1", 1, 3}, {"user-1", 3, 6}, {"user-2", 1, 4}, {"users", 1, 5}}));
}

TEST(Streams, FiltersByLiteralPrefix) {
  auto store = mixed_store();
  store.append("user_x", event("T"));
  EXPECT_EQ(store.streams("user-"),
            (std::vector<StreamInfo>{{"user-1", 3, 6}, {"user-2", 1, 4}}));
  EXPECT_EQ(store.streams("user_"), (std::vector<StreamInfo>{{"user_x", 1, 7}}));
  EXPECT_TRUE(store.streams("zzz").empty());
}

TEST(Streams, EmptyStoreHasNone) {
  auto store = Store::open(":memory:");
  EXPECT_TRUE(store.streams().empty());
}

TEST(WaitForAppend, ReturnsAtOnceWhenHeadIsAlreadyPast) {
  auto store = Store::open(":memory:");
  store.append("s", numbered_events(3));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(store.wait_for_append(1, std::chrono::seconds(30)), 3);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(WaitForAppend, TimesOutReturningTheHead) {
  auto store = Store::open(":memory:");
  store.append("s", numbered_events(2));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(store.wait_for_append(2, std::chrono::milliseconds(50)), 2);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
}

TEST(WaitForAppend, WakesWhenAnotherThreadAppends) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  store.append("s", event("First"));
  std::atomic<pid_t> waiter_tid{0};
  Seq woke_with = 0;
  std::thread waiter([&] {
    waiter_tid = current_tid();
    woke_with = store.wait_for_append(1, std::chrono::seconds(30));
  });
  // Append only once the waiter is blocked, so that a wake-up is what ends its wait.
  ASSERT_TRUE(
      wait_until([&] { return waiter_tid != 0 && thread_state(waiter_tid) == 'S'; }));
  const auto appended = std::chrono::steady_clock::now();
  store.append("s", event("Second"));
  waiter.join();
  EXPECT_EQ(woke_with, 2);
  EXPECT_LT(std::chrono::steady_clock::now() - appended, std::chrono::seconds(5));
}

TEST(WaitForAppend, WakesWhenATransactionCommits) {
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  std::atomic<pid_t> waiter_tid{0};
  Seq head_before_commit = -1;
  Seq woke_with = -1;
  auto tx = store.transaction();
  tx.append("s", event("InTx"));
  std::thread waiter([&] {
    head_before_commit = store.head();
    waiter_tid = current_tid();
    woke_with = store.wait_for_append(0, std::chrono::seconds(30));
  });
  ASSERT_TRUE(
      wait_until([&] { return waiter_tid != 0 && thread_state(waiter_tid) == 'S'; }));
  tx.commit();
  waiter.join();
  EXPECT_EQ(head_before_commit, 0);
  EXPECT_EQ(woke_with, 1);
}

TEST(WaitForAppend, WakesWhenAnotherStoreOnTheFileCommits) {
  // A second Store on the file has a notifier of its own, as another process has:
  // only the file watch can end the first one's wait before its timeout.
  TempDir dir;
  auto store = Store::open(dir / "app.db", fast_options());
  auto other = Store::open(dir / "app.db", fast_options());
  std::atomic<pid_t> waiter_tid{0};
  std::promise<Seq> woke;
  std::future<Seq> woke_with = woke.get_future();
  std::thread waiter([&] {
    waiter_tid = current_tid();
    woke.set_value(store.wait_for_append(0, std::chrono::seconds(60)));
  });
  ASSERT_TRUE(
      wait_until([&] { return waiter_tid != 0 && thread_state(waiter_tid) == 'S'; }));
  other.append("s", event("Elsewhere"));
  const auto status = woke_with.wait_for(std::chrono::seconds(20));
  waiter.join();
  ASSERT_EQ(status, std::future_status::ready) << "woken only by the timeout";
  EXPECT_EQ(woke_with.get(), 1);
}

TEST(ReadAll, InMemoryRangeOutlivesItsStore) {
  std::optional<EventRange> range;
  {
    auto store = Store::open(":memory:");
    store.append("s", numbered_events(3));
    range.emplace(store.read_all());
  }
  EXPECT_EQ(range->to_vector().size(), 3u);
}

TEST(WaitForAppend, LongestTimeoutDoesNotOverflow) {
  auto store = Store::open(":memory:");
  store.append("s", NewEvent{.type = "T"});
  // Already past: returns at once with the head, whatever the timeout.
  EXPECT_EQ(store.wait_for_append(0, std::chrono::milliseconds::max()), 1);
  std::thread appender([&] { store.append("s", NewEvent{.type = "T"}); });
  EXPECT_EQ(store.wait_for_append(1, std::chrono::milliseconds::max()), 2);
  appender.join();
}

}  // namespace
}  // namespace eventlite
