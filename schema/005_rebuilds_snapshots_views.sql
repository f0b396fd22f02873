-- eventlite schema version 5: projection rebuilds without downtime, aggregate
-- snapshots, and views for people at the shell. Released files are never edited: add
-- NNN_name.sql.

-- A rebuild into shadow tables (rebuild.hpp) in progress: the shadow holds every
-- event of the subscription up to `position`, written in the transaction that moved
-- it, so an interrupted build goes on from there. The row goes when the swap commits.
CREATE TABLE eventlite_rebuilds (
  subscription TEXT    PRIMARY KEY,
  from_seq     INTEGER NOT NULL CHECK (from_seq >= 1),
  position     INTEGER NOT NULL CHECK (position >= 0),
  build        TEXT    NOT NULL,  -- the code's version, from and filters, as JSON
  started      TEXT    NOT NULL,
  updated      TEXT    NOT NULL
) WITHOUT ROWID;

-- Folded state of an aggregate (aggregate.hpp), as of a stream version. `name` is
-- the fold (several folds may read one stream); a snapshot whose schema_version is
-- not the fold's current one is ignored on load and replaced by the next one taken.
CREATE TABLE eventlite_snapshots (
  name           TEXT    NOT NULL,
  stream         TEXT    NOT NULL,
  schema_version INTEGER NOT NULL,
  version        INTEGER NOT NULL CHECK (version >= 1),  -- the stream version folded
  seq            INTEGER NOT NULL,                       -- that event's seq
  state          TEXT    NOT NULL,                       -- JSON
  time           TEXT    NOT NULL,                       -- when it was taken
  PRIMARY KEY (name, stream)
) WITHOUT ROWID;

-- Every lease (subscriptions, periodic tasks "every:", bridges "bridge:", rebuilds
-- "rebuild:"), with whether it is held now and how many seconds it has left
-- (negative: since when it is free; for a periodic task, the seconds to its next run).
CREATE VIEW eventlite_lease_status AS
  SELECT name,
         CASE WHEN name GLOB 'every:*' THEN 'task'
              WHEN name GLOB 'bridge:*' THEN 'bridge'
              WHEN name GLOB 'rebuild:*' THEN 'rebuild'
              ELSE 'subscription' END AS kind,
         owner,
         CASE WHEN expires > strftime('%Y-%m-%dT%H:%M:%fZ', 'now') THEN 'held'
              ELSE 'free' END AS state,
         expires,
         CAST(round((julianday(expires) - julianday('now')) * 86400.0) AS INTEGER)
           AS seconds_left,
         token
  FROM eventlite_leases;

-- eventlite_held_streams as in version 3, plus since when each stream is held (its
-- dead letter was parked) and for how many seconds.
DROP VIEW eventlite_held_streams;
CREATE VIEW eventlite_held_streams AS
  SELECT d.subscription, d.stream, d.seq AS dead_seq,
         (SELECT count(*) FROM eventlite_deliveries AS w
          WHERE w.subscription = d.subscription AND w.stream = d.stream
            AND w.status = 'waiting' AND w.seq > d.seq) AS waiting,
         d.updated AS held_since,
         CAST(round((julianday('now') - julianday(d.updated)) * 86400.0) AS INTEGER)
           AS held_seconds
  FROM eventlite_deliveries AS d
  WHERE d.status = 'dead' AND EXISTS (
    SELECT 1 FROM eventlite_deliveries AS w
    WHERE w.subscription = d.subscription AND w.stream = d.stream
      AND w.status = 'waiting' AND w.seq > d.seq);

-- Events per type per UTC day (a scan of the log: for looking, not for dashboards
-- polled every second).
CREATE VIEW eventlite_daily_counts AS
  SELECT substr(time, 1, 10) AS day, type, count(*) AS events,
         min(seq) AS first_seq, max(seq) AS last_seq
  FROM eventlite_events
  GROUP BY day, type;

-- Events that carry a correlation id (metadata "correlation_id"), with their
-- causation id: SELECT * FROM eventlite_correlations WHERE correlation_id = '...'.
CREATE VIEW eventlite_correlations AS
  SELECT metadata ->> 'correlation_id' AS correlation_id,
         metadata ->> 'causation_id' AS causation_id,
         seq, id, stream, version, type, time
  FROM eventlite_events
  WHERE metadata ->> 'correlation_id' IS NOT NULL;
