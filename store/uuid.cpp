#include "store/uuid.hpp"

#include <pthread.h>
#include <sys/random.h>

#include <atomic>
#include <chrono>

#include "eventlite/event.hpp"

namespace eventlite::detail {
namespace {

std::atomic<std::uint64_t> g_fork_generation{1};

void on_fork_child() {
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t fork_generation() {
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, on_fork_child);
    return true;
  }();
  (void)registered;
  return g_fork_generation.load(std::memory_order_relaxed);
}

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

UuidV7::UuidV7() {
  reseed();
}

void UuidV7::reseed() {
  std::array<std::uint64_t, 4> seed{};
  std::size_t got = 0;
  auto* bytes = reinterpret_cast<unsigned char*>(seed.data());
  while (got < sizeof(seed)) {
    ssize_t n = getrandom(bytes + got, sizeof(seed) - got, 0);
    if (n <= 0) {
      // getrandom cannot fail on Linux >= 3.17 once the pool is initialised; fall
      // back to random_device rather than run unseeded.
      std::random_device rd;
      for (auto& s : seed) s = (std::uint64_t{rd()} << 32) ^ rd();
      break;
    }
    got += static_cast<std::size_t>(n);
  }
  std::seed_seq seq(reinterpret_cast<std::uint32_t*>(seed.data()),
                    reinterpret_cast<std::uint32_t*>(seed.data() + seed.size()));
  rng_.seed(seq);
  fork_generation_ = fork_generation();
}

void UuidV7::next(std::string& out) {
  if (fork_generation_ != fork_generation()) reseed();
  auto ms =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  if (ms > last_ms_) {
    last_ms_ = ms;
    counter_ = static_cast<std::uint32_t>(rng_() & 0x1ff);  // leave room to count up
  } else if (++counter_ > 0xfff) {
    // The counter ran out within one millisecond: borrow the next one, as the RFC
    // allows, so ids stay strictly increasing.
    ++last_ms_;
    counter_ = 0;
  }
  std::uint64_t rand_b = rng_();
  std::array<unsigned char, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(last_ms_ >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | ((counter_ >> 8) & 0x0f));
  b[7] = static_cast<unsigned char>(counter_ & 0xff);
  b[8] = static_cast<unsigned char>(0x80 | ((rand_b >> 56) & 0x3f));
  for (int i = 9; i < 16; ++i)
    b[i] = static_cast<unsigned char>(rand_b >> (8 * (15 - i)));

  out.resize(36);
  std::size_t o = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = kHex[b[i] >> 4];
    out[o++] = kHex[b[i] & 0x0f];
  }
}

}  // namespace eventlite::detail

namespace eventlite {

std::string new_event_id() {
  thread_local detail::UuidV7 generator;
  return generator.next();
}

}  // namespace eventlite
