#include "eventlite/errors.hpp"

#include <fmt/format.h>

namespace eventlite {

const char* to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::version_conflict: return "version_conflict";
    case ErrorCode::invalid_event: return "invalid_event";
    case ErrorCode::id_conflict: return "id_conflict";
    case ErrorCode::storage: return "storage";
    case ErrorCode::schema_too_new: return "schema_too_new";
    case ErrorCode::not_an_eventlite_database: return "not_an_eventlite_database";
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::broker: return "broker";
    case ErrorCode::permanent: return "permanent";
  }
  return "unknown";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(message), code_(code) {}

VersionConflict::VersionConflict(std::string stream, std::string expected,
                                 std::int64_t actual)
    : Error(ErrorCode::version_conflict,
            fmt::format("version conflict on stream \"{}\": expected {}, actual {}",
                        stream, expected, actual)),
      stream_(std::move(stream)),
      expected_(std::move(expected)),
      actual_(actual) {}

InvalidEvent::InvalidEvent(std::size_t index, std::string field, std::string reason)
    : Error(ErrorCode::invalid_event,
            fmt::format("invalid event at index {}: {}: {}", index, field, reason)),
      index_(index),
      field_(std::move(field)),
      reason_(std::move(reason)) {}

IdConflict::IdConflict(std::string id, std::int64_t seq)
    : Error(ErrorCode::id_conflict,
            fmt::format("event id {} is already stored at seq {} with other content", id,
                        seq)),
      id_(std::move(id)),
      seq_(seq) {}

StorageError::StorageError(int sqlite_code, int extended_code, const std::string& message)
    : Error(ErrorCode::storage, message),
      sqlite_code_(sqlite_code),
      extended_code_(extended_code) {}

namespace {

// An import's cause, without the index its batch of one gives.
std::string cause_text(const Error& cause) {
  if (const auto* invalid = dynamic_cast<const InvalidEvent*>(&cause))
    return invalid->field() + ": " + invalid->reason();
  return cause.what();
}

}  // namespace

ImportError::ImportError(std::uint64_t line, const Error& cause)
    : Error(cause.code(), fmt::format("line {}: {}", line, cause_text(cause))),
      line_(line) {}

SchemaTooNew::SchemaTooNew(int found, int supported)
    : Error(ErrorCode::schema_too_new,
            fmt::format("eventlite schema version {} is newer than this library supports "
                        "({}); the file was left untouched",
                        found, supported)),
      found_(found),
      supported_(supported) {}

NotAnEventliteDatabase::NotAnEventliteDatabase(const std::string& path,
                                               const std::string& reason)
    : Error(ErrorCode::not_an_eventlite_database,
            fmt::format("not an eventlite database: {}: {}", path, reason)) {}

InvalidArgument::InvalidArgument(const std::string& message)
    : Error(ErrorCode::invalid_argument, message) {}

BrokerError::BrokerError(std::string broker, bool retryable, const std::string& message)
    : Error(ErrorCode::broker, fmt::format("{}: {}", broker, message)),
      broker_(std::move(broker)),
      retryable_(retryable) {}

DestinationConflict::DestinationConflict(std::string broker, const std::string& message)
    : BrokerError(std::move(broker), true, message) {}

PermanentError::PermanentError(const std::string& message)
    : Error(ErrorCode::permanent, message) {}

bool is_permanent(const std::exception& error) noexcept {
  if (dynamic_cast<const PermanentError*>(&error)) return true;
  if (dynamic_cast<const InvalidEvent*>(&error)) return true;
  if (auto* broker = dynamic_cast<const BrokerError*>(&error)) return !broker->retryable();
  return false;
}

}  // namespace eventlite
