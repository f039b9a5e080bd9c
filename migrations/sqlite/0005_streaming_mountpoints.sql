-- Permanent mountpoints of the streaming plugin (`create`/`edit` with `permanent: true`),
-- recreated at start-up. `config` is the create request as JSON without secret or PIN; those are
-- kept as argon2 PHC strings, never in clear.
CREATE TABLE streaming_mountpoints (
    id INTEGER PRIMARY KEY CHECK (id > 0),
    config TEXT NOT NULL CHECK (length(config) <= 65536),
    secret_hash TEXT,
    pin_hash TEXT,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
