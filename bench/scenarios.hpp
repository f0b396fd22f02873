#pragma once

// The figures, each eventlite against the raw-SQLite baseline (see README.md):
//   1. batched append on an empty store
//   2. single-event appends from 1, 8 and 64 threads, durability full and normal
//   3. read_all
//   4. batched append on a store already holding 1M events, and the slowdown from 1
//   5. peak RSS of read_all over 1M events, each side in a child process
//   6. the processor dispatching a 1M-event backlog to one no-op handler
//   7. the same to 10 subscriptions
//   8. append-to-handler latency, appender in the same process
//   9. append-to-handler latency, appender in another process
//  10. peak RSS of the processor draining a 1M-event backlog, in a child process
//  11. CPU of an idle started processor
//  12. how soon the change watch wakes a loop on another process's commit (a prototype
//      of the processor's wake-up, before it is integrated)
//  13-16. forwarding to and bridging from Redis and JetStream (scenarios_redis.cpp,
//      scenarios_nats.cpp)
//  17-20. `eventlite replay` and `eventlite import` on 1M events, speed and peak RSS
//  21-23. a rebuild without downtime of a 1M-event projection: its rate, and the
//      longest an appender and a reader waited meanwhile (scenarios_rebuild.cpp)

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "bench/harness.hpp"
#include "bench/workload.hpp"

namespace eventlite::bench {

struct Sizes {
  std::size_t batch = 1000;                      // events per batched append
  std::size_t batched_calls = 100;               // batched appends per repetition
  std::chrono::milliseconds single_run{1000};    // each single-append run lasts this long
  std::size_t read_events = 200000;              // figure 3
  std::size_t stored_events = 1000000;           // figures 4, 5, 6, 7 and 10
  std::size_t subscriptions = 10;                // figure 7
  std::size_t latency_events = 2000;             // timed appends of figures 8 and 9
  std::size_t latency_warmup = 20;               // untimed appends before those
  std::chrono::milliseconds idle_window{10000};  // figure 11's measured idle time
  std::size_t forward_events = 200000;           // figure 13

  static Sizes for_config(const Config& config);
};

// What the figures share: the temp dir, the data, and fixture files built once.
class Context {
 public:
  Context(const Config& config, const std::filesystem::path& parent_dir);

  const Workload& workload() const noexcept { return workload_; }
  const Sizes& sizes() const noexcept { return sizes_; }

  // A new, unused path in the temp dir, named after `stem`.
  std::filesystem::path new_path(std::string_view stem);
  // A file holding `events` events, built with the raw API on first use (untimed).
  // Shared by figures: copy it before writing.
  const std::filesystem::path& fixture(std::size_t events);

 private:
  TempDir dir_;
  Workload workload_;
  Sizes sizes_;
  std::size_t next_id_ = 0;
  std::map<std::size_t, std::filesystem::path> fixtures_;
};

void add_batched_append_figure(Bench& bench, Context& ctx);
void add_single_append_figures(Bench& bench, Context& ctx);
void add_read_all_figure(Bench& bench, Context& ctx);
void add_stored_events_figures(Bench& bench, Context& ctx);
void add_peak_rss_figure(Bench& bench, Context& ctx);

void add_dispatch_figures(Bench& bench, Context& ctx);
void add_latency_figures(Bench& bench, Context& ctx);
void add_dispatch_rss_figure(Bench& bench, Context& ctx);
void add_idle_cpu_figure(Bench& bench, Context& ctx);
void add_wake_latency_figures(Bench& bench, Context& ctx);
void add_rebuild_figures(Bench& bench, Context& ctx);
// Built with the eventlite tool (scenarios_transfer.cpp).
void add_transfer_figures(Bench& bench, Context& ctx);
// Built with EVENTLITE_WITH_REDIS (scenarios_redis.cpp).
void add_redis_figures(Bench& bench, Context& ctx);
// Built with EVENTLITE_WITH_NATS (scenarios_nats.cpp).
void add_nats_figures(Bench& bench, Context& ctx);

// The hidden child modes of figures 9 and 10, on `file`: "append" appends `events`
// events one at a time, each carrying its send time, reading one acknowledgement
// byte on stdin after each; "drain-eventlite" and "drain-baseline" drain the file's
// backlog and print "<VmHWM KiB> <position>" on stdout.
int run_processor_child(std::string_view mode, const std::filesystem::path& file,
                        std::size_t events);

// The hidden child mode of figure 5: reads `file` with `side` ("eventlite" or
// "baseline") and prints "<VmHWM KiB> <events> <checksum>" on stdout.
int run_rss_child(std::string_view side, const std::filesystem::path& file);

}  // namespace eventlite::bench
