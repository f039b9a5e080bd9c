-- Who was called, beside `caller`, for recordings of calls (SIP plugin `recording`): the
-- dialled URI of an outgoing call, the `To` of an incoming one. NULL for other kinds.
ALTER TABLE recordings ADD COLUMN callee TEXT;
