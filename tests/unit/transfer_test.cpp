// Export and import of envelope lines (transfer.hpp): a round trip keeps every field
// byte for byte, an import is all or nothing, idempotent by id, checks versions, and
// reads its input as it goes.

#include "eventlite/transfer.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

std::vector<Event> events_of(const Store& store) {
  std::vector<Event> out;
  for (const Event& e : store.read_all()) out.push_back(e);
  return out;
}

// A store with what a round trip must keep: several streams, JSON text written
// unusually (spaces, escapes, key order, big numbers), unicode, metadata, given ids.
void fill(Store& store) {
  NewEvent odd;
  odd.type = "Odd";
  odd.data = R"({ "b" : 1, "a":[1.50, 2e3, 12345678901234567890], "s":"\u00e9\"x\"" })";
  odd.metadata = R"({"correlation":"c-1", "user":"Zoë"})";
  odd.id = "01930000-0000-7000-8000-00000000abcd";
  store.append("odd-1", odd);
  for (int i = 0; i < 2000; ++i)
    store.append("s-" + std::to_string(i % 7),
                 event(i % 2 ? "Paid" : "Placed", "{\"i\":" + std::to_string(i) + "}"));
  NewEvent later;
  later.type = "Odd";
  later.data = "\"just a string\"";
  store.append("odd-1", later);
}

TEST(Transfer, ExportThenImportIntoAnEmptyFileKeepsEveryFieldByteForByte) {
  TempDir dir;
  Store a = Store::open(dir / "a.db", fast_options());
  fill(a);
  std::stringstream text;
  EXPECT_EQ(export_envelopes(a, text), 2002u);
  Store b = Store::open(dir / "b.db", fast_options());
  const ImportResult r = import_envelopes(b, text);
  EXPECT_EQ(r.lines, 2002u);
  EXPECT_EQ(r.appended, 2002u);
  EXPECT_EQ(r.already_stored, 0u);
  const auto from = events_of(a), to = events_of(b);
  ASSERT_EQ(to.size(), from.size());
  for (std::size_t i = 0; i < from.size(); ++i) {
    ASSERT_EQ(to_envelope(to[i]), to_envelope(from[i])) << "at " << i;
    EXPECT_EQ(to[i].data, from[i].data);  // the JSON text as given, not re-encoded
    EXPECT_EQ(to[i].metadata, from[i].metadata);
  }
}

TEST(Transfer, ImportingTheSameLinesTwiceAddsNothing) {
  TempDir dir;
  Store a = Store::open(dir / "a.db", fast_options());
  fill(a);
  std::stringstream first, second;
  export_envelopes(a, first);
  second << first.str();
  Store b = Store::open(dir / "b.db", fast_options());
  import_envelopes(b, first);
  const ImportResult again = import_envelopes(b, second);
  EXPECT_EQ(again.appended, 0u);
  EXPECT_EQ(again.already_stored, 2002u);
  EXPECT_EQ(b.head(), 2002);
}

// A line whose id is stored with the same content but another version is refused,
// and an input that fails before its end (a read error) stores nothing.
TEST(Transfer, AStoredIdAtAnotherVersionOrABrokenInputStoresNothing) {
  TempDir dir;
  Store a = Store::open(dir / "a.db", fast_options());
  fill(a);
  std::stringstream text;
  export_envelopes(a, text, {.to = 3});
  Store b = Store::open(dir / "b.db", fast_options());
  import_envelopes(b, text);
  std::string line = to_envelope(events_of(a)[2]);
  const std::size_t at = line.find("\"version\":");
  line.replace(at, line.find(',', at) - at, "\"version\":7");
  std::stringstream moved(line + "\n");
  EXPECT_THROW(import_envelopes(b, moved), ImportError);
  EXPECT_EQ(b.head(), 3);

  struct Failing : std::streambuf {
    explicit Failing(std::string s) : data(std::move(s)) {
      setg(data.data(), data.data(), data.data() + data.size());
    }
    int_type underflow() override { throw std::ios_base::failure("disk gone"); }
    std::string data;
  };
  std::stringstream more;
  export_envelopes(a, more, {.from = 4, .to = 10});
  Failing failing(more.str());
  std::istream broken(&failing);
  EXPECT_THROW(import_envelopes(b, broken), InvalidArgument);
  EXPECT_EQ(b.head(), 3);  // none of the lines read before the failure
}

// A line given twice in one input is found stored the second time, as on a second
// import: its version is checked against what its first line stored (version 1), not
// against what was committed before the import (nothing).
TEST(Transfer, ALineRepeatedInOneInputIsStoredOnce) {
  TempDir dir;
  const std::string line =
      R"({"id":"e1","stream":"user-42","version":1,"type":"UserCreated","data":{}})";
  Store b = Store::open(dir / "b.db", fast_options());
  std::stringstream twice(line + "\n" + line + "\n");
  const ImportResult r = import_envelopes(b, twice);
  EXPECT_EQ(r.appended, 1u);
  EXPECT_EQ(r.already_stored, 1u);
  EXPECT_EQ(b.head(), 1);

  std::string moved = line;
  moved.replace(moved.find("\"version\":1"), 11, "\"version\":2");
  Store c = Store::open(dir / "c.db", fast_options());
  std::stringstream conflicting(line + "\n" + moved + "\n");
  try {
    import_envelopes(c, conflicting);
    FAIL() << "imported";
  } catch (const ImportError& e) {
    EXPECT_EQ(e.line(), 2u);
    EXPECT_EQ(e.code(), ErrorCode::invalid_event);
    EXPECT_NE(std::string(e.what()).find("stored at version 1"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(c.head(), 0);
}

// An in-memory store checks the versions of lines it finds stored as a file does.
TEST(Transfer, ImportIntoAnInMemoryStoreChecksTheVersionsOfStoredLines) {
  const std::string line =
      R"({"id":"e1","stream":"user-42","version":1,"type":"UserCreated","data":{}})";
  Store m = Store::open(":memory:");
  std::stringstream first(line + "\n");
  import_envelopes(m, first);
  std::stringstream again(line + "\n");
  EXPECT_EQ(import_envelopes(m, again).already_stored, 1u);
  std::string moved = line;
  moved.replace(moved.find("\"version\":1"), 11, "\"version\":2");
  std::stringstream conflicting(moved + "\n");
  EXPECT_THROW(import_envelopes(m, conflicting), ImportError);
  EXPECT_EQ(m.head(), 1);
}

TEST(Transfer, ExportFollowsTheFiltersAndReportsProgress) {
  TempDir dir;
  Store a = Store::open(dir / "a.db", fast_options());
  fill(a);
  std::stringstream text;
  std::vector<TransferProgress> seen;
  const std::uint64_t n = export_envelopes(
      a, text, {.from = 10, .to = 1500, .stream = "s-3"},
      [&](const TransferProgress& p) { seen.push_back(p); });
  std::uint64_t lines = 0;
  for (std::string line; std::getline(text, line); ++lines) {
    const DecodedEvent d = decode_envelope(line);
    EXPECT_EQ(d.stream, "s-3");
    EXPECT_GE(*d.seq, 10);
    EXPECT_LE(*d.seq, 1500);
  }
  EXPECT_EQ(lines, n);
  EXPECT_GT(n, 100u);
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back().events, n);  // the last call: the end
  EXPECT_EQ(seen.back().bytes, text.str().size());
}

// A bad line anywhere (here the last) stores nothing, and the error names its line
// number, blank lines counted.
TEST(Transfer, ABadLineNamesItsNumberAndNothingIsImported) {
  TempDir dir;
  Store a = Store::open(dir / "a.db", fast_options());
  fill(a);
  std::stringstream good;
  export_envelopes(a, good, {.to = 5});
  const std::string lines = good.str();
  struct Case {
    std::string tail;
    ErrorCode code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"\n{\"id\":\"01930000-0000-7000-8000-0000000000f0\",\"stream\":\"x\",\"type\":"
       "\"T\",\"data\":{oops}}\n",
       ErrorCode::invalid_event, "line 7: data:"},
      {"\n{\"id\":\"01930000-0000-7000-8000-0000000000f1\",\"stream\":\"s-1\","
       "\"version\":9,\"type\":\"T\",\"data\":{}}\n",
       ErrorCode::version_conflict, "line 7: version conflict on stream \"s-1\""},
      {"\n{\"stream\":\"s-1\",\"type\":\"T\",\"data\":{}}\n", ErrorCode::invalid_event,
       "line 7: id: missing"},
      {"\n{\"id\":\"01930000-0000-7000-8000-00000000abcd\",\"stream\":\"odd-1\","
       "\"type\":\"Other\",\"data\":{}}\n",
       ErrorCode::id_conflict, "line 7: event id"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.tail);
    Store b = Store::open(dir / ("b-" + std::to_string(&c - cases.data()) + ".db"),
                          fast_options());
    std::stringstream in(lines + c.tail);
    try {
      import_envelopes(b, in);
      FAIL() << "imported";
    } catch (const ImportError& e) {
      EXPECT_EQ(e.code(), c.code);
      EXPECT_EQ(e.line(), 7u);
      EXPECT_EQ(std::string(e.what()).rfind(c.says, 0), 0u) << e.what();
    }
    EXPECT_EQ(b.head(), 0);  // the five good lines before it are not stored either
  }
}

// The input is read as it goes: a stream that hands out its lines one read at a
// time is imported whole, and the progress calls come while it is read.
TEST(Transfer, ImportReadsItsInputAsItGoes) {
  TempDir dir;
  Store a = Store::open(dir / "a.db", fast_options());
  fill(a);
  std::stringstream text;
  export_envelopes(a, text);
  struct Trickle : std::streambuf {
    explicit Trickle(std::string s) : data(std::move(s)) {}
    int_type underflow() override {
      if (at >= data.size()) return traits_type::eof();
      const std::size_t n = std::min<std::size_t>(97, data.size() - at);
      setg(data.data() + at, data.data() + at, data.data() + at + n);
      at += n;
      ++reads;
      return traits_type::to_int_type(*gptr());
    }
    std::string data;
    std::size_t at = 0, reads = 0;
  } trickle(text.str());
  std::istream in(&trickle);
  Store b = Store::open(dir / "b.db", fast_options());
  std::vector<std::size_t> reads_at_progress;
  import_envelopes(b, in, [&](const TransferProgress&) {
    reads_at_progress.push_back(trickle.reads);
  });
  EXPECT_EQ(b.head(), 2002);
  ASSERT_GE(reads_at_progress.size(), 2u);
  EXPECT_LT(reads_at_progress.front(), trickle.reads);  // before the input ended
}

}  // namespace
}  // namespace eventlite
