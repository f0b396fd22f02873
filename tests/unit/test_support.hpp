#pragma once

// Helpers shared by the unit tests: fresh temp dirs, file snapshots, raw SQLite
// connections for faults and checks, child processes, and waiting on a condition
// with a deadline (never a bare sleep).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "eventlite/event.hpp"
#include "eventlite/store.hpp"

namespace eventlite::test {

using namespace std::chrono_literals;

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "eventlite-unit-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp");
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

  // The names of the entries in the directory, sorted.
  std::set<std::string> entries() const {
    std::set<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) {
      names.insert(entry.path().filename().string());
    }
    return names;
  }

 private:
  std::filesystem::path path_;
};

// The bytes of a file, for byte-for-byte comparisons.
inline std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

// Overwrites `bytes.size()` bytes of an existing file at `offset`.
inline void overwrite_bytes(const std::filesystem::path& path, std::uint64_t offset,
                            std::string_view bytes) {
  std::fstream io(path, std::ios::binary | std::ios::in | std::ios::out);
  io.seekp(static_cast<std::streamoff>(offset));
  io.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!io) throw std::runtime_error("cannot overwrite " + path.string());
}

// Permission bits of a file (st_mode & 07777).
inline unsigned file_mode(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    throw std::system_error(errno, std::generic_category(), "stat " + path.string());
  }
  return static_cast<unsigned>(st.st_mode & 07777);
}

// Polls `pred` until it holds or `timeout` passes; returns its last value.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// The kernel id of the calling thread.
inline pid_t current_tid() {
  return static_cast<pid_t>(::syscall(SYS_gettid));
}

// The scheduler state of thread `tid` of this process: 'R' running, 'S' sleeping
// (blocked), ... ; '?' if it cannot be read.
inline char thread_state(pid_t tid) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return '?';
  return stat[close + 2];
}

// A connection of the test's own, through SQLite's C API, as an application or an
// attacker would hold one.
class RawDb {
 public:
  explicit RawDb(const std::filesystem::path& path,
                 int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) {
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close_v2(db_);
      throw std::runtime_error("cannot open " + path.string() + ": " + message);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  sqlite3* get() const noexcept { return db_; }

  // Runs `sql`; returns SQLite's result code, the message in error().
  int try_exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }

  void exec(const std::string& sql) {
    if (try_exec(sql) != SQLITE_OK) {
      throw std::runtime_error("sql failed: " + sql + ": " + error());
    }
  }

  std::string error() const { return sqlite3_errmsg(db_); }

  // The first column of the first row of `sql`, as an integer / text.
  std::int64_t query_int(const std::string& sql) {
    Statement stmt(db_, sql);
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) {
      throw std::runtime_error("no row: " + sql + ": " + error());
    }
    return sqlite3_column_int64(stmt.get(), 0);
  }

  std::string query_text(const std::string& sql) {
    Statement stmt(db_, sql);
    if (sqlite3_step(stmt.get()) != SQLITE_ROW) {
      throw std::runtime_error("no row: " + sql + ": " + error());
    }
    const unsigned char* text = sqlite3_column_text(stmt.get(), 0);
    return text != nullptr ? reinterpret_cast<const char*>(text) : "";
  }

  // Every row's first column, as text.
  std::vector<std::string> query_column(const std::string& sql) {
    Statement stmt(db_, sql);
    std::vector<std::string> out;
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt.get(), 0);
      out.emplace_back(text != nullptr ? reinterpret_cast<const char*>(text) : "");
    }
    if (rc != SQLITE_DONE)
      throw std::runtime_error("query failed: " + sql + ": " + error());
    return out;
  }

  bool has_object(const std::string& name) {
    return query_int("SELECT count(*) FROM sqlite_master WHERE name = '" + name + "'") ==
           1;
  }

 private:
  class Statement {
   public:
    Statement(sqlite3* db, const std::string& sql) {
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
        throw std::runtime_error("prepare failed: " + sql + ": " + sqlite3_errmsg(db));
      }
    }
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;
    sqlite3_stmt* get() const noexcept { return stmt_; }

   private:
    sqlite3_stmt* stmt_ = nullptr;
  };

  sqlite3* db_ = nullptr;
};

// Folds the write-ahead log into the main file and removes it, so that the main
// file alone holds the database (for byte-for-byte snapshots).
inline void checkpoint(const std::filesystem::path& path) {
  RawDb db(path, SQLITE_OPEN_READWRITE);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

// Starts `body` in a child process created by fork(); the child exits with what
// `body` returns (97 if it throws). Call before the parent opens any Store: no
// connection or store thread may cross fork().
inline pid_t spawn_child(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (pid == 0) {
    int code = 97;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child: uncaught exception: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "child: uncaught exception\n");
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  return pid;
}

// Waits for a child and returns its exit code, 128 + signal if it was killed, or -1
// if it did not end within `timeout` (it is then killed).
inline int wait_child(pid_t pid, std::chrono::milliseconds timeout = 30s) {
  int status = 0;
  bool done = wait_until(
      [&] {
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        return r == pid;
      },
      timeout);
  if (!done) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -2;
}

inline int run_in_child(const std::function<int()>& body,
                        std::chrono::milliseconds timeout = 30s) {
  return wait_child(spawn_child(body), timeout);
}

// Whether `text` matches `pattern`, where in the pattern 'h' stands for a lower-case
// hex digit, 'd' for a decimal digit, '[xy]' for one of x or y, and anything else
// for itself. (std::regex trips GCC 12's warnings under sanitizers.)
inline bool matches_shape(std::string_view text, std::string_view pattern) {
  std::size_t t = 0;
  for (std::size_t p = 0; p < pattern.size(); ++p, ++t) {
    if (t >= text.size()) return false;
    const char c = text[t];
    switch (pattern[p]) {
      case 'h':
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
        break;
      case 'd':
        if (!(c >= '0' && c <= '9')) return false;
        break;
      case '[': {
        const auto close = pattern.find(']', p);
        if (pattern.substr(p + 1, close - p - 1).find(c) == std::string_view::npos)
          return false;
        p = close;
        break;
      }
      default:
        if (c != pattern[p]) return false;
    }
  }
  return t == text.size();
}

// A UUID of version 7 and RFC 9562 variant, lower-case, 36 characters.
inline bool is_uuid_v7(std::string_view id) {
  return matches_shape(id, "hhhhhhhh-hhhh-7hhh-[89ab]hhh-hhhhhhhhhhhh");
}

// UTC ISO-8601 with milliseconds: 2026-11-23T10:00:00.123Z.
inline bool is_utc_millis_time(std::string_view time) {
  return matches_shape(time, "dddd-dd-ddTdd:dd:dd.dddZ");
}

// Options for tests whose subject is not durability: no fsync per commit.
inline StoreOptions fast_options() {
  StoreOptions options;
  options.durability = Durability::normal;
  return options;
}

// An event of `type` with JSON text `data`.
inline NewEvent event(std::string type, std::string data = "{}") {
  NewEvent e;
  e.type = std::move(type);
  e.data = std::move(data);
  return e;
}

// `n` events {"i":first}, {"i":first+1}, ... of `type`.
inline std::vector<NewEvent> numbered_events(std::size_t n, std::string type = "Numbered",
                                             std::size_t first = 0) {
  std::vector<NewEvent> events;
  events.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    events.push_back(event(type, "{\"i\":" + std::to_string(first + i) + "}"));
  }
  return events;
}

// Whether two large byte strings are equal, without printing them on failure.
inline ::testing::AssertionResult same_bytes(const std::string& before,
                                             const std::string& after) {
  if (before == after) return ::testing::AssertionSuccess();
  std::size_t at = 0;
  while (at < before.size() && at < after.size() && before[at] == after[at]) ++at;
  return ::testing::AssertionFailure()
         << "file changed: size " << before.size() << " -> " << after.size()
         << ", first difference at byte " << at;
}

}  // namespace eventlite::test
