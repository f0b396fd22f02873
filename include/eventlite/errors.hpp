#pragma once

// The errors eventlite throws. Every one derives from eventlite::Error and carries a
// stable code(); what() is one line that names the values involved.
// Thread safety: immutable once thrown; copies are independent.

#include <cstdint>
#include <stdexcept>
#include <string>

namespace eventlite {

enum class ErrorCode {
  version_conflict,
  invalid_event,
  id_conflict,
  storage,
  schema_too_new,
  not_an_eventlite_database,
  invalid_argument,
  broker,
  permanent,
};

// A stable, lower-case name for `code`, e.g. "version_conflict".
const char* to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// The stream's version was not what the append expected. Nothing was written.
class VersionConflict : public Error {
 public:
  // `expected` as people read it: "any", "no stream" or a number.
  VersionConflict(std::string stream, std::string expected, std::int64_t actual);
  const std::string& stream() const noexcept { return stream_; }
  const std::string& expected() const noexcept { return expected_; }
  std::int64_t actual() const noexcept { return actual_; }

 private:
  std::string stream_;
  std::string expected_;
  std::int64_t actual_;
};

// An event was refused before anything was written: malformed JSON, an empty stream
// or type, metadata that is not an object, an event over the size cap.
class InvalidEvent : public Error {
 public:
  // `index` is the event's position in its batch (0 for a single event).
  InvalidEvent(std::size_t index, std::string field, std::string reason);
  std::size_t index() const noexcept { return index_; }
  const std::string& field() const noexcept { return field_; }
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::size_t index_;
  std::string field_;
  std::string reason_;
};

// An event id is already stored with other content (stream, type, data or metadata).
class IdConflict : public Error {
 public:
  IdConflict(std::string id, std::int64_t seq);
  const std::string& id() const noexcept { return id_; }
  std::int64_t seq() const noexcept { return seq_; }

 private:
  std::string id_;
  std::int64_t seq_;
};

// SQLite failed: busy past the timeout, disk full, read-only, corrupt, I/O error...
class StorageError : public Error {
 public:
  StorageError(int sqlite_code, int extended_code, const std::string& message);
  int sqlite_code() const noexcept { return sqlite_code_; }
  int extended_code() const noexcept { return extended_code_; }

 private:
  int sqlite_code_;
  int extended_code_;
};

// The file's eventlite schema is newer than this library. The file was left untouched.
class SchemaTooNew : public Error {
 public:
  SchemaTooNew(int found, int supported);
  int found() const noexcept { return found_; }
  int supported() const noexcept { return supported_; }

 private:
  int found_;
  int supported_;
};

// The file is not a SQLite database, or is one that `eventlite init` has not set up.
class NotAnEventliteDatabase : public Error {
 public:
  NotAnEventliteDatabase(const std::string& path, const std::string& reason);
};

// A caller's argument is unusable (an empty name, a bad option, a misuse of the API).
class InvalidArgument : public Error {
 public:
  explicit InvalidArgument(const std::string& message);
};

// A message broker (Redis, NATS) refused or could not be reached. `broker` names it
// ("redis", "nats"); `retryable` says whether trying again can help (the connection
// was lost or timed out) or cannot (authentication refused, a key of the wrong type,
// a payload over the broker's limit). what() is "BROKER: MESSAGE", and MESSAGE never
// holds a password.
class BrokerError : public Error {
 public:
  BrokerError(std::string broker, bool retryable, const std::string& message);
  const std::string& broker() const noexcept { return broker_; }
  bool retryable() const noexcept { return retryable_; }

 private:
  std::string broker_;
  bool retryable_;
};

// A sink's destination holds another store's entries where this store's must go (a
// Redis Stream whose entry ids are seqs, written by another store): forwarding there
// would take the other store's events for this one's, or mix two stores' seqs in one
// key. Retryable in the sense that nothing is parked: the sink retries after its
// backoff, and only a change of the destination or of the sink's options mends it
// (what() names the destination, the other store and the fix).
class DestinationConflict : public BrokerError {
 public:
  DestinationConflict(std::string broker, const std::string& message);
};

// A line of an import (transfer.hpp) was refused: not an envelope, a version its
// stream is not at, an id stored with other content. Nothing of the import was
// stored. code() is the cause's (invalid_event, version_conflict, id_conflict);
// what() is "line N: " and the cause.
class ImportError : public Error {
 public:
  ImportError(std::uint64_t line, const Error& cause);
  std::uint64_t line() const noexcept { return line_; }

 private:
  std::uint64_t line_;
};

// Thrown by a handler or a sink for a failure that no retry can mend (data the
// handler can never accept): the processor parks the delivery as a dead letter at
// once, with what() as its error, instead of retrying it.
class PermanentError : public Error {
 public:
  explicit PermanentError(const std::string& message);
};

// Whether retrying the delivery that threw `error` cannot help: a PermanentError, a
// BrokerError that is not retryable, or an InvalidEvent (data that does not convert
// to a typed handler's type, an event the handler built that the store refuses).
bool is_permanent(const std::exception& error) noexcept;

}  // namespace eventlite
