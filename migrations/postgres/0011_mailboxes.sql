-- Mailbox settings of a SIP account, beside `sip_accounts.voicemail_enabled` (the enabled flag)
-- and `sip_accounts.voicemail_pin_hash` (the argon2 PIN) that 0001 created. No row = defaults:
-- generated greeting tone, no message limit, `[voicemail] max_seconds`, no message waiting.
--   greeting_file  uploaded greeting (Ogg/Opus or WAV), relative to the recordings directory
--   max_messages   messages kept at most; a full mailbox takes no more (NULL: no limit)
--   max_length_s   longest message, seconds (NULL: `[voicemail] max_seconds`)
--   mwi_mode       SIP message waiting (RFC 3842): off, unsolicited NOTIFY, or on SUBSCRIBE
CREATE TABLE mailboxes (
    account_id     BIGINT PRIMARY KEY REFERENCES sip_accounts (id) ON DELETE CASCADE,
    greeting_file  TEXT CHECK (greeting_file IS NULL OR length(greeting_file) BETWEEN 1 AND 512),
    max_messages   BIGINT CHECK (max_messages IS NULL OR max_messages BETWEEN 1 AND 100000),
    max_length_s   BIGINT CHECK (max_length_s IS NULL OR max_length_s BETWEEN 1 AND 3600),
    mwi_mode       TEXT    NOT NULL DEFAULT 'off' CHECK (mwi_mode IN ('off', 'unsolicited', 'subscribe'))
);
