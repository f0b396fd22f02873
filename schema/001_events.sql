-- eventlite schema version 1: the event log and the subscriptions' checkpoints.
-- Every object is named eventlite_* because the application owns this file and keeps
-- its own tables beside ours. Released files are never edited: add NNN_name.sql.

CREATE TABLE eventlite_schema (
  version INTEGER NOT NULL
);

-- The append-only log. seq is the rowid: with no deletes and single-writer commits it
-- is strictly increasing and gap-free, so "every event up to N" is a safe checkpoint.
-- data and metadata are checked with json_valid by eventlite's INSERT, not by a CHECK:
-- connections run with trusted_schema=OFF, and SQLite before 3.45 does not mark its
-- JSON functions innocuous, so a CHECK using them could not be evaluated.
CREATE TABLE eventlite_events (
  seq      INTEGER PRIMARY KEY,
  id       TEXT    NOT NULL UNIQUE,
  stream   TEXT    NOT NULL CHECK (length(stream) > 0),
  version  INTEGER NOT NULL CHECK (version >= 1),
  type     TEXT    NOT NULL CHECK (length(type) > 0),
  data     TEXT    NOT NULL,
  metadata TEXT    NOT NULL DEFAULT '{}',
  time     TEXT    NOT NULL,
  UNIQUE (stream, version)
);

CREATE TRIGGER eventlite_events_no_update BEFORE UPDATE ON eventlite_events
BEGIN
  SELECT RAISE(ABORT, 'eventlite_events is append-only: UPDATE is not allowed');
END;

CREATE TRIGGER eventlite_events_no_delete BEFORE DELETE ON eventlite_events
BEGIN
  SELECT RAISE(ABORT, 'eventlite_events is append-only: DELETE is not allowed');
END;

-- One row per handler or sink: every event with seq <= position is done or parked.
CREATE TABLE eventlite_subscriptions (
  name     TEXT    PRIMARY KEY CHECK (length(name) > 0),
  position INTEGER NOT NULL DEFAULT 0 CHECK (position >= 0),
  created  TEXT    NOT NULL,
  updated  TEXT    NOT NULL
);

-- For people at the sqlite3 shell: each stream's version and last position.
CREATE VIEW eventlite_streams AS
  SELECT stream, max(version) AS version, max(seq) AS last_seq, count(*) AS events
  FROM eventlite_events
  GROUP BY stream;
