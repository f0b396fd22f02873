// Processor: registration, metrics, and the public handle. The loop is in loop.cpp,
// with apply.cpp and loop_upkeep.cpp; its parts are lease_keeper.hpp, dispatch.hpp
// (with delivery.hpp), checkpoints.hpp and sink_session.hpp. processor/services/ holds
// what is built on them: status and admin, rebuilds, replay, the inbox and Lease.

#include "eventlite/processor.hpp"

#include <fmt/format.h>
#include <spdlog/logger.h>

#include "eventlite/errors.hpp"
#include "processor/processor_impl.hpp"
#include "store/store_impl.hpp"

namespace eventlite {

using detail::SubscriptionState;

namespace {

void validate(const RetryPolicy& r, const std::string& what) {
  if (r.max_attempts < 1)
    throw InvalidArgument(what + ": retry.max_attempts must be at least 1");
  if (r.base.count() < 0 || r.cap.count() < 0)
    throw InvalidArgument(what + ": retry waits must not be negative");
  if (!(r.factor >= 1.0)) throw InvalidArgument(what + ": retry.factor must be >= 1");
  if (!(r.jitter >= 0.0 && r.jitter <= 1.0))
    throw InvalidArgument(what + ": retry.jitter must be within [0, 1]");
}

const ProcessorOptions& validated(const Store& s, const ProcessorOptions& o) {
  const auto& impl = detail::StoreAccess::impl(s);
  if (!impl) throw InvalidArgument("processor: the store was moved from");
  if (impl->options.read_only) throw InvalidArgument("processor: the store is read-only");
  if (o.batch_size == 0) throw InvalidArgument("processor: batch_size must be > 0");
  if (o.worker_threads == 0)
    throw InvalidArgument("processor: worker_threads must be > 0");
  if (o.change_check_interval.count() <= 0 || o.poll_interval.count() <= 0)
    throw InvalidArgument("processor: check and poll intervals must be > 0");
  if (o.lease_time.count() < 3)
    throw InvalidArgument("processor: lease_time must be at least 3 ms");
  if (o.checkpoint_interval.count() < 0)
    throw InvalidArgument("processor: checkpoint_interval must not be negative");
  validate(o.retry, "processor");
  return o;
}

}  // namespace

Processor::Impl::Impl(Store& s, ProcessorOptions o)
    : store_impl(detail::StoreAccess::impl(s)),
      options(validated(s, o)),
      clock(options.clock ? options.clock : std::make_shared<SystemClock>()),
      logger(options.logger ? options.logger : store_impl->logger),
      env{&options.observer, logger.get(), clock.get()},
      writer(detail::StoreAccess::make(store_impl)),
      leases(options.owner.empty() ? detail::generated_owner() : options.owner,
             options.lease_time),
      dispatcher(
          env, writer, leases.owner(), options.batch_size,
          [this](std::function<void()> w) { run_work(std::move(w)); },
          [this](std::shared_ptr<detail::Unit> u) { complete(std::move(u)); }),
      checkpoints(options.checkpoint_interval, logger.get()) {}

Processor::Impl::~Impl() {
  stop();
  release_leases();  // held since the last run_until_idle
  close_sinks(true);
}

void Processor::Impl::add(std::unique_ptr<SubscriptionState> sub) {
  if (sub->name.empty() || sub->name.size() > 1024)
    throw InvalidArgument("subscribe: a subscription name must be 1 to 1024 bytes");
  // The other leases' names: a subscription so named would share their row.
  for (const char* kept : {"every:", "bridge:", "rebuild:"})
    if (sub->name.starts_with(kept))
      throw InvalidArgument(fmt::format(
          "subscribe: \"{}\" names are kept for eventlite's own leases", kept));
  if (std::visit([](const auto& target) { return !target; }, sub->target))
    throw InvalidArgument("subscribe: the handler is empty");
  if (sub->sink() && sub->options.transactional)
    throw InvalidArgument("sink: a sink cannot be transactional");
  sub->retry = sub->options.retry.value_or(options.retry);
  validate(sub->retry, "subscription \"" + sub->name + "\"");
  sub->types.insert(sub->options.types.begin(), sub->options.types.end());
  sub->lanes = sub->options.max_lanes > 0 ? sub->options.max_lanes
               : sub->sink()              ? 1
                                          : options.worker_threads;
  {
    std::lock_guard lock(mu);
    for (const auto& s : subs)
      if (s->name == sub->name)
        throw InvalidArgument("subscribe: \"" + sub->name + "\" is already subscribed");
    subs.push_back(std::move(sub));
  }
  kick();
}

void Processor::Impl::every(std::string name, std::chrono::milliseconds interval,
                            std::function<void()> fn) {
  if (name.empty() || name.size() > 1000)
    throw InvalidArgument("every: a task name must be 1 to 1000 bytes");
  if (interval.count() <= 0) throw InvalidArgument("every: the interval must be > 0");
  if (!fn) throw InvalidArgument("every: the task is empty");
  auto task = std::make_unique<detail::PeriodicTask>();
  task->lease_name = "every:" + name;
  task->name = std::move(name);
  task->interval = interval;
  task->fn = std::move(fn);
  {
    std::lock_guard lock(mu);
    for (const auto& t : tasks)
      if (t->name == task->name)
        throw InvalidArgument("every: \"" + task->name + "\" is already registered");
    tasks.push_back(std::move(task));
  }
  kick();
}

std::vector<SubscriptionState*> Processor::Impl::subscriptions() const {
  std::lock_guard lock(mu);
  std::vector<SubscriptionState*> out;
  out.reserve(subs.size());
  for (const auto& s : subs) out.push_back(s.get());
  return out;
}

std::vector<detail::PeriodicTask*> Processor::Impl::periodic_tasks() const {
  std::lock_guard lock(mu);
  std::vector<detail::PeriodicTask*> out;
  for (const auto& t : tasks) out.push_back(t.get());
  return out;
}

std::vector<SubscriptionMetrics> Processor::Impl::metrics() const {
  auto reader = store_impl->readers->acquire();
  detail::Queries q(reader->db->getHandle());
  const Seq head = q.head();
  const auto now = std::chrono::system_clock::now();
  std::vector<SubscriptionMetrics> out;
  for (const SubscriptionState* sub : subscriptions()) {
    SubscriptionMetrics m;
    m.name = sub->name;
    m.delivered = sub->delivered.load();
    m.failed = sub->failed.load();
    m.retried = sub->retried.load();
    m.dead = sub->dead.load();
    m.position = sub->position_view();
    m.lag = std::max<Seq>(0, head - m.position);
    m.leased = sub->leased_view();
    m.stopped = sub->stopped_view();
    if (auto oldest = q.oldest_undelivered(sub->name))
      m.lag_time = detail::age_of(*oldest, now);
    m.latency_p50 = sub->latency.quantile(0.5);
    m.latency_p99 = sub->latency.quantile(0.99);
    m.latency_max = sub->latency.max();
    if (const detail::SinkSession* sink = sub->sink()) {
      auto health = sink->health();
      m.failing_since = health.failing_since;
      m.last_error = std::move(health.last_error);
      m.destination_conflict = health.conflict;
      m.round_trip_p50 = sink->round_trip(0.5);
      m.round_trip_p99 = sink->round_trip(0.99);
    }
    out.push_back(std::move(m));
  }
  return out;
}

// ---- Processor --------------------------------------------------------------------

Processor::Processor(Store& store, ProcessorOptions options)
    : impl_(std::make_unique<Impl>(store, std::move(options))) {}
Processor::Processor(Processor&&) noexcept = default;
Processor& Processor::operator=(Processor&&) noexcept = default;
Processor::~Processor() = default;

namespace {

std::unique_ptr<SubscriptionState> make_sub(std::string name, detail::Target target,
                                            SubscriptionOptions options) {
  auto sub = std::make_unique<SubscriptionState>();
  sub->name = std::move(name);
  sub->target = std::move(target);
  sub->options = std::move(options);
  return sub;
}

}  // namespace

void Processor::subscribe(std::string name, Handler handler,
                          SubscriptionOptions options) {
  impl_->add(make_sub(std::move(name), std::move(handler), std::move(options)));
}

void Processor::subscribe(std::string name, const HandlerMap& handlers,
                          SubscriptionOptions options) {
  if (options.types.empty()) options.types = handlers.types();
  subscribe(std::move(name), Handler(handlers), std::move(options));
}

void Processor::subscribe_batch(std::string name, BatchHandler handler,
                                SubscriptionOptions options) {
  impl_->add(make_sub(std::move(name), std::move(handler), std::move(options)));
}

void Processor::sink(std::string name, std::shared_ptr<Sink> sink,
                     SubscriptionOptions options) {
  if (!sink) throw InvalidArgument("subscribe: the handler is empty");
  impl_->add(make_sub(std::move(name),
                      std::make_unique<detail::SinkSession>(std::move(sink)),
                      std::move(options)));
}

void Processor::every(std::string name, std::chrono::milliseconds interval,
                      std::function<void()> task) {
  impl_->every(std::move(name), interval, std::move(task));
}

void Processor::start() {
  impl_->start();
}
void Processor::stop() noexcept {
  if (impl_) impl_->stop();
}
std::size_t Processor::run_until_idle() {
  return impl_->run_until_idle();
}
bool Processor::wait_idle(std::chrono::milliseconds timeout) {
  return impl_->wait_idle(timeout);
}
std::vector<SubscriptionMetrics> Processor::metrics() const {
  return impl_->metrics();
}

}  // namespace eventlite
