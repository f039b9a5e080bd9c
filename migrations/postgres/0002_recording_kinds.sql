-- Recording kinds 'call' (SIP call recordings) and 'echotest' (the echo test's recording of the
-- user's own media), written by the recording service.

ALTER TABLE recordings DROP CONSTRAINT recordings_kind_check;
ALTER TABLE recordings ADD CONSTRAINT recordings_kind_check
    CHECK (kind IN ('voicemail', 'room', 'stream', 'call', 'echotest'));
