-- One egress record: the per-stream-key list (`stream_egress_targets`, edited with
-- `PUT /panel/api/v1/stream-keys/{id}/egress`) is folded into the named `egress_targets`
-- that the streaming plugin, the Admin API and the panel start and stop. Nothing ever started
-- an egress from the old list, so its rows become ordinary, enabled targets, named
-- `<key name>-egress-<old row id>` (the key name cut to 32 characters); when an operator
-- already uses that name, `stream-key-egress-<old row id>-<key id>` instead.
INSERT INTO egress_targets (name, url, target_key, mountpoint, enabled, created_at_ms)
SELECT
    CASE
        WHEN EXISTS (
            SELECT 1 FROM egress_targets e
            WHERE e.name = substr(k.name, 1, 32) || '-egress-' || s.id
        )
        THEN 'stream-key-egress-' || s.id || '-' || k.id
        ELSE substr(k.name, 1, 32) || '-egress-' || s.id
    END,
    s.url,
    s.target_key,
    s.mountpoint,
    TRUE,
    k.created_at_ms
FROM stream_egress_targets s
JOIN stream_keys k ON k.id = s.stream_key_id
ORDER BY s.id;

DROP TABLE stream_egress_targets;
