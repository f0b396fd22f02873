// Names that become NATS subjects or JetStream names (nats.hpp): the sink's subject
// prefix and stream, the bridge's stream, durable and filter subject are refused at
// construction, with the option named, when NATS would read them otherwise than
// written (an empty token, white space, a wildcard, a '.' splitting one name in two,
// a NUL cutting the C string short). No server is needed: nothing connects before
// open() or the first step.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "eventlite/errors.hpp"
#include "eventlite/nats.hpp"
#include "eventlite/store.hpp"

namespace eventlite {
namespace {

using namespace std::string_literals;

// Runs `make` and returns the InvalidArgument's message ("" when nothing was thrown).
template <typename F>
std::string refusal(F make) {
  try {
    make();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return {};
}

// Subjects NATS cannot publish on (or would split otherwise than written).
const std::vector<std::string> kBadSubjects = {"",     "a b",   "a\tb", "a\nb", "a\rb",
                                               "a..b", ".a",    "a.",   "a.*",  "a.>",
                                               "a.b*", "a\0b"s, "\x7f"};
// JetStream stream and consumer names that are not one.
const std::vector<std::string> kBadNames = {"",    "A.B",  "A B",   "A\tB", "A*",   "A>",
                                            "A/B", "A\\B", "A\0B"s, "A\nB", "A\x01"};

TEST(NatsNames, SubjectPrefixThatIsNotASubjectIsRefusedNamingIt) {
  for (const std::string& prefix : kBadSubjects) {
    SCOPED_TRACE(testing::PrintToString(prefix));
    const std::string why = refusal([&] { nats::make_sink({.subject_prefix = prefix}); });
    EXPECT_NE(why.find("nats sink: subject_prefix"), std::string::npos) << why;
    EXPECT_EQ(why.find('\n'), std::string::npos) << "one line: " << why;
  }
  // A prefix of several tokens is one: the type adds the last.
  for (const char* prefix : {"events", "app.events", "a-b_c.D9", "ünï.cødé"})
    EXPECT_EQ(refusal([&] { nats::make_sink({.subject_prefix = prefix}); }), "")
        << prefix;
}

TEST(NatsNames, JetStreamStreamNameIsCheckedOnlyWhenItIsUsed) {
  for (const std::string& stream : kBadNames) {
    SCOPED_TRACE(testing::PrintToString(stream));
    const std::string why =
        refusal([&] { nats::make_sink({.jetstream = true, .stream = stream}); });
    EXPECT_NE(why.find("nats sink: stream"), std::string::npos) << why;
    // Core NATS has no stream: the option is not read.
    EXPECT_EQ(refusal([&] { nats::make_sink({.jetstream = false, .stream = stream}); }),
              "");
  }
  EXPECT_EQ(
      refusal([&] { nats::make_sink({.jetstream = true, .stream = "EVENTS-2_b"}); }), "");
}

TEST(NatsNames, RefusalQuotesTheNameEscapedAndSaysWhy) {
  const std::string why =
      refusal([] { nats::make_sink({.subject_prefix = "app.my events\n"}); });
  EXPECT_NE(why.find(R"(subject_prefix "app.my events\n")"), std::string::npos) << why;
  EXPECT_NE(why.find(R"(token "my events\n" that holds white space)"), std::string::npos)
      << why;
  EXPECT_NE(
      refusal([] { nats::make_sink({.subject_prefix = "a..b"}); }).find("empty token"),
      std::string::npos);
  EXPECT_NE(refusal([] {
              nats::make_sink({.jetstream = true, .stream = "A.B"});
            }).find(R"(stream "A.B" holds '.')"),
            std::string::npos);
}

TEST(NatsNames, BridgeRefusesStreamDurableAndFilterThatNatsWouldReadOtherwise) {
  Store store = Store::open(":memory:");
  for (const std::string& name : kBadNames) {
    SCOPED_TRACE(testing::PrintToString(name));
    nats::BridgeOptions by_stream;
    by_stream.stream = name;
    EXPECT_NE(refusal([&] {
                nats::Bridge bridge(store, by_stream);
              }).find("nats bridge: stream"),
              std::string::npos);
    nats::BridgeOptions by_durable;
    by_durable.durable = name;
    EXPECT_NE(refusal([&] {
                nats::Bridge bridge(store, by_durable);
              }).find("nats bridge: durable"),
              std::string::npos);
  }
  // A filter may hold wildcards where NATS allows them: '*' as a token, '>' last.
  for (const char* filter : {"events.a b", "events..x", "events.>.x", "events.x>", ".x",
                             "events.*x", "events.\t"}) {
    SCOPED_TRACE(filter);
    nats::BridgeOptions options;
    options.filter_subject = filter;
    EXPECT_NE(refusal([&] {
                nats::Bridge bridge(store, options);
              }).find("nats bridge: filter_subject"),
              std::string::npos);
  }
  for (const char* filter : {"", "events.>", "events.*", "events.*.Created", ">", "*"}) {
    nats::BridgeOptions options;
    options.filter_subject = filter;
    EXPECT_EQ(refusal([&] { nats::Bridge bridge(store, options); }), "") << filter;
  }
}

}  // namespace
}  // namespace eventlite
