// One WHIP or WHEP session of a plain RTCPeerConnection (RFC 9725), shared by the demo pages
// /demos/whip.html and /demos/whep.html: the offer in one POST, the browser's candidates in
// PATCHes as they are found (trickle ICE, RFC 8840 fragments with If-Match: the session's
// ETag), an ICE restart (RFC 9725 §4.3.3) and the DELETE that ends the session.
//
// `demo` is the page's state object, read by the end-to-end tests: `status` (of the POST),
// `location`, `etag`, `offerCandidates`, `patches` and `restarts` (HTTP statuses), `deleted`.

const FRAGMENT = 'application/trickle-ice-sdpfrag';

/** The `a=ice-ufrag` and `a=ice-pwd` lines of `sdp`, as an SDP fragment. */
const iceCredentials = (sdp) => ['ice-ufrag', 'ice-pwd']
  .map((k) => (sdp.match(new RegExp(`^a=${k}:.*$`, 'm')) || [''])[0])
  .filter(Boolean).map((l) => l + '\r\n').join('');

export class WishSession {
  /**
   * @param pc the RTCPeerConnection, its transceivers added, no offer made yet
   * @param opts `name` ('WHIP' or 'WHEP', for messages), `trickle` (false: all candidates
   *   go in the offer), `demo` (the state object above), `onError(message)`
   */
  constructor(pc, { name, trickle, demo, onError }) {
    Object.assign(this, { pc, name, trickle, demo, onError });
    this.pending = [];
    this.sessionUrl = null;
    this.etag = null;
    this.credentials = '';
    this.restarting = false;
    if (trickle) pc.onicecandidate = (e) => { this.pending.push(e.candidate); this.flush(); };
  }

  /**
   * POSTs the offer to `url` (with `token` as the bearer token, if any) and applies the
   * answer. Resolves with `null` once the session is up, else with the refusal
   * (`HTTP <status> <body>`).
   */
  async start(url, token) {
    const pc = this.pc;
    this.url = url;
    await pc.setLocalDescription(await pc.createOffer());
    this.credentials = iceCredentials(pc.localDescription.sdp);
    if (!this.trickle) {
      // No trickle: the offer goes out with every candidate.
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === 'complete') resolve(); };
        setTimeout(resolve, 3000);
      });
    }
    const offer = pc.localDescription.sdp;
    this.demo.offerCandidates = (offer.match(/^a=candidate:/gm) || []).length;
    const headers = { 'Content-Type': 'application/sdp' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(url, { method: 'POST', headers, body: offer });
    this.demo.status = res.status;
    if (res.status !== 201) return `HTTP ${res.status} ${await res.text()}`;
    this.demo.location = res.headers.get('Location');
    this.demo.etag = res.headers.get('ETag');
    await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
    if (this.trickle) {
      this.etag = this.demo.etag;
      this.sessionUrl = new URL(this.demo.location, url);
      await this.flush();
    }
    return null;
  }

  /** Sends the waiting candidates as one fragment (a `null` marks the end of gathering). */
  async flush() {
    // During an ICE restart, candidates wait for the new ETag (RFC 9725 §4.3.3).
    if (!this.sessionUrl || this.restarting || this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    let frag = this.credentials;
    for (const c of batch) {
      if (c === null) frag += 'a=end-of-candidates\r\n';
      else if (c.candidate) frag += `a=mid:${c.sdpMid}\r\na=${c.candidate}\r\n`;
    }
    const headers = { 'Content-Type': FRAGMENT };
    if (this.etag) headers['If-Match'] = this.etag;
    const res = await fetch(this.sessionUrl, { method: 'PATCH', headers, body: frag });
    this.demo.patches.push(res.status);
    if (res.status !== 204) this.onError(`${this.name} trickle: HTTP ${res.status} ${await res.text()}`);
  }

  /**
   * ICE restart: new credentials in a PATCH with `If-Match: *`; the session's new
   * credentials and candidates come back in the 200 and go into the remote answer.
   * Resolves with the PATCH's status; throws when the gateway refuses it.
   */
  async restartIce() {
    const pc = this.pc;
    if (!this.sessionUrl) throw new Error('no trickle session');
    this.restarting = true;
    try {
      pc.restartIce();
      await pc.setLocalDescription(await pc.createOffer());
      this.credentials = iceCredentials(pc.localDescription.sdp);
      const res = await fetch(this.sessionUrl, { method: 'PATCH', body: this.credentials,
        headers: { 'Content-Type': FRAGMENT, 'If-Match': '*' } });
      this.demo.restarts.push(res.status);
      if (res.status !== 200) throw new Error(`ICE restart: HTTP ${res.status} ${await res.text()}`);
      this.etag = this.demo.etag = res.headers.get('ETag');
      const theirs = (await res.text()).split(/\r?\n/);
      const creds = theirs.filter((l) => /^a=ice-(ufrag|pwd):/.test(l));
      const cands = theirs.filter((l) => l.startsWith('a=candidate:'));
      const answer = pc.remoteDescription.sdp.split(/\r?\n/).filter((l) => l && !l.startsWith('a=candidate:')
        && l !== 'a=end-of-candidates').flatMap((l) => {
        if (l.startsWith('a=ice-ufrag:')) return [creds.find((c) => c.startsWith('a=ice-ufrag:'))];
        if (l.startsWith('a=ice-pwd:')) return [creds.find((c) => c.startsWith('a=ice-pwd:'))];
        if (l.startsWith('a=mid:')) return [l, ...cands];
        return [l];
      }).join('\r\n') + '\r\n';
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    } finally {
      this.restarting = false;
    }
    await this.flush();
    return this.demo.restarts[this.demo.restarts.length - 1];
  }

  /** Ends the session on the gateway (DELETE of its `Location`) and closes the PeerConnection. */
  async end() {
    if (this.demo.location) {
      const res = await fetch(new URL(this.demo.location, this.url), { method: 'DELETE' });
      this.demo.deleted = res.status;
    }
    this.pc.close();
  }
}
