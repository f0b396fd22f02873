// Figures 1, 2 and 4: appends. Each repetition writes a file of its own, removed after.

#include <string>

#include "bench/raw_sqlite.hpp"
#include "bench/scenarios.hpp"
#include "eventlite/store.hpp"

namespace eventlite::bench {
namespace {

const char* durability_name(Durability d) {
  return d == Durability::full ? "full" : "normal";
}

// Gives `file` eventlite's schema and `stored` events: a new file when 0, else a
// synced copy of the fixture, so each repetition starts from the same state.
void prepare(Context& ctx, const std::filesystem::path& file, std::size_t stored) {
  if (stored == 0)
    create_schema(file);
  else
    copy_file_synced(ctx.fixture(stored), file);
}

std::string batched_name(const Context& ctx, std::size_t stored, JsonCheck check) {
  return "append batch " + std::to_string(ctx.sizes().batch) + "/call, full, " +
         (stored == 0 ? std::string("empty store") : count_label(stored) + " stored") +
         (check == JsonCheck::none ? "" : ", vs JSON-checked insert");
}

// sizes.batched_calls appends of sizes.batch events, call c to stream c, on a file
// already holding `stored` events; durability full. The threshold applies against a
// bare insert (the store checks every payload in memory, before its INSERT); the
// insert that checks JSON with SQLite's json_valid is shown beside it.
FigureSpec batched_append(Context& ctx, std::size_t stored, JsonCheck check) {
  FigureSpec spec;
  spec.name = batched_name(ctx, stored, check);
  spec.unit = "events/s";
  if (check == JsonCheck::none) spec.threshold = Threshold::ratio_at_least(0.95);
  const double events =
      static_cast<double>(ctx.sizes().batch * ctx.sizes().batched_calls);
  spec.eventlite = [&ctx, stored, events] {
    const ScratchFile file(ctx.new_path("batch-eventlite"));
    prepare(ctx, file.path(), stored);
    auto store = Store::open(file.path(), {.durability = Durability::full});
    const auto batch = ctx.workload().new_events(ctx.sizes().batch);
    const Stopwatch watch;
    for (std::size_t c = 0; c < ctx.sizes().batched_calls; ++c)
      store.append(ctx.workload().stream(c), batch);
    return events / watch.seconds();
  };
  spec.baseline = [&ctx, stored, events, check] {
    const ScratchFile file(ctx.new_path("batch-baseline"));
    prepare(ctx, file.path(), stored);
    RawDb db(file.path(), RawDb::Sync::full);
    RawAppender appender(db, ctx.workload(), check);
    const Stopwatch watch;
    for (std::size_t c = 0; c < ctx.sizes().batched_calls; ++c)
      appender.append_batch(c, ctx.sizes().batch);
    return events / watch.seconds();
  };
  return spec;
}

// One event per Store::append from `threads` threads for sizes.single_run, thread t's
// n-th event to stream n * threads + t; the baseline is one thread committing one
// event per transaction, under the same durability.
Measure single_append_eventlite(Context& ctx, std::size_t threads,
                                Durability durability) {
  return [&ctx, threads, durability] {
    const ScratchFile file(ctx.new_path("single-eventlite"));
    create_schema(file.path());
    auto store = Store::open(file.path(), {.durability = durability});
    const auto events = ctx.workload().new_events(Workload::kCycle);
    return run_for(threads, ctx.sizes().single_run, [&](std::size_t t, std::size_t n) {
      store.append(ctx.workload().stream(n * threads + t), events[n % Workload::kCycle]);
    });
  };
}

FigureSpec single_append(Context& ctx, std::size_t threads, Durability durability) {
  FigureSpec spec;
  spec.name = "append single, " + std::to_string(threads) +
              (threads == 1 ? " thread, " : " threads, ") + durability_name(durability);
  spec.unit = "events/s";
  spec.eventlite = single_append_eventlite(ctx, threads, durability);
  spec.baseline = [&ctx, durability] {
    const ScratchFile file(ctx.new_path("single-baseline"));
    create_schema(file.path());
    RawDb db(file.path(), RawDb::sync_for(durability));
    RawAppender appender(db, ctx.workload());
    return run_for(1, ctx.sizes().single_run,
                   [&](std::size_t, std::size_t n) { appender.append_one(n, n); });
  };
  return spec;
}

// The ceiling of a group commit of `threads` single appenders: one thread committing
// the same kind of events in hand-made transactions of `threads` events.
Measure ideal_transactions(Context& ctx, std::size_t threads) {
  return [&ctx, threads] {
    const ScratchFile file(ctx.new_path("ideal-baseline"));
    create_schema(file.path());
    RawDb db(file.path(), RawDb::Sync::full);
    RawAppender appender(db, ctx.workload());
    const std::size_t events = threads * 500;
    const Stopwatch watch;
    appender.fill(events, threads);
    return static_cast<double>(events) / watch.seconds();
  };
}

// How close group commit comes to its ideal: the baseline commits the same kind of
// events (one per stream, spread over the streams) from one thread in hand-made
// transactions of `threads` events each, with no waiting and no waking. No group
// commit of `threads` single-event appenders can beat it; the threshold asks for 0.7
// of it.
FigureSpec single_append_vs_ideal(Context& ctx, std::size_t threads) {
  FigureSpec spec;
  spec.threshold = Threshold::ratio_at_least(0.7);
  spec.name = "append single, " + std::to_string(threads) + " threads, full, vs raw " +
              std::to_string(threads) + "-event transactions";
  spec.unit = "events/s";
  spec.eventlite = single_append_eventlite(ctx, threads, Durability::full);
  spec.baseline = ideal_transactions(ctx, threads);
  return spec;
}

// The ceiling of figure 2's threshold on this machine: the same 64 appender threads
// handing single events to RawGroupCommit (raw SQLite, the least a group commit of
// blocking appenders does) against the same hand-made 64-event transactions. Its
// "eventlite" column is that raw group commit.
FigureSpec raw_group_commit_vs_ideal(Context& ctx, std::size_t threads) {
  FigureSpec spec;
  spec.name = "ceiling: raw group commit, " + std::to_string(threads) +
              " threads, full, vs raw " + std::to_string(threads) + "-event transactions";
  spec.unit = "events/s";
  spec.eventlite = [&ctx, threads] {
    const ScratchFile file(ctx.new_path("raw-group-commit"));
    create_schema(file.path());
    RawDb db(file.path(), RawDb::Sync::full);
    RawAppender appender(db, ctx.workload());
    RawGroupCommit group(appender);
    return run_for(threads, ctx.sizes().single_run, [&](std::size_t t, std::size_t n) {
      group.append(n * threads + t, n);
    });
  };
  spec.baseline = ideal_transactions(ctx, threads);
  return spec;
}

}  // namespace

void add_batched_append_figure(Bench& bench, Context& ctx) {
  bench.add(batched_append(ctx, 0, JsonCheck::none));
  bench.add(batched_append(ctx, 0, JsonCheck::json));
}

void add_single_append_figures(Bench& bench, Context& ctx) {
  for (Durability d : {Durability::full, Durability::normal})
    for (std::size_t threads : {1, 8, 64}) bench.add(single_append(ctx, threads, d));
  bench.add(single_append_vs_ideal(ctx, 64));
  bench.add(raw_group_commit_vs_ideal(ctx, 64));
}

void add_stored_events_figures(Bench& bench, Context& ctx) {
  const std::size_t stored = ctx.sizes().stored_events;
  bench.add(batched_append(ctx, stored, JsonCheck::none));
  bench.add(batched_append(ctx, stored, JsonCheck::json));
  bench.add(
      DerivedSpec{.name = "append slowdown, empty -> " + count_label(stored) + " stored",
                  .unit = "x",
                  .better = Better::lower,
                  .from_a = batched_name(ctx, 0, JsonCheck::none),
                  .from_b = batched_name(ctx, stored, JsonCheck::none),
                  .combine = [](double empty, double full) { return empty / full; }});
}

}  // namespace eventlite::bench
