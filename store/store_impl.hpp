#pragma once

#include <spdlog/logger.h>

#include <filesystem>
#include <memory>

#include "eventlite/store.hpp"
#include "store/append.hpp"
#include "store/group_commit.hpp"
#include "store/notifier.hpp"
#include "store/reader.hpp"
#include "store/sqlite_util.hpp"

namespace eventlite {

struct Store::Impl {
  std::filesystem::path path;              // constant after construction
  StoreOptions options;                    // constant after construction
  detail::ConnectionConfig config;         // constant after construction
  std::shared_ptr<spdlog::logger> logger;  // constant after construction
  std::shared_ptr<detail::Notifier> notifier = std::make_shared<detail::Notifier>();
  std::unique_ptr<detail::GroupCommit> writer;  // null when read-only
  // The writer's checkpoints; destroyed before it. Null when read-only or in memory.
  std::unique_ptr<detail::WalCheckpointer> checkpointer;
  std::shared_ptr<detail::ReaderPool> readers;  // shared with live EventRanges

  detail::AppendLimits limits() const { return {options.max_event_bytes}; }
  detail::GroupCommit& require_writer(const char* what) const;
};

namespace detail {

// The rest of the library (processor, subscriptions) reaches the store's parts here.
struct StoreAccess {
  using Impl = Store::Impl;
  static const std::shared_ptr<Store::Impl>& impl(const Store& store) noexcept {
    return store.impl_;
  }
  static Store make(std::shared_ptr<Store::Impl> impl) noexcept {
    return Store(std::move(impl));
  }
};

// What a Transaction holds: the writer, taken exclusively until commit or rollback.
struct TransactionState {
  std::shared_ptr<StoreAccess::Impl> store;
  WriterAccess access;
  bool active = true;
};

}  // namespace detail
}  // namespace eventlite
