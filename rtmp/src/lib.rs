//! RTMP for Bifrons: an ingest server (stream-key check through a callback), an egress client,
//! FLV tag ⇄ H.264/AAC conversion and H.264 RTP packetization (RFC 6184).
