-- eventlite schema version 6: the store's identity. Released files are never edited:
-- add NNN_name.sql.

-- One row: who this file is. `id` is made once, here, when the file is created or
-- first migrated to this version (a random UUID, version 4), and never changes: a copy
-- of the file is the same store. Everything a sink sends carries it, so a sink can tell
-- its own entries at a destination from another store's. `name` is what people call
-- it (`eventlite init DB --name billing`); NULL until one is given.
CREATE TABLE eventlite_store (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  id        TEXT    NOT NULL CHECK (length(id) = 36),
  name      TEXT    CHECK (name IS NULL OR length(name) BETWEEN 1 AND 64),
  created   TEXT    NOT NULL
);

INSERT INTO eventlite_store (singleton, id, name, created)
SELECT 1,
       lower(substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-' ||
             substr('89ab', 1 + (abs(random()) % 4), 1) || substr(h, 18, 3) || '-' ||
             substr(h, 21, 12)),
       NULL,
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
FROM (SELECT hex(randomblob(16)) AS h);
