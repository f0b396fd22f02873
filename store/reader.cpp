#include "store/reader.hpp"

#include <algorithm>

#include "eventlite/errors.hpp"
#include "eventlite/upcast.hpp"

namespace eventlite::detail {
namespace {
// Statements cached per reader connection; filters make SQL vary, so bound it.
constexpr std::size_t kMaxCachedStatements = 64;
}  // namespace

void copy_event(const Stmt& s, Event& e) {
  e.seq = s.column_int(0);
  s.column_text(1, e.id);
  s.column_text(2, e.stream);
  e.version = s.column_int(3);
  s.column_text(4, e.type);
  s.column_text(5, e.data);
  s.column_text(6, e.metadata);
  s.column_text(7, e.time);
}

Stmt& ReaderConnection::statement(const std::string& sql) {
  auto it = statements.find(sql);
  if (it != statements.end()) return it->second;
  if (statements.size() >= kMaxCachedStatements) statements.clear();
  return statements.emplace(sql, Stmt(db->getHandle(), sql)).first->second;
}

ReaderPool::ReaderPool(ConnectionConfig config, std::size_t max_connections)
    : config_(std::move(config)), max_(std::max<std::size_t>(1, max_connections)) {
  // An in-memory database lives while a connection to it is open: keep one here, so
  // a range that outlives its Store still reads the store's events.
  if (config_.memory) {
    auto c = std::make_unique<ReaderConnection>();
    c->db = open_connection(config_, Role::reader);
    idle_.push_back(std::move(c));
    open_ = 1;
  }
}

ReaderPool::Lease ReaderPool::acquire() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_; });
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return Lease(*this, std::move(c));
  }
  ++open_;
  lock.unlock();
  try {
    auto c = std::make_unique<ReaderConnection>();
    c->db = open_connection(config_, Role::reader);
    return Lease(*this, std::move(c));
  } catch (...) {
    lock.lock();
    --open_;
    cv_.notify_one();
    throw;
  }
}

void ReaderPool::release(std::unique_ptr<ReaderConnection> c) noexcept {
  {
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(c));
  }
  cv_.notify_one();
}

template <class OnRow>
std::size_t RangeState::step_page(OnRow&& on_row) {
  if (exhausted || remaining == 0) {
    exhausted = true;
    return 0;
  }
  const std::size_t want =
      static_cast<std::size_t>(std::min<std::uint64_t>(page_size, remaining));
  auto conn = pool->acquire();
  Stmt& s = conn->statement(sql);
  StmtScope scope(s);  // ends the read transaction as soon as the page is stepped
  int i = 1;
  s.bind(i++, next_key);
  for (const Param& p : params) std::visit([&](const auto& v) { s.bind(i++, v); }, p);
  s.bind(i++, static_cast<std::int64_t>(want));
  std::size_t n = 0;
  std::int64_t last_key = 0;
  while (s.step("read events")) {
    on_row(s, n);
    last_key = by_version ? s.column_int(3) : s.column_int(0);
    ++n;
  }
  if (n < want) exhausted = true;
  if (n > 0) {
    next_key = last_key + 1;
    remaining -= n;
  }
  return n;
}

bool RangeState::fetch() {
  page_len = 0;
  index = 0;
  if (!exhausted && remaining != 0) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(page_size, remaining));
    if (page.size() < want) page.resize(want);
  }
  page_len = step_page([&](const Stmt& s, std::size_t n) { copy_event(s, page[n]); });
  // After the page's read transaction: a step may take its time.
  if (upcasters)
    for (std::size_t i = 0; i < page_len; ++i) upcasters->apply(page[i]);
  return page_len > 0;
}

std::size_t RangeState::visit_page(const std::function<void(const Stmt&)>& row) {
  return step_page([&](const Stmt& s, std::size_t) { row(s); });
}

void RangeState::advance() {
  if (++index >= page_len) fetch();
}

std::unique_ptr<RangeState> plan_read_all(ReadOptions options) {
  if (options.page_size == 0 || options.page_size > 65536)
    throw InvalidArgument("page_size must be between 1 and 65536");
  auto state = std::make_unique<RangeState>();
  const Seq from = std::max<Seq>(1, options.from);
  state->remaining = options.limit == 0 ? UINT64_MAX : options.limit;
  if (options.to < from) state->remaining = 0;
  state->page_size = options.page_size;
  std::string sql =
      std::string("SELECT ") + kEventColumns + " FROM eventlite_events WHERE ";
  if (!options.stream.empty()) {
    // One stream: page by version on the (stream, version) index. Within a stream,
    // version order is seq order, so the seq bounds are filters on the same walk (seq
    // is the rowid, which the index holds), never a sort.
    state->by_version = true;
    state->next_key = 1;
    sql += "version >= ? AND stream = ? AND seq >= ? AND seq <= ?";
    state->params.emplace_back(std::move(options.stream));
    state->params.emplace_back(from);
  } else {
    state->next_key = from;
    sql += "seq >= ? AND seq <= ?";
  }
  state->params.emplace_back(options.to);
  if (!options.stream_prefix.empty()) {
    // A range on the name, so the prefix is a value, never a LIKE pattern.
    std::string upper = options.stream_prefix;
    state->params.emplace_back(std::move(options.stream_prefix));
    while (!upper.empty() && static_cast<unsigned char>(upper.back()) == 0xff)
      upper.pop_back();
    if (upper.empty()) {
      sql += " AND stream >= ?";
    } else {
      upper.back() = static_cast<char>(static_cast<unsigned char>(upper.back()) + 1);
      sql += " AND stream >= ? AND stream < ?";
      state->params.emplace_back(std::move(upper));
    }
  }
  if (!options.types.empty()) {
    sql += " AND type IN (?";
    for (std::size_t i = 1; i < options.types.size(); ++i) sql += ", ?";
    sql += ")";
    for (auto& t : options.types) state->params.emplace_back(std::move(t));
  }
  sql += state->by_version ? " ORDER BY version LIMIT ?" : " ORDER BY seq LIMIT ?";
  state->sql = std::move(sql);
  return state;
}

std::unique_ptr<RangeState> plan_read_stream(std::string_view stream, Version from,
                                             std::uint64_t limit) {
  auto state = std::make_unique<RangeState>();
  state->by_version = true;
  state->params.emplace_back(std::string(stream));
  state->next_key = std::max<Version>(1, from);
  state->remaining = limit == 0 ? UINT64_MAX : limit;
  state->sql = std::string("SELECT ") + kEventColumns +
               " FROM eventlite_events WHERE version >= ? AND stream = ? "
               "ORDER BY version LIMIT ?";
  return state;
}

}  // namespace eventlite::detail

namespace eventlite {

const Event& EventRange::iterator::operator*() const {
  return state_->page[state_->index];
}

EventRange::iterator& EventRange::iterator::operator++() {
  state_->advance();
  return *this;
}

bool EventRange::iterator::operator==(std::default_sentinel_t) const {
  return state_ == nullptr || state_->at_end();
}

EventRange::EventRange(std::unique_ptr<detail::RangeState> state) noexcept
    : state_(std::move(state)) {}
EventRange::EventRange(EventRange&&) noexcept = default;
EventRange& EventRange::operator=(EventRange&&) noexcept = default;
EventRange::~EventRange() = default;

EventRange::iterator EventRange::begin() {
  if (state_->started)
    throw InvalidArgument("EventRange::begin() called twice: it is single-pass");
  state_->started = true;
  state_->fetch();
  return iterator(state_.get());
}

std::size_t EventRange::next_page(std::vector<Event>& out) {
  if (state_->started && state_->page_len > 0 && state_->index < state_->page_len)
    throw InvalidArgument("EventRange::next_page() after begin()");
  state_->started = true;
  out.swap(state_->page);  // the old page's storage is filled next time
  const bool got = state_->fetch();
  out.swap(state_->page);
  const std::size_t n = got ? state_->page_len : 0;
  out.resize(n);
  state_->page_len = 0;
  state_->index = 0;
  return n;
}

std::vector<Event> EventRange::to_vector() {
  std::vector<Event> out;
  for (auto it = begin(); it != end(); ++it) out.push_back(*it);
  return out;
}

}  // namespace eventlite
