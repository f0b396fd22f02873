#pragma once

// Batches of events read past a position, shared by every subscription at that
// position, and their storage, reused from batch to batch.
//
// A full batch (it stopped at a cap, so it cannot grow) is kept in a small cache, so
// ten subscriptions at one position cost one read. A batch's events are assigned
// into the strings of a batch nobody holds any more, so a drain does not allocate
// per event. Memory stays bounded: a batch stops at batch_size events or about
// kBatchBytes of data, the cache at kCachedBatches batches or kCacheBytes, and only
// small batches are kept for reuse.

#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "eventlite/event.hpp"
#include "processor/queries.hpp"

namespace eventlite::detail {

constexpr std::size_t kBatchBytes = std::size_t{4} << 20;

struct Batch {
  std::vector<Event> storage;  // events()'s elements, then spare ones
  std::size_t size = 0;
  std::size_t bytes = 0;  // data and metadata
  bool full = false;      // stopped at a cap: more may follow at once

  std::span<const Event> events() const noexcept { return {storage.data(), size}; }
};

// Thread safety: read() on one thread at a time (the loop's); the batches it returns
// may be released on any thread.
class BatchReader {
 public:
  explicit BatchReader(std::size_t batch_size);
  ~BatchReader();

  // The batch of events after `after`: from the cache, or read on `reads`.
  std::shared_ptr<const Batch> read(Queries& reads, Seq after);
  // Forgets cached batches that start before `position`: no subscription will read
  // them again (each is at or past it), so their storage can be reused at once.
  void drop_before(Seq position);

 private:
  class Pool;
  std::shared_ptr<Batch> fresh();

  std::size_t batch_size_;
  std::shared_ptr<Pool> pool_;  // shared with the batches' deleters
  std::map<Seq, std::shared_ptr<const Batch>> cache_;
  std::size_t cached_bytes_ = 0;
};

}  // namespace eventlite::detail
