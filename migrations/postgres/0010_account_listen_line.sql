-- The listen line: an account bound to a streaming mountpoint (by id) has its line opened by the
-- gateway itself, and an inbound call to it hears the mountpoint's audio. NULL: an ordinary account.
ALTER TABLE sip_accounts ADD COLUMN listen_mountpoint BIGINT CHECK (listen_mountpoint IS NULL OR listen_mountpoint > 0);
