// Two services, one broker: service A (sign-ups) appends its events and forwards them
// to a Redis Stream (or, with --nats, a JetStream stream); service B bridges them into
// its own SQLite file and its mailer handles them as its own events. Starts a
// redis-server (or nats-server -js) of its own on a free port.
//
//   two_services DIR [--nats]   (./run two-services [--nats]: DIR is build/two-services)
//
// Run it again: A appends more, and each side forwards, bridges and mails only what is
// new, because the positions live in the files.

#include <fmt/core.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <eventlite/eventlite.hpp>
#include <eventlite/nats.hpp>
#include <eventlite/redis.hpp>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

namespace el = eventlite;

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The broker both services use: its server, run by this program.
struct Broker {
  bool nats = false;
  std::string url;
  pid_t pid = 0;
};

// redis-server (or nats-server with JetStream) on 127.0.0.1:port, its data in dir;
// gone when this program ends.
Broker start_broker(bool nats, int port, const std::filesystem::path& dir) {
  const std::string p = std::to_string(port), d = dir.string();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (nats) {
      const std::string log = (dir / "nats.log").string();
      ::execlp("nats-server", "nats-server", "-a", "127.0.0.1", "-p", p.c_str(), "-js",
               "-sd", d.c_str(), "-l", log.c_str(), nullptr);
    } else {
      const std::string log = (dir / "redis.log").string();
      ::execlp("redis-server", "redis-server", "--port", p.c_str(), "--bind",
               "127.0.0.1", "--dir", d.c_str(), "--appendonly", "yes", "--save", "",
               "--logfile", log.c_str(), nullptr);
    }
    ::_exit(127);
  }
  return {nats, (nats ? "nats://127.0.0.1:" : "redis://127.0.0.1:") + p, pid};
}

// A's sink: the Redis Stream `events`, or the JetStream stream EVENTS (created by
// the sink when missing).
std::shared_ptr<el::Sink> sink_to(const Broker& broker) {
  if (broker.nats)
    return el::nats::make_sink(
        {.url = broker.url, .jetstream = true, .create_stream = true});
  return el::redis::make_sink({.url = broker.url});
}

// B's bridge, run until it has nothing new: through consumer group service-b, or
// the durable consumer service-b.
std::size_t bridge_from(const Broker& broker, el::Store& store) {
  if (broker.nats) {
    el::nats::Bridge bridge(store, {.url = broker.url, .durable = "service-b"});
    return bridge.run_until_idle();
  }
  el::redis::Bridge bridge(store, {.url = broker.url, .group = "service-b"});
  return bridge.run_until_idle();
}

// Waits until something accepts connections on 127.0.0.1:port (5 s at most).
bool wait_for_port(int port) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (up) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Service A: three sign-ups, then forwards what the stream lacks.
std::size_t service_a(const std::filesystem::path& db, const Broker& broker) {
  el::Store store = el::Store::open(db);
  const el::Seq before = store.head();
  for (int i = 0; i < 3; ++i) {
    const std::string user = "user-" + std::to_string(before + i + 1);
    el::NewEvent signed_up;
    signed_up.type = "UserSignedUp";
    signed_up.data = fmt::format(R"({{"email":"{}@example.com"}})", user);
    store.append(user, signed_up);
  }
  el::SubscriptionOptions one_lane;
  one_lane.max_lanes = 1;  // one broker stream: seq order
  el::Processor processor(store);
  processor.sink("to-broker", sink_to(broker), one_lane);
  processor.run_until_idle();
  if (processor.metrics().at(0).lag > 0)
    throw std::runtime_error("A could not forward: " + processor.metrics().at(0).last_error);
  return static_cast<std::size_t>(store.head() - before);
}

// Service B: brings A's events in, then its mailer handles them.
std::pair<std::size_t, int> service_b(const std::filesystem::path& db,
                                      const Broker& broker) {
  el::Store store = el::Store::open(db);
  const std::size_t bridged = bridge_from(broker, store);
  int mailed = 0;
  el::Processor processor(store);
  processor.subscribe("mailer", [&](const el::Context& c) {
    fmt::print("  B mails a welcome to {} (event {} of {})\n", c.event().stream,
               c.event().id, c.event().time);
    ++mailed;
  });
  processor.run_until_idle();
  return {bridged, mailed};
}

}  // namespace

int main(int argc, char** argv) {
  const std::filesystem::path dir = argc > 1 ? argv[1] : "two-services";
  const bool nats = argc > 2 && std::string(argv[2]) == "--nats";
  // Each broker has its own pair of files: the positions in them are its own.
  const std::filesystem::path files = dir / (nats ? "nats" : "redis");
  std::filesystem::create_directories(files / "server");
  const int port = free_port();
  const Broker broker = start_broker(nats, port, files / "server");
  try {
    if (!wait_for_port(port))
      throw std::runtime_error(nats ? "nats-server did not start"
                                    : "redis-server did not start");
    fmt::print("{} on {}\n", nats ? "nats-server (JetStream)" : "redis-server",
               broker.url);
    const std::size_t forwarded = service_a(files / "service-a.db", broker);
    fmt::print("A appended and forwarded {} events\n", forwarded);
    const auto [bridged, mailed] = service_b(files / "service-b.db", broker);
    fmt::print("B bridged {} events into its own file and mailed {} users\n", bridged,
               mailed);
  } catch (const std::exception& e) {
    fmt::print(stderr, "two_services: {}\n", e.what());
    ::kill(broker.pid, SIGTERM);
    return 1;
  }
  ::kill(broker.pid, SIGTERM);
  int status = 0;
  ::waitpid(broker.pid, &status, 0);
  return 0;
}
