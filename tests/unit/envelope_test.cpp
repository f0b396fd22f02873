#include "eventlite/envelope.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/store.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;
using namespace std::string_literals;

Event sample_event() {
  Event e;
  e.seq = 17;
  e.id = "0190a5d2-7c3e-7abc-8def-0123456789ab";
  e.stream = "user-42";
  e.version = 3;
  e.type = "UserCreated";
  e.data = R"({"name":"ada"})";
  e.metadata = R"({"user":"admin"})";
  e.time = "2026-11-23T10:00:00.123Z";
  return e;
}

// Data whose numbers a parse-and-dump would rewrite, with its own spacing.
constexpr const char* kExactData =
    R"({"price": 12345678901234567.89, "tiny": 1.5e-400, )"
    R"("big": 123456789012345678901234567890, "z": 1, "a": [1.0, -0.0, 1E+2]})";

// An event whose every field is unusual, for round trips.
Event odd_event() {
  Event e;
  e.seq = 9007199254740993;  // above 2^53: a double would lose it
  e.id = "import-\xC3\xA9-\"7\"";
  e.stream = "caf\xC3\xA9 \"quoted\" \\ tab\t";
  e.version = 4294967297;
  e.type = "Type/With\\Odd\u00e9Chars";
  e.data = kExactData;
  e.metadata = R"({"user": "\u00e9", "n": 1.50})";
  e.time = "2024-02-29T23:59:59.999Z";
  return e;
}

// The InvalidEvent that decoding `line` throws, or a failure.
template <class Decode>
InvalidEvent refusal(Decode decode, std::string_view line) {
  try {
    decode(line);
  } catch (const InvalidEvent& e) {
    return e;
  }
  ADD_FAILURE() << "decoded without an error: " << line;
  return InvalidEvent(0, "", "");
}

DecodedEvent envelope(std::string_view line) {
  return decode_envelope(line);
}
DecodedEvent cloudevent(std::string_view line) {
  return decode_cloudevent(line);
}

TEST(ToEnvelope, IsOneLineWithKeysInWireOrder) {
  const std::string line = to_envelope(sample_event());
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  const auto parsed = nlohmann::ordered_json::parse(line);
  std::vector<std::string> keys;
  for (const auto& item : parsed.items()) keys.push_back(item.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"seq", "id", "stream", "version", "type",
                                            "time", "data", "metadata"}));
}

TEST(ToEnvelope, EmbedsDataAndMetadataAsJsonValues) {
  const auto parsed = nlohmann::json::parse(to_envelope(sample_event()));
  EXPECT_EQ(parsed["seq"], 17);
  EXPECT_EQ(parsed["id"], "0190a5d2-7c3e-7abc-8def-0123456789ab");
  EXPECT_EQ(parsed["stream"], "user-42");
  EXPECT_EQ(parsed["version"], 3);
  EXPECT_EQ(parsed["type"], "UserCreated");
  EXPECT_EQ(parsed["time"], "2026-11-23T10:00:00.123Z");
  EXPECT_EQ(parsed["data"], (nlohmann::json{{"name", "ada"}}));
  EXPECT_EQ(parsed["metadata"], (nlohmann::json{{"user", "admin"}}));
}

TEST(ToEnvelope, MultiLineDataAndOddNamesStayOneValidLine) {
  Event e = sample_event();
  e.stream = "caf\xC3\xA9 \"quoted\" \\ tab\t";
  e.data = "{\n  \"text\": \"two\\nlines\",\r\n  \"n\": 1\n}";
  e.metadata = "{\n}";
  const std::string line = to_envelope(e);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_EQ(line.find('\r'), std::string::npos) << line;
  const auto parsed = nlohmann::json::parse(line);
  EXPECT_EQ(parsed["stream"], e.stream);
  EXPECT_EQ(parsed["data"], nlohmann::json::parse(e.data));
  EXPECT_EQ(parsed["data"]["text"], "two\nlines");
  EXPECT_EQ(parsed["metadata"], nlohmann::json::object());
}

TEST(DecodeEnvelope, RoundTripsEveryFieldByteForByte) {
  const Event e = odd_event();
  const DecodedEvent d = decode_envelope(to_envelope(e));
  EXPECT_EQ(d.stream, e.stream);
  EXPECT_EQ(d.event.id, e.id);
  EXPECT_EQ(d.event.type, e.type);
  EXPECT_EQ(d.event.data, e.data);  // bytes, not JSON equality
  EXPECT_EQ(d.event.metadata, e.metadata);
  EXPECT_EQ(d.event.time, e.time);
  EXPECT_EQ(d.version, e.version);
  EXPECT_EQ(d.seq, e.seq);
  EXPECT_EQ(d.expected(), Expected::exactly(e.version - 1));
}

TEST(DecodeEnvelope, AcceptsTheJsonlShapeWithoutSeqOrTime) {
  const DecodedEvent d = decode_envelope(R"(  {"stream":"s-1","type":"T","data":[1,2]}  )"
                                         "\r");
  EXPECT_EQ(d.stream, "s-1");
  EXPECT_EQ(d.event.type, "T");
  EXPECT_EQ(d.event.data, "[1,2]");
  EXPECT_EQ(d.event.metadata, "{}");
  EXPECT_TRUE(d.event.id.empty());
  EXPECT_TRUE(d.event.time.empty());
  EXPECT_FALSE(d.version);
  EXPECT_FALSE(d.seq);
  EXPECT_EQ(d.expected(), Expected::any());
}

TEST(DecodeEnvelope, KeepsScalarDataAsWrittenWithoutSurroundingSpace) {
  EXPECT_EQ(decode_envelope(R"({"stream":"s","type":"T","data":  1e400  })").event.data,
            "1e400");
  EXPECT_EQ(decode_envelope(R"({"data":"x\u0000y" ,"stream":"s","type":"T"})").event.data,
            R"("x\u0000y")");
  EXPECT_EQ(decode_envelope(R"({"stream":"s","type":"T","data":null})").event.data,
            "null");
}

TEST(DecodeEnvelope, DecodedEventAppendsAndReadsBackAsTheSameLine) {
  Store store = Store::open(":memory:");
  Event e = odd_event();
  e.seq = 1;
  e.version = 1;
  const std::string line = to_envelope(e);
  const DecodedEvent d = decode_envelope(line);
  ASSERT_EQ(store.append(d.stream, d.event, d.expected()), 1);
  const auto events = store.read_all().to_vector();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(to_envelope(events[0]), line);
}

TEST(DecodeEnvelope, LeavesTheInsideOfDataToTheStoresCheck) {
  Store store = Store::open(":memory:");
  for (const char* data : {"[1}", R"({"a":1,})", "tru"}) {
    SCOPED_TRACE(data);
    const DecodedEvent d =
        decode_envelope(std::string(R"({"stream":"s","type":"T","data":)") + data + "}");
    EXPECT_EQ(d.event.data, data);
    try {
      store.append(d.stream, d.event);
      ADD_FAILURE() << "malformed data was stored";
    } catch (const InvalidEvent& e) {
      EXPECT_EQ(e.field(), "data");
    }
  }
  EXPECT_EQ(store.head(), 0);
}

struct BadLine {
  std::string line;
  std::string field;
  std::string reason;  // a part of the reason
};

TEST(DecodeEnvelope, RefusesEachBadLineNamingTheField) {
  const std::string ok = R"("stream":"s","type":"T","data":{})";
  const std::vector<BadLine> cases = {
      {"not json", "envelope", "not a JSON object"},
      {"", "envelope", "not valid JSON"},
      {"[1,2]", "envelope", "not a JSON object"},
      {"\"text\"", "envelope", "not a JSON object"},
      {"{" + ok + "} x", "envelope", "not valid JSON"},
      {"{" + ok + "}}", "envelope", "text after the object"},
      {"{" + ok + "}{}", "envelope", "text after the object"},
      {"{" + ok, "envelope", "not valid JSON"},
      {"{" + ok + ",}", "envelope", "not valid JSON"},
      {"{\"stream\":\"s\0\",\"type\":\"T\",\"data\":1}"s, "envelope", "NUL byte"},
      {"{" + ok + "}\0"s, "envelope", "NUL byte"},
      {"{\"stream\":\"\xff\",\"type\":\"T\",\"data\":1}", "envelope", "UTF-8"},
      {R"({"type":"T","data":{}})", "stream", "is missing"},
      {R"({"stream":"s","data":{}})", "type", "is missing"},
      {R"({"stream":"s","type":"T"})", "data", "is missing"},
      {R"({"stream":5,"type":"T","data":{}})", "stream", "must be a string"},
      {R"({"stream":"s","type":null,"data":{}})", "type", "must be a string"},
      {"{" + ok + R"(,"id":7})", "id", "must be a string"},
      {"{" + ok + R"(,"metadata":[]})", "metadata", "must be a JSON object"},
      {"{" + ok + R"(,"metadata":"{}"})", "metadata", "must be a JSON object"},
      {"{" + ok + R"(,"version":0})", "version", "must be a positive integer"},
      {"{" + ok + R"(,"version":-2})", "version", "must be a positive integer"},
      {"{" + ok + R"(,"version":1.5})", "version", "must be a positive integer"},
      {"{" + ok + R"(,"version":"3"})", "version", "must be a positive integer"},
      {"{" + ok + R"(,"version":99999999999999999999})", "version",
       "must be a positive integer"},
      {"{" + ok + R"(,"seq":0})", "seq", "must be a positive integer"},
      {"{" + ok + R"(,"time":"2026-11-23 10:00:00.123Z"})", "time", "ISO-8601"},
      {"{" + ok + R"(,"time":"2026-11-23T10:00:00Z"})", "time", "ISO-8601"},
      {"{" + ok + R"(,"time":"2026-02-29T10:00:00.000Z"})", "time", "ISO-8601"},
      {"{" + ok + R"(,"time":"2026-11-23T10:00:00.123+01:00"})", "time", "ISO-8601"},
      {"{" + ok + R"(,"time":1700000000})", "time", "must be a string"},
      {"{" + ok + R"(,"extra":1})", "extra", "unknown key"},
      {"{" + ok + R"(,"stream":"t"})", "stream", "appears twice"},
  };
  for (const BadLine& c : cases) {
    SCOPED_TRACE(nlohmann::json(c.line).dump(-1, ' ', false,
                                             nlohmann::json::error_handler_t::replace));
    const InvalidEvent e = refusal(envelope, c.line);
    EXPECT_EQ(e.field(), c.field) << e.what();
    EXPECT_NE(e.reason().find(c.reason), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
}

TEST(ToCloudEvent, HasTheAttributesOfCloudEvents10InOrder) {
  const auto parsed =
      nlohmann::ordered_json::parse(to_cloudevent(sample_event(), "eventlite://test"));
  std::vector<std::string> keys;
  for (const auto& item : parsed.items()) keys.push_back(item.key());
  EXPECT_EQ(keys,
            (std::vector<std::string>{"specversion", "id", "source", "type", "subject",
                                      "time", "datacontenttype", "seq", "streamversion",
                                      "eventlitemetadata", "data"}));
  EXPECT_EQ(parsed["specversion"], "1.0");
  EXPECT_EQ(parsed["id"], "0190a5d2-7c3e-7abc-8def-0123456789ab");
  EXPECT_EQ(parsed["source"], "eventlite://test");
  EXPECT_EQ(parsed["type"], "UserCreated");
  EXPECT_EQ(parsed["subject"], "user-42");
  EXPECT_EQ(parsed["time"], "2026-11-23T10:00:00.123Z");
  EXPECT_EQ(parsed["datacontenttype"], "application/json");
  EXPECT_EQ(parsed["seq"], 17);
  EXPECT_EQ(parsed["streamversion"], 3);
  // An extension attribute holds no object: the metadata's text, as a string.
  EXPECT_EQ(parsed["eventlitemetadata"], R"({"user":"admin"})");
  EXPECT_EQ(parsed["data"], (nlohmann::json{{"name", "ada"}}));
}

TEST(ToCloudEvent, LeavesEmptyMetadataOutAndFitsOneLine) {
  Event e = sample_event();
  e.metadata = "{}";
  e.data = "{\n  \"a\": 1\n}";
  const std::string line = to_cloudevent(e, "urn:x");
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_FALSE(nlohmann::json::parse(line).contains("eventlitemetadata"));
  EXPECT_EQ(decode_cloudevent(line).event.metadata, "{}");
}

TEST(ToCloudEvent, RefusesAnEmptySource) {
  EXPECT_THROW(to_cloudevent(sample_event(), ""), InvalidArgument);
}

TEST(DecodeCloudEvent, RoundTripsEveryFieldByteForByte) {
  const Event e = odd_event();
  const DecodedEvent d = decode_cloudevent(to_cloudevent(e, "eventlite://a/b"));
  EXPECT_EQ(d.stream, e.stream);
  EXPECT_EQ(d.event.id, e.id);
  EXPECT_EQ(d.event.type, e.type);
  EXPECT_EQ(d.event.data, e.data);
  EXPECT_EQ(d.event.metadata, e.metadata);
  EXPECT_EQ(d.event.time, e.time);
  EXPECT_EQ(d.version, e.version);
  EXPECT_EQ(d.seq, e.seq);
}

TEST(DecodeCloudEvent, AcceptsOtherProducersEventsIgnoringForeignAttributes) {
  const DecodedEvent d = decode_cloudevent(
      R"({"specversion":"1.0","id":"a-1","source":"/shop","type":"OrderPlaced",)"
      R"("subject":"order-9","datacontenttype":"application/json; charset=utf-8",)"
      R"("dataschema":"https://x/s","traceparent":"00-ab","seq":"12",)"
      R"("streamversion":"2","data":{"total": 10.10}})");
  EXPECT_EQ(d.stream, "order-9");
  EXPECT_EQ(d.event.id, "a-1");
  EXPECT_EQ(d.event.type, "OrderPlaced");
  EXPECT_EQ(d.event.data, R"({"total": 10.10})");
  EXPECT_EQ(d.event.metadata, "{}");
  EXPECT_TRUE(d.event.time.empty());
  EXPECT_EQ(d.seq, 12);
  EXPECT_EQ(d.version, 2);
}

// Foreign producers write `time` in any RFC 3339 form; it is stored in the store's
// one form, in UTC to the millisecond, so that the text still sorts as the time does.
TEST(DecodeCloudEvent, AcceptsEveryRfc3339TimeAndStoresItNormalized) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"2026-11-23T10:00:00.123Z", "2026-11-23T10:00:00.123Z"},
      {"2026-11-23T10:00:00Z", "2026-11-23T10:00:00.000Z"},
      {"2026-11-23T10:00:00+00:00", "2026-11-23T10:00:00.000Z"},
      {"2026-11-23T11:30:00.5+01:30", "2026-11-23T10:00:00.500Z"},
      {"2026-11-23T05:00:00.123456789-05:00", "2026-11-23T10:00:00.123Z"},
      {"2026-11-24T00:30:00+02:00", "2026-11-23T22:30:00.000Z"},
      {"2026-11-23t10:00:00.1z", "2026-11-23T10:00:00.100Z"},
      {"9999-12-31T23:59:59Z", "9999-12-31T23:59:59.000Z"},  // text, not the clock
  };
  for (const auto& [given, stored] : cases) {
    const DecodedEvent d = decode_cloudevent(
        R"({"specversion":"1.0","id":"a-1","source":"/shop","type":"T","subject":"s",)"
        R"("time":")" +
        given + R"(","data":{}})");
    EXPECT_EQ(d.event.time, stored) << given;
  }
}

TEST(DecodeCloudEvent, RefusesEachBadLineNamingTheAttribute) {
  const std::string head = R"("specversion":"1.0","id":"a","source":"/s","type":"T")";
  const std::string ok = head + R"(,"subject":"s","data":{})";
  const std::vector<BadLine> cases = {
      {"nope", "cloudevent", "not a JSON object"},
      {"[]", "cloudevent", "not a JSON object"},
      {"{" + ok + "} {}", "cloudevent", "text after the object"},
      {"{\"specversion\":\"1.0\"\0}"s, "cloudevent", "NUL byte"},
      {R"({"id":"a","source":"/s","type":"T","subject":"s","data":{}})", "specversion",
       "is missing"},
      {R"({"specversion":"0.3","id":"a","source":"/s","type":"T","subject":"s","data":1})",
       "specversion", "must be \"1.0\""},
      {R"({"specversion":"1.0","source":"/s","type":"T","subject":"s","data":1})", "id",
       "is missing"},
      {R"({"specversion":"1.0","id":"","source":"/s","type":"T","subject":"s","data":1})",
       "id", "must not be empty"},
      {R"({"specversion":"1.0","id":"a","type":"T","subject":"s","data":1})", "source",
       "is missing"},
      {R"({"specversion":"1.0","id":"a","source":"/s","subject":"s","data":1})", "type",
       "is missing"},
      {"{" + head + R"(,"data":{}})", "subject", "is missing"},
      {"{" + head + R"(,"subject":"s"})", "data", "is missing"},
      {"{" + head + R"(,"subject":"s","data_base64":"AAE="})", "data_base64",
       "not supported"},
      {"{" + ok + R"(,"datacontenttype":"text/plain"})", "datacontenttype",
       "application/json"},
      {"{" + ok + R"(,"datacontenttype":"application/jsonx"})", "datacontenttype",
       "application/json"},
      {"{" + ok + R"(,"time":"2026-11-23T10:00:00"})", "time", "RFC 3339"},
      {"{" + ok + R"(,"time":"2026-11-23 10:00:00Z"})", "time", "RFC 3339"},
      {"{" + ok + R"(,"time":"2026-02-30T10:00:00Z"})", "time", "RFC 3339"},
      {"{" + ok + R"(,"time":"2026-11-23T23:59:60Z"})", "time", "RFC 3339"},
      {"{" + ok + R"(,"time":"2026-11-23T10:00:00.Z"})", "time", "RFC 3339"},
      {"{" + ok + R"(,"time":"2026-11-23T10:00:00+0100"})", "time", "RFC 3339"},
      {"{" + ok + R"(,"time":"9999-12-31T23:59:59+01:00"})", "time", "RFC 3339"},
      {"{" + ok + R"(,"seq":"12a"})", "seq", "must be a positive integer"},
      {"{" + ok + R"(,"seq":"-1"})", "seq", "must be a positive integer"},
      {"{" + ok + R"(,"streamversion":0})", "streamversion",
       "must be a positive integer"},
      {"{" + ok + R"(,"eventlitemetadata":{"a":1}})", "eventlitemetadata",
       "must be a string"},
      {"{" + ok + R"(,"subject":"t"})", "subject", "appears twice"},
  };
  for (const BadLine& c : cases) {
    SCOPED_TRACE(nlohmann::json(c.line).dump(-1, ' ', false,
                                             nlohmann::json::error_handler_t::replace));
    const InvalidEvent e = refusal(cloudevent, c.line);
    EXPECT_EQ(e.field(), c.field) << e.what();
    EXPECT_NE(e.reason().find(c.reason), std::string::npos) << e.what();
  }
}

// Attributes that are not ours are skipped, but the line is JSON only if they are.
TEST(DecodeCloudEvent, RefusesMalformedJsonInForeignAttributes) {
  const std::string head =
      R"({"specversion":"1.0","id":"a","source":"/s","type":"T","subject":"s",)";
  for (const char* value :
       {R"(e"-1")", "[1 2]", R"({"a":})", "tru", R"("\x")", "1.2.3"}) {
    SCOPED_TRACE(value);
    const InvalidEvent e =
        refusal(cloudevent, head + R"("sq":)" + value + R"(,"data":{}})");
    EXPECT_EQ(e.field(), "cloudevent") << e.what();
    EXPECT_NE(e.reason().find("not valid JSON"), std::string::npos) << e.what();
  }
  const DecodedEvent d = decode_cloudevent(
      head + R"("ext":[1,{"a":null}],"big":123456789012345678901234567890,"data":{}})");
  EXPECT_EQ(d.event.data, "{}");
}

}  // namespace
}  // namespace eventlite
