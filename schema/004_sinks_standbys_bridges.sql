-- eventlite schema version 4: what `status` shows of sinks, of processes standing by
-- and of bridges, from any process. Released files are never edited: add NNN_name.sql.

-- A sink subscription's broker as the process holding its lease last saw it, written
-- with its checkpoints and whenever it starts or stops failing, behind the same fence.
CREATE TABLE eventlite_sink_health (
  subscription      TEXT    PRIMARY KEY,
  owner             TEXT    NOT NULL,  -- the lease holder that wrote it
  failing_since     TEXT,              -- NULL: its last batch went through
  last_error        TEXT,              -- while failing: the broker's error, URL redacted
  forwarded         INTEGER NOT NULL DEFAULT 0,  -- by this owner, since it started
  failed            INTEGER NOT NULL DEFAULT 0,  -- failed attempts, likewise
  round_trip_p50_us INTEGER NOT NULL DEFAULT 0,  -- one publish call (a whole batch)
  round_trip_p99_us INTEGER NOT NULL DEFAULT 0,
  updated           TEXT    NOT NULL
) WITHOUT ROWID;

-- Processes waiting for a lease another process holds. Each renews its row every
-- third of its lease time and deletes it when it takes the lease or stops; a row past
-- `expires` is a process that went away.
CREATE TABLE eventlite_standbys (
  name    TEXT NOT NULL,  -- the lease: a subscription's name
  owner   TEXT NOT NULL,
  since   TEXT NOT NULL,
  expires TEXT NOT NULL,
  PRIMARY KEY (name, owner)
) WITHOUT ROWID;

-- Where each bridge stands in the stream it reads (a Redis Stream, a JetStream
-- stream): the broker's id of the last entry it stored, written in the transaction
-- that stored it, so a bridge whose broker-side position was lost resumes from here.
CREATE TABLE eventlite_bridges (
  name       TEXT    PRIMARY KEY,  -- the bridge (its lease is "bridge:<name>")
  broker     TEXT    NOT NULL,     -- "redis", "nats"
  source     TEXT    NOT NULL,     -- the stream's key or name
  last_entry TEXT    NOT NULL,     -- a Redis entry id, a JetStream stream seq
  stored     INTEGER NOT NULL DEFAULT 0,  -- entries taken in (events and rejections)
  rejected   INTEGER NOT NULL DEFAULT 0,  -- of which BridgeEntryRejected
  updated    TEXT    NOT NULL
) WITHOUT ROWID;
