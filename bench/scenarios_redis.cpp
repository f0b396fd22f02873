// Figure 13: forwarding to a Redis Stream. A redis-server of the benchmark's own
// (127.0.0.1, a free port, no persistence: the broker's disk is not what is measured)
// takes the same entries from both sides:
// - eventlite: a processor with the Redis sink (eventlite::redis) drains a copy of a
//   200k-event file into the stream `events`: reading the events, encoding each
//   envelope, pipelining XADD <seq>-0 a batch at a time, checkpoints;
// - the baseline: a raw hiredis loop pipelining the same XADDs (the envelopes encoded
//   beforehand, untimed), a batch of the processor's batch_size at a time, each
//   batch's replies read before the next.

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/scenarios.hpp"
#include "eventlite/envelope.hpp"
#include "eventlite/processor.hpp"
#include "eventlite/redis.hpp"
#include "eventlite/store.hpp"

extern char** environ;

namespace eventlite::bench {

namespace {

using namespace std::chrono_literals;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("no free port on 127.0.0.1");
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct ContextFree {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using Connection = std::unique_ptr<redisContext, ContextFree>;

Connection connect(int port) {
  Connection c(redisConnect("127.0.0.1", port));
  if (!c || c->err) return nullptr;
  return c;
}

void command(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!r) throw std::runtime_error("redis: connection lost");
  const bool error = r->type == REDIS_REPLY_ERROR;
  freeReplyObject(r);
  if (error) throw std::runtime_error("redis refused " + args.front());
}

long long xlen(redisContext* c) {
  auto* r = static_cast<redisReply*>(redisCommand(c, "XLEN events"));
  if (!r) throw std::runtime_error("redis: connection lost");
  const long long n = r->integer;
  freeReplyObject(r);
  return n;
}

// redis-server for the benchmark's figures, started on first use, stopped at exit.
class Server {
 public:
  explicit Server(const std::filesystem::path& dir) : port_(free_port()) {
    std::vector<std::string> args = {"redis-server", "--port",    std::to_string(port_),
                                     "--bind",       "127.0.0.1", "--dir",
                                     dir.string(),   "--save",    "",
                                     "--appendonly", "no"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    const int rc =
        posix_spawnp(&pid_, "redis-server", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start redis-server (./run setup)");
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!connect(port_)) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("redis-server did not come up");
      std::this_thread::sleep_for(5ms);
    }
  }
  ~Server() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  int port() const noexcept { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  pid_t pid_ = 0;
};

Server& server(Context& ctx) {
  static Server s(ctx.new_path("redis").parent_path());
  return s;
}

double forward_eventlite(Context& ctx, std::size_t n) {
  Server& redis = server(ctx);
  Connection c = connect(redis.port());
  command(c.get(), {"DEL", "events"});
  const ScratchFile file(ctx.new_path("forward"));
  copy_file_synced(ctx.fixture(n), file.path());
  Store store = Store::open(file.path());
  Processor processor(store);
  redis::SinkOptions options;
  options.url = redis.url();
  SubscriptionOptions sub;
  sub.max_lanes = 1;
  processor.sink("to-redis", redis::make_sink(options), sub);
  const Stopwatch watch;
  processor.start();
  const auto deadline = std::chrono::steady_clock::now() + 300s;
  while (processor.metrics().at(0).position < static_cast<Seq>(n)) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("the sink did not finish");
    processor.wait_idle(100ms);
  }
  const double seconds = watch.seconds();
  processor.stop();
  if (xlen(c.get()) != static_cast<long long>(n))
    throw std::runtime_error("the stream does not hold every event");
  return static_cast<double>(n) / seconds;
}

double forward_raw(Context& ctx, std::size_t n) {
  Server& redis = server(ctx);
  Connection c = connect(redis.port());
  command(c.get(), {"DEL", "events"});
  // The same entries, encoded beforehand (untimed).
  std::vector<std::string> ids, payloads;
  {
    const Store store = Store::open(ctx.fixture(n), StoreOptions{.read_only = true});
    for (const Event& e : store.read_all()) {
      ids.push_back(redis::entry_id(e.seq));
      payloads.push_back(to_envelope(e));
    }
  }
  const std::size_t batch = ProcessorOptions{}.batch_size;
  const char* argv[5] = {"XADD", "events", nullptr, "event", nullptr};
  size_t lens[5] = {4, 6, 0, 5, 0};
  const Stopwatch watch;
  for (std::size_t at = 0; at < n; at += batch) {
    const std::size_t end = std::min(n, at + batch);
    for (std::size_t i = at; i < end; ++i) {
      argv[2] = ids[i].data();
      lens[2] = ids[i].size();
      argv[4] = payloads[i].data();
      lens[4] = payloads[i].size();
      redisAppendCommandArgv(c.get(), 5, argv, lens);
    }
    for (std::size_t i = at; i < end; ++i) {
      void* r = nullptr;
      if (redisGetReply(c.get(), &r) != REDIS_OK || !r)
        throw std::runtime_error("redis: connection lost");
      const bool error = static_cast<redisReply*>(r)->type == REDIS_REPLY_ERROR;
      freeReplyObject(r);
      if (error) throw std::runtime_error("redis refused an XADD");
    }
  }
  const double seconds = watch.seconds();
  return static_cast<double>(n) / seconds;
}

}  // namespace

void add_redis_figures(Bench& bench, Context& ctx) {
  const std::size_t n = ctx.sizes().forward_events;
  bench.add(FigureSpec{
      .name = "forward " + count_label(n) + " events to a Redis Stream",
      .unit = "events/s",
      .better = Better::higher,
      .threshold = Threshold::ratio_at_least(0.7),
      .eventlite = [&ctx, n] { return forward_eventlite(ctx, n); },
      .baseline = [&ctx, n] { return forward_raw(ctx, n); },
  });
}

}  // namespace eventlite::bench
