-- The web secret of a SIP account: what a browser gives in the SIP plugin's
-- `register` with `type: account`, so the account's SIP digest password never leaves the
-- server. Only an argon2 hash is stored; NULL = the account cannot be used from a browser.
ALTER TABLE sip_accounts ADD COLUMN web_secret_hash TEXT;
