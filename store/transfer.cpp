// Export and import of envelope lines (include/eventlite/transfer.hpp).

#include "eventlite/transfer.hpp"

#include <SQLiteCpp/Database.h>
#include <fmt/format.h>

#include <istream>
#include <ostream>
#include <string>

#include "eventlite/envelope.hpp"
#include "eventlite/errors.hpp"
#include "eventlite/transaction.hpp"
#include "store/envelope_encode.hpp"
#include "store/reader.hpp"
#include "store/sqlite_util.hpp"
#include "store/store_impl.hpp"

namespace eventlite {

namespace {

constexpr std::uint64_t kProgressEvery = 1024;

// The version of the event at `seq`, as the import's own transaction sees it: stored
// before the import or by one of its earlier lines. Not through the store's readers:
// they do not see an earlier line's event (not committed yet), and in an in-memory
// store they cannot read at all while the import holds the write lock.
Version stored_version(Transaction& txn, Seq seq) {
  detail::Stmt version(txn.database().getHandle(),
                       "SELECT version FROM eventlite_events WHERE seq = ?", false);
  version.bind(1, seq);
  detail::StmtScope scope(version);
  return version.step("read a stored version") ? version.column_int(0) : 0;
}

bool blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

std::uint64_t export_envelopes(const Store& store, std::ostream& out, ReadOptions options,
                               const ProgressFn& progress) {
  // Straight from each page's rows into text, without an Event in between; the
  // page's read transaction ends before the text is written out (a slow reader never
  // holds it open).
  auto range = detail::plan_read_all(std::move(options));
  range->pool = detail::StoreAccess::impl(store)->readers;
  TransferProgress p;
  std::string page;
  std::uint64_t next_report = kProgressEvery;
  for (;;) {
    page.clear();
    Seq last = 0;
    const std::size_t n = range->visit_page([&](const detail::Stmt& s) {
      last = s.column_int(0);
      detail::append_envelope(page, {last, s.column_text(1), s.column_text(2),
                                     s.column_int(3), s.column_text(4), s.column_text(7),
                                     s.column_text(5), s.column_text(6)});
      page += '\n';
    });
    if (n == 0) break;
    if (!out.write(page.data(), static_cast<std::streamsize>(page.size()))) break;
    p.events += n;
    p.bytes += page.size();
    p.seq = last;
    if (progress && p.events >= next_report) {
      progress(p);
      next_report = p.events + kProgressEvery;
    }
  }
  out.flush();
  if (progress) progress(p);
  return p.events;
}

ImportResult import_envelopes(Store& store, std::istream& in, const ProgressFn& progress) {
  ImportResult result;
  TransferProgress p;
  Transaction txn = store.transaction();
  // Seqs above it are this import's; a line found stored returns one at or below.
  Seq high = 0;
  {
    detail::Stmt head(txn.database().getHandle(),
                      "SELECT coalesce(max(seq), 0) FROM eventlite_events", false);
    detail::StmtScope scope(head);
    if (head.step("read the head")) high = head.column_int(0);
  }
  std::string line;
  std::uint64_t number = 0;  // the line's number in the input, blank ones included
  while (std::getline(in, line)) {
    ++number;
    p.bytes += line.size() + 1;
    if (blank(line)) continue;
    ++result.lines;
    try {
      const DecodedEvent d = decode_envelope(line);
      // Without an id, a line would be a new event each time it is imported.
      if (d.event.id.empty())
        throw InvalidEvent(0, "id", "missing (an import is idempotent by event id)");
      const Seq seq = txn.append(d.stream, d.event, d.expected());
      if (seq > high) {
        high = seq;
        ++result.appended;
      } else {
        // Stored before or by an earlier line, with this content: its version must be
        // the line's too.
        if (d.version) {
          const Version stored = stored_version(txn, seq);
          if (stored != *d.version)
            throw InvalidEvent(0, "version",
                               fmt::format("{}, but the event with this id is stored at "
                                           "version {} of its stream",
                                           *d.version, stored));
        }
        ++result.already_stored;
      }
    } catch (const InvalidEvent& e) {
      throw ImportError(number, e);
    } catch (const VersionConflict& e) {
      throw ImportError(number, e);
    } catch (const IdConflict& e) {
      throw ImportError(number, e);
    }
    p.events = result.lines;
    if (progress && p.events % kProgressEvery == 0) progress(p);
  }
  // Not the end of the input (a read error): nothing is committed.
  if (!in.eof())
    throw InvalidArgument(fmt::format("import: the input could not be read after line {}",
                                      number));
  txn.commit();
  if (progress) progress(p);
  return result;
}

}  // namespace eventlite
