-- eventlite schema version 2: what the processor keeps beside the checkpoints.
-- Released files are never edited: add NNN_name.sql.

-- Deliveries that are not done: retrying (attempted, failed, due again at
-- next_attempt), waiting (behind an earlier undone event of the same stream, which
-- is delivered first) and dead (attempts ran out; kept until retried or discarded).
-- A subscription's position may pass an event only when it is done or has a row here,
-- so "position plus this table" is everything a subscription still owes.
CREATE TABLE eventlite_deliveries (
  subscription TEXT    NOT NULL,
  seq          INTEGER NOT NULL,
  stream       TEXT    NOT NULL,
  status       TEXT    NOT NULL CHECK (status IN ('retrying', 'waiting', 'dead')),
  attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt TEXT,
  last_error   TEXT,
  updated      TEXT    NOT NULL,
  PRIMARY KEY (subscription, seq)
) WITHOUT ROWID;

-- The processor asks "is anything of this stream still owed?" for each batch.
CREATE INDEX eventlite_deliveries_stream
  ON eventlite_deliveries (subscription, stream, seq);

-- One row per subscription or periodic task ("every:NAME") that a process
-- dispatches: only the owner of an unexpired lease dispatches it. token grows
-- whenever the lease changes hands; a checkpoint is committed only with the owner's
-- current token, so an owner that lost its lease cannot move it (fencing).
-- For a periodic task, expires is when it is next due.
CREATE TABLE eventlite_leases (
  name    TEXT    PRIMARY KEY CHECK (length(name) > 0),
  owner   TEXT    NOT NULL,
  expires TEXT    NOT NULL,
  token   INTEGER NOT NULL DEFAULT 1
);

-- For people at the sqlite3 shell.
CREATE VIEW eventlite_dead_letters AS
  SELECT d.subscription, d.seq, e.stream, e.type, d.attempts, d.last_error, d.updated
  FROM eventlite_deliveries AS d JOIN eventlite_events AS e ON e.seq = d.seq
  WHERE d.status = 'dead';

CREATE VIEW eventlite_pending AS
  SELECT s.name AS subscription,
         s.position,
         (SELECT coalesce(max(seq), 0) FROM eventlite_events) - s.position AS lag,
         (SELECT count(*) FROM eventlite_deliveries AS d
          WHERE d.subscription = s.name AND d.status != 'dead') AS retrying,
         (SELECT count(*) FROM eventlite_deliveries AS d
          WHERE d.subscription = s.name AND d.status = 'dead') AS dead
  FROM eventlite_subscriptions AS s;
