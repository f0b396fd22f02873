#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/event.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

// Every stored event, in seq order.
std::vector<Event> all_events(const Store& store) {
  return store.read_all().to_vector();
}

NewEvent with_id(NewEvent e, std::string id) {
  e.id = std::move(id);
  return e;
}

TEST(Append, ReturnsSeqsInOrderAndVersionsFromOne) {
  auto store = Store::open(":memory:");
  EXPECT_EQ(store.append("a", numbered_events(3)), (std::vector<Seq>{1, 2, 3}));
  EXPECT_EQ(store.append("b", event("Other")), 4);
  EXPECT_EQ(store.append("a", numbered_events(2, "Numbered", 3)),
            (std::vector<Seq>{5, 6}));

  auto events = all_events(store);
  ASSERT_EQ(events.size(), 6u);
  std::vector<std::pair<std::string, Version>> positions;
  for (const auto& e : events) positions.emplace_back(e.stream, e.version);
  EXPECT_EQ(positions, (std::vector<std::pair<std::string, Version>>{
                           {"a", 1}, {"a", 2}, {"a", 3}, {"b", 1}, {"a", 4}, {"a", 5}}));
  EXPECT_EQ(store.stream_version("a"), 5);
  EXPECT_EQ(store.stream_version("b"), 1);
  EXPECT_EQ(store.head(), 6);
}

TEST(Append, StoresTypeDataAndMetadataAsAppended) {
  auto store = Store::open(":memory:");
  NewEvent e;
  e.type = "UserCreated";
  e.data = R"({"name": "ada",  "age":36})";
  e.metadata = R"({"correlation_id":"c-1"})";
  store.append("user-1", e);
  auto events = all_events(store);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "UserCreated");
  EXPECT_EQ(events[0].data, e.data);
  EXPECT_EQ(events[0].metadata, e.metadata);
  EXPECT_EQ(events[0].data_json()["age"], 36);
  EXPECT_EQ(events[0].metadata_json()["correlation_id"], "c-1");
}

TEST(Append, DataMayBeAnyJsonValue) {
  auto store = Store::open(":memory:");
  const std::vector<std::string> values = {"42",   "\"text\"", "[1,2]",
                                           "null", "true",     "{}"};
  for (const auto& v : values) store.append("s", event("Any", v));
  auto events = all_events(store);
  ASSERT_EQ(events.size(), values.size());
  for (std::size_t i = 0; i < values.size(); ++i) EXPECT_EQ(events[i].data, values[i]);
}

TEST(Append, ExpectedAnyAppendsWhateverTheVersion) {
  auto store = Store::open(":memory:");
  EXPECT_EQ(store.append("s", event("A"), Expected::any()), 1);
  EXPECT_EQ(store.append("s", event("B"), Expected::any()), 2);
  EXPECT_EQ(store.stream_version("s"), 2);
}

TEST(Append, ExpectedNoStreamHoldsOnlyForANewStream) {
  auto store = Store::open(":memory:");
  EXPECT_EQ(store.append("s", event("A"), Expected::no_stream()), 1);
  try {
    store.append("s", event("B"), Expected::no_stream());
    FAIL() << "no_stream held on a stream at version 1";
  } catch (const VersionConflict& e) {
    EXPECT_EQ(e.stream(), "s");
    EXPECT_EQ(e.expected(), "no stream");
    EXPECT_EQ(e.actual(), 1);
  }
  EXPECT_EQ(store.head(), 1);
}

TEST(Append, ExpectedExactlyHoldsOnlyAtThatVersion) {
  auto store = Store::open(":memory:");
  EXPECT_EQ(store.append("s", event("A"), Expected::exactly(0)), 1);
  EXPECT_EQ(store.append("s", numbered_events(2), Expected::exactly(1)),
            (std::vector<Seq>{2, 3}));
  EXPECT_EQ(store.append("s", event("C"), Expected::exactly(3)), 4);
  EXPECT_THROW(store.append("s", event("D"), Expected::exactly(3)), VersionConflict);
  EXPECT_THROW(store.append("s", event("D"), Expected::exactly(0)), VersionConflict);
  EXPECT_THROW(store.append("new", event("D"), Expected::exactly(1)), VersionConflict);
  EXPECT_EQ(store.head(), 4);
  EXPECT_EQ(store.stream_version("new"), 0);
}

TEST(Append, WrongExpectedVersionThrowsAndWritesNothing) {
  auto store = Store::open(":memory:");
  store.append("user-42", numbered_events(2));
  try {
    store.append("user-42", numbered_events(10), Expected::exactly(5));
    FAIL() << "append with a wrong expected version succeeded";
  } catch (const VersionConflict& e) {
    EXPECT_EQ(e.code(), ErrorCode::version_conflict);
    EXPECT_EQ(e.stream(), "user-42");
    EXPECT_EQ(e.expected(), "5");
    EXPECT_EQ(e.actual(), 2);
    const std::string what = e.what();
    EXPECT_NE(what.find("user-42"), std::string::npos) << what;
    EXPECT_NE(what.find('5'), std::string::npos) << what;
    EXPECT_NE(what.find('2'), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  EXPECT_EQ(store.head(), 2);
  EXPECT_EQ(store.stream_version("user-42"), 2);
  EXPECT_EQ(all_events(store).size(), 2u);
}

TEST(Append, BadEventInBatchStoresNoneAndReportsItsIndex) {
  auto store = Store::open(":memory:");
  auto events = numbered_events(100);
  events[57].data = "{\"i\": 57,";  // malformed JSON
  try {
    store.append("s", events);
    FAIL() << "a batch with malformed JSON was stored";
  } catch (const InvalidEvent& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_event);
    EXPECT_EQ(e.index(), 57u);
    EXPECT_EQ(e.field(), "data");
  }
  EXPECT_EQ(store.head(), 0);
  EXPECT_EQ(store.stream_version("s"), 0);
}

TEST(Append, MalformedDataIsInvalidEvent) {
  auto store = Store::open(":memory:");
  for (const char* data : {"", "{", "not json", "{\"a\":1}{\"b\":2}"}) {
    try {
      store.append("s", event("T", data));
      ADD_FAILURE() << "data accepted: " << data;
    } catch (const InvalidEvent& e) {
      EXPECT_EQ(e.index(), 0u);
      EXPECT_EQ(e.field(), "data");
    }
  }
  EXPECT_EQ(store.head(), 0);
}

TEST(Append, EmptyStreamIsInvalidEvent) {
  auto store = Store::open(":memory:");
  try {
    store.append("", event("T"));
    FAIL() << "empty stream accepted";
  } catch (const InvalidEvent& e) {
    EXPECT_EQ(e.field(), "stream");
  }
  EXPECT_EQ(store.head(), 0);
}

TEST(Append, EmptyTypeIsInvalidEventAtItsIndex) {
  auto store = Store::open(":memory:");
  auto events = numbered_events(3);
  events[2].type = "";
  try {
    store.append("s", events);
    FAIL() << "empty type accepted";
  } catch (const InvalidEvent& e) {
    EXPECT_EQ(e.index(), 2u);
    EXPECT_EQ(e.field(), "type");
  }
  EXPECT_EQ(store.head(), 0);
}

TEST(Append, MetadataThatIsNotAJsonObjectIsInvalidEvent) {
  auto store = Store::open(":memory:");
  for (const char* metadata : {"[1,2]", "\"text\"", "42", "null", "{", ""}) {
    NewEvent e = event("T");
    e.metadata = metadata;
    try {
      store.append("s", e);
      ADD_FAILURE() << "metadata accepted: " << metadata;
    } catch (const InvalidEvent& err) {
      EXPECT_EQ(err.field(), "metadata") << metadata;
    }
  }
  EXPECT_EQ(store.head(), 0);
}

// SQLite's JSON functions refuse nesting deeper than 2000; such an event is refused
// up front, naming the field that is too deep.
std::string nested(int depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

TEST(Append, DeeplyNestedDataIsInvalidEvent) {
  auto store = Store::open(":memory:");
  try {
    store.append("s", event("Deep", nested(3000)));
    FAIL() << "data nested 3000 deep was accepted";
  } catch (const InvalidEvent& e) {
    EXPECT_EQ(e.field(), "data");
  }
  EXPECT_EQ(store.head(), 0);
}

TEST(Append, DeeplyNestedMetadataIsInvalidEventOnMetadata) {
  auto store = Store::open(":memory:");
  NewEvent deep = event("Deep");
  deep.metadata = "{\"trace\":" + nested(3000) + "}";
  try {
    store.append("s", deep);
    FAIL() << "metadata nested 3000 deep was accepted";
  } catch (const InvalidEvent& e) {
    EXPECT_EQ(e.field(), "metadata") << e.what();
  }
  EXPECT_EQ(store.head(), 0);
}

// The reason an append of `e` to "s" is refused with, on `field`; "" if it was stored.
std::string refusal(Store& store, const NewEvent& e, const std::string& field) {
  try {
    store.append("s", e);
  } catch (const InvalidEvent& err) {
    EXPECT_EQ(err.index(), 0u);
    EXPECT_EQ(err.field(), field) << err.what();
    return err.reason();
  }
  return {};
}

TEST(Append, MalformedJsonIsRefusedWithTheParsersWordingAndWritesNothing) {
  auto store = Store::open(":memory:");
  EXPECT_EQ(refusal(store, event("T", "{\"a\":1,}"), "data"),
            "malformed JSON: parse error at line 1, column 8: syntax error while parsing "
            "object key - unexpected '}'; expected string literal");
  NewEvent e = event("T");
  e.metadata = "{\"a\":tru}";
  EXPECT_EQ(refusal(store, e, "metadata"),
            "malformed JSON: parse error at line 1, column 9: syntax error while parsing "
            "value - invalid literal; last read: '\"a\":tru}'");
  EXPECT_EQ(refusal(store, event("T", ""), "data"),
            "malformed JSON: parse error at line 1, column 1: syntax error while parsing "
            "value - unexpected end of input; expected '[', '{', or a literal");
  EXPECT_EQ(store.head(), 0);
}

TEST(Append, JsonNestedUpToSqlitesLimitIsStoredAndOneDeeperIsRefused) {
  auto store = Store::open(":memory:");
  EXPECT_EQ(refusal(store, event("Deep", nested(2001)), "data"),
            "JSON nested too deeply");
  NewEvent deep = event("Deep");
  deep.metadata = "{\"trace\":" + nested(2000) + "}";
  EXPECT_EQ(refusal(store, deep, "metadata"), "JSON nested too deeply");
  EXPECT_EQ(store.head(), 0);

  NewEvent at_limit = event("Deep", nested(2000));
  at_limit.metadata = "{\"trace\":" + nested(1999) + "}";
  EXPECT_EQ(store.append("s", at_limit), 1);
  // SQLite's own JSON functions accept what was stored.
  EXPECT_EQ(store.verify(), std::vector<std::string>{});
}

TEST(Append, MalformedJsonWinsOverDepth) {
  auto store = Store::open(":memory:");
  const std::string reason = refusal(store, event("T", nested(3000) + ","), "data");
  EXPECT_EQ(reason.rfind("malformed JSON: ", 0), 0u) << reason;
  EXPECT_EQ(store.head(), 0);
}

// simdjson refuses integers past 64 bits; SQLite and nlohmann (as a double) read them,
// so they are stored, byte for byte.
TEST(Append, IntegersPastSixtyFourBitsAreStoredAsWritten) {
  auto store = Store::open(":memory:");
  NewEvent e = event("Big", "{\"n\": 123456789012345678901234567890, \"m\":-1e300}");
  e.metadata = "{\"trace\":18446744073709551616}";
  EXPECT_EQ(store.append("s", e), 1);
  auto stored = all_events(store).at(0);
  EXPECT_EQ(stored.data, e.data);
  EXPECT_EQ(stored.metadata, e.metadata);
  EXPECT_DOUBLE_EQ(stored.data_json()["n"].get<double>(), 1.2345678901234568e29);
  EXPECT_EQ(store.verify(), std::vector<std::string>{});
}

// Text that SQLite's json_valid let through but no reader could parse is refused.
TEST(Append, JsonNoReaderCanParseIsRefused) {
  auto store = Store::open(":memory:");
  EXPECT_EQ(refusal(store, event("T", "[1e400]"), "data"),
            "malformed JSON: number overflow parsing '1e400'");
  const std::string lone = refusal(store, event("T", "\"\\ud800\""), "data");
  EXPECT_NE(lone.find("surrogate"), std::string::npos) << lone;
  EXPECT_EQ(refusal(store, event("T", "\xef\xbb\xbf{}"), "data"),
            "malformed JSON: a byte order mark before the value");
  EXPECT_EQ(store.head(), 0);
}

TEST(Append, WhitespaceAndEscapesAreStoredExactlyAsWritten) {
  auto store = Store::open(":memory:");
  NewEvent e = event("T", " \t{ \"a\" : [ 1 , \"\\u00e9\\n\" ] }\r\n");
  e.metadata = "\n{ }";
  EXPECT_EQ(store.append("s", e), 1);
  auto stored = all_events(store).at(0);
  EXPECT_EQ(stored.data, e.data);
  EXPECT_EQ(stored.metadata, e.metadata);
}

// Payloads over 64 KiB are checked with a parser of their own.
TEST(Append, LargePayloadsAreCheckedLikeSmallOnes) {
  auto store = Store::open(":memory:");
  const std::string big(200 * 1024, 'x');
  const std::string unclosed = refusal(store, event("Big", "[\"" + big + "\""), "data");
  EXPECT_EQ(unclosed.rfind("malformed JSON: parse error at line 1", 0), 0u);
  EXPECT_EQ(refusal(store, event("Big", "\"" + big + "\xff\""), "data"),
            "not valid UTF-8");
  NewEvent bad_meta = event("Big");
  bad_meta.metadata = "[\"" + big + "\"]";
  EXPECT_EQ(refusal(store, bad_meta, "metadata"), "not a JSON object");
  EXPECT_EQ(store.head(), 0);
  NewEvent ok = event("Big", "{\"text\":\"" + big + "\"}");
  ok.metadata = "{\"also\":\"" + big + "\"}";
  EXPECT_EQ(store.append("s", ok), 1);
  EXPECT_EQ(all_events(store).at(0).data, ok.data);
}

// Which error a bad batch reports is as it always was: names, sizes, encoding and the
// shape of metadata first, in batch order, then the first event with invalid JSON.
TEST(Append, BatchReportsEncodingAndShapeBeforeJsonValidity) {
  auto store = Store::open(":memory:");
  auto events = numbered_events(5);
  events[1].data = "{\"i\":";
  events[3].metadata = "[]";
  try {
    store.append("s", events);
    FAIL() << "a bad batch was stored";
  } catch (const InvalidEvent& e) {
    EXPECT_EQ(e.index(), 3u);
    EXPECT_EQ(e.field(), "metadata");
    EXPECT_EQ(e.reason(), "not a JSON object");
  }
  events[3].metadata = "{}";
  events[4].data = "{\"i\":";
  try {
    store.append("s", events);
    FAIL() << "a bad batch was stored";
  } catch (const InvalidEvent& e) {
    EXPECT_EQ(e.index(), 1u);
    EXPECT_EQ(e.field(), "data");
  }
  // In one event, bad UTF-8 wins over the malformed JSON around it.
  EXPECT_EQ(refusal(store, event("T", "[\"\xff"), "data"), "not valid UTF-8");
  NewEvent both = event("T", "[");
  both.metadata = "{\"a\":\"\xc0\xaf\"}";
  EXPECT_EQ(refusal(store, both, "metadata"), "not valid UTF-8");
  EXPECT_EQ(store.head(), 0);
}

TEST(Append, InvalidJsonIsRefusedInTransactionsAndAppendIn) {
  TempDir dir;
  auto store = Store::open(dir.path() / "s.db", fast_options());
  {
    auto tx = store.transaction();
    EXPECT_THROW(tx.append("s", event("T", "{\"a\":1,}")), InvalidEvent);
    NewEvent deep = event("T");
    deep.metadata = "{\"a\":" + nested(2001) + "}";
    EXPECT_THROW(tx.append("s", deep), InvalidEvent);
    tx.commit();
  }
  RawDb app(dir.path() / "s.db");
  app.exec("BEGIN IMMEDIATE");
  const std::vector<NewEvent> bad = {event("T", "[1,]")};
  EXPECT_THROW(store.append_in(app.get(), "s", bad), InvalidEvent);
  app.exec("COMMIT");
  EXPECT_EQ(store.head(), 0);
}

TEST(Append, EventOverSizeCapIsInvalidAndWritesNothing) {
  auto options = fast_options();
  options.max_event_bytes = 1000;
  auto store = Store::open(":memory:", options);
  // data + metadata ("{}", 2 bytes) exactly at the cap is accepted.
  NewEvent at_cap = event("Big", "\"" + std::string(1000 - 2 - 2, 'x') + "\"");
  ASSERT_EQ(at_cap.data.size() + at_cap.metadata.size(), 1000u);
  EXPECT_EQ(store.append("s", at_cap), 1);

  NewEvent over = event("Big", "\"" + std::string(1000 - 2 - 2 + 1, 'x') + "\"");
  std::vector<NewEvent> batch = {event("Small"), over};
  try {
    store.append("s", batch);
    FAIL() << "an event over the size cap was stored";
  } catch (const InvalidEvent& e) {
    EXPECT_EQ(e.index(), 1u);
  }
  // The cap is on data plus metadata together.
  NewEvent split = event("Big", "\"" + std::string(600, 'x') + "\"");
  split.metadata = "{\"m\":\"" + std::string(600, 'y') + "\"}";
  EXPECT_THROW(store.append("s", split), InvalidEvent);
  EXPECT_EQ(store.head(), 1);
}

TEST(Append, DefaultSizeCapRefusesEventsOverOneMebibyte) {
  auto store = Store::open(":memory:");
  NewEvent huge = event("Huge", "\"" + std::string(std::size_t{1} << 20, 'x') + "\"");
  EXPECT_THROW(store.append("s", huge), InvalidEvent);
  EXPECT_EQ(store.head(), 0);
}

TEST(Append, EmptyBatchIsInvalidArgumentAndWritesNothing) {
  auto store = Store::open(":memory:");
  EXPECT_THROW(store.append("s", std::vector<NewEvent>{}, Expected::exactly(7)),
               InvalidArgument);
  EXPECT_EQ(store.head(), 0);
  EXPECT_EQ(store.stream_version("s"), 0);
}

TEST(Append, ReappendingSameIdAndContentReturnsStoredSeqAndWritesNothing) {
  auto store = Store::open(":memory:");
  const NewEvent original = with_id(event("Paid", "{\"amount\":10}"), new_event_id());
  const Seq seq = store.append("order-1", original);
  store.append("order-2", numbered_events(3));
  EXPECT_EQ(store.append("order-1", original), seq);
  EXPECT_EQ(store.head(), 4);
  EXPECT_EQ(store.stream_version("order-1"), 1);
}

TEST(Append, RetryWithOriginalExpectedVersionReturnsStoredSeqs) {
  auto store = Store::open(":memory:");
  std::vector<NewEvent> batch = {with_id(event("A"), new_event_id()),
                                 with_id(event("B"), new_event_id())};
  const auto seqs = store.append("s", batch, Expected::no_stream());
  // The client did not see the answer and retries the same call.
  EXPECT_EQ(store.append("s", batch, Expected::no_stream()), seqs);
  EXPECT_EQ(store.head(), 2);
}

TEST(Append, BatchMixingStoredAndNewIdsWritesOnlyTheNewOnes) {
  auto store = Store::open(":memory:");
  const NewEvent stored = with_id(event("A"), new_event_id());
  const Seq first = store.append("s", stored);
  std::vector<NewEvent> batch = {stored, with_id(event("B"), new_event_id())};
  EXPECT_EQ(store.append("s", batch), (std::vector<Seq>{first, 2}));
  EXPECT_EQ(store.head(), 2);
  EXPECT_EQ(store.stream_version("s"), 2);
}

// Batches go through the INSERT kInsertRows (32) rows at a time: seqs, versions and
// contents must match event by event, whatever the mix of stored and new ids.
TEST(Append, LongBatchMixingStoredAndNewIdsMapsEverySeqToItsEvent) {
  auto store = Store::open(":memory:");
  auto batch = numbered_events(100);
  for (std::size_t i = 0; i < batch.size(); i += 3) batch[i].id = new_event_id();
  std::vector<NewEvent> earlier;
  for (std::size_t i = 0; i < batch.size(); i += 9) earlier.push_back(batch[i]);
  const auto earlier_seqs = store.append("s", earlier);

  const auto seqs = store.append("s", batch);
  ASSERT_EQ(seqs.size(), batch.size());
  std::set<Seq> distinct(seqs.begin(), seqs.end());
  EXPECT_EQ(distinct.size(), batch.size());
  EXPECT_EQ(store.head(), 100);
  EXPECT_EQ(store.stream_version("s"), 100);
  const auto stored = all_events(store);
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const Event& e = stored.at(static_cast<std::size_t>(seqs[i] - 1));
    EXPECT_EQ(e.data, batch[i].data) << i;
    if (!batch[i].id.empty()) {
      EXPECT_EQ(e.id, batch[i].id) << i;
    }
  }
  for (std::size_t k = 0; k < earlier.size(); ++k)
    EXPECT_EQ(seqs[9 * k], earlier_seqs[k]);
  // The new events got the versions after the earlier ones, in batch order.
  Version last = static_cast<Version>(earlier.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (i % 9 == 0) continue;
    const Event& e = stored.at(static_cast<std::size_t>(seqs[i] - 1));
    EXPECT_EQ(e.version, ++last) << i;
  }
}

TEST(Append, IdTwiceInALongBatchNamesTheSecondAndWritesNothing) {
  auto store = Store::open(":memory:");
  store.append("s", event("Before"));
  for (std::size_t dup :
       {std::size_t{5}, std::size_t{40}, std::size_t{70}, std::size_t{99}}) {
    auto batch = numbered_events(100);
    for (auto& e : batch) e.id = new_event_id();
    batch[dup].id = batch[dup - 3].id;
    try {
      store.append("s", batch);
      ADD_FAILURE() << "a batch with an id twice was stored";
    } catch (const InvalidEvent& e) {
      EXPECT_EQ(e.index(), dup);
      EXPECT_EQ(e.field(), "id");
    }
    EXPECT_EQ(store.head(), 1);
    EXPECT_EQ(store.stream_version("s"), 1);
  }
  // The store is still usable, and the next batch continues the versions.
  EXPECT_EQ(store.append("s", numbered_events(40)).back(), 41);
  EXPECT_EQ(store.stream_version("s"), 41);
}

TEST(Append, SameIdWithOtherContentThrowsIdConflictAndWritesNothing) {
  auto store = Store::open(":memory:");
  const std::string id = new_event_id();
  NewEvent original = with_id(event("Paid", "{\"amount\":10}"), id);
  const Seq seq = store.append("order-1", original);

  NewEvent other_data = original;
  other_data.data = "{\"amount\":11}";
  NewEvent other_type = original;
  other_type.type = "Refunded";
  NewEvent other_metadata = original;
  other_metadata.metadata = "{\"user\":\"x\"}";

  for (const auto& [stream, e] :
       std::vector<std::pair<std::string, NewEvent>>{{"order-1", other_data},
                                                     {"order-1", other_type},
                                                     {"order-1", other_metadata},
                                                     {"order-2", original}}) {
    std::vector<NewEvent> batch = {event("Fresh"), e};
    try {
      store.append(stream, batch);
      ADD_FAILURE() << "an id stored with other content was accepted";
    } catch (const IdConflict& err) {
      EXPECT_EQ(err.code(), ErrorCode::id_conflict);
      EXPECT_EQ(err.id(), id);
      EXPECT_EQ(err.seq(), seq);
    }
  }
  EXPECT_EQ(store.head(), 1);
  EXPECT_EQ(store.stream_version("order-2"), 0);
}

TEST(Append, GeneratedIdsAreDistinctTimeOrderedUuidV7) {
  auto store = Store::open(":memory:");
  store.append("s", numbered_events(500));
  for (int i = 0; i < 100; ++i) store.append("t", event("Single"));
  auto events = all_events(store);
  ASSERT_EQ(events.size(), 600u);
  std::set<std::string> ids;
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_TRUE(is_uuid_v7(events[i].id)) << events[i].id;
    ids.insert(events[i].id);
    if (i > 0) {
      EXPECT_LT(events[i - 1].id, events[i].id) << "at seq " << events[i].seq;
    }
  }
  EXPECT_EQ(ids.size(), events.size());
}

TEST(Append, GivenIdIsStored) {
  auto store = Store::open(":memory:");
  store.append("s", with_id(event("A"), "my-own-id-1"));
  EXPECT_EQ(all_events(store).at(0).id, "my-own-id-1");
}

TEST(Append, TimeIsUtcIso8601WithMillisecondsOfNow) {
  auto store = Store::open(":memory:");
  const auto before = std::chrono::system_clock::now();
  store.append("s", event("A"));
  const auto after = std::chrono::system_clock::now();
  const std::string time = all_events(store).at(0).time;
  ASSERT_TRUE(is_utc_millis_time(time)) << time;

  std::tm tm{};
  tm.tm_year = std::stoi(time.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(time.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(time.substr(8, 2));
  tm.tm_hour = std::stoi(time.substr(11, 2));
  tm.tm_min = std::stoi(time.substr(14, 2));
  tm.tm_sec = std::stoi(time.substr(17, 2));
  const auto stamp = std::chrono::system_clock::from_time_t(::timegm(&tm)) +
                     std::chrono::milliseconds(std::stoi(time.substr(20, 3)));
  EXPECT_GE(stamp, std::chrono::floor<std::chrono::milliseconds>(before));
  EXPECT_LE(stamp, after);
}

NewEvent with_time(NewEvent e, std::string time) {
  e.time = std::move(time);
  return e;
}

TEST(Append, GivenTimeIsStoredInsteadOfTheCommitTime) {
  auto store = Store::open(":memory:");
  store.append("s",
               std::vector<NewEvent>{with_time(event("Old"), "2019-03-04T05:06:07.089Z"),
                                     event("New")});
  const auto events = all_events(store);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].time, "2019-03-04T05:06:07.089Z");
  EXPECT_TRUE(is_utc_millis_time(events[1].time)) << events[1].time;
  EXPECT_GT(events[1].time, "2025-");  // stamped now
}

TEST(Append, TimesBeyondTheClocksRangeAreStoredAsGiven) {
  // The system clock's nanoseconds end in 2262; the text form goes to 9999.
  auto store = Store::open(":memory:");
  store.append("s", std::vector<NewEvent>{
                        with_time(event("Far"), "9999-12-31T23:59:59.999Z"),
                        with_time(event("Early"), "0001-01-01T00:00:00.000Z")});
  const auto events = all_events(store);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].time, "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(events[1].time, "0001-01-01T00:00:00.000Z");
}

TEST(Append, GivenTimeIsKeptByAsyncAppends) {
  auto store = Store::open(":memory:");
  EXPECT_EQ(
      store.append_async("s", {with_time(event("A"), "2000-01-01T00:00:00.000Z")}).get(),
      (std::vector<Seq>{1}));
  EXPECT_EQ(all_events(store).at(0).time, "2000-01-01T00:00:00.000Z");
}

TEST(Append, MalformedTimeIsInvalidEventAtItsIndexAndWritesNothing) {
  auto store = Store::open(":memory:");
  for (const char* bad :
       {"2026-11-23T10:00:00Z", "2026-11-23T10:00:00.1234Z", "2026-11-23 10:00:00.123Z",
        "2026-11-23T10:00:00.123+00:00", "2026-11-23T10:00:00.123z",
        "2026-13-01T10:00:00.123Z", "2026-02-29T10:00:00.123Z",
        "2026-04-31T00:00:00.000Z", "2026-11-23T24:00:00.000Z",
        "2026-11-23T10:60:00.000Z", "2026-11-23T10:00:60.000Z",
        "2026-11-00T10:00:00.000Z", "+026-11-23T10:00:00.000Z",
        " 2026-11-23T10:00:00.000Z", "2026-11-23T10:00:00.000Z ", "now"}) {
    SCOPED_TRACE(bad);
    try {
      store.append("s", std::vector<NewEvent>{event("Fine"), with_time(event("A"), bad)});
      ADD_FAILURE() << "a malformed time was stored";
    } catch (const InvalidEvent& e) {
      EXPECT_EQ(e.index(), 1u);
      EXPECT_EQ(e.field(), "time");
      EXPECT_NE(e.reason().find("2026-11-23T10:00:00.123Z"), std::string::npos);
    }
  }
  EXPECT_EQ(store.head(), 0);
  // A leap day of a leap year and the last millisecond of a year are real times.
  EXPECT_EQ(
      store.append(
          "s", std::vector<NewEvent>{with_time(event("A"), "2024-02-29T23:59:59.999Z"),
                                     with_time(event("B"), "1999-12-31T23:59:59.999Z")}),
      (std::vector<Seq>{1, 2}));
}

TEST(Append, ReimportWithTheSameTimeIsANoOpAndAnotherTimeIsAConflict) {
  auto store = Store::open(":memory:");
  const NewEvent original =
      with_time(with_id(event("A", R"({"n":1})"), "imp-1"), "2020-05-06T07:08:09.010Z");
  EXPECT_EQ(store.append("s", original), 1);
  EXPECT_EQ(store.append("s", original), 1);  // the same event again: no-op
  // A retry without a time matches whatever time the event has.
  EXPECT_EQ(store.append("s", with_id(event("A", R"({"n":1})"), "imp-1")), 1);
  EXPECT_THROW(store.append("s", with_time(original, "2020-05-06T07:08:09.011Z")),
               IdConflict);
  EXPECT_EQ(store.head(), 1);
  EXPECT_EQ(all_events(store).at(0).time, "2020-05-06T07:08:09.010Z");
}

TEST(Append, StreamNamesAreValuesNotSql) {
  auto store = Store::open(":memory:");
  const std::string stream = "x'); DROP TABLE eventlite_events; --";
  EXPECT_EQ(store.append(stream, event("A")), 1);
  EXPECT_EQ(store.stream_version(stream), 1);
  EXPECT_EQ(store.read_stream(stream).to_vector().at(0).stream, stream);
}

TEST(Append, InvalidUtf8IsInvalidEventAndWritesNothing) {
  auto store = Store::open(":memory:");
  try {
    store.append("s", NewEvent{.type = "T", .data = "\"\xff\xfe\""});
    FAIL() << "ill-formed UTF-8 was stored";
  } catch (const InvalidEvent& e) {
    EXPECT_EQ(e.field(), "data");
    EXPECT_EQ(e.reason(), "not valid UTF-8");
  }
  EXPECT_THROW(store.append("s\xc0\xaf", NewEvent{.type = "T"}),
               InvalidEvent);  // overlong
  EXPECT_THROW(
      store.append("s", NewEvent{.type = "T", .metadata = "{\"a\":\"\xed\xa0\x80\"}"}),
      InvalidEvent);  // a surrogate
  EXPECT_EQ(store.head(), 0);
  // Well-formed multi-byte text is fine.
  EXPECT_EQ(store.append(
                "s", NewEvent{.type = "T", .data = "\"h\xc3\xa9llo \xf0\x9f\x98\x80\""}),
            1);
}

// nlohmann's parser stops at a NUL byte: the text after one must not pass unchecked.
TEST(Append, ANulByteInDataOrMetadataIsInvalidEventAndWritesNothing) {
  auto store = Store::open(":memory:");
  const std::string data("\"d800\"\0garbage", 14);
  try {
    store.append("s", event("T", data));
    FAIL() << "data with a NUL byte was stored";
  } catch (const InvalidEvent& e) {
    EXPECT_EQ(e.field(), "data");
    EXPECT_EQ(e.reason(), "malformed JSON: a NUL byte (at byte 7)");
  }
  NewEvent with_metadata = event("T");
  with_metadata.metadata = std::string("{}\0{", 4);
  try {
    store.append("s", with_metadata);
    FAIL() << "metadata with a NUL byte was stored";
  } catch (const InvalidEvent& e) {
    EXPECT_EQ(e.field(), "metadata");
  }
  EXPECT_EQ(store.head(), 0);
}

// SQLite's length() stops at a NUL byte, so "\0x" would fail the schema's CHECK as a
// StorageError: a NUL byte in a name or an id is the event's fault, InvalidEvent.
TEST(Append, ANulByteInANameOrIdIsInvalidEventAndWritesNothing) {
  auto store = Store::open(":memory:");
  const std::string nul_first("\0x", 2), nul_inside("a\0b", 3);
  for (const std::string& stream : {nul_first, nul_inside}) {
    try {
      store.append(stream, event("T"));
      FAIL() << "a stream with a NUL byte was accepted";
    } catch (const InvalidEvent& e) {
      EXPECT_EQ(e.field(), "stream");
      EXPECT_EQ(e.reason().rfind("contains a NUL byte", 0), 0u) << e.reason();
    }
  }
  auto events = numbered_events(2);
  events[1].type = nul_first;
  try {
    auto tx = store.transaction();
    tx.append("s", events);
    FAIL() << "a type with a NUL byte was accepted";
  } catch (const InvalidEvent& e) {
    EXPECT_EQ(e.index(), 1u);
    EXPECT_EQ(e.field(), "type");
  }
  EXPECT_THROW(store.append("s", with_id(event("T"), nul_inside)), InvalidEvent);
  EXPECT_EQ(store.head(), 0);
}

}  // namespace
}  // namespace eventlite
