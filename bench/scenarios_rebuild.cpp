// Figures 21-23: a rebuild without downtime of a projection over 1M events (per
// stream: how many events and the last seq), while an appender appends an event
// every millisecond and a reader looks a stream up every 200 microseconds, each on
// its own connection:
// - 21, the rebuild's rate: eventlite's rebuild_with_shadow (shadow table caught up
//   in steps of 512 while a started processor delivers the live events to the old
//   table, then the rest, the swap and the checkpoint in one transaction), against
//   the same algorithm written by hand on the sqlite3 C API (steps of 512 read and
//   upserted in one transaction each, then the rest, DROP, RENAME and the checkpoint
//   in one);
// - 22, the longest an append waited meanwhile (its call, commit included);
// - 23, the longest a reader's lookup took meanwhile.
// 22 and 23 are read off the runs of 21 (the same repetitions), not run again.

#include <SQLiteCpp/Database.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <stdexcept>
#include <thread>

#include "bench/raw_sqlite.hpp"
#include "bench/scenarios.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/rebuild.hpp"
#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"

namespace eventlite::bench {
namespace {

using namespace std::chrono_literals;

constexpr const char* kCreate =
    "CREATE TABLE totals(stream TEXT PRIMARY KEY, n INTEGER NOT NULL, last_seq INTEGER)";
constexpr const char* kCreateNext =
    "CREATE TABLE totals_next(stream TEXT PRIMARY KEY, n INTEGER NOT NULL, last_seq "
    "INTEGER)";
constexpr const char* kUpsertLive =
    "INSERT INTO totals(stream, n, last_seq) VALUES (?1, 1, ?2) ON CONFLICT(stream) DO "
    "UPDATE SET n = n + 1, last_seq = excluded.last_seq";
constexpr const char* kUpsertNext =
    "INSERT INTO totals_next(stream, n, last_seq) VALUES (?1, 1, ?2) ON CONFLICT(stream) "
    "DO UPDATE SET n = n + 1, last_seq = excluded.last_seq";
constexpr const char* kSwap =
    "DROP TABLE totals; ALTER TABLE totals_next RENAME TO totals";

struct Run {
  double events_per_second = 0;
  double append_wait_ms = 0;
  double read_wait_ms = 0;
};

// The appender and the reader, from start to stop: the longest call of each.
class Load {
 public:
  Load(const std::filesystem::path& file, std::function<void(std::size_t)> append)
      : append_(std::move(append)), file_(file) {
    appender_ = std::thread([this] {
      for (std::size_t n = 0; !done_; ++n) {
        const Stopwatch watch;
        append_(n);
        longest_append_ = std::max(longest_append_, watch.seconds());
        std::this_thread::sleep_for(1ms);  // the pace of the load, not a wait for it
      }
    });
    reader_ = std::thread([this] {
      RawDb db(file_, RawDb::Sync::normal);
      Statement lookup(db.get(), "SELECT n, last_seq FROM totals WHERE stream = ?1");
      const Workload workload;
      for (std::size_t n = 0; !done_; ++n) {
        const Stopwatch watch;
        lookup.bind(1, workload.stream(n));
        while (sqlite3_step(lookup.get()) == SQLITE_ROW) {
        }
        sqlite3_reset(lookup.get());
        longest_read_ = std::max(longest_read_, watch.seconds());
        std::this_thread::sleep_for(200us);  // a busy application's pace
      }
    });
  }
  ~Load() { stop(); }

  void stop() {
    done_ = true;
    if (appender_.joinable()) appender_.join();
    if (reader_.joinable()) reader_.join();
  }
  double longest_append_ms() const { return longest_append_ * 1000; }
  double longest_read_ms() const { return longest_read_ * 1000; }

 private:
  std::function<void(std::size_t)> append_;
  std::filesystem::path file_;
  std::atomic<bool> done_{false};
  double longest_append_ = 0, longest_read_ = 0;
  std::thread appender_, reader_;
};

// The fixture's copy with the live table and its subscription "totals" at the
// head, as if it had been built by a wrong version of its handler.
std::filesystem::path prepared(Context& ctx, std::size_t n, const char* stem) {
  const std::filesystem::path path = ctx.new_path(stem);
  copy_file_synced(ctx.fixture(n), path);
  RawDb db(path, RawDb::Sync::full);
  db.exec(kCreate);
  db.exec(
      "INSERT INTO eventlite_subscriptions(name, position, created, updated) "
      "SELECT 'totals', max(seq), 'c', 'u' FROM eventlite_events");
  return path;
}

Seq head_of(sqlite3* db) {
  Statement s(db, "SELECT coalesce(max(seq), 0) FROM eventlite_events");
  if (sqlite3_step(s.get()) != SQLITE_ROW) throw std::runtime_error("read head");
  const Seq head = sqlite3_column_int64(s.get(), 0);
  sqlite3_reset(s.get());
  return head;
}

// A handler that upserts into `sql`'s table through the delivery's transaction,
// its statement prepared once on the store's one writer connection.
Handler upsert_into(const char* sql, std::shared_ptr<std::unique_ptr<Statement>> cached) {
  return [sql, cached](const eventlite::Context& c) {
    if (!*cached)
      *cached = std::make_unique<Statement>(c.transaction().database().getHandle(), sql);
    Statement& s = **cached;
    s.bind(1, c.event().stream);
    s.bind(2, c.event().seq);
    s.run();
  };
}

Run eventlite_rebuild(Context& ctx, std::size_t n) {
  const ScratchFile file(prepared(ctx, n, "rebuild"));
  Store store = Store::open(file.path());
  auto live_statement = std::make_shared<std::unique_ptr<Statement>>();
  auto next_statement = std::make_shared<std::unique_ptr<Statement>>();
  Run run;
  {
    Processor processor(store, {.checkpoint_interval = 50ms});
    processor.subscribe("totals", upsert_into(kUpsertLive, live_statement),
                        {.transactional = true});
    processor.start();
    const Workload& workload = ctx.workload();
    Load load(file.path(), [&](std::size_t i) {
      store.append(workload.stream(i), NewEvent{.type = workload.type(i),
                                                .data = workload.data(i),
                                                .metadata = workload.metadata()});
    });
    const Stopwatch watch;
    const RebuildReport report = rebuild_with_shadow(
        store, "totals",
        {.create = [](Transaction& t) { t.database().exec(kCreateNext); },
         .handler = upsert_into(kUpsertNext, next_statement),
         .swap =
             [&](Transaction& t) {
               next_statement->reset();  // its table goes
               t.database().exec(kSwap);
             }},
        {.batch_size = 512});
    const double seconds = watch.seconds();
    load.stop();
    processor.stop();
    if (report.events < n) throw std::runtime_error("the rebuild missed events");
    run = {static_cast<double>(report.events) / seconds, load.longest_append_ms(),
           load.longest_read_ms()};
    live_statement->reset();
  }
  RawDb check(file.path(), RawDb::Sync::normal);
  Statement sum(check.get(), "SELECT sum(n) FROM totals");
  if (sqlite3_step(sum.get()) != SQLITE_ROW ||
      sqlite3_column_int64(sum.get(), 0) != head_of(check.get()))
    throw std::runtime_error("the rebuilt projection does not count every event");
  return run;
}

// The same algorithm on the C API: steps of 512 events, each read and upserted in
// one write transaction with the checkpoint row of the build, then the rest, the
// swap and the subscription's checkpoint in one.
Run raw_rebuild(Context& ctx, std::size_t n) {
  const ScratchFile file(prepared(ctx, n, "rebuild-baseline"));
  RawDb db(file.path(), RawDb::Sync::full);
  RawDb appender_db(file.path(), RawDb::Sync::full);
  RawAppender appender(appender_db, ctx.workload());
  Load load(file.path(),
            [&](std::size_t i) { appender.append_one(i % Workload::kStreams, i); });
  const Stopwatch watch;
  db.exec("BEGIN IMMEDIATE");
  db.exec(kCreateNext);
  db.exec("COMMIT");
  Statement select(
      db.get(),
      "SELECT seq, stream FROM eventlite_events WHERE seq > ?1 AND seq <= ?2 "
      "ORDER BY seq LIMIT ?3");
  Statement upsert(db.get(), kUpsertNext);
  Statement position(
      db.get(), "UPDATE eventlite_subscriptions SET position = ?1 WHERE name = 'totals'");
  Statement begin(db.get(), "BEGIN IMMEDIATE"), commit(db.get(), "COMMIT");
  Seq at = 0;
  std::uint64_t events = 0;
  // Upserts the events in (at, to], at most `limit`; returns how many.
  const auto step = [&](Seq to, std::int64_t limit) {
    select.bind(1, at);
    select.bind(2, to);
    select.bind(3, limit);
    std::int64_t count = 0;
    while (sqlite3_step(select.get()) == SQLITE_ROW) {
      const Seq seq = sqlite3_column_int64(select.get(), 0);
      const auto* stream =
          reinterpret_cast<const char*>(sqlite3_column_text(select.get(), 1));
      upsert.bind(1, std::string_view(stream, sqlite3_column_bytes(select.get(), 1)));
      upsert.bind(2, seq);
      upsert.run();
      at = seq;
      ++count;
    }
    sqlite3_reset(select.get());
    events += static_cast<std::uint64_t>(count);
    return count;
  };
  for (;;) {
    begin.run();
    const std::int64_t got = step(INT64_MAX, 512);
    commit.run();
    if (got < 512 || at >= head_of(db.get())) break;
  }
  begin.run();
  const Seq head = head_of(db.get());
  step(head, INT64_MAX);
  db.exec(kSwap);
  position.bind(1, head);
  position.run();
  commit.run();
  const double seconds = watch.seconds();
  load.stop();
  if (events < n) throw std::runtime_error("the raw rebuild missed events");
  return {static_cast<double>(events) / seconds, load.longest_append_ms(),
          load.longest_read_ms()};
}

// Runs of figure 21, kept for 22 and 23: each figure reads them from the first.
struct Runs {
  std::vector<Run> eventlite, baseline;
};

// The next run of `runs` that figure `used` has not read yet, or a fresh one when
// figure 21 did not run (a --filter without it).
Run take(const std::vector<Run>& runs, std::size_t& used,
         const std::function<Run()>& fresh) {
  if (used < runs.size()) return runs[used++];
  return fresh();
}

}  // namespace

void add_rebuild_figures(Bench& bench, Context& ctx) {
  const std::size_t n = ctx.sizes().stored_events;
  const std::string count = count_label(n);
  auto runs = std::make_shared<Runs>();
  const auto eventlite = [&ctx, n] { return eventlite_rebuild(ctx, n); };
  const auto baseline = [&ctx, n] { return raw_rebuild(ctx, n); };
  bench.add(FigureSpec{
      .name = "rebuild a " + count + "-event projection without downtime",
      .unit = "events/s",
      .better = Better::higher,
      .threshold = std::nullopt,
      .eventlite =
          [runs, eventlite] {
            runs->eventlite.push_back(eventlite());
            return runs->eventlite.back().events_per_second;
          },
      .baseline =
          [runs, baseline] {
            runs->baseline.push_back(baseline());
            return runs->baseline.back().events_per_second;
          },
  });
  // Figures 22 and 23 read off 21's runs, each with its own count of those read.
  const auto waits = [&](std::string name, double Run::*field) {
    auto used = std::make_shared<std::array<std::size_t, 2>>();
    bench.add(FigureSpec{
        .name = std::move(name),
        .unit = "ms",
        .better = Better::lower,
        .threshold = std::nullopt,
        .eventlite =
            [runs, used, eventlite, field] {
              return take(runs->eventlite, (*used)[0], eventlite).*field;
            },
        .baseline = [runs, used, baseline,
                     field] { return take(runs->baseline, (*used)[1], baseline).*field; },
    });
  };
  waits("longest append wait during the rebuild", &Run::append_wait_ms);
  waits("longest read wait during the rebuild", &Run::read_wait_ms);
}

}  // namespace eventlite::bench
