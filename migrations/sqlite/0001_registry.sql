-- Bifrons registry, SQLite dialect. Keep in step with migrations/postgres/0001_registry.sql:
-- same tables, same columns, same constraints; only the type names differ.
-- Times are Unix milliseconds (INTEGER) so both dialects share one Rust representation.

CREATE TABLE admin_users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    username       TEXT    NOT NULL UNIQUE CHECK (length(username) BETWEEN 1 AND 64),
    password_hash  TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at_ms  INTEGER NOT NULL,
    last_login_ms  INTEGER
);

CREATE TABLE sip_trunks (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    registrar_uri      TEXT    NOT NULL,
    transport          TEXT    NOT NULL CHECK (transport IN ('udp', 'tcp', 'tls')),
    username           TEXT,
    auth_username      TEXT,
    password           TEXT,
    realm              TEXT,
    register           INTEGER NOT NULL CHECK (register IN (0, 1)),
    register_expiry_s  INTEGER NOT NULL CHECK (register_expiry_s > 0),
    outbound_proxy     TEXT,
    codecs             TEXT    NOT NULL,
    dtmf_mode          TEXT    NOT NULL CHECK (dtmf_mode IN ('rfc4733', 'info', 'inband')),
    enabled            INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at_ms      INTEGER NOT NULL
);

CREATE TABLE sip_accounts (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    extension           TEXT    NOT NULL UNIQUE CHECK (length(extension) BETWEEN 1 AND 64),
    display_name        TEXT    NOT NULL CHECK (length(display_name) <= 128),
    sip_uri             TEXT    NOT NULL,
    trunk_id            INTEGER NOT NULL REFERENCES sip_trunks (id) ON DELETE RESTRICT,
    user_id             INTEGER REFERENCES admin_users (id) ON DELETE SET NULL,
    access_token        TEXT    UNIQUE,
    voicemail_enabled   INTEGER NOT NULL CHECK (voicemail_enabled IN (0, 1)),
    voicemail_pin_hash  TEXT,
    created_at_ms       INTEGER NOT NULL
);
CREATE INDEX sip_accounts_trunk ON sip_accounts (trunk_id);

CREATE TABLE stream_keys (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_key     TEXT    NOT NULL UNIQUE CHECK (length(stream_key) >= 32),
    name           TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    owner          TEXT    NOT NULL CHECK (length(owner) BETWEEN 1 AND 64),
    enabled        INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    created_at_ms  INTEGER NOT NULL,
    last_used_ms   INTEGER
);

CREATE TABLE stream_egress_targets (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_key_id  INTEGER NOT NULL REFERENCES stream_keys (id) ON DELETE CASCADE,
    mountpoint     TEXT    NOT NULL CHECK (length(mountpoint) BETWEEN 1 AND 64),
    url            TEXT    NOT NULL,
    target_key     TEXT,
    UNIQUE (stream_key_id, mountpoint, url)
);

CREATE TABLE recordings (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT    NOT NULL CHECK (kind IN ('voicemail', 'room', 'stream')),
    owner          TEXT    NOT NULL CHECK (length(owner) BETWEEN 1 AND 64),
    caller         TEXT,
    file_path      TEXT    NOT NULL UNIQUE,
    codec          TEXT    NOT NULL,
    duration_ms    INTEGER NOT NULL CHECK (duration_ms >= 0),
    size_bytes     INTEGER NOT NULL CHECK (size_bytes >= 0),
    created_at_ms  INTEGER NOT NULL,
    heard          INTEGER NOT NULL DEFAULT 0 CHECK (heard IN (0, 1))
);
CREATE INDEX recordings_owner ON recordings (owner, id);
