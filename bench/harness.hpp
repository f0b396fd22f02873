#pragma once

// The benchmark harness. A figure measures eventlite and a raw-SQLite baseline in the
// same process, several repetitions of each, interleaved (eventlite, baseline,
// eventlite, ...) so that drift of the machine hits both sides alike, and reports the
// median of each side and the ratio eventlite / baseline. A figure's measure does its
// own setup and times only the work, so the harness never times anything itself.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace eventlite::bench {

struct Config {
  int repetitions = 5;
  bool quick = false;   // smaller sizes, for a smoke run
  bool json = false;    // one JSON document instead of the table
  std::string filter;   // run the figures whose name contains this; empty: all
  std::string command;  // the command line, echoed in the report
};

// Which way is good for a figure's values.
enum class Better { higher, lower };

// An acceptance threshold, on the ratio or on eventlite's own value.
struct Threshold {
  enum class On { ratio, eventlite };
  On on = On::ratio;
  bool at_least = true;  // pass when the value is >= limit; false: when it is < limit
  double limit = 0;
  bool or_equal = false;  // with at_least false: pass when the value is <= limit

  static Threshold ratio_at_least(double limit) { return {On::ratio, true, limit}; }
  static Threshold eventlite_below(double limit) { return {On::eventlite, false, limit}; }
  static Threshold eventlite_at_most(double limit) {
    return {On::eventlite, false, limit, true};
  }
  static Threshold ratio_at_most(double limit) { return {On::ratio, false, limit, true}; }

  // "ratio >= 0.85", "eventlite < 64 MiB", "eventlite <= 1 ms"
  std::string describe(std::string_view unit) const;
  bool passes(double eventlite, double ratio) const;
};

// One repetition of one side; returns the value in the figure's unit.
using Measure = std::function<double()>;

struct FigureSpec {
  std::string name;
  std::string unit;
  Better better = Better::higher;
  std::optional<Threshold> threshold;
  Measure eventlite;
  Measure baseline;
};

// A figure computed, for each side, from the medians of two earlier figures.
struct DerivedSpec {
  std::string name;
  std::string unit;
  Better better = Better::lower;
  std::string from_a;
  std::string from_b;
  std::function<double(double a, double b)> combine;
};

struct Result {
  std::string name;
  std::string unit;
  Better better = Better::higher;
  std::optional<Threshold> threshold;
  std::vector<double> eventlite_samples;  // empty for a derived figure
  std::vector<double> baseline_samples;
  double eventlite = 0;  // medians
  double baseline = 0;
  double ratio = 0;  // eventlite / baseline

  std::optional<bool> passed() const;
};

class Bench {
 public:
  explicit Bench(Config config);

  void add(FigureSpec spec);
  void add(DerivedSpec spec);

  // Runs the figures the filter selects (with the inputs of selected derived figures),
  // in the order added, with one progress line per figure on stderr.
  std::vector<Result> run();

  void print_table(std::ostream& out, const std::vector<Result>& results) const;
  void print_json(std::ostream& out, const std::vector<Result>& results) const;

 private:
  Config config_;
  std::vector<std::variant<FigureSpec, DerivedSpec>> specs_;
};

double median(std::vector<double> values);

// "1M", "200k", "64"
std::string count_label(std::size_t n);

// Wall time since construction.
class Stopwatch {
 public:
  Stopwatch() noexcept : start_(std::chrono::steady_clock::now()) {}
  double seconds() const noexcept {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_)
        .count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// Calls `body(thread, n)` with n = 0, 1, 2... on each of `threads` threads, all started
// together, until `duration` has passed; returns the calls per second (calls in
// flight at the deadline finish and count). Rethrows the first exception of a thread.
double run_for(std::size_t threads, std::chrono::milliseconds duration,
               const std::function<void(std::size_t thread, std::size_t n)>& body);

// This process's peak resident set (VmHWM of /proc/self/status), in KiB.
std::size_t peak_rss_kib();

// Runs this executable again with `args` and returns what it printed on stdout.
// Throws if it fails.
std::string run_self(const std::vector<std::string>& args);

// A fresh directory, removed with everything in it on destruction.
class TempDir {
 public:
  // Under `parent`; warns on stderr if that is a tmpfs (fsync costs nothing there).
  explicit TempDir(const std::filesystem::path& parent);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

// A SQLite file path whose file, -wal and -shm are removed on destruction.
class ScratchFile {
 public:
  explicit ScratchFile(std::filesystem::path path) : path_(std::move(path)) {}
  ~ScratchFile();
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

// Copies `from` to `to` and fsyncs the copy, so that no dirty page of it is left for
// the writeback to flush during a timed run.
void copy_file_synced(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace eventlite::bench
