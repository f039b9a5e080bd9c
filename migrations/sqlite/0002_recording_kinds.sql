-- Recording kinds 'call' (SIP call recordings) and 'echotest' (the echo test's recording of the
-- user's own media), written by the recording service.
--
-- SQLite cannot alter a CHECK constraint: the table is rebuilt with the same columns, rows and
-- ids, and the AUTOINCREMENT counter is carried over so ids of deleted recordings are not
-- handed out again.

CREATE TABLE recordings_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT    NOT NULL CHECK (kind IN ('voicemail', 'room', 'stream', 'call', 'echotest')),
    owner          TEXT    NOT NULL CHECK (length(owner) BETWEEN 1 AND 64),
    caller         TEXT,
    file_path      TEXT    NOT NULL UNIQUE,
    codec          TEXT    NOT NULL,
    duration_ms    INTEGER NOT NULL CHECK (duration_ms >= 0),
    size_bytes     INTEGER NOT NULL CHECK (size_bytes >= 0),
    created_at_ms  INTEGER NOT NULL,
    heard          INTEGER NOT NULL DEFAULT 0 CHECK (heard IN (0, 1))
);

INSERT INTO recordings_new (id, kind, owner, caller, file_path, codec, duration_ms, size_bytes,
                            created_at_ms, heard)
    SELECT id, kind, owner, caller, file_path, codec, duration_ms, size_bytes, created_at_ms, heard
    FROM recordings;

DELETE FROM sqlite_sequence WHERE name = 'recordings_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'recordings_new', seq FROM sqlite_sequence WHERE name = 'recordings';

DROP TABLE recordings;
ALTER TABLE recordings_new RENAME TO recordings;
CREATE INDEX recordings_owner ON recordings (owner, id);
