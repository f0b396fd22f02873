#include "tools/progress.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>

namespace eventlite::cli {

namespace {

// 1234567 as "1,234,567".
std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string duration(double seconds) {
  const auto s = static_cast<std::uint64_t>(seconds + 0.5);
  if (s < 3600) return fmt::format("{}:{:02}", s / 60, s % 60);
  return fmt::format("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60);
}

}  // namespace

Progress::Progress(std::string verb)
    : verb_(std::move(verb)),
      // Not on a terminal that also shows stdout: the redraws would garble its lines.
      shown_(::isatty(STDERR_FILENO) == 1 && ::isatty(STDOUT_FILENO) != 1),
      started_(std::chrono::steady_clock::now()) {}

Progress::~Progress() {
  if (drawn_) std::fputs("\r\033[K", stderr);
}

void Progress::update(std::uint64_t events, std::uint64_t done, std::uint64_t total) {
  if (!shown_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - drawn_at_ < std::chrono::milliseconds(200)) return;
  drawn_at_ = now;
  drawn_ = true;
  const double elapsed = std::chrono::duration<double>(now - started_).count();
  const double rate = elapsed > 0 ? static_cast<double>(events) / elapsed : 0;
  std::string line = fmt::format("eventlite: {} {} events, {}/s", verb_, grouped(events),
                                 grouped(static_cast<std::uint64_t>(rate)));
  if (total > 0 && done > 0 && done <= total && elapsed > 0) {
    const double left = elapsed * static_cast<double>(total - done) /
                        static_cast<double>(done);
    line += fmt::format(", {} left", duration(left));
  }
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
}

std::function<void(const TransferProgress&)> Progress::by_seq(Seq from, std::uint64_t span) {
  return [this, from, span](const TransferProgress& p) {
    update(p.events, p.seq >= from ? static_cast<std::uint64_t>(p.seq - from + 1) : 0,
           span);
  };
}

}  // namespace eventlite::cli
