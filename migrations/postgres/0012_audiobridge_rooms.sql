-- Permanent rooms of the audio bridge (`create`/`edit` with `permanent: true`), recreated at
-- start-up. `id` is the room id as text (a number in decimal, or the string id); `config` is the
-- create request as JSON without secret or PIN, those kept as argon2 PHC strings, never in
-- clear. `extension`: the registry account whose calls join the room (dial-in), if any.
CREATE TABLE audiobridge_rooms (
    id TEXT PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    config TEXT NOT NULL CHECK (length(config) <= 65536),
    secret_hash TEXT,
    pin_hash TEXT,
    extension TEXT CHECK (extension IS NULL OR length(extension) BETWEEN 1 AND 64),
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
