// Figures 17-20: the `eventlite replay` and `eventlite import` commands on 1M events,
// for speed and for peak memory. Each runs the real tool (a child process, timed from
// its start to its exit, its peak RSS from wait4):
// - 17, replay into `cat > /dev/null`, against the raw read loop of figure 3 over the
//   same file (raw SQLite, in this process): what reading costs at the least;
// - 18, its peak RSS, against the raw read loop's in a child (figure 5's baseline);
// - 19, import of that file's export (made once, untimed) into a new file, against a
//   raw batched append of as many events in one transaction, as the import (prepared
//   INSERTs, versions kept in memory, durability full): the ceiling of any import;
// - 20, its peak RSS, against figure 5's baseline again.

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/raw_sqlite.hpp"
#include "bench/scenarios.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transfer.hpp"

extern char** environ;

namespace eventlite::bench {
namespace {

struct Run {
  double seconds = 0;
  double peak_mib = 0;
};

// The eventlite tool with `args`, its stdout and stderr to /dev/null; throws unless
// it exits 0.
Run run_tool(std::vector<std::string> args) {
  args.insert(args.begin(), EVENTLITE_CLI_PATH);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  const Stopwatch watch;
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, EVENTLITE_CLI_PATH, &actions, nullptr, argv.data(),
                               environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot run the eventlite tool");
  int status = 0;
  rusage usage{};
  if (::wait4(pid, &status, 0, &usage) != pid)
    throw std::runtime_error("wait4 on the eventlite tool failed");
  const double seconds = watch.seconds();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("the eventlite tool failed: " + args[1]);
  return {seconds, static_cast<double>(usage.ru_maxrss) / 1024};
}

double raw_read_rate(Context& ctx, std::size_t n) {
  RawDb db(ctx.fixture(n), RawDb::Sync::full);
  RawReader reader(db);
  const Stopwatch watch;
  const Checksum sum = reader.read_all();
  const double seconds = watch.seconds();
  if (sum.events != n) throw std::runtime_error("the raw read saw other events");
  return static_cast<double>(n) / seconds;
}

double raw_read_rss(Context& ctx, std::size_t n) {
  std::istringstream out(
      run_self({"--rss-child", "baseline", "--rss-file", ctx.fixture(n).string()}));
  std::size_t kib = 0;
  if (!(out >> kib)) throw std::runtime_error("unexpected output from the RSS child");
  return static_cast<double>(kib) / 1024;
}

Run replay(Context& ctx, std::size_t n) {
  return run_tool({"replay", ctx.fixture(n).string(), "--exec", "cat > /dev/null"});
}

// The fixture's export, made once (untimed).
const std::filesystem::path& exported(Context& ctx, std::size_t n) {
  static std::filesystem::path path;
  if (!path.empty()) return path;
  path = ctx.new_path("export.jsonl");
  std::ofstream out(path, std::ios::binary);
  StoreOptions options;
  options.read_only = true;
  const Store store = Store::open(ctx.fixture(n), options);
  if (export_envelopes(store, out) != n) throw std::runtime_error("short export");
  return path;
}

Run import(Context& ctx, std::size_t n) {
  const std::filesystem::path& lines = exported(ctx, n);
  const ScratchFile file(ctx.new_path("import"));
  create_schema(file.path());
  const Run run = run_tool({"import", file.path().string(), lines.string()});
  StoreOptions options;
  options.read_only = true;
  if (Store::open(file.path(), options).head() != static_cast<Seq>(n))
    throw std::runtime_error("the import stored other events");
  return run;
}

double raw_append_rate(Context& ctx, std::size_t n) {
  const ScratchFile file(ctx.new_path("import-baseline"));
  create_schema(file.path());
  RawDb db(file.path(), RawDb::Sync::full);
  RawAppender appender(db, ctx.workload());
  const Stopwatch watch;
  appender.fill(n, n);  // one transaction, as the import
  return static_cast<double>(n) / watch.seconds();
}

}  // namespace

void add_transfer_figures(Bench& bench, Context& ctx) {
  const std::size_t n = ctx.sizes().stored_events;
  const std::string count = count_label(n);
  bench.add(FigureSpec{
      .name = "replay " + count + " events into cat > /dev/null",
      .unit = "events/s",
      .better = Better::higher,
      .threshold = Threshold::ratio_at_least(0.5),
      .eventlite = [&ctx, n] { return static_cast<double>(n) / replay(ctx, n).seconds; },
      .baseline = [&ctx, n] { return raw_read_rate(ctx, n); },
  });
  bench.add(FigureSpec{
      .name = "peak RSS, replay " + count + " events",
      .unit = "MiB",
      .better = Better::lower,
      .threshold = Threshold::eventlite_below(64),
      .eventlite = [&ctx, n] { return replay(ctx, n).peak_mib; },
      .baseline = [&ctx, n] { return raw_read_rss(ctx, n); },
  });
  bench.add(FigureSpec{
      .name = "import " + count + " events",
      .unit = "events/s",
      .better = Better::higher,
      .threshold = Threshold::ratio_at_least(0.5),
      .eventlite = [&ctx, n] { return static_cast<double>(n) / import(ctx, n).seconds; },
      .baseline = [&ctx, n] { return raw_append_rate(ctx, n); },
  });
  bench.add(FigureSpec{
      .name = "peak RSS, import " + count + " events",
      .unit = "MiB",
      .better = Better::lower,
      .threshold = Threshold::eventlite_below(64),
      .eventlite = [&ctx, n] { return import(ctx, n).peak_mib; },
      .baseline = [&ctx, n] { return raw_read_rss(ctx, n); },
  });
}

}  // namespace eventlite::bench
