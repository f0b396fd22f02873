// docs/sqlite-shell.md, run: every SQL statement and every `sqlite3` command line on
// the page goes through the sqlite3 shell on a file the library wrote (events with
// correlation ids across two days, subscriptions with a retry, a dead letter and a
// held stream, leases, a snapshot, a rebuild under way), and each statement's rows
// are checked. A statement on the page without a check here fails, and so does a
// check whose statement left the page: the page cannot drift from the schema.

#include <functional>
#include <map>

#include "cli_fixture.hpp"
#include "eventlite/aggregate.hpp"
#include "eventlite/lease.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/rebuild.hpp"
#include "eventlite/store.hpp"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kDoc = EVENTLITE_SOURCE_DIR "/docs/sqlite-shell.md";
constexpr const char* kCreatedId = "0190f1c2-7a3b-7c4d-8e5f-000000000003";

// What the page holds: SQL statements (comments dropped, spaces collapsed), shell
// command lines, and the statements typed at a `sqlite>` prompt.
struct Page {
  std::vector<std::string> statements;
  std::vector<std::string> commands;
  std::vector<std::string> prompted;
};

std::string collapsed(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n' || c == '\t') c = ' ';
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

Page read_page() {
  std::ifstream in(kDoc);
  if (!in) throw std::runtime_error(std::string("cannot read ") + kDoc);
  Page page;
  std::string block;  // "" outside a fenced block, else its language ("-" for none)
  std::string statement;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("```", 0) == 0) {
      block = block.empty() ? (line.size() > 3 ? line.substr(3) : "-") : "";
      continue;
    }
    if (block == "sql") {
      if (const auto dash = line.find("--"); dash != std::string::npos) line.resize(dash);
      statement += line + ' ';
      const std::string s = collapsed(statement);
      if (!s.empty() && s.back() == ';') {
        page.statements.push_back(s);
        statement.clear();
      }
    } else if (block == "sh" && line.rfind("sqlite3 ", 0) == 0) {
      page.commands.push_back(line);
    } else if (block == "-" && line.rfind("sqlite> UPDATE", 0) == 0) {
      page.prompted.push_back(line.substr(8));
    } else if (block == "-" && line.rfind("sqlite> DELETE", 0) == 0) {
      page.prompted.push_back(line.substr(8));
    }
  }
  return page;
}

std::vector<json> column(const json& rows, const char* key) {
  std::vector<json> out;
  for (const auto& r : rows) out.push_back(r.at(key));
  return out;
}

class SqliteShellDoc : public CliTest {
 protected:
  fs::path dir() const { return file(""); }

  // The file, written by the library as an application would have.
  void write_file() {
    using namespace eventlite;
    owned_store = std::make_unique<Store>(
        Store::open(file("signup.db"), {.durability = Durability::normal}));
    Store& store = *owned_store;
    struct Row {
      const char* stream;
      const char* type;
      const char* time;
      json data;
      json metadata;
      std::string id = {};
    };
    const json created_by = {{"correlation_id", "signup-3"},
                             {"causation_id", kCreatedId}};
    const std::vector<Row> rows = {
        {"user-1",
         "UserCreated",
         "2026-11-23T10:00:01.000Z",
         {{"email", "a@example.com"}},
         {{"correlation_id", "signup-1"}}},
        {"user-2",
         "UserCreated",
         "2026-11-23T10:00:02.000Z",
         {{"email", "b@example.com"}},
         {{"correlation_id", "signup-2"}}},
        {"user-3",
         "UserCreated",
         "2026-11-23T10:00:03.000Z",
         {{"email", "c@example.com"}},
         {{"correlation_id", "signup-3"}},
         kCreatedId},
        {"user-1",
         "UserApproved",
         "2026-11-23T10:05:00.000Z",
         {{"by", "ann"}},
         {{"correlation_id", "signup-1"}}},
        {"user-2",
         "UserRejected",
         "2026-11-23T10:06:00.000Z",
         {{"by", "ann"}, {"reason", "email bounced"}},
         {{"correlation_id", "signup-2"}}},
        {"user-3",
         "UserNoted",
         "2026-11-23T11:30:00.000Z",
         {{"note", "called"}},
         created_by},
        {"user-3",
         "UserApproved",
         "2026-11-24T09:00:00.000Z",
         {{"by", "bob"}},
         created_by},
        {"user-4", "UserCreated", "2026-11-24T09:30:00.000Z", json::object(),
         json::object()},
    };
    for (const Row& r : rows) {
      NewEvent e = make_event(r.type, r.data, r.metadata);
      e.time = r.time;
      e.id = r.id;
      store.append(r.stream, e);
    }
    processor = std::make_unique<Processor>(store, ProcessorOptions{.lease_time = 60s});
    // mail: user-3's first event fails for good and holds its stream.
    processor->subscribe(
        "mail",
        [](const Context& c) {
          if (c.event().seq == 3) throw std::runtime_error("smtp: 550 no such user");
        },
        {.retry = RetryPolicy{.max_attempts = 1}, .on_dead = OnDead::hold});
    // sms: a rejection fails and is retried in an hour.
    processor->subscribe("sms",
                         [](const Context& c) {
                           if (c.event().type == "UserRejected")
                             throw std::runtime_error("gateway timeout");
                         },
                         {.retry = RetryPolicy{.base = 1h, .jitter = 0}});
    processor->subscribe("audit", [](const Context&) {});
    processor->run_until_idle();  // the leases stay held while `processor` lives

    // A snapshot of user-1, and a rebuild of audit that stopped at seq 5.
    const Aggregate<int> moves{
        .name = "user", .apply = [](int& n, const Event&) { ++n; }, .snapshot_every = 1};
    load(store, moves, "user-1");
    EXPECT_THROW(rebuild_with_shadow(store, "audit",
                                     {.create = [](Transaction&) {},
                                      .handler =
                                          [](const Context& c) {
                                            if (c.event().seq == 5)
                                              throw std::runtime_error("wrong");
                                          },
                                      .swap = [](Transaction&) {}},
                                     {.batch_size = 2}),
                 std::runtime_error);
  }

  json rows_of(const std::string& statement) {
    Result r = run_program(kSqliteShell, {"-readonly", "-json", "signup.db", statement},
                           {}, {}, dir());
    EXPECT_EQ(r.status, 0) << statement << ": " << r.err;
    EXPECT_EQ(r.err, "") << statement;
    return r.out.empty() ? json::array() : json::parse(r.out);
  }

  std::unique_ptr<eventlite::Store> owned_store;
  std::unique_ptr<eventlite::Processor> processor;
};

// Each statement of the page, as read_page() collapses it, and what its rows must be.
std::map<std::string, std::function<void(const json&)>> checks() {
  using V = std::vector<json>;
  return {
      {"SELECT seq, stream, version, type, time FROM eventlite_events ORDER BY seq DESC "
       "LIMIT 20;",
       [](const json& rows) {
         EXPECT_EQ(column(rows, "seq"), (V{8, 7, 6, 5, 4, 3, 2, 1}));
       }},
      {"SELECT version, type, time, data FROM eventlite_events WHERE stream = 'user-3' "
       "ORDER BY version;",
       [](const json& rows) {
         EXPECT_EQ(column(rows, "version"), (V{1, 2, 3}));
         EXPECT_EQ(column(rows, "type"), (V{"UserCreated", "UserNoted", "UserApproved"}));
         EXPECT_EQ(json::parse(rows[1].at("data").get<std::string>()).at("note"),
                   "called");
       }},
      {"SELECT * FROM eventlite_streams ORDER BY last_seq DESC;",
       [](const json& rows) {
         EXPECT_EQ(column(rows, "stream"), (V{"user-4", "user-3", "user-2", "user-1"}));
         EXPECT_EQ(column(rows, "version"), (V{1, 3, 2, 2}));
       }},
      {"SELECT type, count(*) AS events FROM eventlite_events GROUP BY type ORDER BY "
       "events "
       "DESC;",
       [](const json& rows) {
         ASSERT_EQ(rows.size(), 4u);
         EXPECT_EQ(rows[0], (json{{"type", "UserCreated"}, {"events", 4}}));
         EXPECT_EQ(rows[1], (json{{"type", "UserApproved"}, {"events", 2}}));
       }},
      {"SELECT stream, data->>'by' AS reviewer, data->>'reason' AS reason FROM "
       "eventlite_events WHERE type = 'UserRejected';",
       [](const json& rows) {
         EXPECT_EQ(rows, json::parse(R"([{"stream":"user-2","reviewer":"ann",
                                          "reason":"email bounced"}])"));
       }},
      {"SELECT seq, stream, type, causation_id FROM eventlite_correlations WHERE "
       "correlation_id = 'signup-3' ORDER BY seq;",
       [](const json& rows) {
         EXPECT_EQ(column(rows, "seq"), (V{3, 6, 7}));
         EXPECT_EQ(column(rows, "causation_id"), (V{nullptr, kCreatedId, kCreatedId}));
       }},
      {"SELECT seq, stream, type, time FROM eventlite_events WHERE time >= "
       "'2026-11-23T10:00' AND time < '2026-11-23T11:00' ORDER BY seq;",
       [](const json& rows) {
         EXPECT_EQ(column(rows, "seq"), (V{1, 2, 3, 4, 5}));
       }},
      {"SELECT substr(time, 1, 13) AS hour, count(*) AS events FROM eventlite_events "
       "GROUP "
       "BY hour;",
       [](const json& rows) {
         EXPECT_EQ(column(rows, "hour"),
                   (V{"2026-11-23T10", "2026-11-23T11", "2026-11-24T09"}));
         EXPECT_EQ(column(rows, "events"), (V{5, 1, 2}));
       }},
      {"SELECT day, type, events FROM eventlite_daily_counts ORDER BY day, type;",
       [](const json& rows) {
         EXPECT_EQ(rows, json::parse(R"([
           {"day":"2026-11-23","type":"UserApproved","events":1},
           {"day":"2026-11-23","type":"UserCreated","events":3},
           {"day":"2026-11-23","type":"UserNoted","events":1},
           {"day":"2026-11-23","type":"UserRejected","events":1},
           {"day":"2026-11-24","type":"UserApproved","events":1},
           {"day":"2026-11-24","type":"UserCreated","events":1}])"));
       }},
      {"SELECT * FROM eventlite_events WHERE id = "
       "'0190f1c2-7a3b-7c4d-8e5f-000000000003';",
       [](const json& rows) {
         ASSERT_EQ(rows.size(), 1u);
         EXPECT_EQ(rows[0].at("seq"), 3);
         EXPECT_EQ(rows[0].at("time"), "2026-11-23T10:00:03.000Z");
       }},
      {"SELECT seq, stream, type FROM eventlite_events WHERE seq BETWEEN 3 AND 6;",
       [](const json& rows) {
         EXPECT_EQ(column(rows, "seq"), (V{3, 4, 5, 6}));
       }},
      {"SELECT name, position, (SELECT coalesce(max(seq), 0) FROM eventlite_events) - "
       "position AS lag, updated FROM eventlite_subscriptions ORDER BY lag DESC;",
       [](const json& rows) {
         EXPECT_EQ(rows.size(), 3u);
         for (const auto& r : rows) {
           EXPECT_EQ(r.at("position"), 8) << r;
           EXPECT_EQ(r.at("lag"), 0) << r;
         }
       }},
      {"SELECT version FROM eventlite_schema;",
       [](const json& rows) {
         EXPECT_EQ(
             rows,
             json::parse(R"([{"version":)" +
                         std::to_string(eventlite::supported_schema_version()) + "}]"));
       }},
      {"SELECT id, name FROM eventlite_store;",
       [](const json& rows) {
         ASSERT_EQ(rows.size(), 1u);
         EXPECT_EQ(rows[0].at("id").get<std::string>().size(), 36u) << rows;
         EXPECT_TRUE(rows[0].at("name").is_null()) << rows;
       }},
      {"PRAGMA journal_mode;",
       [](const json& rows) {
         EXPECT_EQ(rows, json::parse(R"([{"journal_mode":"wal"}])"));
       }},
      {"PRAGMA quick_check;",
       [](const json& rows) {
         EXPECT_EQ(rows, json::parse(R"([{"quick_check":"ok"}])"));
       }},
      {"SELECT * FROM eventlite_pending;",
       [](const json& rows) {
         std::map<std::string, json> by_name;
         for (const auto& r : rows) by_name[r.at("subscription")] = r;
         EXPECT_EQ(by_name.at("mail").at("dead"), 1);
         EXPECT_EQ(by_name.at("mail").at("retrying"), 2);  // waiting behind it
         EXPECT_EQ(by_name.at("mail").at("held"), 1);
         EXPECT_EQ(by_name.at("sms").at("retrying"), 1);
         EXPECT_EQ(by_name.at("audit").at("lag"), 0);
       }},
      {"SELECT * FROM eventlite_dead_letters;",
       [](const json& rows) {
         ASSERT_EQ(rows.size(), 1u);
         EXPECT_EQ(rows[0].at("subscription"), "mail");
         EXPECT_EQ(rows[0].at("seq"), 3);
         EXPECT_EQ(rows[0].at("last_error"), "smtp: 550 no such user");
       }},
      {"SELECT * FROM eventlite_held_streams;",
       [](const json& rows) {
         ASSERT_EQ(rows.size(), 1u);
         EXPECT_EQ(rows[0].at("stream"), "user-3");
         EXPECT_EQ(rows[0].at("dead_seq"), 3);
         EXPECT_EQ(rows[0].at("waiting"), 2);
         EXPECT_GE(rows[0].at("held_seconds").get<int>(), 0);
         EXPECT_LT(rows[0].at("held_seconds").get<int>(), 600);
       }},
      {"SELECT subscription, seq, attempts, next_attempt, last_error FROM "
       "eventlite_deliveries WHERE status = 'retrying';",
       [](const json& rows) {
         ASSERT_EQ(rows.size(), 1u);
         EXPECT_EQ(rows[0].at("subscription"), "sms");
         EXPECT_EQ(rows[0].at("seq"), 5);
         EXPECT_EQ(rows[0].at("attempts"), 1);
         EXPECT_EQ(rows[0].at("last_error"), "gateway timeout");
       }},
      {"SELECT name, kind, owner, state, seconds_left FROM eventlite_lease_status ORDER "
       "BY "
       "name;",
       [](const json& rows) {
         EXPECT_EQ(column(rows, "name"), (V{"audit", "mail", "rebuild:audit", "sms"}));
         for (const auto& r : rows) {
           const bool rebuild = r.at("name") == "rebuild:audit";
           EXPECT_EQ(r.at("kind"), rebuild ? "rebuild" : "subscription") << r;
           EXPECT_EQ(r.at("state"), rebuild ? "free" : "held") << r;
           if (!rebuild) {
             EXPECT_GT(r.at("seconds_left").get<int>(), 0) << r;
             EXPECT_LE(r.at("seconds_left").get<int>(), 60) << r;
           }
         }
       }},
      {"SELECT subscription, from_seq, position, updated FROM eventlite_rebuilds;",
       [](const json& rows) {
         ASSERT_EQ(rows.size(), 1u);
         EXPECT_EQ(rows[0].at("subscription"), "audit");
         EXPECT_EQ(rows[0].at("from_seq"), 1);
         EXPECT_EQ(rows[0].at("position"), 4);
       }},
      {"SELECT name, stream, version, schema_version FROM eventlite_snapshots ORDER BY "
       "name, stream;",
       [](const json& rows) {
         EXPECT_EQ(rows, json::parse(R"([{"name":"user","stream":"user-1","version":2,
                                          "schema_version":1}])"));
       }},
  };
}

TEST_F(SqliteShellDoc, EveryQueryOnThePageGivesTheRowsItDescribes) {
  ASSERT_STRNE(kSqliteShell, "") << "the sqlite3 shell is needed: ./run installs it";
  write_file();
  const Page page = read_page();
  auto expected = checks();
  std::set<std::string> seen;
  for (const std::string& statement : page.statements) {
    SCOPED_TRACE(statement);
    const auto it = expected.find(statement);
    if (it == expected.end()) {
      ADD_FAILURE() << "a query on the page has no check here: \"" << statement << "\"";
      continue;
    }
    seen.insert(statement);
    it->second(rows_of(statement));
  }
  for (const auto& [statement, check] : expected)
    EXPECT_TRUE(seen.count(statement)) << "no longer on the page: " << statement;
}

TEST_F(SqliteShellDoc, EveryShellCommandOnThePageRunsAndItsCopiesOpen) {
  ASSERT_STRNE(kSqliteShell, "") << "the sqlite3 shell is needed: ./run installs it";
  write_file();
  const Page page = read_page();
  ASSERT_GE(page.commands.size(), 5u);
  for (const std::string& command : page.commands) {
    SCOPED_TRACE(command);
    // The page's `sqlite3` is the one found at configure time.
    const std::string line = std::string(kSqliteShell) + command.substr(7);
    Result r = run_program("/bin/sh", {"-c", line + " < /dev/null"}, {}, {}, dir());
    EXPECT_EQ(r.status, 0) << r.err;
    if (command.find("eventlite_streams") != std::string::npos) {
      EXPECT_NE(r.out.find("user-4"), std::string::npos) << r.out;
    }
  }
  EXPECT_EQ(lines(read_bytes(file("events.csv"))).size(), 9u);  // a header and 8 events
  for (const char* copy : {"signup-backup.db", "signup-compact.db"}) {
    SCOPED_TRACE(copy);
    auto opened = eventlite::Store::open(file(copy), {.read_only = true});
    EXPECT_EQ(opened.head(), 8);
  }
  // The refused changes, typed at a writable shell.
  ASSERT_EQ(page.prompted.size(), 2u);
  for (const std::string& change : page.prompted) {
    SCOPED_TRACE(change);
    Result r = run_program(kSqliteShell, {"signup.db", change}, {}, {}, dir());
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.err.find("eventlite_events is append-only"), std::string::npos) << r.err;
  }
  EXPECT_EQ(rows_of("SELECT type FROM eventlite_events WHERE seq = 5")[0].at("type"),
            "UserRejected");
}

}  // namespace
