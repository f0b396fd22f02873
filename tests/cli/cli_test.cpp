// Tests of the `eventlite` tool: each runs the built binary in a fresh temp dir and
// checks its stdout, stderr, exit status and the effect on the file, inspected with
// SQLite's C API (or the sqlite3 shell) rather than through the library.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "cli_fixture.hpp"
#include "eventlite/store.hpp"

namespace {

using Cli = CliTest;
using Init = CliTest;
using Append = CliTest;
using AppendJsonl = CliTest;
using Read = CliTest;
using Streams = CliTest;
using Verify = CliTest;
using Status = CliTest;
using Dead = CliTest;
using Rewind = CliTest;
using SqliteShell = CliTest;

// --- the command line ---------------------------------------------------------------

TEST_F(Cli, HelpExplainsEveryCommandAndOption) {
  Result top = run({"--help"});
  EXPECT_EQ(top.status, 0);
  for (const char* word : {"init", "append", "read", "streams", "verify", "status",
                           "dead", "rewind", "Exit status"}) {
    EXPECT_NE(top.out.find(word), std::string::npos) << word;
  }
  const std::vector<std::pair<std::string, std::vector<std::string>>> commands = {
      {"init", {"DB"}},
      {"append",
       {"DB", "STREAM", "TYPE", "DATA", "stdin", "--expect", "any|none|N", "--id",
        "--metadata", "--jsonl"}},
      {"read", {"DB", "--stream", "--type", "--from", "inclusive", "--limit"}},
      {"streams", {"DB", "--json"}},
      {"verify", {"DB", "ok"}},
      {"status", {"DB", "--json", "lag", "lease"}},
      {"dead", {"list", "retry", "discard"}},
      {"dead list", {"DB", "--subscription", "--json"}},
      {"dead retry", {"DB", "--subscription", "--seq", "--all"}},
      {"dead discard", {"DB", "--subscription", "--seq", "--all"}},
      {"rewind", {"DB", "NAME", "--from"}},
  };
  for (const auto& [command, words] : commands) {
    std::vector<std::string> args;
    std::istringstream split(command);
    for (std::string word; split >> word;) args.push_back(word);
    args.push_back("--help");
    Result help = run(args);
    EXPECT_EQ(help.status, 0) << command;
    for (const std::string& word : words) {
      EXPECT_NE(help.out.find(word), std::string::npos) << command << ": " << word;
    }
  }
}

TEST_F(Cli, UsageErrorsExitTwoWithOneLineAndChangeNothing) {
  init();
  const std::string jsonl = file("batch.jsonl").string();
  write_bytes(jsonl, R"({"stream":"s","type":"T","data":{}})"
                     "\n");
  const std::vector<std::vector<std::string>> usage_errors = {
      {},
      {"bogus", db()},
      {"append"},
      {"append", db()},
      {"append", db(), "s"},
      {"append", db(), "s", "T", "{}", "extra"},
      {"append", db(), "s", "T", "--expect", "banana"},
      {"append", db(), "s", "T", "--expect", "-1"},
      {"append", db(), "s", "--jsonl", jsonl},
      {"append", db(), "--jsonl", jsonl, "--expect", "1"},
      {"read", db(), "--limit", "0"},
      {"read", db(), "--from", "abc"},
      {"streams"},
      {"streams", db(), "--bogus"},
      {"init", db(), "extra"},
  };
  for (const auto& args : usage_errors) {
    SCOPED_TRACE(joined(args));
    Result result = run(args);
    EXPECT_EQ(result.status, 2);
    EXPECT_EQ(result.out, "");
    expect_one_error_line(result);
  }
  EXPECT_EQ(event_count(db()), 0);
}

// A usage error quotes what was typed; a broker URL typed in the wrong place is
// quoted with its password hidden, whatever the password holds.
TEST_F(Cli, UsageErrorsQuoteNoUrlsPassword) {
  init();
  const struct {
    std::vector<std::string> args;
    std::string shown;
  } cases[] = {
      {{"forward", db(), "redis://:Pw1x@h:1"}, "redis://:***@h:1"},
      {{"forward", db(), "--redis", "redis://h:1", "nats://app:Pw1x/y@z@h:2"},
       "nats://app:***@h:2"},
      {{"bridge", db(), "--nats", "nats://h", "app:Pw1x@h"}, "app:***@h"},
      {{"bridge", db(), "--nats", "nats://h", "x", "\"nats://T0k-Pw1x@h\""},
       "\"nats://***@h\""},
      {{"redis://app:Pw1x@h:1"}, "redis://app:***@h:1"},
      {{"forward", db(), "--redis", "redis://h", "--maxlen", "tls://Pw1x@h"},
       "tls://***@h"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(joined(c.args));
    Result result = run(c.args);
    EXPECT_EQ(result.status, 2);
    expect_one_error_line(result);
    EXPECT_NE(result.err.find(c.shown), std::string::npos) << result.err;
    EXPECT_EQ(result.err.find("Pw1x"), std::string::npos) << result.err;
  }
}

TEST_F(Cli, SubscriptionUsageErrorsExitTwoWithOneLineAndChangeNothing) {
  seed_subscriptions();
  const std::string deliveries_before = deliveries();
  const std::string positions_before = positions();
  const std::vector<std::vector<std::string>> usage_errors = {
      {"status"},
      {"status", db(), "--bogus"},
      {"dead"},
      {"dead", db()},
      {"dead", "bogus", db()},
      {"dead", "list"},
      {"dead", "list", db(), "--subscription"},
      {"dead", "retry", db(), "--subscription", "mail"},
      {"dead", "retry", db(), "--subscription", "mail", "--seq", "1", "--all"},
      {"dead", "retry", db(), "--subscription", "mail", "--seq", "0"},
      {"dead", "retry", db(), "--subscription", "mail", "--seq", "x"},
      {"dead", "retry", db(), "--all"},
      {"dead", "discard", db(), "--subscription", "mail"},
      {"dead", "discard", db(), "--subscription", "mail", "--all", "--seq", "3"},
      {"dead", "discard", db(), "--all"},
      // Given, but not all: without seqs that is nothing to do, not everything.
      {"dead", "retry", db(), "--subscription", "mail", "--all=false"},
      {"dead", "discard", db(), "--subscription", "mail", "--all=false"},
      {"rewind", db()},
      {"rewind", db(), "mail"},
      {"rewind", db(), "mail", "--from", "0"},
      {"rewind", db(), "mail", "--from", "-1"},
      {"rewind", db(), "mail", "--from", "abc"},
  };
  for (const auto& args : usage_errors) {
    SCOPED_TRACE(joined(args));
    Result result = run(args);
    EXPECT_EQ(result.status, 2);
    EXPECT_EQ(result.out, "");
    expect_one_error_line(result);
  }
  Result both =
      run({"dead", "retry", db(), "--subscription", "mail", "--seq", "1", "--all"});
  EXPECT_NE(both.err.find("`eventlite dead retry --help`"), std::string::npos)
      << both.err;
  EXPECT_EQ(deliveries(), deliveries_before);
  EXPECT_EQ(positions(), positions_before);
}

// Every command that opens DB, each once (init first when `with_init`): the
// failure tests run them all on a file they must leave as it was.
std::vector<std::vector<std::string>> commands_on_a_file(const std::string& db,
                                                         bool with_init) {
  std::vector<std::vector<std::string>> commands;
  if (with_init) commands.push_back({"init", db});
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"append", db, "s", "T"},
           {"append", db, "--jsonl", "-"},
           {"read", db},
           {"streams", db},
           {"verify", db},
           {"status", db},
           {"status", db, "--json"},
           {"dead", "list", db},
           {"dead", "retry", db, "--subscription", "mail", "--all"},
           {"dead", "discard", db, "--subscription", "mail", "--seq", "1"},
           {"rewind", db, "mail", "--from", "1"},
       })
    commands.push_back(std::move(args));
  return commands;
}

TEST_F(Cli, CommandsOtherThanInitOnMissingFileFailAndCreateNothing) {
  for (const auto& args : commands_on_a_file(db(), false)) {
    SCOPED_TRACE(joined(args));
    Result result = run_refused(args);
    EXPECT_NE(result.err.find("eventlite init"), std::string::npos) << result.err;
    EXPECT_TRUE(files().empty());
  }
}

TEST_F(Cli, DirectoryAsDbFailsWithClearMessage) {
  fs::create_directory(db());
  for (const char* command : {"init", "read", "streams", "verify", "status"}) {
    SCOPED_TRACE(command);
    Result result = run({command, db()});
    EXPECT_EQ(result.status, 1);
    expect_one_error_line(result);
    EXPECT_NE(result.err.find("is a directory"), std::string::npos) << result.err;
  }
  EXPECT_TRUE(fs::is_empty(db()));
}

TEST_F(Cli, ReadingCommandsLeaveTheDatabaseFileByteForByte) {
  init();
  append_jsonl(R"({"stream":"a","type":"T","data":{}})"
               "\n");
  exec_sql(db(),
           "INSERT INTO eventlite_subscriptions (name, position, created, updated) "
           "VALUES ('mail', 0, 'c', 'u');"
           "INSERT INTO eventlite_deliveries (subscription, seq, stream, status, "
           "attempts, updated) VALUES ('mail', 1, 'a', 'dead', 5, 'u')");
  const std::string bytes = read_bytes(db());
  const std::vector<std::vector<std::string>> commands = {
      {"read", db()},   {"streams", db()},          {"verify", db()},
      {"status", db()}, {"status", db(), "--json"}, {"dead", "list", db()},
  };
  for (const auto& args : commands) {
    SCOPED_TRACE(joined(args));
    EXPECT_EQ(run(args).status, 0);
    EXPECT_EQ(read_bytes(db()), bytes);
  }
}

TEST_F(Cli, CommandsOnNonSqliteFileFailAndLeaveItByteForByte) {
  const std::string bytes = random_bytes(8192);
  write_bytes(db(), bytes);
  for (const auto& args : commands_on_a_file(db(), true)) {
    SCOPED_TRACE(joined(args));
    Result result = run_refused(args);
    EXPECT_EQ(read_bytes(db()), bytes);
    EXPECT_EQ(files(), std::set<std::string>{"events.db"});
  }
}

TEST_F(Cli, CommandsOnUninitialisedAppDatabaseFailAndLeaveItByteForByte) {
  create_app_database(db());
  const std::string bytes = read_bytes(db());
  for (const auto& args : commands_on_a_file(db(), false)) {
    SCOPED_TRACE(joined(args));
    Result result = run_refused(args);
    EXPECT_NE(result.err.find("eventlite init"), std::string::npos) << result.err;
    EXPECT_EQ(read_bytes(db()), bytes);
    EXPECT_EQ(files(), std::set<std::string>{"events.db"});
  }
}

// --- init ---------------------------------------------------------------------------

TEST_F(Init, CreatesOwnerOnlyFileWithEventliteTables) {
  Result result = run({"init", db()});
  ASSERT_EQ(result.status, 0) << result.err;
  const std::string version = std::to_string(eventlite::supported_schema_version());
  EXPECT_NE(result.out.find("schema version " + version), std::string::npos)
      << result.out;
  EXPECT_EQ(query(db(), "SELECT version FROM eventlite_schema"), version);
  EXPECT_EQ(event_count(db()), 0);
  EXPECT_EQ(fs::status(db()).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(Init, NameNamesTheStoreKeepsItsIdAndStatusShowsBoth) {
  Result first = run({"init", db()});
  ASSERT_EQ(first.status, 0) << first.err;
  const std::string id = query(db(), "SELECT id FROM eventlite_store");
  EXPECT_EQ(id.size(), 36u);
  EXPECT_NE(first.out.find("store " + id), std::string::npos) << first.out;
  Result named = run({"init", db(), "--name", "billing"});
  ASSERT_EQ(named.status, 0) << named.err;
  EXPECT_NE(named.out.find("store " + id + " (billing)"), std::string::npos) << named.out;
  Result renamed = run({"init", db(), "--name", "billing-eu"});
  ASSERT_EQ(renamed.status, 0) << renamed.err;
  EXPECT_EQ(query(db(), "SELECT id FROM eventlite_store"), id);
  Result table = run({"status", db()});
  EXPECT_EQ(lines(table.out).at(0), "store " + id + " (billing-eu)");
  const auto json = nlohmann::ordered_json::parse(run({"status", db(), "--json"}).out);
  EXPECT_EQ(json.at("store"), nlohmann::ordered_json::parse(R"({"id":")" + id +
                                                            R"(","name":"billing-eu"})"));
}

TEST_F(Init, AMalformedNameIsAUsageErrorAndChangesNothing) {
  init();
  const std::string id = query(db(), "SELECT id FROM eventlite_store");
  const std::vector<std::string> bads = {"has.dot", "_x", "a b", std::string(65, 'n')};
  for (const std::string& bad : bads) {
    Result result = run({"init", db(), "--name", bad});
    EXPECT_EQ(result.status, 2) << bad << ": " << result.err;
    EXPECT_NE(result.err.find("--name"), std::string::npos) << result.err;
  }
  EXPECT_EQ(query(db(), "SELECT coalesce(name, 'none') FROM eventlite_store"), "none");
  EXPECT_EQ(query(db(), "SELECT id FROM eventlite_store"), id);
}

TEST_F(Init, IsIdempotentAndKeepsEvents) {
  init();
  ASSERT_EQ(run({"append", db(), "s", "T", R"({"n":1})"}).status, 0);
  for (int i = 0; i < 2; ++i) {
    Result again = run({"init", db()});
    EXPECT_EQ(again.status, 0) << again.err;
  }
  EXPECT_EQ(event_count(db()), 1);
  EXPECT_EQ(query(db(), "SELECT count(*) FROM eventlite_schema"), "1");
  EXPECT_EQ(query(db(), "SELECT data FROM eventlite_events"), R"({"n":1})");
}

TEST_F(Init, AddsTablesToAppDatabaseAndLeavesItsTablesAlone) {
  create_app_database(db());
  const std::string schema_before = query(
      db(), "SELECT group_concat(sql, ';') FROM sqlite_master WHERE name = 'users'");
  Result result = run({"init", db()});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(
      query(db(),
            "SELECT group_concat(name, ',') FROM (SELECT name FROM users ORDER BY id)"),
      "ada,grace,barbara");
  EXPECT_EQ(
      query(db(),
            "SELECT group_concat(sql, ';') FROM sqlite_master WHERE name = 'users'"),
      schema_before);
  EXPECT_EQ(query(db(), "PRAGMA user_version"), "7");
  EXPECT_EQ(
      query(db(), "SELECT count(*) FROM sqlite_master WHERE name = 'eventlite_events'"),
      "1");
  EXPECT_EQ(query(db(),
                  "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                  "name NOT LIKE 'eventlite_%' AND name NOT LIKE 'sqlite_%'"),
            "1");
  // The application's database now takes events.
  EXPECT_EQ(run({"append", db(), "user-1", "UserCreated"}).out, "1\n");
}

// --- append -------------------------------------------------------------------------

TEST_F(Append, PrintsNewSeqAndStoresEvent) {
  init();
  Result first =
      run({"append", db(), "user-42", "UserCreated", R"({"name": "Ada",  "age": 36})",
           "--metadata", R"({"user": "admin"})"});
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_EQ(first.out, "1\n");
  EXPECT_EQ(first.err, "");
  Result second = run({"append", db(), "user-42", "UserApproved"});
  ASSERT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(second.out, "2\n");

  EXPECT_EQ(
      query(db(),
            "SELECT stream || ' ' || version || ' ' || type || ' ' || data || ' ' || "
            "metadata FROM eventlite_events WHERE seq = 1"),
      R"(user-42 1 UserCreated {"name": "Ada",  "age": 36} {"user": "admin"})");
  // DATA and --metadata default to {}.
  EXPECT_EQ(
      query(db(),
            "SELECT version || ' ' || data || ' ' || metadata FROM eventlite_events "
            "WHERE seq = 2"),
      "2 {} {}");
}

TEST_F(Append, DashReadsDataFromStdin) {
  init();
  Result result =
      run({"append", db(), "s", "T", "-"}, "\n {\"b\": 1,\n \"a\": [1, 2]}\n");
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out, "1\n");
  // As given, without the white space around it.
  EXPECT_EQ(query(db(), "SELECT data FROM eventlite_events"),
            "{\"b\": 1,\n \"a\": [1, 2]}");
  // The envelope stays one line.
  Result read = run({"read", db()});
  EXPECT_EQ(lines(read.out).size(), 1u) << read.out;
  EXPECT_NE(read.out.find(R"("data":{"b": 1,  "a": [1, 2]})"), std::string::npos)
      << read.out;
}

TEST_F(Append, SameIdIsIdempotentAndOtherContentFails) {
  init();
  const std::string id = "0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d";
  Result first = run({"append", db(), "s", "T", R"({"n":1})", "--id", id});
  ASSERT_EQ(first.status, 0) << first.err;
  Result retry = run({"append", db(), "s", "T", R"({"n":1})", "--id", id});
  EXPECT_EQ(retry.status, 0) << retry.err;
  EXPECT_EQ(retry.out, first.out);
  Result other = run({"append", db(), "s", "T", R"({"n":2})", "--id", id});
  EXPECT_EQ(other.status, 1);
  expect_one_error_line(other);
  EXPECT_EQ(event_count(db()), 1);
  EXPECT_EQ(query(db(), "SELECT id FROM eventlite_events"), id);
}

TEST_F(Append, ExpectConflictExitsThreeAndWritesNothing) {
  init();
  ASSERT_EQ(run({"append", db(), "s", "T"}).status, 0);
  for (const char* expect : {"none", "0", "2", "7"}) {
    SCOPED_TRACE(expect);
    Result result = run({"append", db(), "s", "T", "--expect", expect});
    EXPECT_EQ(result.status, 3);
    EXPECT_EQ(result.out, "");
    expect_one_error_line(result);
    EXPECT_NE(result.err.find("version conflict"), std::string::npos) << result.err;
  }
  EXPECT_EQ(event_count(db()), 1);

  EXPECT_EQ(run({"append", db(), "s", "T", "--expect", "1"}).out, "2\n");
  EXPECT_EQ(run({"append", db(), "s", "T", "--expect", "any"}).out, "3\n");
  EXPECT_EQ(run({"append", db(), "new", "T", "--expect", "none"}).out, "4\n");
}

TEST_F(Append, MalformedDataOrMetadataFailsAndWritesNothing) {
  init();
  const std::vector<std::vector<std::string>> bad = {
      {"append", db(), "s", "T", "{\"a\":"},
      {"append", db(), "s", "T", "{}", "--metadata", "{user}"},
      {"append", db(), "s", "T", "{}", "--metadata", "[1, 2]"},
      {"append", db(), "s", "T", "-"},
      {"append", db(), "", "T"},
      {"append", db(), "s", ""},
  };
  for (const auto& args : bad) {
    SCOPED_TRACE(joined(args));
    Result result = run(args, "not json\n");
    EXPECT_EQ(result.status, 1);
    expect_one_error_line(result);
  }
  // Each error names the argument the user wrote.
  EXPECT_EQ(run(bad[0]).err.rfind("eventlite: DATA: ", 0), 0u) << run(bad[0]).err;
  EXPECT_EQ(run(bad[1]).err.rfind("eventlite: --metadata: ", 0), 0u) << run(bad[1]).err;
  EXPECT_EQ(run(bad[3], "not json\n").err.rfind("eventlite: the data on stdin: ", 0), 0u);
  EXPECT_EQ(run(bad[4]).err.rfind("eventlite: STREAM: ", 0), 0u) << run(bad[4]).err;
  EXPECT_EQ(run(bad[5]).err.rfind("eventlite: TYPE: ", 0), 0u) << run(bad[5]).err;
  EXPECT_EQ(event_count(db()), 0);
}

// --- append --jsonl -----------------------------------------------------------------

TEST_F(AppendJsonl, AppendsEveryLineAndPrintsOneSeqEach) {
  init();
  const std::string path = file("batch.jsonl").string();
  write_bytes(
      path,
      R"({"stream":"a","type":"Created","data":{"n":1},"version":1})"
      "\n"
      R"({"stream":"b","type":"Created","data":[1,2],"metadata":{"user":"x"}})"
      "\n"
      "\n"
      R"({"stream":"a","type":"Renamed","data":"z","id":"0190a3c4-0000-7000-8000-000000000001","version":2})"
      "\n");
  Result result = run({"append", db(), "--jsonl", path});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out, "1\n2\n3\n");
  EXPECT_EQ(
      query(db(),
            "SELECT group_concat(stream || version || type || data || metadata, ' ') "
            "FROM (SELECT * FROM eventlite_events ORDER BY seq)"),
      R"(a1Created{"n":1}{} b1Created[1,2]{"user":"x"} a2Renamed"z"{})");
  EXPECT_EQ(query(db(), "SELECT id FROM eventlite_events WHERE seq = 3"),
            "0190a3c4-0000-7000-8000-000000000001");
}

TEST_F(AppendJsonl, ReadsStdinAndAcceptsReadOutput) {
  init();
  append_jsonl(R"({"stream":"a","type":"T","data":{"n":1}})"
               "\n"
               R"({"stream":"a","type":"T","data":{"n":2}})"
               "\n");
  // `read` output fed back is idempotent: same ids, same content.
  Result envelopes = run({"read", db()});
  ASSERT_EQ(envelopes.status, 0) << envelopes.err;
  Result again = run({"append", db(), "--jsonl", "-"}, envelopes.out);
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(again.out, "1\n2\n");
  EXPECT_EQ(event_count(db()), 2);
}

// A batch of 100 events to stream "s" with versions 1..100, line `bad` replaced.
std::string batch_with_line(int bad, const std::string& replacement) {
  std::string text;
  for (int line = 1; line <= 100; ++line) {
    text += line == bad
                ? replacement
                : R"({"stream":"s","type":"T","data":{"line":)" + std::to_string(line) +
                      R"(},"version":)" + std::to_string(line) + "}";
    text += "\n";
  }
  return text;
}

TEST_F(AppendJsonl, GoodBatchIsStoredWhole) {
  init();
  Result result = run({"append", db(), "--jsonl", "-"}, batch_with_line(0, ""));
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(lines(result.out).size(), 100u);
  EXPECT_EQ(lines(result.out).back(), "100");
  EXPECT_EQ(event_count(db()), 100);
}

TEST_F(AppendJsonl, BadLineStoresNothingAndNamesTheLine) {
  struct Case {
    const char* what;
    std::string line;
    int status;
  };
  const std::vector<Case> cases = {
      {"malformed JSON", R"({"stream":"s","type":"T","data":{)", 1},
      {"not an object", "[1, 2]", 1},
      {"missing type", R"({"stream":"s","data":{},"version":57})", 1},
      {"unknown key", R"({"stream":"s","type":"T","data":{},"versoin":57})", 1},
      {"metadata not an object", R"({"stream":"s","type":"T","data":{},"metadata":[1]})",
       1},
      {"version conflict", R"({"stream":"s","type":"T","data":{},"version":99})", 3},
  };
  init();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Result result = run({"append", db(), "--jsonl", "-"}, batch_with_line(57, c.line));
    EXPECT_EQ(result.status, c.status);
    EXPECT_EQ(result.out, "");
    expect_one_error_line(result);
    EXPECT_NE(result.err.find("line 57"), std::string::npos) << result.err;
    EXPECT_EQ(event_count(db()), 0);
  }
  Result conflict =
      run({"append", db(), "--jsonl", "-"}, batch_with_line(57, cases.back().line));
  EXPECT_NE(
      conflict.err.find(R"("version":99 needs the stream at version 98, it is at 56)"),
      std::string::npos)
      << conflict.err;
}

TEST_F(AppendJsonl, MissingFileFailsAndWritesNothing) {
  init();
  Result result = run({"append", db(), "--jsonl", file("absent.jsonl").string()});
  EXPECT_EQ(result.status, 1);
  expect_one_error_line(result);
  EXPECT_NE(result.err.find("absent.jsonl"), std::string::npos) << result.err;
  EXPECT_EQ(event_count(db()), 0);
}

// --- read ---------------------------------------------------------------------------

class ReadFilters : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    init();
    // seq: 1 a/A, 2 b/B, 3 a/C, 4 ab/A, 5 a/B, 6 b/A
    append_jsonl(R"({"stream":"a","type":"A","data":{}})"
                 "\n"
                 R"({"stream":"b","type":"B","data":{}})"
                 "\n"
                 R"({"stream":"a","type":"C","data":{}})"
                 "\n"
                 R"({"stream":"ab","type":"A","data":{}})"
                 "\n"
                 R"({"stream":"a","type":"B","data":{}})"
                 "\n"
                 R"({"stream":"b","type":"A","data":{}})"
                 "\n");
  }

  std::vector<std::int64_t> read_seqs(std::vector<std::string> options) const {
    options.insert(options.begin(), {"read", db()});
    Result result = run(options);
    EXPECT_EQ(result.status, 0) << result.err;
    EXPECT_EQ(result.err, "");
    return seqs_of(result.out);
  }
};

using Seqs = std::vector<std::int64_t>;

TEST_F(ReadFilters, NoFilterReadsAllInSeqOrder) {
  EXPECT_EQ(read_seqs({}), (Seqs{1, 2, 3, 4, 5, 6}));
}

TEST_F(ReadFilters, StreamIsExactNotPrefix) {
  EXPECT_EQ(read_seqs({"--stream", "a"}), (Seqs{1, 3, 5}));
  EXPECT_EQ(read_seqs({"--stream", "ab"}), (Seqs{4}));
  EXPECT_EQ(read_seqs({"--stream", "absent"}), Seqs{});
}

TEST_F(ReadFilters, TypeRepeatedKeepsAnyOfThem) {
  EXPECT_EQ(read_seqs({"--type", "A"}), (Seqs{1, 4, 6}));
  EXPECT_EQ(read_seqs({"--type", "A", "--type", "C"}), (Seqs{1, 3, 4, 6}));
}

TEST_F(ReadFilters, FromIsInclusive) {
  EXPECT_EQ(read_seqs({"--from", "3"}), (Seqs{3, 4, 5, 6}));
  EXPECT_EQ(read_seqs({"--from", "6"}), (Seqs{6}));
  EXPECT_EQ(read_seqs({"--from", "7"}), Seqs{});
}

TEST_F(ReadFilters, LimitCountsMatchingEvents) {
  EXPECT_EQ(read_seqs({"--limit", "2"}), (Seqs{1, 2}));
  EXPECT_EQ(read_seqs({"--from", "3", "--limit", "1"}), (Seqs{3}));
  EXPECT_EQ(read_seqs({"--stream", "a", "--limit", "2"}), (Seqs{1, 3}));
  EXPECT_EQ(read_seqs({"--type", "A", "--limit", "2"}), (Seqs{1, 4}));
}

TEST_F(ReadFilters, FiltersCombine) {
  EXPECT_EQ(read_seqs({"--stream", "a", "--type", "B", "--from", "2"}), (Seqs{5}));
  EXPECT_EQ(read_seqs({"--stream", "b", "--from", "3"}), (Seqs{6}));
  EXPECT_EQ(read_seqs({"--stream", "a", "--from", "3"}), (Seqs{3, 5}));
  EXPECT_EQ(read_seqs({"--stream", "a", "--type", "A", "--type", "B", "--from", "2",
                       "--limit", "1"}),
            (Seqs{5}));
}

TEST_F(Read, PrintsEnvelopesWithKeysInWireOrder) {
  init();
  const std::string id = "0190a3c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d";
  ASSERT_EQ(run({"append", db(), "user-42", "UserCreated", R"({"name":"Ada","age":36})",
                 "--id", id, "--metadata", R"({"user":"admin"})"})
                .status,
            0);
  Result result = run({"read", db()});
  ASSERT_EQ(result.status, 0) << result.err;
  std::smatch time;
  ASSERT_TRUE(std::regex_search(
      result.out, time,
      std::regex(R"re("time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")re")))
      << result.out;
  EXPECT_EQ(result.out,
            R"({"seq":1,"id":")" + id +
                R"(","stream":"user-42","version":1,"type":"UserCreated","time":")" +
                time[1].str() +
                R"(","data":{"name":"Ada","age":36},"metadata":{"user":"admin"}})"
                "\n");
}

TEST_F(Read, EmptyStorePrintsNothing) {
  init();
  Result result = run({"read", db()});
  EXPECT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out, "");
}

// --- streams ------------------------------------------------------------------------

TEST_F(Streams, PrintsAlignedTableWithHeader) {
  init();
  std::string jsonl = R"({"stream":"a","type":"T","data":{}})"
                      "\n";
  for (int i = 0; i < 10; ++i)
    jsonl += R"({"stream":"long-stream-name","type":"T","data":{}})"
             "\n";
  append_jsonl(jsonl);
  Result result = run({"streams", db()});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out,
            "STREAM            VERSION  LAST_SEQ\n"
            "a                       1         1\n"
            "long-stream-name       10        11\n");
}

TEST_F(Streams, JsonPrintsOneObjectPerStream) {
  init();
  append_jsonl(R"({"stream":"b","type":"T","data":{}})"
               "\n"
               R"({"stream":"a","type":"T","data":{}})"
               "\n"
               R"({"stream":"b","type":"T","data":{}})"
               "\n");
  Result result = run({"streams", db(), "--json"});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out, R"({"stream":"a","version":1,"last_seq":2})"
                        "\n"
                        R"({"stream":"b","version":2,"last_seq":3})"
                        "\n");
}

TEST_F(Streams, EmptyStorePrintsHeaderOnly) {
  init();
  EXPECT_EQ(run({"streams", db()}).out, "STREAM  VERSION  LAST_SEQ\n");
  EXPECT_EQ(run({"streams", db(), "--json"}).out, "");
}

// --- verify -------------------------------------------------------------------------

TEST_F(Verify, GoodFilePrintsSqliteVersionAndOk) {
  init();
  append_jsonl(R"({"stream":"a","type":"T","data":{"n":1}})"
               "\n"
               R"({"stream":"b","type":"T","data":[]})"
               "\n");
  Result result = run({"verify", db()});
  EXPECT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out, std::string("SQLite ") + sqlite3_libversion() + "\nok\n");
  if (sqlite3_libversion_number() < 3051003) {
    EXPECT_NE(result.err.find("WAL-reset"), std::string::npos) << result.err;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  } else {
    EXPECT_EQ(result.err, "");
  }
}

TEST_F(Verify, GapInSeqsIsReportedWithStatusOne) {
  init();
  append_jsonl(R"({"stream":"a","type":"T","data":{}})"
               "\n"
               R"({"stream":"b","type":"T","data":{}})"
               "\n"
               R"({"stream":"a","type":"T","data":{}})"
               "\n");
  // Behind eventlite's back: drop the guard and delete an event.
  exec_sql(db(),
           "DROP TRIGGER eventlite_events_no_delete;"
           "DELETE FROM eventlite_events WHERE seq = 2;");
  Result result = run({"verify", db()});
  EXPECT_EQ(result.status, 1);
  std::vector<std::string> out = lines(result.out);
  ASSERT_GE(out.size(), 2u) << result.out;
  EXPECT_EQ(out.front(), std::string("SQLite ") + sqlite3_libversion());
  EXPECT_EQ(std::find(out.begin(), out.end(), "ok"), out.end()) << result.out;
  EXPECT_NE(lines(result.err).back().find("problem"), std::string::npos) << result.err;
}

// --- status -------------------------------------------------------------------------

TEST_F(Status, PrintsSqliteVersionHeadAndAlignedTable) {
  seed_subscriptions();
  Result result = run({"status", db()});
  ASSERT_EQ(result.status, 0) << result.err;
  // mail owes seq 2, appended a moment ago: its lag in time is a fraction of a second
  // (seconds on a slow machine); audit owes nothing.
  const std::regex expected(
      "store " + query(db(), "SELECT id FROM eventlite_store") + "\n" +
      std::string("SQLite ") + sqlite3_libversion() +
      "\n"
      "head 6\n"
      "SUBSCRIPTION  STATE       POSITION  LAG  LAG_TIME  RETRYING  DEAD  HELD  "
      "LEASE_OWNER  LEASE_EXPIRES\n"
      "audit         caught up          6    0         -         0     1     0  -       "
      "     -\n"
      "mail          delivering         4    2  +[0-9]+\\.[0-9]s         1     2     0  "
      "host:100:a1  2999-01-01T00:00:00\\.000Z\n");
  EXPECT_TRUE(std::regex_match(result.out, expected)) << result.out;
  EXPECT_EQ(result.err, "");  // one process holds leases: no warning
}

TEST_F(Status, JsonIsOneObjectWithKeysInOrder) {
  seed_subscriptions();
  Result result = run({"status", db(), "--json"});
  ASSERT_EQ(result.status, 0) << result.err;
  ASSERT_EQ(lines(result.out).size(), 1u) << result.out;
  const auto status = nlohmann::ordered_json::parse(result.out);
  EXPECT_EQ(status.at("head"), 6);
  const auto& subscriptions = status.at("subscriptions");
  ASSERT_EQ(subscriptions.size(), 2u);
  EXPECT_EQ(subscriptions[0].at("name"), "audit");
  EXPECT_EQ(subscriptions[0].at("position"), 6);
  EXPECT_EQ(subscriptions[0].at("lag"), 0);
  EXPECT_EQ(subscriptions[0].at("retrying"), 0);
  EXPECT_EQ(subscriptions[0].at("dead"), 1);
  EXPECT_TRUE(subscriptions[0].at("lease").is_null());
  EXPECT_EQ(subscriptions[1].at("name"), "mail");
  EXPECT_EQ(subscriptions[1].at("lag"), 2);
  EXPECT_EQ(subscriptions[1].at("retrying"), 1);
  EXPECT_EQ(subscriptions[1].at("dead"), 2);
  EXPECT_EQ(subscriptions[1].at("lease"),
            nlohmann::ordered_json::parse(
                R"({"owner":"host:100:a1","expires":"2999-01-01T00:00:00.000Z"})"));
  // Keys in the documented order, nothing else.
  std::vector<std::string> keys;
  for (const auto& item : status.items()) keys.push_back(item.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"store", "head", "subscriptions", "bridges",
                                            "rebuilds"}));
  EXPECT_EQ(status.at("store").at("id"), query(db(), "SELECT id FROM eventlite_store"));
  EXPECT_TRUE(status.at("store").at("name").is_null());
  keys.clear();
  for (const auto& item : subscriptions[1].items()) keys.push_back(item.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"name", "position", "lag", "lag_ms",
                                            "retrying", "dead", "held", "lease", "state",
                                            "sink", "standbys"}));
  EXPECT_EQ(subscriptions[0].at("state"), "caught up");
  EXPECT_EQ(subscriptions[1].at("state"), "delivering");
  EXPECT_TRUE(subscriptions[1].at("sink").is_null());
  EXPECT_EQ(subscriptions[1].at("standbys"), nlohmann::ordered_json::array());
  EXPECT_EQ(subscriptions[0].at("lag_ms"), 0);
  EXPECT_EQ(subscriptions[0].at("held"), 0);
  EXPECT_GT(subscriptions[1].at("lag_ms").get<std::int64_t>(), 0);
}

// A sink whose broker fails, as its lease holder wrote it, and a processor standing
// by for it; an expired standby (a process that went away) is not shown.
TEST_F(Status, ShowsASinkRetryingWithItsBrokerErrorAndWhoStandsBy) {
  seed_subscriptions();
  exec_sql(db(),
           "INSERT INTO eventlite_sink_health (subscription, owner, failing_since, "
           "last_error, forwarded, failed, round_trip_p50_us, round_trip_p99_us, "
           "updated) VALUES ('mail', 'host:100:a1', '2026-11-23T10:04:00.000Z', "
           "'connect to redis://app:***@cache:6379/0: Connection refused', 1200, 5, "
           "400, 2100, '2026-11-23T10:04:05.000Z');"
           "INSERT INTO eventlite_standbys (name, owner, since, expires) VALUES "
           "('mail', 'host:200:b2', '2026-11-23T10:00:00.000Z', "
           "'2999-01-01T00:00:00.000Z'), "
           "('mail', 'host:300:c3', '2026-11-23T09:00:00.000Z', "
           "'2000-01-01T00:00:00.000Z');");
  Result result = run({"status", db()});
  ASSERT_EQ(result.status, 0) << result.err;
  const std::vector<std::string> out = lines(result.out);
  ASSERT_EQ(out.size(), 12u) << result.out;
  EXPECT_EQ(out[0].rfind("store ", 0), 0u) << result.out;
  EXPECT_EQ(out[5].rfind("mail          retrying", 0), 0u) << result.out;
  EXPECT_EQ(
      out[7],
      "SINK  STATE     FAILING_SINCE             FORWARDED  FAILED  RTT_P50  RTT_P99  "
      "LAST_ERROR");
  EXPECT_EQ(
      out[8],
      "mail  retrying  2026-11-23T10:04:00.000Z       1200       5    400us    2.1ms  "
      "connect to redis://app:***@cache:6379/0: Connection refused");
  EXPECT_EQ(out[10], "STANDING_BY_FOR  OWNER        SINCE");
  EXPECT_EQ(out[11], "mail             host:200:b2  2026-11-23T10:00:00.000Z");

  const auto json = nlohmann::ordered_json::parse(run({"status", db(), "--json"}).out);
  const auto& mail = json.at("subscriptions")[1];
  EXPECT_EQ(mail.at("state"), "retrying");
  EXPECT_EQ(mail.at("sink").at("failing_since"), "2026-11-23T10:04:00.000Z");
  EXPECT_EQ(mail.at("sink").at("forwarded"), 1200);
  EXPECT_EQ(mail.at("sink").at("round_trip_p99_us"), 2100);
  ASSERT_EQ(mail.at("standbys").size(), 1u);
  EXPECT_EQ(mail.at("standbys")[0].at("owner"), "host:200:b2");

  // The holder's lease ran out: nobody forwards it, whatever its row last said.
  exec_sql(db(),
           "UPDATE eventlite_leases SET expires = '2000-01-01T00:00:00.000Z' "
           "WHERE name = 'mail'");
  const auto later = nlohmann::ordered_json::parse(run({"status", db(), "--json"}).out);
  EXPECT_EQ(later.at("subscriptions")[1].at("state"), "not running");
}

TEST_F(Status, EmptyStorePrintsHeadZeroAndHeaderOnly) {
  init();
  Result table = run({"status", db()});
  ASSERT_EQ(table.status, 0) << table.err;
  const std::string id = query(db(), "SELECT id FROM eventlite_store");
  EXPECT_EQ(lines(table.out),
            (std::vector<std::string>{
                "store " + id, std::string("SQLite ") + sqlite3_libversion(), "head 0",
                "SUBSCRIPTION  STATE  POSITION  LAG  LAG_TIME  RETRYING  DEAD  HELD  "
                "LEASE_OWNER  LEASE_EXPIRES"}));
  EXPECT_EQ(run({"status", db(), "--json"}).out,
            "{\"store\":{\"id\":\"" + id +
                "\",\"name\":null},\"head\":0,\"subscriptions\":[],\"bridges\":[],"
                "\"rebuilds\":[]}\n");
}

TEST_F(Status, SeveralProcessesHoldingLeasesAreNoLongerWarnedAbout) {
  seed_subscriptions();
  // Leases of several processes: eventlite's own connections cannot meet SQLite's
  // WAL-reset bug, so nothing is said.
  exec_sql(db(),
           "INSERT INTO eventlite_subscriptions (name, position, created, updated) "
           "VALUES ('sms', 0, 'c', 'u'), ('push', 0, 'c', 'u'), ('hook', 0, 'c', 'u');"
           "INSERT INTO eventlite_leases (name, owner, expires) VALUES "
           "('sms', 'host:100:b2', '2999-01-01T00:00:00.000Z'),"
           "('push', 'host:200:c3', '2000-01-01T00:00:00.000Z');");
  Result quiet = run({"status", db()});
  ASSERT_EQ(quiet.status, 0) << quiet.err;
  EXPECT_EQ(quiet.err, "");

  exec_sql(db(),
           "INSERT INTO eventlite_leases (name, owner, expires) VALUES "
           "('hook', 'host:300:d4', '2999-01-01T00:00:00.000Z');");
  for (const char* json : {"", "--json"}) {
    SCOPED_TRACE(json);
    std::vector<std::string> args = {"status", db()};
    if (*json != '\0') args.push_back(json);
    Result result = run(args);
    ASSERT_EQ(result.status, 0) << result.err;
    // eventlite's processes checkpoint only in a mode that holds the log's write
    // lock: several of them writing one file meet no WAL-reset bug, and are not
    // warned about.
    EXPECT_EQ(result.err, "");
  }
}

TEST_F(Status, OlderSchemaFailsSayingToRunInitAndLeavesTheFile) {
  init();
  // A file of schema version 1, before deliveries and leases.
  exec_sql(db(),
           "DROP VIEW eventlite_dead_letters; DROP VIEW eventlite_pending;"
           "DROP TABLE eventlite_deliveries; DROP TABLE eventlite_leases;"
           "UPDATE eventlite_schema SET version = 1;");
  const std::string bytes = read_bytes(db());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"status", db()}, {"dead", "list", db()}}) {
    SCOPED_TRACE(joined(args));
    Result result = run(args);
    EXPECT_EQ(result.status, 1);
    EXPECT_EQ(result.out, "");
    expect_one_error_line(result);
    EXPECT_NE(result.err.find("eventlite init"), std::string::npos) << result.err;
    EXPECT_EQ(read_bytes(db()), bytes);
  }
}

// --- dead -----------------------------------------------------------------------------

TEST_F(Dead, ListPrintsTableBySubscriptionAndSeq) {
  seed_subscriptions();
  Result result = run({"dead", "list", db()});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out,
            "SUBSCRIPTION  SEQ  STREAM  TYPE     ATTEMPTS  UPDATED                   "
            "LAST_ERROR\n"
            "audit           5  a       Created         1  2026-11-23T10:00:05.000Z  "
            "bad line\n"
            "mail            1  a       Created         5  2026-11-23T10:00:01.000Z  "
            "smtp: 550 no such user\n"
            "mail            3  a       Created         5  2026-11-23T10:00:03.000Z\n");
  EXPECT_EQ(result.err, "");
}

TEST_F(Dead, ListJsonPrintsOneObjectPerDeadLetterOfTheSubscription) {
  seed_subscriptions();
  Result result = run({"dead", "list", db(), "--subscription", "mail", "--json"});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(
      result.out,
      R"({"subscription":"mail","seq":1,"stream":"a","type":"Created","attempts":5,"last_error":"smtp: 550 no such user","updated":"2026-11-23T10:00:01.000Z"})"
      "\n"
      R"({"subscription":"mail","seq":3,"stream":"a","type":"Created","attempts":5,"last_error":"","updated":"2026-11-23T10:00:03.000Z"})"
      "\n");
  EXPECT_EQ(run({"dead", "list", db(), "--subscription", "absent", "--json"}).out, "");
}

TEST_F(Dead, RetryNamedSeqsMakesThemDueAgainAndPrintsTheCount) {
  seed_subscriptions();
  // Seq 2 is retrying, 4 has no delivery, 5 is audit's: left alone, not counted.
  Result result = run({"dead", "retry", db(), "--subscription", "mail", "--seq", "1", "2",
                       "--seq", "4", "5"});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out, "retried 1 dead letter\n");
  EXPECT_EQ(deliveries(),
            "audit 5 dead 1, mail 1 retrying 0, mail 2 retrying 2, mail 3 dead 5");
  // Due at once, whatever clock a processor runs on: no due time.
  EXPECT_EQ(query(db(),
                  "SELECT next_attempt IS NULL FROM eventlite_deliveries WHERE "
                  "subscription = 'mail' AND seq = 1"),
            "1");
}

TEST_F(Dead, RetryAllRetriesEveryDeadLetterOfTheSubscription) {
  seed_subscriptions();
  Result result = run({"dead", "retry", db(), "--subscription", "mail", "--all"});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out, "retried 2 dead letters\n");
  EXPECT_EQ(deliveries(),
            "audit 5 dead 1, mail 1 retrying 0, mail 2 retrying 2, mail 3 retrying 0");
}

TEST_F(Dead, DiscardDeletesDeadLettersAndKeepsTheEvents) {
  seed_subscriptions();
  Result one =
      run({"dead", "discard", db(), "--subscription", "mail", "--seq", "3", "2"});
  ASSERT_EQ(one.status, 0) << one.err;
  EXPECT_EQ(one.out, "discarded 1 dead letter\n");
  EXPECT_EQ(deliveries(), "audit 5 dead 1, mail 1 dead 5, mail 2 retrying 2");

  Result all = run({"dead", "discard", db(), "--subscription", "audit", "--all"});
  ASSERT_EQ(all.status, 0) << all.err;
  EXPECT_EQ(all.out, "discarded 1 dead letter\n");
  EXPECT_EQ(deliveries(), "mail 1 dead 5, mail 2 retrying 2");
  EXPECT_EQ(event_count(db()), 6);

  Result none = run({"dead", "discard", db(), "--subscription", "audit", "--all"});
  EXPECT_EQ(none.out, "discarded 0 dead letters\n");
}

TEST_F(Dead, UnknownSubscriptionExitsOneAndChangesNothing) {
  seed_subscriptions();
  const std::string before = deliveries();
  for (const char* command : {"retry", "discard"}) {
    SCOPED_TRACE(command);
    Result result = run({"dead", command, db(), "--subscription", "nope", "--all"});
    EXPECT_EQ(result.status, 1);
    EXPECT_EQ(result.out, "");
    expect_one_error_line(result);
    EXPECT_NE(result.err.find("unknown subscription \"nope\""), std::string::npos)
        << result.err;
  }
  EXPECT_EQ(deliveries(), before);
}

// --- rewind ---------------------------------------------------------------------------

TEST_F(Rewind, MovesTheSubscriptionAndDropsDeliveriesFromThere) {
  seed_subscriptions();
  Result result = run({"rewind", db(), "mail", "--from", "2"});
  ASSERT_EQ(result.status, 0) << result.err;
  EXPECT_EQ(result.out,
            "mail: next delivery from seq 2\n"
            "  position 4 -> 1: seqs 2 to 4 are delivered again\n"
            "  dropped 1 dead letter and 1 owed delivery, delivered again from the log\n"
            "  ended the lease of host:100:a1 (its uncommitted work cannot land)\n");
  EXPECT_EQ(positions(), "audit 6, mail 1");
  EXPECT_EQ(deliveries(), "audit 5 dead 1, mail 1 dead 5");
  EXPECT_EQ(nlohmann::json::parse(run({"status", db(), "--json"}).out)
                .at("subscriptions")[1]
                .at("lag"),
            5);
}

TEST_F(Rewind, UnknownSubscriptionExitsOneAndChangesNothing) {
  seed_subscriptions();
  const std::string before = deliveries();
  Result result = run({"rewind", db(), "nope", "--from", "1"});
  EXPECT_EQ(result.status, 1);
  EXPECT_EQ(result.out, "");
  expect_one_error_line(result);
  EXPECT_NE(result.err.find("unknown subscription \"nope\""), std::string::npos)
      << result.err;
  EXPECT_EQ(positions(), "audit 6, mail 4");
  EXPECT_EQ(deliveries(), before);
}

// --- the sqlite3 shell ----------------------------------------------------------------

TEST_F(SqliteShell, UpdateAndDeleteOfEventsFailAsAppendOnly) {
  if (std::string_view(kSqliteShell).empty()) GTEST_SKIP() << "no sqlite3 shell found";
  init();
  ASSERT_EQ(run({"append", db(), "s", "Created", R"({"n":1})"}).status, 0);
  Result update =
      run_program(kSqliteShell, {db(), "UPDATE eventlite_events SET type = 'X'"}, "");
  EXPECT_NE(update.status, 0);
  EXPECT_NE(update.err.find("eventlite_events is append-only: UPDATE is not allowed"),
            std::string::npos)
      << update.err;
  Result erase = run_program(kSqliteShell, {db(), "DELETE FROM eventlite_events"}, "");
  EXPECT_NE(erase.status, 0);
  EXPECT_NE(erase.err.find("eventlite_events is append-only: DELETE is not allowed"),
            std::string::npos)
      << erase.err;
  EXPECT_EQ(query(db(), "SELECT type || ' ' || data FROM eventlite_events"),
            R"(Created {"n":1})");
}

TEST_F(Cli, DeeplyNestedDataIsOneLineErrorNotACrash) {
  init();
  const std::string deep = std::string(300000, '[') + std::string(300000, ']');
  Result result = run({"append", db(), "s", "T", "-"}, deep);
  EXPECT_EQ(result.status, 1) << result.err;
  EXPECT_EQ(lines(result.err).size(), 1u) << result.err;
  EXPECT_EQ(result.err.rfind("eventlite: the data on stdin: ", 0), 0u) << result.err;
  EXPECT_NE(result.err.find("nested"), std::string::npos) << result.err;
  EXPECT_EQ(event_count(db()), 0);
}

// --- what a user's input becomes ----------------------------------------------------

TEST_F(AppendJsonl, NulByteInALineIsRefusedNamingTheLine) {
  init();
  const std::string good = R"({"stream":"s","type":"T","data":{"a":1}})";
  for (const std::string& bad :
       {R"({"stream":"s","type":"T","data":{"a":"x)" + std::string(1, '\0') + R"("}})",
        good + std::string(1, '\0') + R"(,"b":2})", std::string(1, '\0')}) {
    Result result = run({"append", db(), "--jsonl", "-"}, good + "\n" + bad + "\n");
    EXPECT_EQ(result.status, 1);
    EXPECT_EQ(result.out, "");
    expect_one_error_line(result);
    EXPECT_NE(result.err.find("line 2: contains a NUL byte"), std::string::npos)
        << result.err;
  }
  EXPECT_EQ(event_count(db()), 0);
}

TEST_F(Append, NulByteInDataOnStdinIsRefusedNotTruncated) {
  init();
  Result result = run({"append", db(), "s", "T", "-"},
                      std::string(R"({"a":1})") + '\0' + R"({"b":2})");
  EXPECT_EQ(result.status, 1);
  expect_one_error_line(result);
  EXPECT_NE(result.err.find("the data on stdin contains a NUL byte"), std::string::npos)
      << result.err;
  EXPECT_EQ(event_count(db()), 0);
}

TEST_F(Append, NumbersAreStoredAndReadAsWritten) {
  init();
  const std::string data = R"({"price":12345678901234567.89,"tiny":1.5e-400,)"
                           R"("big":123456789012345678901234567890,"neg":-0.0,"e":1E+2})";
  const std::string metadata = R"({"n":0.10000000000000000001})";
  Result one = run({"append", db(), "s", "T", data, "--metadata", metadata});
  ASSERT_EQ(one.status, 0) << one.err;
  Result batch =
      run({"append", db(), "--jsonl", "-"}, R"({"stream":"s","type":"T","data":)" + data +
                                                R"(,"metadata":)" + metadata + "}\n");
  ASSERT_EQ(batch.status, 0) << batch.err;
  for (const char* seq : {"1", "2"}) {
    SCOPED_TRACE(seq);
    EXPECT_EQ(
        query(db(), std::string("SELECT data FROM eventlite_events WHERE seq = ") + seq),
        data);
    EXPECT_EQ(
        query(db(),
              std::string("SELECT metadata FROM eventlite_events WHERE seq = ") + seq),
        metadata);
  }
  Result read = run({"read", db()});
  ASSERT_EQ(read.status, 0) << read.err;
  for (const std::string& line : lines(read.out)) {
    EXPECT_NE(line.find(R"("data":)" + data + R"(,"metadata":)" + metadata),
              std::string::npos)
        << line;
  }
}

TEST_F(Append, ANumberNoReaderCanHoldIsRefusedNamingTheArgumentOrLine) {
  init();
  Result one = run({"append", db(), "s", "T", R"({"huge":1e400})"});
  EXPECT_EQ(one.status, 1);
  expect_one_error_line(one);
  EXPECT_NE(one.err.find("DATA"), std::string::npos) << one.err;
  EXPECT_NE(one.err.find("1e400"), std::string::npos) << one.err;
  Result batch = run({"append", db(), "--jsonl", "-"},
                     "{\"stream\":\"s\",\"type\":\"T\",\"data\":{}}\n"
                     "{\"stream\":\"s\",\"type\":\"T\",\"data\":[1e400]}\n");
  EXPECT_EQ(batch.status, 1);
  expect_one_error_line(batch);
  EXPECT_NE(batch.err.find("line 2"), std::string::npos) << batch.err;
  EXPECT_EQ(query(db(), "SELECT count(*) FROM eventlite_events"), "0");
}

TEST_F(AppendJsonl, DirectoryAsInputIsRefused) {
  init();
  const fs::path dir = file("batches");
  fs::create_directory(dir);
  Result named = run({"append", db(), "--jsonl", dir.string()});
  EXPECT_EQ(named.status, 1);
  expect_one_error_line(named);
  EXPECT_NE(named.err.find("is a directory"), std::string::npos) << named.err;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"append", db(), "--jsonl", "-"}, {"append", db(), "s", "T", "-"}}) {
    SCOPED_TRACE(joined(args));
    Result piped = run_with_stdin(args, dir);
    EXPECT_EQ(piped.status, 1);
    EXPECT_EQ(piped.out, "");
    expect_one_error_line(piped);
    EXPECT_NE(piped.err.find("stdin is a directory"), std::string::npos) << piped.err;
  }
  EXPECT_EQ(event_count(db()), 0);
}

TEST_F(Init, FailureOnAFullDiskLeavesNoFileBehind) {
  // A file size limit makes SQLite's writes fail as on a full disk (EFBIG); the shell
  // ignores SIGXFSZ so that the tool sees the error instead of dying.
  Result result = run_program(
      "/bin/sh", {"-c", "trap '' XFSZ; ulimit -f 8; exec \"$0\" init \"$1\"", kCli, db()},
      {});
  EXPECT_EQ(result.status, 1) << result.err;
  expect_one_error_line(result);
  EXPECT_EQ(files(), std::set<std::string>{}) << result.err;
  // Without the limit, the same command works.
  init();
  EXPECT_EQ(event_count(db()), 0);
}

TEST_F(Init, FailureOnAFileItDidNotCreateLeavesTheFile) {
  const std::string bytes = random_bytes(8192);
  write_bytes(db(), bytes);
  Result result = run({"init", db()});
  EXPECT_EQ(result.status, 1);
  expect_one_error_line(result);
  EXPECT_EQ(read_bytes(db()), bytes);
}

TEST_F(Cli, FileUriAndMemoryNamesAreRefusedAndDotSlashNamesAFile) {
  for (const std::string& name :
       {std::string("file:x.db"), std::string("file:x.db?mode=memory"),
        "file:" + file("x.db").string(), std::string(":memory:")}) {
    for (const auto& args : commands_on_a_file(name, true)) {
      SCOPED_TRACE(joined(args));
      Result result = run_in_files(args);
      EXPECT_EQ(result.status, 2);
      EXPECT_EQ(result.out, "");
      expect_one_error_line(result);
      EXPECT_NE(result.err.find("write ./" + name), std::string::npos) << result.err;
    }
  }
  EXPECT_EQ(files(), std::set<std::string>{});

  for (const std::string& name :
       {std::string("./file:x.db"), std::string("./:memory:")}) {
    SCOPED_TRACE(name);
    ASSERT_EQ(run_in_files({"init", name}).status, 0);
    Result append = run_in_files({"append", name, "s", "T"});
    EXPECT_EQ(append.status, 0) << append.err;
    Result read = run_in_files({"read", name});
    EXPECT_EQ(seqs_of(read.out), (std::vector<std::int64_t>{1}));
  }
  EXPECT_EQ(event_count(file("file:x.db")), 1);
  EXPECT_EQ(event_count(file(":memory:")), 1);
  EXPECT_FALSE(fs::exists(file("x.db")));
}

TEST_F(Cli, NumericOptionsAreDecimalRangeCheckedAndNamed) {
  seed_subscriptions();  // seq 1..6
  const std::string positions_before = positions();
  const std::string deliveries_before = deliveries();
  struct Case {
    std::vector<std::string> args;
    std::string option;
  };
  const std::vector<Case> cases = {
      {{"read", db(), "--limit=-1"}, "--limit"},
      {{"read", db(), "--limit", "18446744073709551616"}, "--limit"},
      {{"read", db(), "--from", "0x10"}, "--from"},
      {{"read", db(), "--from", "+5"}, "--from"},
      {{"read", db(), "--from", " 5"}, "--from"},
      {{"read", db(), "--from", "5.0"}, "--from"},
      {{"read", db(), "--from", "9223372036854775808"}, "--from"},
      {{"read", db(), "--to", "0"}, "--to"},
      {{"read", db(), "--to", "-3"}, "--to"},
      {{"rewind", db(), "mail", "--from", "99999999999999999999"}, "--from"},
      {{"rewind", db(), "mail", "--from", "1e3"}, "--from"},
      {{"dead", "retry", db(), "--subscription", "mail", "--seq", "1", "-3"}, "--seq"},
      {{"dead", "discard", db(), "--subscription", "mail", "--seq", "0x1"}, "--seq"},
      {{"append", db(), "s", "T", "--expect", "-0"}, "--expect"},
      {{"append", db(), "s", "T", "--expect", "0x2"}, "--expect"},
      {{"append", db(), "s", "T", "--expect", "99999999999999999999"}, "--expect"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(joined(c.args));
    Result result = run(c.args);
    EXPECT_EQ(result.status, 2);
    EXPECT_EQ(result.out, "");
    expect_one_error_line(result);
    EXPECT_EQ(result.err.rfind("eventlite: " + c.option + ": ", 0), 0u) << result.err;
  }
  EXPECT_EQ(positions(), positions_before);
  EXPECT_EQ(deliveries(), deliveries_before);
  EXPECT_EQ(event_count(db()), 6);

  // Leading zeros are decimal, never octal.
  EXPECT_EQ(seqs_of(run({"read", db(), "--from", "005"}).out),
            (std::vector<std::int64_t>{5, 6}));
  EXPECT_EQ(seqs_of(run({"read", db(), "--to", "02", "--limit", "010"}).out),
            (std::vector<std::int64_t>{1, 2}));
  Result expect = run({"append", db(), "a", "T", "--expect", "03"});
  EXPECT_EQ(expect.status, 0) << expect.err;
  EXPECT_EQ(run({"rewind", db(), "mail", "--from", "010"})
                .out.rfind("mail: next delivery from seq 10\n  position 4 -> 9: seqs 5 "
                           "to 9 are skipped\n",
                           0),
            0u);
}

TEST_F(Cli, EmptyNamesAreRefusedNotReadAsAll) {
  seed_subscriptions();
  const std::vector<std::vector<std::string>> cases = {
      {"read", db(), "--stream", ""},
      {"read", db(), "--type", ""},
      {"read", db(), "--type", "Created", "--type", ""},
      {"dead", "list", db(), "--subscription", ""},
      {"dead", "retry", db(), "--subscription", "", "--all"},
      {"rewind", db(), "", "--from", "1"},
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(joined(args));
    Result result = run(args);
    EXPECT_EQ(result.status, 2);
    EXPECT_EQ(result.out, "");
    expect_one_error_line(result);
    EXPECT_NE(result.err.find("must not be empty"), std::string::npos) << result.err;
  }
}

TEST_F(ReadFilters, ToIsInclusiveAndCombinesWithTheOthers) {
  EXPECT_EQ(read_seqs({"--to", "3"}), (Seqs{1, 2, 3}));
  EXPECT_EQ(read_seqs({"--from", "2", "--to", "5", "--type", "A"}), (Seqs{4}));
  EXPECT_EQ(read_seqs({"--from", "4", "--to", "3"}), (Seqs{}));
}

TEST_F(ReadFilters, OneStreamHonoursFromToTypesAndLimit) {
  // a is seq 1, 3 and 5 (types A, C, B).
  EXPECT_EQ(read_seqs({"--stream", "a", "--from", "2"}), (Seqs{3, 5}));
  EXPECT_EQ(read_seqs({"--stream", "a", "--to", "4"}), (Seqs{1, 3}));
  EXPECT_EQ(read_seqs({"--stream", "a", "--type", "A", "--type", "B"}), (Seqs{1, 5}));
  EXPECT_EQ(read_seqs({"--stream", "a", "--from", "2", "--limit", "1"}), (Seqs{3}));
}

}  // namespace
