// A hand-written WebRTC offer (one Opus audio m-line, BUNDLE, rtcp-mux, DTLS fingerprint) that parses
// as a browser offer would, so signalling tests can negotiate without a browser. ICE never
// completes with it: no peer listens behind these credentials.

/** Builds an audio-only offer SDP with CRLF line endings. */
export function audioOffer() {
  const fp = Array.from({ length: 32 }, (_, i) => ((i * 37 + 11) & 0xff).toString(16).padStart(2, '0').toUpperCase()).join(':');
  return [
    'v=0',
    'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'a=msid-semantic: WMS',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111',
    'c=IN IP4 0.0.0.0',
    'a=rtcp:9 IN IP4 0.0.0.0',
    'a=ice-ufrag:e2eU',
    'a=ice-pwd:e2ePasswordThatIsLongEnough',
    'a=ice-options:trickle',
    `a=fingerprint:sha-256 ${fp}`,
    'a=setup:actpass',
    'a=mid:0',
    'a=sendrecv',
    'a=rtcp-mux',
    'a=rtpmap:111 opus/48000/2',
    'a=fmtp:111 minptime=10;useinbandfec=1',
    '',
  ].join('\r\n');
}
