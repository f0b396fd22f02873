// Power loss: a workload of appends (single events, batches, asynchronous ones, the
// application's own transactions through append_in() and Store::transaction(), a close
// and reopen, and the writer's checkpoints at 1000 WAL frames) runs on a shim VFS
// that fails the power after the N-th write or sync (power_loss_vfs.hpp), for N over
// the whole workload and at the checkpoints and the reopen; a shorter workload starts
// with the store creating its file and is cut through the creation. Then the files
// are left as the cut leaves them (unsynced writes dropped, or torn at 512-byte
// sectors), and the store is opened again and checked:
// - never a corrupt file: integrity_check is ok, the store opens, verify() is clean;
// - what is there is a prefix of what was appended, event for event, with the
//   application's rows exactly beside their events;
// - under `full`, every append that returned before the cut is there.
// Controls show that the checks see a loss when there is one: under `normal` some
// cuts do lose acknowledged appends (and none do when the shim keeps unsynced writes),
// a disk whose syncs persist nothing loses acknowledged `full` appends, and one whose
// checkpoint syncs persist nothing leaves corrupt files.
//
// EVENTLITE_POWER_LOSS_SEED=N runs the trials with another seed (the cut points'
// jitter and the tears); a failing trial prints the seed that reproduces it.

#include <SQLiteCpp/Database.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "eventlite/store.hpp"
#include "eventlite/transaction.hpp"
#include "power_loss_vfs.hpp"
#include "test_support.hpp"

namespace eventlite {
namespace {

using namespace eventlite::test;
namespace fs = std::filesystem;

// The workload: steps of several kinds in turn; the store is closed and reopened at
// kReopenAt, so that its -wal is deleted and created again. Enough frames for the
// writer's checkpoint (at 1000 frames) to run several times.
constexpr int kSteps = 580;
constexpr int kReopenAt = 200;
constexpr std::size_t kBaseline = 3;  // events in the file before the shim is installed
// Steps after a store creates its file, for the cuts in and right after the creation.
constexpr int kFreshSteps = 30;
// Calls after the store is open on a fresh file that the cuts go through closely: its
// first transaction (the application's table and two events) and a little more.
constexpr std::uint64_t kFreshSetupCalls = 12;

std::uint64_t base_seed() {
  if (const char* env = std::getenv("EVENTLITE_POWER_LOSS_SEED"))
    return std::strtoull(env, nullptr, 10);
  return 20240611;
}

// An event that a step hands to the store, with where it must end up.
struct Appended {
  std::string stream;
  Version version = 0;
  NewEvent event;
  bool app_row = false;  // committed with a row of app_orders naming its id
};

// What one trial's workload did before the power failed.
struct Run {
  std::size_t base = 0;               // events in the file before the workload
  std::vector<Appended> attempted;    // handed to the store, in seq order after those
  std::size_t acknowledged = 0;       // of them, returned before the power failed
  std::string error;                  // a failure before the power failed
  std::uint64_t calls_at_open = 0;    // the shim's call count once the store was open
  std::uint64_t calls_at_close = 0;   // as the store closed
  std::uint64_t calls_at_reopen = 0;  // and once it was open again
};

NewEvent baseline_event(std::size_t i) {
  NewEvent e = event("Baseline", "{\"b\":" + std::to_string(i) + "}");
  e.id = "baseline-" + std::to_string(i);
  return e;
}

// A closed store with kBaseline events and the application's table, durable before
// the trial starts. Made once and copied: its fsyncs would cost more than a trial.
void make_baseline(const fs::path& path) {
  static const std::string bytes = [] {
    TempDir dir;
    {
      auto store = Store::open(dir / "app.db", fast_options());
      std::vector<NewEvent> events;
      for (std::size_t i = 0; i < kBaseline; ++i) events.push_back(baseline_event(i));
      store.append("baseline", events);
      auto tx = store.transaction();
      tx.database().exec(
          "CREATE TABLE app_orders (event_id TEXT PRIMARY KEY, note TEXT NOT NULL)");
      tx.commit();
    }
    if (fs::exists(dir / "app.db-wal"))
      throw std::runtime_error("the baseline's -wal outlived its store");
    return read_bytes(dir / "app.db");
  }();
  write_bytes(path, bytes);
}

StoreOptions options_for(Durability durability) {
  StoreOptions options;
  options.durability = durability;
  return options;
}

std::string expected_seqs(std::size_t first, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i)
    out += (i ? "," : "") + std::to_string(first + i + 1);
  return out;
}

std::string seqs_text(const std::vector<Seq>& seqs) {
  std::string out;
  for (std::size_t i = 0; i < seqs.size(); ++i)
    out += (i ? "," : "") + std::to_string(seqs[i]);
  return out;
}

// Runs `steps` steps of the workload through `vfs` until they are done or the power
// fails, then fails the power (if the workload finished first) and closes
// everything: with the shim dead, closing checkpoints and deletes nothing. On a
// `fresh` file (none yet) the store creates it, and a first transaction creates the
// application's table with two events.
Run run_workload(const fs::path& path, Durability durability, PowerLossVfs& vfs,
                 bool fresh, int steps) {
  Run run;
  run.base = fresh ? 0 : kBaseline;
  std::map<std::string, Version> versions;
  if (!fresh) versions["baseline"] = kBaseline;
  std::size_t n = 0;
  auto next = [&](const std::string& stream, std::size_t pad, bool app_row = false) {
    Appended a;
    a.stream = stream;
    a.version = ++versions[stream];
    a.event = event("Step" + std::to_string(n % 7),
                    "{\"n\":" + std::to_string(n) + ",\"pad\":\"" +
                        std::string(pad, static_cast<char>('a' + n % 26)) + "\"}");
    a.event.metadata = "{\"step\":" + std::to_string(n) + "}";
    a.event.id = "event-" + std::to_string(n);
    a.app_row = app_row;
    ++n;
    run.attempted.push_back(a);
    return a.event;
  };

  std::optional<Store> store;
  std::optional<RawDb> app;
  auto open = [&] {
    store.emplace(Store::open(path, options_for(durability)));
    // The application's own connection: synchronous is per connection, and under
    // `full` the application must ask for FULL too for its commits to be durable.
    // This thread alone uses it, so without SQLite's connection mutex (which
    // ThreadSanitizer would see in a lock-order inversion with the store's hook
    // registry that is not this test's subject: see transaction_test under TSan).
    app.emplace(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX);
    app->exec(durability == Durability::full ? "PRAGMA synchronous=FULL"
                                             : "PRAGMA synchronous=NORMAL");
  };

  // Whether `seqs` are the positions of the attempted events from `first` on, and the
  // call returned before the power failed (a call that returned after acknowledged
  // nothing: the machine was already off).
  auto acknowledge = [&](std::size_t first, const std::vector<Seq>& seqs) {
    if (vfs.dead()) return false;
    const std::size_t count = run.attempted.size() - first;
    if (seqs_text(seqs) != expected_seqs(run.base + first, count)) {
      run.error = "got seqs " + seqs_text(seqs) + ", expected " +
                  expected_seqs(run.base + first, count);
      return false;
    }
    run.acknowledged = run.attempted.size();
    return true;
  };

  try {
    open();
    run.calls_at_open = vfs.stats().calls;
    if (fresh && !vfs.dead()) {
      std::vector<NewEvent> events{next("setup", 10), next("setup", 20)};
      auto tx = store->transaction();
      tx.database().exec(
          "CREATE TABLE app_orders (event_id TEXT PRIMARY KEY, note TEXT NOT NULL)");
      const auto seqs = tx.append("setup", events);
      tx.commit();
      if (!acknowledge(0, seqs)) steps = 0;
    }
    for (int step = 0; step < steps && !vfs.dead(); ++step) {
      if (step == kReopenAt) {
        // Both connections closed: the last one checkpoints and deletes the -wal.
        run.calls_at_close = vfs.stats().calls;
        app.reset();
        store.reset();
        if (vfs.dead()) break;
        open();
        run.calls_at_reopen = vfs.stats().calls;
        continue;
      }
      const std::size_t first = run.attempted.size();
      std::vector<Seq> seqs;
      switch (step % 7) {
        case 0:
        case 1: {
          const NewEvent e = next("single-" + std::to_string(step % 4), (n * 37) % 300);
          seqs.push_back(store->append(run.attempted.back().stream, e));
          break;
        }
        case 2: {
          std::vector<NewEvent> batch;
          const std::string stream = "batch-" + std::to_string(step % 3);
          for (int i = 0; i < 6 + step % 11; ++i)
            batch.push_back(next(stream, 200 + (n * 131) % 2800));
          seqs = store->append(stream, batch);
          break;
        }
        case 3: {
          // The outbox through the application's connection.
          std::vector<NewEvent> events{next("orders", 100, true), next("orders", 50)};
          app->exec("BEGIN IMMEDIATE");
          app->exec("INSERT INTO app_orders VALUES ('" + events[0].id + "', 'in')");
          seqs = store->append_in(app->get(), "orders", events);
          app->exec("COMMIT");
          break;
        }
        case 4: {
          // The outbox through the store's own connection.
          const NewEvent e = next("tx", 400, true);
          auto tx = store->transaction();
          tx.database().exec("INSERT INTO app_orders VALUES ('" + e.id + "', 'tx')");
          seqs = tx.append("tx", std::span<const NewEvent>(&e, 1));
          tx.commit();
          break;
        }
        case 5: {
          const NewEvent e = next("exact", 700);
          seqs.push_back(store->append(
              "exact", e, Expected::exactly(run.attempted.back().version - 1)));
          break;
        }
        default: {
          // Through the store's asynchronous thread, which then does the writing.
          std::vector<NewEvent> events{next("async", 500), next("async", 900)};
          seqs = store->append_async("async", events).get();
          break;
        }
      }
      if (!acknowledge(first, seqs)) {
        if (!run.error.empty())
          run.error = "step " + std::to_string(step) + ": " + run.error;
        break;
      }
    }
  } catch (const std::exception& e) {
    // After the cut SQLite works on a disk that ignores it: failures are expected.
    if (!vfs.dead()) run.error = e.what();
  }
  vfs.cut();
  app.reset();
  store.reset();
  return run;
}

// What the reopened file holds, measured against the run.
struct Outcome {
  std::vector<std::string> problems;  // corruption, or not a prefix of the run
  std::size_t present = 0;            // the run's events found, as a prefix
};

Outcome examine(const fs::path& path, const Run& run) {
  Outcome out;
  // A fresh file whose entry never reached the disk: nothing is there, which is a
  // loss (if anything was acknowledged) but no corruption.
  if (run.base == 0 && !fs::exists(path)) return out;
  std::vector<std::string> app_rows;
  bool app_table = false;
  try {
    RawDb raw(path, SQLITE_OPEN_READWRITE);
    const auto integrity = raw.query_column("PRAGMA integrity_check");
    if (integrity != std::vector<std::string>{"ok"}) {
      std::string all;
      for (const auto& line : integrity) all += line + "; ";
      out.problems.push_back("integrity_check: " + all);
    }
    app_table = raw.query_int(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'app_orders'") == 1;
    if (app_table)
      app_rows = raw.query_column("SELECT event_id FROM app_orders ORDER BY event_id");
  } catch (const std::exception& e) {
    out.problems.push_back(std::string("raw connection: ") + e.what());
    return out;
  }

  std::vector<Event> events;
  try {
    auto store = Store::open(path, fast_options());
    for (const auto& problem : store.verify())
      out.problems.push_back("verify: " + problem);
    events = store.read_all().to_vector();
  } catch (const std::exception& e) {
    out.problems.push_back(std::string("store: ") + e.what());
    return out;
  }

  if (events.size() < run.base) {
    out.problems.push_back("only " + std::to_string(events.size()) +
                           " events: the baseline is gone");
    return out;
  }
  for (std::size_t i = 0; i < run.base; ++i) {
    const NewEvent b = baseline_event(i);
    if (events[i].id != b.id || events[i].data != b.data)
      out.problems.push_back("baseline event " + std::to_string(i) + " changed");
  }
  const std::size_t found = events.size() - run.base;
  if (found > run.attempted.size())
    out.problems.push_back(std::to_string(found) + " events after the baseline, only " +
                           std::to_string(run.attempted.size()) + " appended");
  for (std::size_t i = 0; i < found && i < run.attempted.size(); ++i) {
    const Event& e = events[run.base + i];
    const Appended& a = run.attempted[i];
    if (e.seq != static_cast<Seq>(run.base + i + 1) || e.id != a.event.id ||
        e.stream != a.stream || e.version != a.version || e.type != a.event.type ||
        e.data != a.event.data || e.metadata != a.event.metadata) {
      out.problems.push_back("seq " + std::to_string(e.seq) + " (id " + e.id +
                             ") is not appended event " + std::to_string(i) + " (id " +
                             a.event.id + ")");
      break;
    }
    out.present = i + 1;
  }

  // The application's rows commit with their events: exactly those of the present
  // events, no more, no fewer.
  std::vector<std::string> expected_rows;
  for (std::size_t i = 0; i < out.present; ++i)
    if (run.attempted[i].app_row) expected_rows.push_back(run.attempted[i].event.id);
  std::sort(expected_rows.begin(), expected_rows.end());
  // On a fresh file the table comes with the first events.
  if (run.base == 0 && out.present > 0 && !app_table)
    out.problems.push_back("app_orders is missing beside the events created with it");
  if (app_rows != expected_rows)
    out.problems.push_back("app_orders has " + std::to_string(app_rows.size()) +
                           " rows, the present events call for " +
                           std::to_string(expected_rows.size()));
  return out;
}

// --- trials --------------------------------------------------------------------------

struct Scenario {
  Durability durability = Durability::full;
  CutMode mode = CutMode::drop;
  Syncs syncs = Syncs::durable;
  // No file before the workload: the store creates it, and a file the shim finds
  // (Store::open creates it outside SQLite) is not durable until a directory sync.
  bool fresh = false;
};

struct Trial {
  CutPoint cut;
  std::uint64_t seed = 0;
};

struct TrialResult {
  Run run;
  PowerLossStats stats;
  Outcome outcome;
};

TrialResult run_trial(const Scenario& scenario, const Trial& trial) {
  TempDir dir;
  const auto path = dir / "app.db";
  if (!scenario.fresh) make_baseline(path);
  TrialResult result;
  {
    PowerLossVfs vfs({trial.cut, scenario.syncs, !scenario.fresh});
    result.run = run_workload(path, scenario.durability, vfs, scenario.fresh,
                              scenario.fresh ? kFreshSteps : kSteps);
    result.stats = vfs.restore(scenario.mode, trial.seed);
  }
  {
    // The checks through a shim of their own, without a cut: their syncs cost
    // nothing. It reads the files as restore() left them.
    PowerLossVfs free_syncs;
    result.outcome = examine(path, result.run);
  }
  return result;
}

const char* name_of(CutPoint::On on) {
  switch (on) {
    case CutPoint::On::call: return "call";
    case CutPoint::On::db_write: return "database write";
    case CutPoint::On::db_sync: return "database sync";
  }
  return "?";
}

std::string describe(const Trial& trial) {
  std::ostringstream out;
  out << "power cut after " << name_of(trial.cut.on) << " " << trial.cut.n
      << ", trial seed " << trial.seed << " (EVENTLITE_POWER_LOSS_SEED=" << base_seed()
      << " reproduces the run)";
  return out.str();
}

// The whole workload without a cut, once per durability and start: how many calls of
// each kind it makes, to spread the cuts over.
struct Profile {
  std::uint64_t calls = 0;
  std::uint64_t calls_at_open = 0;
  std::uint64_t db_writes = 0;
  std::uint64_t db_syncs = 0;
  std::uint64_t calls_at_close = 0;
  std::uint64_t calls_at_reopen = 0;
};

const Profile& profile(const Scenario& scenario) {
  static std::map<std::pair<Durability, bool>, Profile> profiles;
  const auto key = std::make_pair(scenario.durability, scenario.fresh);
  auto it = profiles.find(key);
  if (it != profiles.end()) return it->second;
  Scenario dry_scenario;
  dry_scenario.durability = scenario.durability;
  dry_scenario.mode = CutMode::keep;
  dry_scenario.fresh = scenario.fresh;
  const TrialResult dry = run_trial(dry_scenario, {});
  Profile p{dry.stats.calls,    dry.run.calls_at_open,  dry.stats.db_writes,
            dry.stats.db_syncs, dry.run.calls_at_close, dry.run.calls_at_reopen};
  return profiles.emplace(key, p).first->second;
}

// Cut points over the workload: evenly spread calls (with jitter); cuts inside and
// right after the checkpoints (the n-th database write and sync); and cuts in the
// reopen: while the closing connection checkpoints, right after it deleted the -wal
// (the last call before the store is open again), after the new -wal's header is
// written and after it is synced (which syncs the directory), and in the commits
// after.
//
// On a fresh file: a cut after each of the first calls (the rollback journal of the
// switch to WAL, its deletion, the -wal's creation and first commit), after every
// fourth call through the migrations and the first transaction, then the spread
// over the short workload after.
std::vector<Trial> trials_for(const Scenario& scenario, std::size_t spread,
                              bool targeted) {
  const Profile& p = profile(scenario);
  std::mt19937_64 rng(base_seed() ^
                      (scenario.durability == Durability::full ? 0x1f : 0x2e));
  std::vector<Trial> trials;
  auto add = [&](CutPoint::On on, std::uint64_t n) {
    trials.push_back({{on, std::max<std::uint64_t>(n, 1)}, rng()});
  };
  if (scenario.fresh) {
    const std::uint64_t dense = p.calls_at_open + kFreshSetupCalls;
    for (std::uint64_t n = 1; n <= dense; n += n < 16 ? 1 : 4) add(CutPoint::On::call, n);
    const std::uint64_t rest = p.calls > dense ? p.calls - dense : 1;
    for (std::size_t i = 0; i < spread; ++i)
      add(CutPoint::On::call,
          dense + rest * i / spread + rng() % (rest / spread + 1) + 1);
    return trials;
  }
  const std::uint64_t step = std::max<std::uint64_t>(p.calls / spread, 1);
  for (std::size_t i = 0; i < spread; ++i)
    add(CutPoint::On::call, i * step + rng() % step + 1);
  if (!targeted) return trials;
  add(CutPoint::On::db_write, 1);
  add(CutPoint::On::db_write, rng() % std::max<std::uint64_t>(p.db_writes, 1) + 1);
  for (std::uint64_t i = 1; i <= std::min<std::uint64_t>(p.db_syncs, 4); ++i)
    add(CutPoint::On::db_sync, i);
  add(CutPoint::On::call, p.calls_at_close + 1 + rng() % 8);
  for (std::uint64_t after : {0, 1, 2})
    add(CutPoint::On::call, p.calls_at_reopen + after);
  return trials;
}

// What a batch of trials showed, for the assertions that they tested something.
struct Tally {
  std::size_t trials = 0;
  std::size_t lost_acknowledged = 0;  // trials with fewer events than acknowledged
  std::size_t detected = 0;           // trials with a problem or a lost acknowledgement
  std::size_t corrupt = 0;            // trials with a problem
  std::size_t inside_checkpoint = 0;  // trials cut with database writes unsynced
  std::size_t entries_reverted = 0;   // trials whose directory went back (the -wal)
  std::size_t shm_scrambled = 0;      // trials whose -shm the reopen had to ignore
  std::uint64_t dropped_bytes = 0;
  std::uint64_t kept_bytes = 0;
  std::size_t checkpoints = 0;  // database syncs in the uncut workload
};

// Runs the trials of `scenario` (`spread` over the workload, and with `targeted` the
// checkpoints and the reopen too); with `expect_sound`, each trial must show a clean
// file holding a prefix of the run, with every acknowledged append under `full`.
Tally run_trials(const Scenario& scenario, std::size_t spread, bool targeted = true,
                 bool expect_sound = true) {
  Tally tally;
  tally.checkpoints = profile(scenario).db_syncs;
  for (const Trial& trial : trials_for(scenario, spread, targeted)) {
    SCOPED_TRACE(describe(trial));
    const auto started = std::chrono::steady_clock::now();
    const TrialResult r = run_trial(scenario, trial);
    if (std::getenv("EVENTLITE_POWER_LOSS_VERBOSE") != nullptr) {
      std::printf(
          "%s: %zu attempted, %zu acknowledged, %zu present, %zu problems%s%s; unsynced "
          "writes %llu (database %llu), dropped %llu B, kept %llu B, entries reverted "
          "%llu; %lld ms\n",
          describe(trial).c_str(), r.run.attempted.size(), r.run.acknowledged,
          r.outcome.present, r.outcome.problems.size(),
          r.outcome.problems.empty() ? "" : ", first: ",
          r.outcome.problems.empty() ? "" : r.outcome.problems.front().c_str(),
          static_cast<unsigned long long>(r.stats.unsynced_writes),
          static_cast<unsigned long long>(r.stats.unsynced_db_writes),
          static_cast<unsigned long long>(r.stats.dropped_bytes),
          static_cast<unsigned long long>(r.stats.kept_bytes),
          static_cast<unsigned long long>(r.stats.entries_reverted),
          static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count()));
    }
    ++tally.trials;
    const bool lost = r.outcome.present < r.run.acknowledged;
    if (lost) ++tally.lost_acknowledged;
    if (lost || !r.outcome.problems.empty()) ++tally.detected;
    if (!r.outcome.problems.empty()) ++tally.corrupt;
    if (r.stats.unsynced_db_writes > 0) ++tally.inside_checkpoint;
    if (r.stats.entries_reverted > 0) ++tally.entries_reverted;
    if (r.stats.shm_scrambled > 0) ++tally.shm_scrambled;
    tally.dropped_bytes += r.stats.dropped_bytes;
    tally.kept_bytes += r.stats.kept_bytes;
    if (!expect_sound) continue;
    EXPECT_EQ(r.run.error, "");
    for (const auto& problem : r.outcome.problems) ADD_FAILURE() << problem;
    if (scenario.durability == Durability::full) {
      EXPECT_GE(r.outcome.present, r.run.acknowledged)
          << "acknowledged appends lost under full durability";
    }
  }
  return tally;
}

constexpr std::size_t kSpread = 6;

// The workload crosses the writer's checkpoint threshold several times, cuts land
// inside checkpoints, and the reopened files come with a -shm full of garbage.
void expect_coverage(const Tally& tally) {
  // (Not every one: a cut right after the close's deletion of the -shm leaves none.)
  EXPECT_GT(tally.shm_scrambled, tally.trials / 2) << "few trials had a -shm to scramble";
  EXPECT_GE(tally.checkpoints, 4u)
      << "the workload syncs the database fewer than 4 times (3 checkpoints and a close)";
  EXPECT_GT(tally.inside_checkpoint, 0u) << "no cut landed inside a checkpoint";
}

TEST(PowerLoss, FullDurabilityKeepsEveryAcknowledgedAppendWhenUnsyncedWritesAreDropped) {
  const Tally tally = run_trials({Durability::full, CutMode::drop}, kSpread);
  expect_coverage(tally);
  EXPECT_GT(tally.entries_reverted, 0u) << "no cut brought the deleted -wal back";
  EXPECT_GT(tally.dropped_bytes, 0u);
}

TEST(PowerLoss, FullDurabilityKeepsEveryAcknowledgedAppendWhenUnsyncedWritesAreTorn) {
  const Tally tally = run_trials({Durability::full, CutMode::tear}, kSpread);
  expect_coverage(tally);
  EXPECT_GT(tally.dropped_bytes, 0u);
  EXPECT_GT(tally.kept_bytes, 0u);
}

TEST(PowerLoss, NormalDurabilityLeavesACleanPrefixWhenUnsyncedWritesAreDropped) {
  const Tally tally = run_trials({Durability::normal, CutMode::drop}, kSpread);
  expect_coverage(tally);
  // `normal` does not sync its commits: cuts between checkpoints lose some, and the
  // checks above saw those files as clean prefixes.
  EXPECT_GT(tally.lost_acknowledged, 0u) << "no cut lost anything under normal";
  EXPECT_GT(tally.entries_reverted, 0u) << "no cut brought the deleted -wal back";
  EXPECT_GT(tally.dropped_bytes, 0u);
}

TEST(PowerLoss, NormalDurabilityLeavesACleanPrefixWhenUnsyncedWritesAreTorn) {
  const Tally tally = run_trials({Durability::normal, CutMode::tear}, kSpread);
  expect_coverage(tally);
  EXPECT_GT(tally.lost_acknowledged, 0u) << "no cut lost anything under normal";
  EXPECT_GT(tally.dropped_bytes, 0u);
  EXPECT_GT(tally.kept_bytes, 0u);
}

// A store that creates its file: cuts through the creation (the file made outside
// SQLite, the switch to WAL through a rollback journal, the migration) and its first
// commits leave no file, or a clean one with what `full` acknowledged.
TEST(PowerLoss, CreatingAStoreFileSurvivesACutUnderFull) {
  const Tally dropped =
      run_trials({Durability::full, CutMode::drop, Syncs::durable, true}, 3);
  EXPECT_GT(dropped.entries_reverted, 0u) << "no cut lost the new file's entry";
  const Tally torn =
      run_trials({Durability::full, CutMode::tear, Syncs::durable, true}, 3);
  EXPECT_GT(torn.kept_bytes, 0u);
}

TEST(PowerLoss, CreatingAStoreFileSurvivesACutUnderNormal) {
  const Tally tally =
      run_trials({Durability::normal, CutMode::drop, Syncs::durable, true}, 3);
  EXPECT_GT(tally.entries_reverted, 0u) << "no cut lost the new file's entry";
}

// The control for the loss seen under normal: with the same cuts and nothing
// dropped, nothing acknowledged is missing. So the losses come from the shim.
TEST(PowerLossControl, KeepingUnsyncedWritesLosesNothingUnderNormal) {
  const Tally tally = run_trials({Durability::normal, CutMode::keep}, kSpread, false);
  EXPECT_EQ(tally.lost_acknowledged, 0u);
  EXPECT_EQ(tally.dropped_bytes, 0u);
  EXPECT_GT(tally.kept_bytes, 0u);
}

// The controls for the checks under full: a disk whose syncs persist nothing (as
// synchronous=OFF would) loses acknowledged appends, and the checks say so; torn, it
// leaves files that the checks find wrong.
TEST(PowerLossControl, SyncsThatPersistNothingLoseAcknowledgedAppendsUnderFull) {
  const Tally dropped = run_trials({Durability::full, CutMode::drop, Syncs::lost},
                                   kSpread / 2, false, false);
  EXPECT_GT(dropped.lost_acknowledged, 0u);
  const Tally torn = run_trials({Durability::full, CutMode::tear, Syncs::lost},
                                kSpread / 2, false, false);
  EXPECT_GT(torn.corrupt, 0u);
}

// A checkpoint whose database sync persists nothing: the -wal restarts over frames
// the database does not durably hold. The checks see the damage.
TEST(PowerLossControl, LostCheckpointSyncsAreCaughtUnderFull) {
  const Tally tally =
      run_trials({Durability::full, CutMode::drop, Syncs::lost_on_databases}, kSpread / 2,
                 false, false);
  EXPECT_GT(tally.corrupt, 0u);
}

}  // namespace
}  // namespace eventlite
