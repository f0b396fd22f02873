// Passwords in broker URLs reach nothing the library or the tool prints. Events are
// forwarded to a redis-server with requirepass and to a nats-server with a user and a
// password: with the right password, with a wrong one, and to a server that is down.
// Everything that comes out is kept (every log line at trace level, exception
// messages, dead letters, status and metrics; the tool's stdout and stderr when it
// runs until idle and until SIGTERM, and what `status` and `dead list` print after)
// and searched for each part of either password. The passwords hold '/' and '@' as
// they are, where a URL parser that splits at the wrong place leaks a part of one into
// an error.

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker_test_support.hpp"
#include "cli_tool.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/store.hpp"
#include "eventlite/subscriptions.hpp"
#ifdef EVENTLITE_TEST_REDIS
#include "eventlite/redis.hpp"
#include "redis_server.hpp"
#endif
#ifdef EVENTLITE_TEST_NATS
#include "eventlite/nats.hpp"
#include "nats_server.hpp"
#endif

namespace eventlite {
namespace {

const SinkContext kSomeStore{.store = {.id = "00000000-0000-4000-8000-000000000001"}};

using namespace eventlite::test;

struct Secret {
  std::string password;
  std::vector<std::string> parts;  // each one distinctive: found only if leaked
};
const Secret kRight{"Rt7kq/Zpx9w@Vbn5y", {"Rt7kq", "Zpx9w", "Vbn5y"}};
const Secret kWrong{"Wq3rm/Jyx8t@Hkp4u", {"Wq3rm", "Jyx8t", "Hkp4u"}};
constexpr std::size_t kEvents = 20;

// Everything that came out, with where it came from.
class Output {
 public:
  void add(std::string where, std::string text) {
    texts_.push_back({std::move(where), std::move(text)});
  }
  bool contains(std::string_view needle) const {
    for (const auto& [where, text] : texts_)
      if (text.find(needle) != std::string::npos) return true;
    return false;
  }
  // Fails the test for any part of either password in anything kept; and for a run
  // that kept nothing, which would pass without looking.
  void expect_no_password() const {
    std::size_t bytes = 0;
    for (const auto& [where, text] : texts_) {
      bytes += text.size();
      for (const Secret* s : {&kRight, &kWrong})
        for (const std::string& part : s->parts)
          EXPECT_EQ(text.find(part), std::string::npos)
              << where << " holds \"" << part << "\" of a password:\n"
              << text;
    }
    EXPECT_GT(bytes, 1000u) << "too little was kept to tell anything";
  }

 private:
  std::vector<std::pair<std::string, std::string>> texts_;
};

// A logger that keeps every line, at every level, for the test to read.
struct Capture {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100000);
  std::shared_ptr<spdlog::logger> logger = [this] {
    auto l = std::make_shared<spdlog::logger>("secrets", sink);
    l->set_level(spdlog::level::trace);
    return l;
  }();
  std::string text() const {
    std::string out;
    for (const std::string& line : sink->last_formatted()) out += line;
    return out;
  }
};

StoreOptions logged(const Capture& capture) {
  StoreOptions o = fast_options();
  o.logger = capture.logger;
  return o;
}

// What the library tells about `store`'s subscriptions: dead letters, status, the
// metrics of `processor`.
void keep_what_it_tells(const Store& store, Processor& processor, Output& out,
                        const std::string& what) {
  for (const DeadLetter& d : dead_letters(store))
    out.add(what + " dead letter", d.last_error);
  for (const SubscriptionStatus& s : status(store).subscriptions)
    if (s.sink) out.add(what + " status", s.sink->last_error);
  for (const SubscriptionMetrics& m : processor.metrics())
    out.add(what + " metrics", m.last_error);
}

// Forwards `store`'s events through `sink` until nothing is left to do.
void forward(Store& store, const std::shared_ptr<Sink>& sink, const Capture& capture,
             Output& out, const std::string& what) {
  ProcessorOptions options;
  options.logger = capture.logger;
  Processor processor(store, options);
  processor.sink("forward", sink, sink_options());
  processor.run_until_idle();
  keep_what_it_tells(store, processor, out, what);
}

// Forwards to a server that is not there until the status says why, then stops.
void forward_to_nothing(Store& store, const std::shared_ptr<Sink>& sink,
                        const Capture& capture, Output& out) {
  ProcessorOptions options;
  options.logger = capture.logger;
  options.checkpoint_interval = std::chrono::milliseconds(10);
  Processor processor(store, options);
  processor.sink("forward", sink, sink_options());
  processor.start();
  EXPECT_TRUE(wait_until(
      [&] {
        const auto s = status(store).subscriptions;
        return processor.metrics().at(0).failed >= 2 && !s.empty() && s[0].sink &&
               !s[0].sink->last_error.empty();
      },
      10s));
  keep_what_it_tells(store, processor, out, "server down");
  processor.stop();
  EXPECT_TRUE(dead_letters(store).empty());  // retried, not parked
}

// The message of what `f` throws ("" when it does not throw).
template <typename F>
std::string thrown_by(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return {};
}

// The tool run to its end: its status checked, its output kept.
void run_tool(const std::vector<std::string>& args, const TempDir& dir, int expected,
              Output& out, const std::string& what) {
  Tool tool(args, dir.path());
  const int status = tool.wait();
  out.add(what + " stdout", tool.out());
  out.add(what + " stderr", tool.err());
  EXPECT_EQ(status, expected) << what << ": " << tool.err();
}

// The tool run until `done(tool)`, then stopped with SIGTERM; its output kept.
template <typename Done>
void run_tool_until(const std::vector<std::string>& args, const TempDir& dir, Done done,
                    Output& out, const std::string& what) {
  Tool tool(args, dir.path());
  EXPECT_TRUE(wait_until([&] { return done(tool); }, 20s)) << what << ": " << tool.err();
  EXPECT_EQ(tool.signal(SIGTERM), 0) << what << ": " << tool.err();
  out.add(what + " stdout", tool.out());
  out.add(what + " stderr", tool.err());
}

// Whether the running tool has written `text` on its stderr.
bool says(const Tool& tool, std::string_view text) {
  return tool.err().find(text) != std::string::npos;
}

// What `status` and `dead list` print about `db`, for people and as JSON.
void keep_status_and_dead_list(const std::filesystem::path& db, const TempDir& dir,
                               Output& out) {
  const std::string path = db.string();
  run_tool({"status", path}, dir, 0, out, "status " + path);
  run_tool({"status", path, "--json"}, dir, 0, out, "status --json " + path);
  run_tool({"dead", "list", path}, dir, 0, out, "dead list " + path);
  run_tool({"dead", "list", path, "--json"}, dir, 0, out, "dead list --json " + path);
}

std::filesystem::path with_events(const TempDir& dir, const char* name) {
  Store store = Store::open(dir / name, fast_options());
  append_user_events(store, kEvents);
  return dir / name;
}

StoreOptions read_only() {
  StoreOptions o = fast_options();
  o.read_only = true;
  return o;
}

std::size_t dead_in(const std::filesystem::path& db) {
  const Store store = Store::open(db, read_only());
  return dead_letters(store).size();
}

Seq position_in(const std::filesystem::path& db) {
  const Store store = Store::open(db, read_only());
  const auto subs = status(store).subscriptions;
  return subs.empty() ? 0 : subs[0].position;
}

#ifdef EVENTLITE_TEST_REDIS
std::string redis_url(std::string_view user, const Secret& s, int port) {
  return "redis://" + std::string(user) + ":" + s.password +
         "@127.0.0.1:" + std::to_string(port);
}

std::shared_ptr<Sink> redis_sink(const std::string& url, const Capture& capture,
                                 const std::string& key = "events") {
  redis::SinkOptions o;
  o.url = url;
  o.key = key;
  o.timeout = std::chrono::milliseconds(1000);
  o.logger = capture.logger;
  return redis::make_sink(o);
}

TEST(Secrets, RedisSinkAndBridgeTellNoPasswordRightWrongOrServerDown) {
  RedisServer server(RedisServer::Options{.password = kRight.password});
  TempDir dir;
  Capture capture;
  Output out;
  const std::string right = redis_url("", kRight, server.port());
  const std::string wrong = redis_url("default", kWrong, server.port());
  {
    Store store = Store::open(dir / "right.db", logged(capture));
    append_user_events(store, kEvents);
    forward(store, redis_sink(right, capture), capture, out, "right password");
    RedisClient client = server.client();
    EXPECT_EQ(client.integer({"XLEN", "events"}), static_cast<long long>(kEvents));
  }
  {
    Store store = Store::open(dir / "wrong.db", logged(capture));
    append_user_events(store, kEvents);
    forward(store, redis_sink(wrong, capture), capture, out, "wrong password");
    const auto dead = dead_letters(store);
    ASSERT_EQ(dead.size(), kEvents);
    EXPECT_NE(dead[0].last_error.find("WRONGPASS"), std::string::npos)
        << dead[0].last_error;
  }
  {
    Store store = Store::open(dir / "down.db", logged(capture));
    append_user_events(store, kEvents);
    forward_to_nothing(store, redis_sink(redis_url("", kRight, free_port()), capture),
                       capture, out);
  }
  out.add("open() refused",
          thrown_by([&] { redis_sink(wrong, capture)->open(kSomeStore); }));
  for (const std::string& malformed : {right + "/notadb", right + "999999",
                                       "rediss://:" + kRight.password + "@127.0.0.1:1"})
    out.add("malformed URL", thrown_by([&] { redis_sink(malformed, capture); }));
  {
    Store store = Store::open(dir / "bridged.db", logged(capture));
    redis::BridgeOptions options;
    options.url = wrong;
    options.logger = capture.logger;
    redis::Bridge bridge(store, options);
    out.add("bridge step refused", thrown_by([&] { bridge.step(); }));
  }
  out.add("log", capture.text());

  // The URLs are named, redacted: the search below looked where they went.
  EXPECT_TRUE(out.contains("redis://:***@127.0.0.1")) << capture.text();
  EXPECT_TRUE(out.contains("redis://default:***@127.0.0.1")) << capture.text();
  out.expect_no_password();
}

TEST(Secrets, RedisForwardStatusAndDeadListPrintNoPassword) {
  RedisServer server(RedisServer::Options{.password = kRight.password});
  TempDir dir;
  Output out;
  const std::string right = redis_url("", kRight, server.port());
  const std::string wrong = redis_url("default", kWrong, server.port());
  RedisClient client = server.client();

  run_tool({"forward", with_events(dir, "right.db").string(), "--redis", right,
            "--until-idle"},
           dir, 0, out, "forward --until-idle, right password");
  EXPECT_EQ(client.integer({"XLEN", "events"}), static_cast<long long>(kEvents));
  run_tool_until(
      {"forward", with_events(dir, "running.db").string(), "--redis", right, "--key",
       "running"},
      dir,
      [&](const Tool& tool) {
        return says(tool, "SIGTERM stops") &&
               client.integer({"XLEN", "running"}) == static_cast<long long>(kEvents);
      },
      out, "forward, right password");

  const auto wrong_db = with_events(dir, "wrong.db");
  run_tool({"forward", wrong_db.string(), "--redis", wrong, "--until-idle"}, dir, 1, out,
           "forward --until-idle, wrong password");
  const auto wrong_running = with_events(dir, "wrong-running.db");
  run_tool_until(
      {"forward", wrong_running.string(), "--redis", wrong}, dir,
      [&](const Tool& tool) {
        // Parked, and logged so: the log is what is searched.
        return dead_in(wrong_running) == kEvents &&
               says(tool, "event dead: subscription=forward-redis seq=20");
      },
      out, "forward, wrong password");

  const auto down_db = with_events(dir, "down.db");
  run_tool({"forward", down_db.string(), "--redis", redis_url("", kRight, free_port()),
            "--until-idle", "--retry-for", "1"},
           dir, 1, out, "forward --until-idle, server down");
  run_tool({"bridge", with_events(dir, "bridge.db").string(), "--redis", wrong,
            "--until-idle"},
           dir, 1, out, "bridge --until-idle, wrong password");
  run_tool({"forward", wrong_db.string(), "--redis", right + "/x", "--until-idle"}, dir,
           1, out, "forward, malformed URL");

  for (const auto& db : {wrong_db, wrong_running, down_db})
    keep_status_and_dead_list(db, dir, out);
  EXPECT_TRUE(out.contains("redis://:***@127.0.0.1"));
  EXPECT_TRUE(out.contains("redis://default:***@127.0.0.1"));
  EXPECT_TRUE(out.contains("WRONGPASS"));  // the refusal is told, the password not
  out.expect_no_password();
}
#endif

#ifdef EVENTLITE_TEST_NATS
std::string nats_url(const Secret& s, int port) {
  return "nats://app:" + s.password + "@127.0.0.1:" + std::to_string(port);
}

std::shared_ptr<Sink> nats_sink(const std::string& url, const Capture& capture) {
  nats::SinkOptions o;
  o.url = url;
  o.jetstream = true;
  o.create_stream = true;
  o.timeout = std::chrono::milliseconds(1000);
  o.logger = capture.logger;
  return nats::make_sink(o);
}

TEST(Secrets, NatsSinkAndBridgeTellNoPasswordRightWrongOrServerDown) {
  NatsServer server(
      NatsServer::Options{.user = "app", .password = kRight.password, .port = 0});
  TempDir dir;
  Capture capture;
  Output out;
  const std::string right = nats_url(kRight, server.port());
  const std::string wrong = nats_url(kWrong, server.port());
  {
    Store store = Store::open(dir / "right.db", logged(capture));
    append_user_events(store, kEvents);
    forward(store, nats_sink(right, capture), capture, out, "right password");
    NatsConn conn = server.connect();
    EXPECT_EQ(stream_count(conn.get(), "EVENTS"), kEvents);
  }
  {
    Store store = Store::open(dir / "wrong.db", logged(capture));
    append_user_events(store, kEvents);
    forward(store, nats_sink(wrong, capture), capture, out, "wrong password");
    EXPECT_EQ(dead_letters(store).size(), kEvents);
  }
  {
    Store store = Store::open(dir / "down.db", logged(capture));
    append_user_events(store, kEvents);
    forward_to_nothing(store, nats_sink(nats_url(kRight, free_port()), capture), capture,
                       out);
  }
  out.add("open() refused",
          thrown_by([&] { nats_sink(wrong, capture)->open(kSomeStore); }));
  for (const std::string& malformed :
       {right + "0000000", "http://app:" + kRight.password + "@127.0.0.1:1",
        right + ",nats://app:" + kWrong.password + "@:1"})
    out.add("malformed URL", thrown_by([&] { nats_sink(malformed, capture); }));
  {
    Store store = Store::open(dir / "bridged.db", logged(capture));
    nats::BridgeOptions options;
    options.url = wrong;
    options.logger = capture.logger;
    nats::Bridge bridge(store, options);
    out.add("bridge step refused", thrown_by([&] { bridge.step(); }));
  }
  out.add("log", capture.text());

  EXPECT_TRUE(out.contains("nats://app:***@127.0.0.1")) << capture.text();
  out.expect_no_password();
}

TEST(Secrets, NatsForwardStatusAndDeadListPrintNoPassword) {
  NatsServer server(
      NatsServer::Options{.user = "app", .password = kRight.password, .port = 0});
  TempDir dir;
  Output out;
  const std::string right = nats_url(kRight, server.port());
  const std::string wrong = nats_url(kWrong, server.port());

  run_tool({"forward", with_events(dir, "right.db").string(), "--nats", right,
            "--jetstream", "--until-idle"},
           dir, 0, out, "forward --until-idle, right password");
  {
    NatsConn conn = server.connect();
    EXPECT_EQ(stream_count(conn.get(), "EVENTS"), kEvents);
  }
  // The same seqs: it reconciles with the stream and moves its checkpoint to the end.
  const auto running = with_events(dir, "running.db");
  run_tool_until(
      {"forward", running.string(), "--nats", right, "--jetstream"}, dir,
      [&](const Tool& tool) {
        return says(tool, "SIGTERM stops") &&
               position_in(running) == static_cast<Seq>(kEvents);
      },
      out, "forward, right password");

  const auto wrong_db = with_events(dir, "wrong.db");
  run_tool({"forward", wrong_db.string(), "--nats", wrong, "--jetstream", "--until-idle"},
           dir, 1, out, "forward --until-idle, wrong password");
  const auto wrong_running = with_events(dir, "wrong-running.db");
  run_tool_until(
      {"forward", wrong_running.string(), "--nats", wrong}, dir,
      [&](const Tool& tool) {
        return dead_in(wrong_running) == kEvents &&
               says(tool, "event dead: subscription=forward-nats seq=20");
      },
      out, "forward, wrong password");

  const auto down_db = with_events(dir, "down.db");
  run_tool({"forward", down_db.string(), "--nats", nats_url(kRight, free_port()),
            "--jetstream", "--until-idle", "--retry-for", "1"},
           dir, 1, out, "forward --until-idle, server down");
  run_tool(
      {"bridge", with_events(dir, "bridge.db").string(), "--nats", wrong, "--until-idle"},
      dir, 1, out, "bridge --until-idle, wrong password");
  run_tool({"forward", wrong_db.string(), "--nats", right + ":x", "--until-idle"}, dir, 1,
           out, "forward, malformed URL");

  for (const auto& db : {wrong_db, wrong_running, down_db})
    keep_status_and_dead_list(db, dir, out);
  EXPECT_TRUE(out.contains("nats://app:***@127.0.0.1"));
  out.expect_no_password();
}
#endif

}  // namespace
}  // namespace eventlite
