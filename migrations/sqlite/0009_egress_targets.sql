-- Named RTMP egress targets, managed on their own in the admin panel: where a mountpoint is
-- re-published to. The destination's stream key is stored as given (the RTMP client must send
-- it), like trunk passwords, and never returned by the API after creation.
CREATE TABLE egress_targets (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    url            TEXT    NOT NULL CHECK (url LIKE 'rtmp://%' OR url LIKE 'rtmps://%'),
    target_key     TEXT,
    mountpoint     TEXT    NOT NULL CHECK (length(mountpoint) BETWEEN 1 AND 64),
    enabled        INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at_ms  INTEGER NOT NULL
);
