// eventlite_bench: eventlite's figures against raw SQLite in the same process.
// See bench/README.md for what each figure measures.

#include <CLI/CLI.hpp>
#include <cstddef>
#include <exception>
#include <filesystem>
#include <iostream>
#include <string>

#include "bench/harness.hpp"
#include "bench/scenarios.hpp"

int main(int argc, char** argv) {
  using namespace eventlite::bench;

  CLI::App app{"eventlite benchmarks: each figure against raw SQLite in the same process",
               "eventlite_bench"};
  Config config;
  std::string dir;
  std::string child_side;
  std::string child_file;
  std::string processor_mode;
  std::string processor_file;
  std::size_t processor_events = 0;
  app.add_option("--repetitions", config.repetitions,
                 "Repetitions of each figure; the median is reported")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_flag("--quick", config.quick,
               "Smaller sizes, for a smoke run (under a minute)");
  app.add_flag("--json", config.json, "Print one JSON document instead of the table");
  app.add_option("--filter", config.filter,
                 "Run only the figures whose name contains this");
  app.add_option("--dir", dir,
                 "Where to create the temporary directory (default: the system temp "
                 "directory); it must be on a local disk, not a tmpfs");
  // Figure 5 runs each side in a child process: this executable with these options.
  app.add_option("--rss-child", child_side)->group("");
  app.add_option("--rss-file", child_file)->group("");
  // Figures 9 and 10 run an appender or a drain in a child process.
  app.add_option("--processor-child", processor_mode)->group("");
  app.add_option("--processor-file", processor_file)->group("");
  app.add_option("--processor-events", processor_events)->group("");
  CLI11_PARSE(app, argc, argv);

  config.command = "eventlite_bench";
  for (int i = 1; i < argc; ++i) config.command += std::string(" ") + argv[i];

  try {
    if (!child_side.empty()) return run_rss_child(child_side, child_file);
    if (!processor_mode.empty())
      return run_processor_child(processor_mode, processor_file, processor_events);

    Context ctx(config, dir.empty() ? std::filesystem::temp_directory_path()
                                    : std::filesystem::path(dir));
    Bench bench(config);
    add_batched_append_figure(bench, ctx);
    add_single_append_figures(bench, ctx);
    add_read_all_figure(bench, ctx);
    add_stored_events_figures(bench, ctx);
    add_peak_rss_figure(bench, ctx);
    add_dispatch_figures(bench, ctx);
    add_latency_figures(bench, ctx);
    add_dispatch_rss_figure(bench, ctx);
    add_idle_cpu_figure(bench, ctx);
    add_wake_latency_figures(bench, ctx);
    add_rebuild_figures(bench, ctx);
#ifdef EVENTLITE_HAVE_TOOL
    add_transfer_figures(bench, ctx);
#endif
#ifdef EVENTLITE_HAVE_REDIS
    add_redis_figures(bench, ctx);
#endif
#ifdef EVENTLITE_HAVE_NATS
    add_nats_figures(bench, ctx);
#endif
    const auto results = bench.run();
    if (results.empty()) {
      std::cerr << "eventlite_bench: no figure matches --filter \"" << config.filter
                << "\"\n";
      return 2;
    }
    if (config.json)
      bench.print_json(std::cout, results);
    else
      bench.print_table(std::cout, results);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "eventlite_bench: " << e.what() << '\n';
    return 1;
  }
}
