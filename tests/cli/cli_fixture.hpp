#pragma once

// What the tests of the `eventlite` tool share: a fresh temp dir per test, the tool
// run in it with its stdout, stderr and exit status captured, and helpers to look at
// files with SQLite's C API rather than through the library.

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
#include <random>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;

constexpr const char* kCli = EVENTLITE_CLI_PATH;
constexpr const char* kSqliteShell = EVENTLITE_SQLITE3_SHELL;  // "" if not found

struct Result {
  int status = -1;  // exit status; -1 if killed by a signal
  std::string out;
  std::string err;
};

inline std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// Bytes that are not a SQLite file, the same on every run.
inline std::string random_bytes(std::size_t size) {
  std::mt19937 generator(20261123);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(byte(generator));
  return bytes;
}

// Runs SQL on `db` with SQLite's C API; throws with SQLite's message on failure.
inline void exec_sql(const fs::path& db, const std::string& sql) {
  sqlite3* connection = nullptr;
  int rc = sqlite3_open_v2(db.c_str(), &connection,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  char* message = nullptr;
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(connection, sql.c_str(), nullptr, nullptr, &message);
  std::string error = message != nullptr ? message : sqlite3_errmsg(connection);
  sqlite3_free(message);
  sqlite3_close(connection);
  if (rc != SQLITE_OK) throw std::runtime_error("sqlite: " + error + " in: " + sql);
}

// The first column of the first row of `sql` as text ("" for NULL or no row).
inline std::string query(const fs::path& db, const std::string& sql) {
  sqlite3* connection = nullptr;
  sqlite3_stmt* statement = nullptr;
  std::string result;
  int rc = sqlite3_open_v2(db.c_str(), &connection, SQLITE_OPEN_READONLY, nullptr);
  if (rc == SQLITE_OK)
    rc = sqlite3_prepare_v2(connection, sql.c_str(), -1, &statement, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(statement);
    if (rc == SQLITE_ROW && sqlite3_column_text(statement, 0) != nullptr) {
      result = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
    }
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) rc = SQLITE_OK;
  }
  std::string error = sqlite3_errmsg(connection);
  sqlite3_finalize(statement);
  sqlite3_close(connection);
  if (rc != SQLITE_OK) throw std::runtime_error("sqlite: " + error + " in: " + sql);
  return result;
}

inline int event_count(const fs::path& db) {
  return std::stoi(query(db, "SELECT count(*) FROM eventlite_events"));
}

inline std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> result;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) result.push_back(line);
  return result;
}

// The "seq" of each envelope `eventlite read` printed.
inline std::vector<std::int64_t> seqs_of(const std::string& envelopes) {
  std::vector<std::int64_t> seqs;
  for (const std::string& line : lines(envelopes)) {
    seqs.push_back(nlohmann::json::parse(line).at("seq").get<std::int64_t>());
  }
  return seqs;
}

// `args` as one string, for SCOPED_TRACE.
inline std::string joined(const std::vector<std::string>& args) {
  std::string text;
  for (const std::string& arg : args) text += (text.empty() ? "" : " ") + arg;
  return text;
}

// An error as the tool must report it: one line on stderr, prefixed "eventlite: ".
inline void expect_one_error_line(const Result& result) {
  EXPECT_EQ(result.err.rfind("eventlite: ", 0), 0u) << result.err;
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  EXPECT_EQ(result.err.back(), '\n') << result.err;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "eventlite-cli-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr) << std::strerror(errno);
    root_ = pattern;
    fs::create_directory(root_ / "files");
  }
  void TearDown() override {
    std::error_code error;
    fs::remove_all(root_, error);
  }

  // A path in the test's directory of files; stdio of the runs is kept apart.
  fs::path file(std::string_view name) const { return root_ / "files" / name; }
  std::string db() const { return file("events.db").string(); }

  std::set<std::string> files() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(root_ / "files")) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }

  Result run(const std::vector<std::string>& args, std::string_view input = {}) const {
    return run_program(kCli, args, input);
  }

  // Runs `args` in the directory of files, where relative names are files' names.
  Result run_in_files(const std::vector<std::string>& args) const {
    return run_program(kCli, args, {}, {}, root_ / "files");
  }

  // Runs `args` with the file (or directory) `path` as stdin.
  Result run_with_stdin(const std::vector<std::string>& args,
                        const fs::path& path) const {
    return run_program(kCli, args, {}, path);
  }

  // Runs `args` with a valid --jsonl line on stdin and checks that the command was
  // refused as the tool must refuse: status 1, nothing on stdout, one error line.
  Result run_refused(const std::vector<std::string>& args) const {
    Result result = run(args, R"({"stream":"s","type":"T","data":{}})"
                              "\n");
    EXPECT_EQ(result.status, 1);
    EXPECT_EQ(result.out, "");
    expect_one_error_line(result);
    return result;
  }

  // `eventlite init DB` that must succeed.
  void init() const {
    Result result = run({"init", db()});
    ASSERT_EQ(result.status, 0) << result.err;
  }

  // `eventlite append DB --jsonl -` with `jsonl` that must succeed.
  void append_jsonl(const std::string& jsonl) const {
    Result result = run({"append", db(), "--jsonl", "-"}, jsonl);
    ASSERT_EQ(result.status, 0) << result.err;
  }

  // Six events (seq 1..6 alternating streams a and b, types Created and Updated);
  // subscriptions mail at position 4 and audit at 6; dead letters mail 1 and 3 and
  // audit 5, mail 2 retrying; mail leased to one process. As the processor would
  // leave them, written here with SQL.
  void seed_subscriptions() const {
    init();
    std::string jsonl;
    for (int i = 0; i < 3; ++i) {
      jsonl += R"({"stream":"a","type":"Created","data":{}})"
               "\n"
               R"({"stream":"b","type":"Updated","data":{}})"
               "\n";
    }
    append_jsonl(jsonl);
    exec_sql(db(),
             "INSERT INTO eventlite_subscriptions (name, position, created, updated) "
             "VALUES ('mail', 4, 'c', 'u'), ('audit', 6, 'c', 'u');"
             "INSERT INTO eventlite_deliveries (subscription, seq, stream, status, "
             "attempts, next_attempt, last_error, updated) VALUES "
             "('mail', 1, 'a', 'dead', 5, NULL, 'smtp: 550 no such user', "
             "'2026-11-23T10:00:01.000Z'),"
             "('mail', 2, 'b', 'retrying', 2, '2026-11-23T10:05:00.000Z', 'timeout', "
             "'2026-11-23T10:00:02.000Z'),"
             "('mail', 3, 'a', 'dead', 5, NULL, NULL, '2026-11-23T10:00:03.000Z'),"
             "('audit', 5, 'a', 'dead', 1, NULL, 'bad\nline', "
             "'2026-11-23T10:00:05.000Z');"
             "INSERT INTO eventlite_leases (name, owner, expires, token) VALUES "
             "('mail', 'host:100:a1', '2999-01-01T00:00:00.000Z', 3);");
  }

  // The deliveries as "subscription seq status attempts", by subscription and seq.
  std::string deliveries() const {
    return query(db(),
                 "SELECT group_concat(line, ', ') FROM (SELECT subscription || ' ' || "
                 "seq || ' ' || status || ' ' || attempts AS line FROM "
                 "eventlite_deliveries ORDER BY subscription, seq)");
  }

  // The subscriptions as "name position", by name.
  std::string positions() const {
    return query(db(),
                 "SELECT group_concat(line, ', ') FROM (SELECT name || ' ' || position "
                 "AS line FROM eventlite_subscriptions ORDER BY name)");
  }

  // An application's own database: a `users` table with rows, its user_version set.
  void create_app_database(const fs::path& path) const {
    exec_sql(path,
             "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
             "INSERT INTO users (name) VALUES ('ada'), ('grace'), ('barbara');"
             "PRAGMA user_version = 7;");
  }

  // Runs `program` with `args`, `input` on its stdin (or the file `stdin_path`), in
  // `cwd` (or the test's own directory); waits for it to exit.
  Result run_program(const std::string& program, const std::vector<std::string>& args,
                     std::string_view input, const fs::path& stdin_path = {},
                     const fs::path& cwd = {}) const {
    const fs::path out = root_ / "stdout", err = root_ / "stderr";
    fs::path in = stdin_path;
    if (in.empty()) {
      in = root_ / "stdin";
      write_bytes(in, input);
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
    posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    std::vector<std::string> words = {program};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& word : words) argv.push_back(word.data());
    argv.push_back(nullptr);

    pid_t pid = 0;
    int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "spawn " + program);
    int wait_status = 0;
    while (::waitpid(pid, &wait_status, 0) < 0) {
      if (errno != EINTR)
        throw std::system_error(errno, std::generic_category(), "waitpid");
    }
    Result result;
    result.status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
    result.out = read_bytes(out);
    result.err = read_bytes(err);
    return result;
  }

  fs::path root_;
};

}  // namespace
