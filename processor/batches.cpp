#include "processor/batches.hpp"

namespace eventlite::detail {
namespace {

constexpr std::size_t kCachedBatches = 16;
constexpr std::size_t kCacheBytes = std::size_t{16} << 20;
// Batches kept for reuse, and the largest one kept: a batch of large events gives
// its memory back.
constexpr std::size_t kSpareBatches = 4;
constexpr std::size_t kSpareBytes = std::size_t{1} << 20;

}  // namespace

// Batches nobody holds, kept for their strings' storage.
class BatchReader::Pool {
 public:
  std::unique_ptr<Batch> take() {
    std::lock_guard lock(mu_);
    if (spare_.empty()) return std::make_unique<Batch>();
    auto b = std::move(spare_.back());
    spare_.pop_back();
    return b;
  }
  void give(Batch* b) noexcept {
    std::unique_ptr<Batch> owned(b);
    if (owned->bytes > kSpareBytes) return;
    try {
      std::lock_guard lock(mu_);
      if (spare_.size() < kSpareBatches) spare_.push_back(std::move(owned));
    } catch (...) {
      // No room to keep it: it is freed.
    }
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<Batch>> spare_;  // guarded by mu_
};

BatchReader::BatchReader(std::size_t batch_size)
    : batch_size_(batch_size), pool_(std::make_shared<Pool>()) {}

BatchReader::~BatchReader() = default;

std::shared_ptr<Batch> BatchReader::fresh() {
  std::unique_ptr<Batch> b = pool_->take();
  b->size = 0;
  b->bytes = 0;
  b->full = false;
  std::shared_ptr<Pool> pool = pool_;
  return std::shared_ptr<Batch>(b.release(), [pool](Batch* p) { pool->give(p); });
}

void BatchReader::drop_before(Seq position) {
  while (!cache_.empty() && cache_.begin()->first < position) {
    cached_bytes_ -= cache_.begin()->second->bytes;
    cache_.erase(cache_.begin());
  }
}

std::shared_ptr<const Batch> BatchReader::read(Queries& reads, Seq after) {
  auto it = cache_.find(after);
  if (it != cache_.end()) return it->second;
  auto batch = fresh();
  batch->size = reads.read_events(after, batch_size_, kBatchBytes, batch->storage,
                                  batch->full);
  for (const Event& e : batch->events()) batch->bytes += e.data.size() + e.metadata.size();
  // Only a full batch is final: a short one may grow with the next append. Large
  // events make small batches and a small cache, so memory stays bounded whatever
  // the events weigh.
  if (batch->full) {
    cache_.emplace(after, batch);
    cached_bytes_ += batch->bytes;
    while (cache_.size() > kCachedBatches ||
           (cache_.size() > 1 && cached_bytes_ > kCacheBytes)) {
      cached_bytes_ -= cache_.begin()->second->bytes;
      cache_.erase(cache_.begin());
    }
  }
  return batch;
}

}  // namespace eventlite::detail
