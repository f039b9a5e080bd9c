//! SIP stack for Bifrons: transport, RFC 3261 transactions, dialogs, digest registration,
//! calls with SDP offer/answer for plain RTP, an RTP/RTCP endpoint and RFC 4733 DTMF.
