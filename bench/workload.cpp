#include "bench/workload.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace eventlite::bench {
namespace {

std::uint64_t fold(std::uint64_t sum, const std::string& s) noexcept {
  // Size plus first and last byte: every string is reached without hashing it all.
  sum = sum * 31 + s.size();
  if (!s.empty())
    sum = sum * 31 + static_cast<unsigned char>(s.front()) +
          static_cast<unsigned char>(s.back());
  return sum;
}

}  // namespace

Workload::Workload() {
  for (std::size_t i = 0; i < kStreams; ++i)
    streams_.push_back("stream-" + std::to_string(i));
  types_ = {"UserCreated", "UserApproved", "UserRejected", "MailSent", "SmsSent"};
  static constexpr const char* kPlans[] = {"free", "pro", "team"};
  for (std::size_t i = 0; i < kPayloads; ++i) {
    char head[kPayloadBytes];
    const int len = std::snprintf(
        head, sizeof head,
        R"({"user_id":"user-%06zu","email":"user%06zu@example.com","plan":"%s",)"
        R"("amount":%zu,"currency":"EUR","tags":["signup","web"],"note":")",
        i, i, kPlans[i % 3], 1000 + i * 37 % 9000);
    std::string p(head, static_cast<std::size_t>(len));
    const std::string tail = "\"}";
    if (p.size() + tail.size() > kPayloadBytes)
      throw std::logic_error("payload too long");
    p.append(kPayloadBytes - p.size() - tail.size(), 'x');
    p += tail;
    payloads_.push_back(std::move(p));
  }
}

std::vector<NewEvent> Workload::new_events(std::size_t count) const {
  std::vector<NewEvent> events;
  events.reserve(count);
  for (std::size_t n = 0; n < count; ++n)
    events.push_back(
        NewEvent{.type = type(n), .data = data(n), .metadata = metadata_, .id = {}});
  return events;
}

std::string_view utc_now(std::array<char, 64>& buf) {
  using namespace std::chrono;
  const auto ms =
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  const auto secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  const int len =
      std::snprintf(buf.data(), buf.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                    tm.tm_sec, static_cast<int>(ms % 1000));
  return {buf.data(), static_cast<std::size_t>(len)};
}

void Checksum::add(const Event& e) noexcept {
  ++events;
  sum = sum * 31 + static_cast<std::uint64_t>(e.seq);
  sum = sum * 31 + static_cast<std::uint64_t>(e.version);
  for (const std::string* s : {&e.id, &e.stream, &e.type, &e.data, &e.metadata, &e.time})
    sum = fold(sum, *s);
}

}  // namespace eventlite::bench
