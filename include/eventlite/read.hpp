#pragma once

// Lazy reads: an EventRange fetches events in pages, each page in its own short read
// transaction, so a read of a million events holds one page in memory and never pins
// the write-ahead log.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "eventlite/event.hpp"

namespace eventlite {

namespace detail {
struct RangeState;
}

// Which events Store::read_all() reads. A read of one exact `stream` pages on the
// stream's versions (the (stream, version) index), so it costs the stream's length,
// not the store's; the other filters page on seq.
// Thread safety: a value.
struct ReadOptions {
  Seq from = 1;                              // first seq, inclusive
  Seq to = std::numeric_limits<Seq>::max();  // last seq, inclusive; below from: none
  std::uint64_t limit = 0;                   // at most this many events; 0: no limit
  std::vector<std::string> types = {};       // only these types; empty: every type
  std::string stream = {};                   // only this stream; empty: all
  std::string stream_prefix = {};  // only streams starting with this; empty: all
  std::size_t page_size = 512;     // events fetched per read transaction (1..65536)
};

// A single-pass range of events in ascending order, fetched page by page. Events
// committed after the range was created are seen if they fall in it when their page
// is fetched. Throws StorageError from iteration if a page cannot be read.
// Thread safety: one thread at a time.
class EventRange {
 public:
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Event;
    using difference_type = std::ptrdiff_t;
    using pointer = const Event*;
    using reference = const Event&;

    iterator() noexcept = default;
    reference operator*() const;
    pointer operator->() const { return &**this; }
    iterator& operator++();
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const;

   private:
    friend class EventRange;
    explicit iterator(detail::RangeState* state) noexcept : state_(state) {}
    detail::RangeState* state_ = nullptr;
  };

  EventRange(EventRange&&) noexcept;
  EventRange& operator=(EventRange&&) noexcept;
  ~EventRange();

  // Fetches the first page. Call once: the range is single-pass.
  iterator begin();
  std::default_sentinel_t end() const noexcept { return {}; }

  // Reads the rest into a vector (for small ranges and tests).
  std::vector<Event> to_vector();

  // Instead of iterating: fetches the next page (page_size events at most) into
  // `out`, replacing what it held and reusing its strings' storage, and returns how
  // many; 0 at the end. Throws InvalidArgument once begin() was called.
  std::size_t next_page(std::vector<Event>& out);

 private:
  friend class Store;
  explicit EventRange(std::unique_ptr<detail::RangeState> state) noexcept;
  std::unique_ptr<detail::RangeState> state_;
};

}  // namespace eventlite
