#pragma once

// Moving events between stores as envelope lines (DESIGN.md's wire format, one JSON
// object a line): what `eventlite export` and `eventlite import` do, for a copy of a
// store, a backup in text, or a fixture of a test.
//
//   std::ofstream out("orders.jsonl");
//   eventlite::export_envelopes(store, out, {.stream = "order-7"});
//   std::ifstream in("orders.jsonl");
//   eventlite::import_envelopes(copy, in);  // a second time: nothing is added
//
// Exporting a whole store and importing it into an empty file gives the same events:
// the same seqs, ids, streams, versions, types, times, data and metadata, byte for
// byte in every envelope field.

#include <cstdint>
#include <functional>
#include <iosfwd>

#include "eventlite/read.hpp"
#include "eventlite/store.hpp"

namespace eventlite {

// How far a transfer has got, for a progress display.
// Thread safety: a value.
struct TransferProgress {
  std::uint64_t events = 0;  // exported, or imported lines (blank ones not counted)
  std::uint64_t bytes = 0;   // of envelope text written or read, newlines included
  Seq seq = 0;               // export: the seq of the last event written
};
// Called about every 1,024 events and once at the end; it must not throw.
using ProgressFn = std::function<void(const TransferProgress&)>;

// Writes the envelopes of the events `options` selects to `out`, a line each, in seq
// order, reading lazily (a page of events in memory at a time). Returns how many it
// wrote. Stops early, returning the count so far, when `out` fails (a reader that
// went away). Throws StorageError if a page cannot be read.
std::uint64_t export_envelopes(const Store& store, std::ostream& out,
                               ReadOptions options = {}, const ProgressFn& progress = {});

// What an import did.
// Thread safety: a value.
struct ImportResult {
  std::uint64_t lines = 0;           // envelope lines read (blank ones not counted)
  std::uint64_t appended = 0;        // events stored by this import
  std::uint64_t already_stored = 0;  // lines whose id was stored with the same content
};

// Reads envelope lines from `in` as it goes (never the whole input at once) and
// appends them in one transaction: all of them, or nothing. Every line needs an
// "id" (an import is idempotent by it) and keeps it, with its stream, type, time,
// data and metadata; a line with a "version" must find its stream at version - 1
// (so versions are kept, and an import out of order fails); "seq" is ignored (the
// store gives the next ones: the same seqs when the file starts empty and the lines
// are a whole export). A line whose id is stored with the same content (and
// version) is skipped, so importing a file twice adds nothing. Throws ImportError
// naming the line of the first refused one (not an envelope, no id, a wrong
// version, an id stored with other content), InvalidArgument when `in` fails before
// its end, StorageError if the file cannot be written; in each case nothing is
// stored. The store's write lock is held from the first line to the commit: feed it
// from a file (or spool a slow pipe first, as `eventlite import` does), not from a
// source that may stall, or other writers wait past their busy timeout.
ImportResult import_envelopes(Store& store, std::istream& in,
                              const ProgressFn& progress = {});

}  // namespace eventlite
