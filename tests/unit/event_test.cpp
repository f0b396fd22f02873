#include "eventlite/event.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;

TEST(Expected, AnyHoldsAtEveryVersion) {
  for (Version v : {0, 1, 7}) EXPECT_TRUE(Expected::any().holds(v)) << v;
}

TEST(Expected, NoStreamHoldsOnlyAtZero) {
  EXPECT_TRUE(Expected::no_stream().holds(0));
  EXPECT_FALSE(Expected::no_stream().holds(1));
}

TEST(Expected, ExactlyHoldsOnlyAtItsVersion) {
  EXPECT_TRUE(Expected::exactly(3).holds(3));
  EXPECT_FALSE(Expected::exactly(3).holds(2));
  EXPECT_FALSE(Expected::exactly(3).holds(4));
  EXPECT_TRUE(Expected::exactly(0).holds(0));
  EXPECT_FALSE(Expected::exactly(0).holds(1));
  EXPECT_EQ(Expected::exactly(3).kind(), Expected::Kind::exactly);
  EXPECT_EQ(Expected::exactly(3).version(), 3);
}

TEST(Expected, ToStringReadsAsPeopleSayIt) {
  EXPECT_EQ(Expected::any().to_string(), "any");
  EXPECT_EQ(Expected::no_stream().to_string(), "no stream");
  EXPECT_EQ(Expected::exactly(12).to_string(), "12");
}

TEST(MakeEvent, SerializesDataAndMetadata) {
  const NewEvent e = make_event("UserCreated", nlohmann::json{{"name", "ada"}},
                                nlohmann::json{{"user", "admin"}});
  EXPECT_EQ(e.type, "UserCreated");
  EXPECT_EQ(nlohmann::json::parse(e.data), (nlohmann::json{{"name", "ada"}}));
  EXPECT_EQ(nlohmann::json::parse(e.metadata), (nlohmann::json{{"user", "admin"}}));
  EXPECT_TRUE(e.id.empty());
}

TEST(MakeEvent, WithoutMetadataHasAnEmptyObject) {
  const NewEvent e = make_event("Ping", nlohmann::json::array({1, 2}));
  EXPECT_EQ(nlohmann::json::parse(e.data), nlohmann::json::array({1, 2}));
  EXPECT_EQ(nlohmann::json::parse(e.metadata), nlohmann::json::object());
}

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

TEST(Event, ParsesDataAndMetadata) {
  const Event e = sample_event();
  EXPECT_EQ(e.data_json()["name"], "ada");
  EXPECT_EQ(e.metadata_json()["user"], "admin");
}

TEST(NewEventId, IsUuidV7StrictlyIncreasingWithinAThread) {
  std::string previous;
  for (int i = 0; i < 10000; ++i) {
    std::string id = new_event_id();
    ASSERT_TRUE(is_uuid_v7(id)) << id;
    ASSERT_LT(previous, id) << "at call " << i;
    previous = std::move(id);
  }
}

TEST(NewEventId, CarriesTheCurrentUnixTimeInMilliseconds) {
  using namespace std::chrono;
  const auto before = duration_cast<milliseconds>(system_clock::now().time_since_epoch());
  const std::string id = new_event_id();
  const auto after = duration_cast<milliseconds>(system_clock::now().time_since_epoch());
  const std::string hex = id.substr(0, 8) + id.substr(9, 4);  // the first 48 bits
  const auto stamp = milliseconds(std::stoll(hex, nullptr, 16));
  EXPECT_GE(stamp, before);
  EXPECT_LE(stamp, after + 100ms);  // a monotonic counter may run a little ahead
}

TEST(NewEventId, ParentAndForkedChildNeverRepeatEachOther) {
  (void)new_event_id();  // the generator's state exists before fork()
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  constexpr int kIds = 200;
  const pid_t child = spawn_child([&] {
    ::close(fds[0]);
    std::string out;
    for (int i = 0; i < kIds; ++i) out += new_event_id() + "\n";
    return ::write(fds[1], out.data(), out.size()) == static_cast<ssize_t>(out.size())
               ? 0
               : 1;
  });
  ::close(fds[1]);
  std::set<std::string> ids;
  for (int i = 0; i < kIds; ++i) ids.insert(new_event_id());
  std::string from_child;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
    from_child.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  ASSERT_EQ(wait_child(child), 0);
  std::size_t child_ids = 0;
  for (std::size_t start = 0; start < from_child.size();) {
    const auto end = from_child.find('\n', start);
    const std::string id = from_child.substr(start, end - start);
    EXPECT_TRUE(ids.insert(id).second) << "child repeated the parent's id " << id;
    ++child_ids;
    start = end + 1;
  }
  EXPECT_EQ(child_ids, static_cast<std::size_t>(kIds));
}

}  // namespace
}  // namespace eventlite
