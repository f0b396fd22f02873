#include "bench/harness.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <latch>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace eventlite::bench {
namespace {

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

const std::string& name_of(const std::variant<FigureSpec, DerivedSpec>& spec) {
  return std::visit([](const auto& s) -> const std::string& { return s.name; }, spec);
}

// 1,234,567 for large values, 12.3 and 1.23 for small ones.
std::string format_number(double v) {
  char buf[64];
  if (std::fabs(v) < 10) {
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
  }
  if (std::fabs(v) < 100) {
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%.0f", v);
  std::string digits = buf;
  std::string out;
  const std::size_t first = digits[0] == '-' ? 1 : 0;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > first && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Values as the JSON document carries them: whole numbers when large, 3 decimals else.
double rounded(double v) {
  return std::fabs(v) >= 100 ? std::round(v) : std::round(v * 1000) / 1000;
}

std::string pass_text(const Result& r) {
  auto p = r.passed();
  return p ? (*p ? "pass" : "FAIL") : "";
}

void finish(Result& r) {
  r.eventlite = median(r.eventlite_samples);
  r.baseline = median(r.baseline_samples);
  r.ratio = r.baseline != 0 ? r.eventlite / r.baseline : 0;
}

}  // namespace

std::string Threshold::describe(std::string_view unit) const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", limit);
  std::string text = on == On::ratio ? "ratio" : "eventlite";
  text += at_least ? " >= " : or_equal ? " <= " : " < ";
  text += buf;
  if (on == On::eventlite) {
    text += ' ';
    text += unit;
  }
  return text;
}

bool Threshold::passes(double eventlite, double ratio) const {
  const double v = on == On::ratio ? ratio : eventlite;
  return at_least ? v >= limit : or_equal ? v <= limit : v < limit;
}

std::optional<bool> Result::passed() const {
  if (!threshold) return std::nullopt;
  return threshold->passes(eventlite, ratio);
}

Bench::Bench(Config config) : config_(std::move(config)) {}

void Bench::add(FigureSpec spec) {
  specs_.emplace_back(std::move(spec));
}
void Bench::add(DerivedSpec spec) {
  specs_.emplace_back(std::move(spec));
}

std::vector<Result> Bench::run() {
  auto matches = [&](const std::string& name) {
    return config_.filter.empty() || name.find(config_.filter) != std::string::npos;
  };
  auto index_of = [&](const std::string& name) {
    for (std::size_t i = 0; i < specs_.size(); ++i)
      if (name_of(specs_[i]) == name) return i;
    throw std::logic_error("derived figure from unknown figure " + name);
  };

  // A derived figure pulls in its inputs when selected, and is shown whenever both of
  // its inputs run.
  std::vector<bool> selected(specs_.size());
  for (std::size_t i = 0; i < specs_.size(); ++i)
    selected[i] = matches(name_of(specs_[i]));
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const auto* d = std::get_if<DerivedSpec>(&specs_[i]);
    if (!d) continue;
    const std::size_t a = index_of(d->from_a), b = index_of(d->from_b);
    if (selected[i]) selected[a] = selected[b] = true;
    if (selected[a] && selected[b]) selected[i] = true;
  }
  const auto total = std::count(selected.begin(), selected.end(), true);

  std::vector<Result> results;
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    if (!selected[i]) continue;
    std::cerr << '[' << results.size() + 1 << '/' << total << "] " << name_of(specs_[i])
              << " ... " << std::flush;
    Result r;
    if (const auto* f = std::get_if<FigureSpec>(&specs_[i])) {
      r.name = f->name;
      r.unit = f->unit;
      r.better = f->better;
      r.threshold = f->threshold;
      for (int rep = 0; rep < config_.repetitions; ++rep) {
        r.eventlite_samples.push_back(f->eventlite());
        r.baseline_samples.push_back(f->baseline());
      }
      finish(r);
    } else {
      const auto& d = std::get<DerivedSpec>(specs_[i]);
      auto input = [&](const std::string& name) -> const Result& {
        auto it = std::find_if(results.begin(), results.end(),
                               [&](const Result& x) { return x.name == name; });
        if (it == results.end())
          throw std::logic_error("input figure did not run: " + name);
        return *it;
      };
      const Result& a = input(d.from_a);
      const Result& b = input(d.from_b);
      r.name = d.name;
      r.unit = d.unit;
      r.better = d.better;
      r.eventlite = d.combine(a.eventlite, b.eventlite);
      r.baseline = d.combine(a.baseline, b.baseline);
      r.ratio = r.baseline != 0 ? r.eventlite / r.baseline : 0;
    }
    std::cerr << "eventlite " << format_number(r.eventlite) << ", baseline "
              << format_number(r.baseline) << ' ' << r.unit << ", ratio "
              << format_number(r.ratio);
    if (r.threshold)
      std::cerr << " (" << r.threshold->describe(r.unit) << ": " << pass_text(r) << ')';
    std::cerr << '\n';
    results.push_back(std::move(r));
  }
  return results;
}

void Bench::print_table(std::ostream& out, const std::vector<Result>& results) const {
  const std::vector<std::string> header = {"figure", "unit",      "eventlite", "baseline",
                                           "ratio",  "threshold", "result"};
  std::vector<std::vector<std::string>> rows;
  for (const Result& r : results)
    rows.push_back({r.name, r.unit, format_number(r.eventlite), format_number(r.baseline),
                    format_number(r.ratio),
                    r.threshold ? r.threshold->describe(r.unit) : "", pass_text(r)});
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) {
    width[c] = header[c].size();
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  // Text columns align left, numbers right.
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      const std::string pad(width[c] - row[c].size(), ' ');
      const bool numeric = c >= 2 && c <= 4;
      line += numeric ? pad + row[c] : row[c] + pad;
      if (c + 1 < row.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  };

  out << "eventlite_bench: median of " << config_.repetitions
      << (config_.repetitions == 1 ? " repetition" : " repetitions")
      << "; ratio = eventlite / baseline (raw SQLite " << sqlite3_libversion()
      << ", same process); " << std::thread::hardware_concurrency() << " CPUs"
      << (config_.quick ? "; --quick sizes" : "") << "\n\n";
  print_row(header);
  for (const auto& row : rows) print_row(row);

  int passed = 0, failed = 0;
  for (const Result& r : results)
    if (auto p = r.passed()) ++(*p ? passed : failed);
  out << "\nthresholds: " << passed << " passed, " << failed << " failed\n";
}

void Bench::print_json(std::ostream& out, const std::vector<Result>& results) const {
  using nlohmann::json;
  auto samples = [](const std::vector<double>& v) {
    json a = json::array();
    for (double x : v) a.push_back(rounded(x));
    return a;
  };
  json figures = json::array();
  bool all_pass = true;
  for (const Result& r : results) {
    json f = {{"name", r.name},
              {"unit", r.unit},
              {"better", r.better == Better::higher ? "higher" : "lower"},
              {"eventlite", rounded(r.eventlite)},
              {"baseline", rounded(r.baseline)},
              {"ratio", std::round(r.ratio * 1000) / 1000}};
    if (r.threshold) {
      const bool pass = *r.passed();
      all_pass = all_pass && pass;
      f["threshold"] = {{"rule", r.threshold->describe(r.unit)}, {"pass", pass}};
    }
    if (!r.eventlite_samples.empty())
      f["samples"] = {{"eventlite", samples(r.eventlite_samples)},
                      {"baseline", samples(r.baseline_samples)}};
    figures.push_back(std::move(f));
  }
  json doc = {{"command", config_.command},
              {"statistic", "median"},
              {"repetitions", config_.repetitions},
              {"quick", config_.quick},
              {"sqlite_version", sqlite3_libversion()},
              {"cpus", std::thread::hardware_concurrency()},
              {"figures", std::move(figures)},
              {"thresholds_pass", all_pass}};
  out << doc.dump(2) << '\n';
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  const std::size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid),
                   values.end());
  if (values.size() % 2 == 1) return values[mid];
  const double upper = values[mid];
  const double lower = *std::max_element(
      values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2;
}

std::string count_label(std::size_t n) {
  if (n >= 1000000 && n % 1000000 == 0) return std::to_string(n / 1000000) + "M";
  if (n >= 1000 && n % 1000 == 0) return std::to_string(n / 1000) + "k";
  return std::to_string(n);
}

double run_for(std::size_t threads, std::chrono::milliseconds duration,
               const std::function<void(std::size_t thread, std::size_t n)>& body) {
  std::atomic<bool> stop{false};
  std::latch start(static_cast<std::ptrdiff_t>(threads) + 1);
  std::vector<std::size_t> calls(threads, 0);
  std::vector<std::exception_ptr> errors(threads);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (std::size_t t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      start.arrive_and_wait();
      std::size_t n = 0;
      try {
        for (; !stop.load(std::memory_order_relaxed); ++n) body(t, n);
      } catch (...) {
        errors[t] = std::current_exception();
        stop = true;
      }
      calls[t] = n;
    });
  }
  start.arrive_and_wait();
  const Stopwatch watch;
  std::this_thread::sleep_for(duration);
  stop = true;
  for (auto& th : pool) th.join();
  const double seconds = watch.seconds();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  std::size_t total = 0;
  for (std::size_t c : calls) total += c;
  return static_cast<double>(total) / seconds;
}

std::size_t peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoul(line.substr(6));  // "... kB"
  throw std::runtime_error("no VmHWM in /proc/self/status");
}

std::string run_self(const std::vector<std::string>& args) {
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    errno = rc;
    throw_errno("spawn " + exe);
  }
  std::string output;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0)
      output.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR)
      break;
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw_errno("waitpid");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("child process failed: " + exe + " " + args.front());
  return output;
}

TempDir::TempDir(const std::filesystem::path& parent) {
  struct statfs fs {};
  if (statfs(parent.c_str(), &fs) == 0 && fs.f_type == TMPFS_MAGIC)
    std::cerr << "eventlite_bench: warning: " << parent.string()
              << " is a tmpfs: fsync costs nothing there; use --dir on a local disk\n";
  std::string tmpl = (parent / "eventlite-bench-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw_errno("mkdtemp " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

ScratchFile::~ScratchFile() {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"})
    std::filesystem::remove(path_.string() + suffix, ec);
}

void copy_file_synced(const std::filesystem::path& from,
                      const std::filesystem::path& to) {
  std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
  const int fd = open(to.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + to.string());
  const int rc = fsync(fd);
  close(fd);
  if (rc != 0) throw_errno("fsync " + to.string());
}

}  // namespace eventlite::bench
