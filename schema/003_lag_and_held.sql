-- eventlite schema version 3: lag in time and held streams, for people at the shell.
-- Released files are never edited: add NNN_name.sql.

-- Streams held behind a dead letter (OnDead::hold): later events of the stream wait
-- in eventlite_deliveries until the letter is retried or discarded.
CREATE VIEW eventlite_held_streams AS
  SELECT d.subscription, d.stream, d.seq AS dead_seq,
         (SELECT count(*) FROM eventlite_deliveries AS w
          WHERE w.subscription = d.subscription AND w.stream = d.stream
            AND w.status = 'waiting' AND w.seq > d.seq) AS waiting
  FROM eventlite_deliveries AS d
  WHERE d.status = 'dead' AND EXISTS (
    SELECT 1 FROM eventlite_deliveries AS w
    WHERE w.subscription = d.subscription AND w.stream = d.stream
      AND w.status = 'waiting' AND w.seq > d.seq);

-- eventlite_pending as in version 2, plus held streams and lag in time: the age in
-- seconds of the oldest event not yet delivered (the first past the position, or the
-- oldest owed one), NULL when nothing is owed.
DROP VIEW eventlite_pending;
CREATE VIEW eventlite_pending AS
  SELECT s.name AS subscription,
         s.position,
         (SELECT coalesce(max(seq), 0) FROM eventlite_events) - s.position AS lag,
         (SELECT count(*) FROM eventlite_deliveries AS d
          WHERE d.subscription = s.name AND d.status != 'dead') AS retrying,
         (SELECT count(*) FROM eventlite_deliveries AS d
          WHERE d.subscription = s.name AND d.status = 'dead') AS dead,
         (SELECT count(*) FROM eventlite_held_streams AS h
          WHERE h.subscription = s.name) AS held,
         round((julianday('now') - julianday(coalesce(min(o.next_time, o.owed_time),
                                                      o.next_time, o.owed_time)))
               * 86400.0, 3) AS lag_seconds
  FROM eventlite_subscriptions AS s
  JOIN (SELECT s2.name,
               (SELECT e.time FROM eventlite_events AS e WHERE e.seq = s2.position + 1)
                 AS next_time,
               (SELECT min(e.time) FROM eventlite_deliveries AS d
                JOIN eventlite_events AS e ON e.seq = d.seq
                WHERE d.subscription = s2.name AND d.status != 'dead') AS owed_time
        FROM eventlite_subscriptions AS s2) AS o ON o.name = s.name;
