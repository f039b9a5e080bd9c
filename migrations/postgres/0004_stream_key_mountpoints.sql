-- A stream key feeds one mountpoint of the streaming plugin: the one named here, or (NULL) a
-- mountpoint whose id is the key's own id, created on the first publish.
ALTER TABLE stream_keys ADD COLUMN mountpoint_id BIGINT CHECK (mountpoint_id IS NULL OR mountpoint_id > 0);
