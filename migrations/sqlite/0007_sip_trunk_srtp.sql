-- SDES-SRTP a SIP trunk requires towards its PBX (RFC 4568, Janus' names): 'off' (the
-- browser's `srtp` choice only), 'sdes_optional' (offer crypto in RTP/AVP) or
-- 'sdes_mandatory' (RTP/SAVP; calls without SRTP fail). Existing trunks stay 'off'.
ALTER TABLE sip_trunks ADD COLUMN srtp TEXT NOT NULL DEFAULT 'off';
