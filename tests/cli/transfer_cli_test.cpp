// `eventlite export`, `import` and `replay`: envelopes out of a file, into another,
// and into a command's stdin; what each says on stdout and stderr, and its status.

#include <pty.h>
#include <signal.h>

#include <chrono>

#include "cli_fixture.hpp"

namespace {

class TransferTest : public CliTest {
 protected:
  // `n` events over five streams, appended in one batch through the tool.
  void seed(std::size_t n) const {
    std::string jsonl;
    for (std::size_t i = 0; i < n; ++i)
      jsonl += "{\"stream\":\"s-" + std::to_string(i % 5) +
               "\",\"type\":\"T\",\"data\":{\"i\":" + std::to_string(i) +
               ",\"text\":\"caf\\u00e9 \\\"quoted\\\"\"},\"metadata\":{\"k\":1}}\n";
    init();
    append_jsonl(jsonl);
  }
};

// A child process of the test: `argv` with stdout to `out`, stderr to /dev/null.
pid_t spawn(std::vector<std::string> argv, const fs::path& out) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::system_error(rc, std::generic_category(), "spawn");
  return pid;
}

// Waits up to `timeout` for `done()`, looking every 10 ms.
template <class F>
bool wait_for(F done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    ::usleep(10000);
  }
  return true;
}

// The exit status of `pid` once it has exited within `timeout`; -1 if it was killed
// by a signal, -2 if it had not exited (it is then killed).
int exit_within(pid_t pid, std::chrono::milliseconds timeout) {
  int status = 0;
  if (!wait_for([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, timeout)) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    return -2;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

using Export = TransferTest;
using Import = TransferTest;
using Replay = TransferTest;
using Follow = TransferTest;

TEST_F(Export, WritesWhatReadWritesAndNoProgressWhenStderrIsNotATerminal) {
  seed(3000);
  const Result exported = run({"export", db()});
  ASSERT_EQ(exported.status, 0) << exported.err;
  EXPECT_EQ(exported.out, run({"read", db()}).out);
  EXPECT_EQ(std::count(exported.out.begin(), exported.out.end(), '\n'), 3000);
  EXPECT_EQ(exported.err, "");  // a log file never gets a progress line
  const Result filtered = run({"export", db(), "--stream", "s-2", "--from", "10"});
  EXPECT_EQ(filtered.out,
            run({"read", db(), "--stream", "s-2", "--from", "10"}).out);
}

// With stderr on a terminal (a pseudo-terminal here), a long export shows its
// progress there, and stdout still gets only the envelopes.
TEST_F(Export, ShowsProgressOnATerminal) {
  seed(3000);
  int master = -1, slave = -1;
  ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  const fs::path out = file("out.jsonl");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_adddup2(&actions, slave, 2);
  posix_spawn_file_actions_addclose(&actions, master);
  std::string cli = kCli, command = "export", path = db();
  char* argv[] = {cli.data(), command.data(), path.data(), nullptr};
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, kCli, &actions, nullptr, argv, environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(slave);
  std::string terminal;
  char buffer[4096];
  for (;;) {  // until the tool exits and the terminal reports EIO
    const ssize_t n = ::read(master, buffer, sizeof buffer);
    if (n <= 0) break;
    terminal.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(master);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(terminal.find("eventlite: exported"), std::string::npos) << terminal;
  EXPECT_NE(terminal.find("events"), std::string::npos) << terminal;
  EXPECT_EQ(read_bytes(out), run({"read", db()}).out);
}

TEST_F(Import, RoundTripsAnExportAndTwiceAddsNothing) {
  seed(500);
  write_bytes(file("events.jsonl"), run({"export", db()}).out);
  const std::string copy = file("copy.db").string();
  ASSERT_EQ(run({"init", copy}).status, 0);
  const Result first = run({"import", copy, file("events.jsonl").string()});
  ASSERT_EQ(first.status, 0) << first.err;
  EXPECT_EQ(first.out, "imported 500 events, 0 already stored\n");
  EXPECT_EQ(first.err, "");
  const Result again =
      run_with_stdin({"import", copy}, file("events.jsonl"));  // FILE defaults to -
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(again.out, "imported 0 events, 500 already stored\n");
  // Byte for byte: seqs, ids, streams, versions, types, times, data, metadata.
  EXPECT_EQ(run({"export", copy}).out, read_bytes(file("events.jsonl")));
}

TEST_F(Import, ABadLineIsOneErrorNamingItAndNothingIsImported) {
  seed(20);
  const std::string good = run({"export", db()}).out;
  const std::string copy = file("copy.db").string();
  ASSERT_EQ(run({"init", copy}).status, 0);
  struct Case {
    std::string tail;
    int status;
    std::string says;
  };
  for (const Case& c :
       {Case{"not json\n", 1, "events.jsonl: line 21: envelope:"},
        Case{"{\"id\":\"01930000-0000-7000-8000-0000000000f1\",\"stream\":\"s-1\","
             "\"version\":2,\"type\":\"T\",\"data\":{}}\n",
             3,
             "events.jsonl: line 21: version conflict on stream \"s-1\""}}) {
    SCOPED_TRACE(c.tail);
    write_bytes(file("events.jsonl"), good + c.tail);
    const Result r = run({"import", copy, file("events.jsonl").string()});
    EXPECT_EQ(r.status, c.status);
    EXPECT_EQ(r.out, "");
    expect_one_error_line(r);
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("nothing was imported"), std::string::npos) << r.err;
    EXPECT_EQ(run({"export", copy}).out, "");
  }
}

// From a pipe: the input is spooled first, then imported whole.
TEST_F(Import, FromAPipe) {
  seed(300);
  write_bytes(file("events.jsonl"), run({"export", db()}).out);
  const std::string copy = file("copy.db").string();
  ASSERT_EQ(run({"init", copy}).status, 0);
  const Result r = run_program("/bin/sh",
                               {"-c", "cat '" + file("events.jsonl").string() + "' | '" +
                                          kCli + "' import '" + copy + "'"},
                               "");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "imported 300 events, 0 already stored\n");
  EXPECT_EQ(run({"export", copy}).out, read_bytes(file("events.jsonl")));
}

TEST_F(Import, AMissingFileIsOneError) {
  init();
  const Result r = run({"import", db(), file("missing.jsonl").string()});
  EXPECT_EQ(r.status, 1);
  expect_one_error_line(r);
  EXPECT_NE(r.err.find("missing.jsonl: cannot open it"), std::string::npos) << r.err;
}

TEST_F(Replay, FeedsTheCommandsStdinAndExitsWithItsStatus) {
  seed(300);
  const std::string out = file("replayed.jsonl").string();
  const Result r = run({"replay", db(), "--exec", "cat > '" + out + "'; exit 7"});
  EXPECT_EQ(r.status, 7);
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(read_bytes(out), run({"read", db()}).out);
  const Result filtered = run({"replay", db(), "--type", "T", "--to", "5", "--exec",
                               "wc -l | tr -d ' '"});
  EXPECT_EQ(filtered.status, 0);
  EXPECT_EQ(filtered.out, "5\n");
}

// A command that stops reading early ends the replay cleanly: no SIGPIPE death,
// the command's status, and a line saying how far it got.
TEST_F(Replay, ACommandThatStopsReadingEndsItCleanly) {
  seed(20000);
  const Result r = run({"replay", db(), "--exec", "head -c 100 > /dev/null"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.err.find("eventlite: replay: the command stopped reading after"),
            std::string::npos)
      << r.err;
  const Result failed = run({"replay", db(), "--exec", "exit 4"});
  EXPECT_EQ(failed.status, 4);
  // CMD's own pipelines die quietly of SIGPIPE, as from a shell (an ignored SIGPIPE
  // would make cat say "write error").
  const Result inner = run({"replay", db(), "--exec", "cat | head -c 100 > /dev/null"});
  EXPECT_EQ(inner.status, 0);
  EXPECT_EQ(inner.err.find("cat:"), std::string::npos) << inner.err;
}

// read --follow: what is there, then what another process appends, in order; it
// ends cleanly at SIGTERM.
TEST_F(Follow, PrintsNewEventsOfAnotherProcessUntilSigterm) {
  seed(2);
  const fs::path out = file("followed.jsonl");
  const pid_t pid = spawn({kCli, "read", db(), "--follow", "--stream", "s-1"}, out);
  const auto lines_out = [&] { return lines(read_bytes(out)).size(); };
  ASSERT_TRUE(wait_for([&] { return lines_out() == 1; }, std::chrono::seconds(10)));
  for (int i = 0; i < 3; ++i) {  // each by another process: the tool
    append_jsonl("{\"stream\":\"s-1\",\"type\":\"Later\",\"data\":{}}\n"
                 "{\"stream\":\"other\",\"type\":\"Later\",\"data\":{}}\n");
    ASSERT_TRUE(wait_for([&] { return lines_out() == static_cast<std::size_t>(2 + i); },
                         std::chrono::seconds(10)))
        << read_bytes(out);
  }
  ::kill(pid, SIGTERM);
  EXPECT_EQ(exit_within(pid, std::chrono::seconds(10)), 0);
  EXPECT_EQ(read_bytes(out), run({"read", db(), "--stream", "s-1"}).out);
}

// Its reader going away ends it too, even while nothing is appended.
TEST_F(Follow, EndsWhenItsReaderGoesAway) {
  seed(1);
  const std::string pipeline =
      std::string("'") + kCli + "' read '" + db() + "' --follow | head -n 2";
  const pid_t pid = spawn({"/bin/sh", "-c", pipeline}, file("head.out"));
  // head takes the first event and this one, then exits; eventlite, waiting for
  // more, must notice that nobody reads its output any more.
  append_jsonl("{\"stream\":\"s-9\",\"type\":\"Later\",\"data\":{}}\n");
  EXPECT_EQ(exit_within(pid, std::chrono::seconds(10)), 0);  // head, then eventlite
  EXPECT_EQ(lines(read_bytes(file("head.out"))).size(), 2u);
}

// One stream and a type, over several rounds: only those, each once, then the limit.
TEST_F(Follow, OneStreamAndTypeAcrossRoundsThenTheLimit) {
  seed(10);
  const fs::path out = file("followed.jsonl");
  const pid_t pid = spawn(
      {kCli, "read", db(), "--follow", "--stream", "s-1", "--type", "Later", "--limit", "2"},
      out);
  for (int i = 0; i < 2; ++i) {
    append_jsonl("{\"stream\":\"s-1\",\"type\":\"Other\",\"data\":{}}\n"
                 "{\"stream\":\"s-1\",\"type\":\"Later\",\"data\":{\"i\":" +
                 std::to_string(i) + "}}\n");
    ASSERT_TRUE(wait_for(
        [&] { return lines(read_bytes(out)).size() == static_cast<std::size_t>(i + 1); },
        std::chrono::seconds(10)));
  }
  EXPECT_EQ(exit_within(pid, std::chrono::seconds(10)), 0);  // at the limit
  EXPECT_EQ(read_bytes(out), run({"read", db(), "--stream", "s-1", "--type", "Later"}).out);
}

// What the tool creates is its owner's alone, whatever the umask: the database `init`
// makes, and the -wal and -shm that SQLite makes beside it (with the database's mode)
// while a command holds it open, here `read --follow` and an `append` beside it.
// Under umask 0, SQLite alone would make them 0644, open()'s default 0666.
TEST_F(Follow, FilesTheToolCreatesAreOwnerOnlyWhateverTheUmask) {
  struct Umask {
    mode_t old = ::umask(0);
    ~Umask() { ::umask(old); }
  } umask_zero;
  seed(2);
  const auto mode = [](const fs::path& p) {
    return fs::status(p).permissions() & fs::perms::all;
  };
  constexpr fs::perms kOwnerOnly = fs::perms::owner_read | fs::perms::owner_write;
  EXPECT_EQ(mode(db()), kOwnerOnly);
  const fs::path out = file("followed.jsonl");
  const pid_t pid = spawn({kCli, "read", db(), "--follow"}, out);
  ASSERT_TRUE(wait_for([&] { return lines(read_bytes(out)).size() == 2; },
                       std::chrono::seconds(10)));
  append_jsonl("{\"stream\":\"s-1\",\"type\":\"Later\",\"data\":{}}\n");
  ASSERT_TRUE(wait_for([&] { return lines(read_bytes(out)).size() == 3; },
                       std::chrono::seconds(10)));
  for (const char* suffix : {"-wal", "-shm"}) {
    const fs::path side = db() + suffix;
    ASSERT_TRUE(fs::exists(side)) << side;
    EXPECT_EQ(mode(side), kOwnerOnly) << side;
  }
  ::kill(pid, SIGTERM);
  EXPECT_EQ(exit_within(pid, std::chrono::seconds(10)), 0);
  for (const fs::path& f : fs::directory_iterator(file(""))) {
    if (f.filename().string().rfind("events.db", 0) == 0) {
      EXPECT_EQ(mode(f), kOwnerOnly) << f;
    }
  }
}

TEST_F(Follow, StopsAtTheLimit) {
  seed(3);
  const Result r = run({"read", db(), "--follow", "--limit", "2"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, run({"read", db(), "--limit", "2"}).out);
}

}  // namespace
