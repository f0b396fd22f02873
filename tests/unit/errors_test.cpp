#include "eventlite/errors.hpp"

#include <gtest/gtest.h>

#include <string>

namespace eventlite {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Errors, CodesHaveStableLowerCaseNames) {
  EXPECT_STREQ(to_string(ErrorCode::version_conflict), "version_conflict");
  EXPECT_STREQ(to_string(ErrorCode::invalid_event), "invalid_event");
  EXPECT_STREQ(to_string(ErrorCode::id_conflict), "id_conflict");
  EXPECT_STREQ(to_string(ErrorCode::storage), "storage");
  EXPECT_STREQ(to_string(ErrorCode::schema_too_new), "schema_too_new");
  EXPECT_STREQ(to_string(ErrorCode::not_an_eventlite_database),
               "not_an_eventlite_database");
  EXPECT_STREQ(to_string(ErrorCode::invalid_argument), "invalid_argument");
  EXPECT_STREQ(to_string(ErrorCode::broker), "broker");
  EXPECT_STREQ(to_string(ErrorCode::permanent), "permanent");
}

TEST(Errors, VersionConflictNamesStreamExpectedAndActual) {
  const VersionConflict e("user-42", "3", 5);
  const Error& root = e;
  EXPECT_EQ(root.code(), ErrorCode::version_conflict);
  EXPECT_EQ(std::string(e.what()),
            "version conflict on stream \"user-42\": expected 3, actual 5");
}

TEST(Errors, EachErrorCarriesItsCodeAndNamesItsValues) {
  const InvalidEvent invalid(7, "metadata", "not an object");
  EXPECT_EQ(invalid.code(), ErrorCode::invalid_event);
  EXPECT_TRUE(contains(invalid.what(), "metadata")) << invalid.what();
  EXPECT_TRUE(contains(invalid.what(), "7")) << invalid.what();
  EXPECT_TRUE(contains(invalid.what(), "not an object")) << invalid.what();

  const IdConflict id("abc-123", 99);
  EXPECT_EQ(id.code(), ErrorCode::id_conflict);
  EXPECT_TRUE(contains(id.what(), "abc-123")) << id.what();
  EXPECT_TRUE(contains(id.what(), "99")) << id.what();

  const StorageError storage(5, 517, "database is locked");
  EXPECT_EQ(storage.code(), ErrorCode::storage);
  EXPECT_EQ(storage.sqlite_code(), 5);
  EXPECT_EQ(storage.extended_code(), 517);
  EXPECT_TRUE(contains(storage.what(), "database is locked")) << storage.what();

  const SchemaTooNew too_new(999, 1);
  EXPECT_EQ(too_new.code(), ErrorCode::schema_too_new);
  EXPECT_TRUE(contains(too_new.what(), "999")) << too_new.what();

  const NotAnEventliteDatabase not_ours("app.db", "file is not a database");
  EXPECT_EQ(not_ours.code(), ErrorCode::not_an_eventlite_database);
  EXPECT_TRUE(contains(not_ours.what(), "app.db")) << not_ours.what();

  EXPECT_EQ(InvalidArgument("bad").code(), ErrorCode::invalid_argument);
  const BrokerError down("redis", true, "connection refused");
  EXPECT_EQ(down.code(), ErrorCode::broker);
  EXPECT_EQ(down.broker(), "redis");
  EXPECT_TRUE(down.retryable());
  EXPECT_EQ(std::string(down.what()), "redis: connection refused");
  EXPECT_EQ(PermanentError("never").code(), ErrorCode::permanent);
}

TEST(Errors, PermanentFailuresAreToldFromRetryableOnes) {
  EXPECT_TRUE(is_permanent(PermanentError("bad data")));
  EXPECT_TRUE(is_permanent(BrokerError("nats", false, "authorization violation")));
  EXPECT_TRUE(is_permanent(InvalidEvent(0, "data", "does not convert")));
  EXPECT_FALSE(is_permanent(BrokerError("redis", true, "connection lost")));
  EXPECT_FALSE(is_permanent(StorageError(5, 5, "database is locked")));
  EXPECT_FALSE(is_permanent(std::runtime_error("smtp timeout")));
}

TEST(Errors, AllDeriveFromOneRoot) {
  try {
    throw IdConflict("x", 1);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::id_conflict);
    return;
  }
  FAIL() << "IdConflict is not an eventlite::Error";
}

}  // namespace
}  // namespace eventlite
