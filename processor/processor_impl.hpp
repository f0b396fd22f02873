#pragma once

// The processor's parts, held together by the loop (see loop.cpp).

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "eventlite/processor.hpp"
#include "eventlite/store.hpp"
#include "processor/checkpoints.hpp"
#include "processor/dispatch.hpp"
#include "processor/lease_keeper.hpp"
#include "processor/state.hpp"
#include "processor/writer.hpp"
#include "store/change_watch.hpp"

namespace SQLite {
class Database;
}

namespace eventlite {

namespace detail {

struct PeriodicTask {
  std::string name;
  std::string lease_name;
  std::chrono::milliseconds interval{};
  std::function<void()> fn;
  SysTime check_at{};  // the loop's thread only
  std::atomic<bool> running{false};
};

}  // namespace detail

struct Processor::Impl {
  Impl(Store& s, ProcessorOptions o);
  ~Impl();

  // Registration (processor.cpp).
  void add(std::unique_ptr<detail::SubscriptionState> sub);
  void every(std::string name, std::chrono::milliseconds interval,
             std::function<void()> task);
  std::vector<SubscriptionMetrics> metrics() const;

  // The loop (loop.cpp).
  void start();
  void stop() noexcept;
  std::size_t run_until_idle();
  bool wait_idle(std::chrono::milliseconds timeout);
  void open_loop_connection();
  void kick();
  void arm_timer();
  void rearm_if_sooner();
  std::chrono::milliseconds next_tick() const;
  void safe_step() noexcept;
  bool step();
  void check_changes();
  void maintain_leases(detail::SysTime now);
  void announce_standbys(detail::SysTime now);
  void run_tasks(detail::SysTime now);
  void run_work(std::function<void()> work);
  void complete(std::shared_ptr<detail::Unit> unit);
  void finish(detail::Unit& unit);
  void commit(bool force);
  void release_leases() noexcept;
  void close_sinks(bool all) noexcept;

  // Applying what the parts return: the one writer of a subscription's checkpoint,
  // lease tenure, rows and pause (apply.cpp).
  void apply(const detail::LeaseChange& change, detail::SysTime now);
  bool apply(detail::SubscriptionState& sub, const detail::Scheduled& s,
             detail::SysTime now);  // whether anything moved
  void apply(detail::UnitEdit edit, detail::SysTime now);
  void apply(const detail::CommitOutcome& out, detail::SysTime now);
  void lose_lease(detail::SubscriptionState& sub, detail::SysTime now) noexcept;
  void pause_after(detail::SubscriptionState& sub, const std::exception_ptr& error,
                   detail::SysTime now);
  void pause_sink(detail::SubscriptionState& sub, detail::SinkSession& sink,
                  const std::exception_ptr& error) noexcept;
  void finish_stop_if_drained();
  void publish_idle(bool dispatched, std::uint64_t requests);
  std::vector<detail::SubscriptionState*> subscriptions() const;
  std::vector<detail::PeriodicTask*> periodic_tasks() const;

  std::shared_ptr<detail::StoreAccess::Impl> store_impl;  // constant after construction
  ProcessorOptions options;                 // constant after construction
  std::shared_ptr<const Clock> clock;       // constant after construction
  std::shared_ptr<spdlog::logger> logger;   // constant after construction
  detail::DeliveryEnv env;                  // constant after construction
  detail::Writer writer;                    // safe to share
  detail::LeaseKeeper leases;               // constant after construction

  mutable std::mutex mu;
  // Guarded by mu; elements live as long as the processor.
  std::vector<std::unique_ptr<detail::SubscriptionState>> subs;
  std::vector<std::unique_ptr<detail::PeriodicTask>> tasks;
  bool started = false;  // guarded by mu
  bool driving = false;  // guarded by mu: run_until_idle is running

  // The driving thread only (the loop thread, or run_until_idle's caller).
  std::unique_ptr<SQLite::Database> conn;
  std::unique_ptr<detail::Queries> reads;
  detail::Dispatcher dispatcher;
  detail::Checkpointer checkpoints;
  std::int64_t data_version = -1;
  std::uint64_t generation = 1;
  detail::SteadyTime last_poll{};
  detail::SysTime standby_announce_at{};  // next write of eventlite_standbys rows
  bool inline_mode = false;
  bool stopping = false;
  detail::SteadyTime step_pause_until{};
  detail::Backoff step_backoff{std::chrono::milliseconds(20), std::chrono::seconds(1)};
  std::mt19937_64 rng{std::random_device{}()};  // retry jitter

  // Started mode.
  boost::asio::io_context io;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      work;
  std::unique_ptr<boost::asio::steady_timer> timer;
  std::unique_ptr<detail::ChangeWatch> watch;  // null or inactive: the timer polls
  std::unique_ptr<boost::asio::thread_pool> pool;
  std::thread loop_thread;
  std::atomic<bool> kick_pending{false};
  std::mutex stop_mu;  // one stop() at a time
  std::uint64_t listener = 0;

  std::mutex idle_mu;
  std::condition_variable idle_cv;
  std::uint64_t idle_served = 0;  // guarded by idle_mu
  std::atomic<std::uint64_t> idle_requests{0};
};

}  // namespace eventlite
