#pragma once

#include <SQLiteCpp/Database.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "eventlite/read.hpp"
#include "store/sqlite_util.hpp"

namespace eventlite {
class Upcasters;
}

namespace eventlite::detail {

// The columns of eventlite_events in copy_event()'s order, for SELECT lists.
inline constexpr const char* kEventColumns =
    "seq, id, stream, version, type, data, metadata, time";

// Copies a row of kEventColumns into `e`, reusing its strings' storage.
void copy_event(const Stmt& s, Event& e);

// A reader connection with its prepared statements, keyed by SQL text.
struct ReaderConnection {
  std::unique_ptr<SQLite::Database> db;
  std::unordered_map<std::string, Stmt> statements;
  Stmt& statement(const std::string& sql);
};

// Read connections, opened on demand up to a cap and reused. Readers never write and
// never checkpoint; each statement is reset as soon as its rows are copied, so no
// read transaction outlives one page.
// Thread safety: safe to share.
class ReaderPool {
 public:
  ReaderPool(ConnectionConfig config, std::size_t max_connections);

  class Lease {
   public:
    Lease(ReaderPool& pool, std::unique_ptr<ReaderConnection> c) noexcept
        : pool_(&pool), c_(std::move(c)) {}
    Lease(Lease&&) noexcept = default;
    ~Lease() {
      if (c_) pool_->release(std::move(c_));
    }
    ReaderConnection* operator->() const noexcept { return c_.get(); }
    ReaderConnection& operator*() const noexcept { return *c_; }

   private:
    ReaderPool* pool_;
    std::unique_ptr<ReaderConnection> c_;
  };

  Lease acquire();

 private:
  void release(std::unique_ptr<ReaderConnection> c) noexcept;

  const ConnectionConfig config_;
  const std::size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<ReaderConnection>> idle_;  // guarded by mu_
  std::size_t open_ = 0;                                 // guarded by mu_
};

// The state behind an EventRange: one query, paged by key (seq, or version within a
// stream), one page of events in memory, reused from page to page.
struct RangeState {
  using Param = std::variant<std::int64_t, std::string>;

  std::shared_ptr<ReaderPool> pool;
  std::shared_ptr<const Upcasters> upcasters;  // applied to each fetched event
  std::string sql;            // binds: ?1 the key, then `params`, then the page limit
  std::vector<Param> params;  // stream, seq bounds, prefix bounds, types, in order
  bool by_version = false;    // key is the stream version, not the seq
  std::int64_t next_key = 1;
  std::uint64_t remaining = UINT64_MAX;
  std::size_t page_size = 512;

  std::vector<Event> page;
  template <class OnRow>
  std::size_t step_page(OnRow&& on_row);
  std::size_t page_len = 0;
  std::size_t index = 0;
  bool exhausted = false;
  bool started = false;

  // Fetches the next page into `page`; false when there is none.
  bool fetch();
  // Steps through the next page's rows without copying them, calling `row` with the
  // statement on each (its columns as kEventColumns); returns how many. The page's
  // read transaction lasts as long as the calls: keep them short (no I/O).
  std::size_t visit_page(const std::function<void(const Stmt&)>& row);
  bool at_end() const noexcept { return index >= page_len; }
  void advance();
};

// The query of Store::read_all(options), without its pool: which SQL, bound how.
// Throws InvalidArgument for a page size outside 1..65536.
std::unique_ptr<RangeState> plan_read_all(ReadOptions options);

// The query of Store::read_stream().
std::unique_ptr<RangeState> plan_read_stream(std::string_view stream, Version from,
                                             std::uint64_t limit);

}  // namespace eventlite::detail
