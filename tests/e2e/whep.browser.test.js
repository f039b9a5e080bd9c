// WHEP playback: a mountpoint fed by ffmpeg over RTMP, played by the gateway's /demos/whep.html
// (a plain RTCPeerConnection, no janus.js) in Chromium: 201 + answer + Location + ETag, the
// offer sent without candidates and the candidates trickled in PATCHes (204), frames decoded at
// the published size, audio, DELETE ends the session; the non-trickle page (?trickle=0) still
// plays; an ICE restart from the browser (PATCH with new credentials) gets 200, a new ETag and
// the session's new credentials, and playback goes on over them. The HTTP answers to bad
// requests: 404, 415, 400, 401 (with a PIN), and for PATCH 412 (stale If-Match), 422 (restart
// without ice-pwd), 400, 415, 404, 405 on the endpoint.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { freePorts } from './lib/gateway.js';
import {
  startStreamingGateway, addKey, publish, launchChromium, waitInPage, waitLive, adminStreaming,
  vp8OnlyPage, stopAll,
} from './lib/streaming.js';

describe('WHEP playback in Chromium', () => {
  let gw;
  let browser;
  let whep;
  const publishers = [];

  before(async () => {
    const [port] = await freePorts(1);
    gw = await startStreamingGateway('whep', {
      BIFRONS_WHEP_ENABLED: 'true', BIFRONS_WHEP_BIND: '127.0.0.1', BIFRONS_WHEP_PORT: String(port),
    });
    whep = `http://127.0.0.1:${port}/whep`;
    browser = await launchChromium();
  });
  after(async () => {
    await stopAll(publishers);
    await browser?.close();
    await gw?.stop();
  });
  afterEach(() => stopAll(publishers));

  it('plays a mountpoint with a plain RTCPeerConnection and deletes the session', async () => {
    const key = addKey(gw, 'whep-cam');
    const pub = publish(key.url);
    publishers.push(pub);
    await waitLive(gw, key.mountpoint);
    const page = await browser.newPage();
    await page.goto(gw.httpUrl.replace(/\/janus$/, `/demos/whep.html?id=${key.mountpoint}`));
    await waitInPage(page, () => window.demo.state, (s) => s === 'idle' || s === 'broken', 'page ready', 10000);
    await page.click('#play');
    const demo = await waitInPage(
      page,
      () => window.demo,
      (d) => d.stats?.framesDecoded > 30 && d.stats.audioPackets > 50,
      'frames decoded and audio over WHEP',
      20000,
    );
    assert.equal(demo.status, 201);
    assert.match(demo.location, new RegExp(`^/whep/${key.mountpoint}/[0-9a-f]+$`));
    assert.equal(demo.stats.width, 640);
    assert.equal(demo.stats.height, 360);
    assert.match(demo.stats.videoCodec, /H264/);
    assert.match(demo.stats.audioCodec, /opus/);
    assert.equal(demo.offerCandidates, 0, 'the trickling page posts its offer before gathering');
    assert.ok(demo.patches.length >= 1 && demo.patches.every((s) => s === 204), JSON.stringify(demo.patches));
    const viewers = (await adminStreaming(gw, { request: 'info', id: key.mountpoint })).info;
    assert.equal(viewers.live, true);
    console.log(`# WHEP (trickle, ${demo.patches.length} PATCH): ${JSON.stringify(demo.stats)}`);

    // PATCH answers on the live session (RFC 9725 §4.3), none of which disturbs playback.
    const session = new URL(demo.location, whep);
    const sdpfrag = { 'Content-Type': 'application/trickle-ice-sdpfrag' };
    const cand = 'a=mid:0\r\na=candidate:9 1 udp 2122260223 127.0.0.1 9 typ host\r\n';
    const patch = (headers, body, url = session) => fetch(url, { method: 'PATCH', headers, body }).then((r) => r.status);
    const etag = demo.etag;
    assert.match(etag, /^"[0-9a-f]+"$/);
    assert.equal(await patch({ ...sdpfrag, 'If-Match': etag }, cand), 204);
    assert.equal(await patch({ ...sdpfrag, 'If-Match': '"0000"' }, cand), 412);
    assert.equal(await patch({ ...sdpfrag, 'If-Match': '*' }, `a=ice-ufrag:RESTART1\r\n${cand}`), 422, 'a restart needs ice-pwd too');
    assert.equal(await patch({ ...sdpfrag, 'If-Match': etag }, 'a=candidate:broken\r\n'), 400);
    assert.equal(await patch({ ...sdpfrag }, 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n'), 400);
    assert.equal(await patch({ 'Content-Type': 'application/sdp' }, cand), 415);
    assert.equal(await patch(sdpfrag, cand, new URL('/whep/' + key.mountpoint + '/ffffffffffffffff', whep)), 404);
    assert.equal(await patch(sdpfrag, cand, new URL('/whep/' + key.mountpoint, whep)), 405);
    const framesBefore = (await page.evaluate(() => window.demo.stats)).framesDecoded;
    await waitInPage(page, () => window.demo.stats, (st) => st.framesDecoded > framesBefore + 30, 'frames after the PATCHes', 20000);

    // ICE restart from the browser (RFC 9725 §4.3.3): 200 with the session's new credentials and
    // a new ETag; the browser's selected pair then uses its new ufrag and frames keep coming.
    assert.equal(await page.evaluate(() => window.restartIce()), 200);
    const restarted = await page.evaluate(() => window.demo.etag);
    assert.notEqual(restarted, etag, 'a new ICE session has a new ETag');
    const newUfrag = await page.evaluate(() => /^a=ice-ufrag:(.*)$/m.exec(window.pcForTest().localDescription.sdp)[1]);
    await waitInPage(page, async () => {
      const report = await window.pcForTest().getStats();
      let ufrag = null;
      report.forEach((s) => { if (s.type === 'transport') ufrag = s.iceLocalUsernameFragment; });
      return { ufrag, state: window.pcForTest().iceConnectionState };
    }, (r) => r.ufrag === newUfrag && (r.state === 'connected' || r.state === 'completed'), 'ICE on the new credentials', 20000);
    const framesAfterRestart = (await page.evaluate(() => window.demo.stats)).framesDecoded;
    await waitInPage(page, () => window.demo.stats, (st) => st.framesDecoded > framesAfterRestart + 30, 'frames after the ICE restart', 20000);
    console.log(`# WHEP ICE restart: ETag ${etag} -> ${restarted}, frames ${framesAfterRestart} -> ${(await page.evaluate(() => window.demo.stats)).framesDecoded}`);
    await page.click('#stop');
    await waitInPage(page, () => window.demo.deleted, (s) => s !== undefined, 'DELETE answered', 5000);
    assert.equal(await page.evaluate(() => window.demo.deleted), 200);
    const again = await fetch(new URL(demo.location, whep), { method: 'DELETE' });
    assert.equal(again.status, 404, 'a deleted session is gone');
    await page.close();
  });

  it('answers bad requests with the right statuses', async () => {
    const sdp = { 'Content-Type': 'application/sdp' };
    assert.equal((await fetch(`${whep}/987654`, { method: 'POST', headers: sdp, body: 'v=0\r\n' })).status, 404);
    assert.equal((await fetch(`${whep}/abc`, { method: 'POST', headers: sdp, body: 'v=0\r\n' })).status, 404);
    assert.equal((await fetch(`${whep}/1`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'v=0' })).status, 415);
    const created = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 8100, pin: 's3cret',
      media: [{ type: 'audio', mid: 'a', port: 0, pt: 111, codec: 'opus' }],
    });
    assert.equal(created.streaming, 'created');
    const noToken = await fetch(`${whep}/8100`, { method: 'POST', headers: sdp, body: 'v=0\r\n' });
    assert.equal(noToken.status, 401);
    assert.equal(noToken.headers.get('www-authenticate'), 'Bearer');
    const wrong = await fetch(`${whep}/8100`, { method: 'POST', headers: { ...sdp, Authorization: 'Bearer nope' }, body: 'v=0\r\n' });
    assert.equal(wrong.status, 401);
    const garbage = await fetch(`${whep}/8100`, { method: 'POST', headers: { ...sdp, Authorization: 'Bearer s3cret' }, body: 'v=0\r\nnot an offer' });
    assert.equal(garbage.status, 400, await garbage.text());
    assert.equal((await fetch(`${whep}/8100`, { method: 'POST', headers: sdp, body: 'hello' })).status, 400);
    assert.equal((await fetch(`${whep}/8100/xyz`, {
      method: 'PATCH', headers: { 'Content-Type': 'application/trickle-ice-sdpfrag' }, body: 'a=end-of-candidates',
    })).status, 404);
    const preflight = await fetch(`${whep}/8100`, { method: 'OPTIONS' });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), '*');
  });

  it('a browser without H.264 gets VP8 transcoded once for the mountpoint', async () => {
    const key = addKey(gw, 'whep-vp8');
    const pub = publish(key.url);
    publishers.push(pub);
    await waitLive(gw, key.mountpoint);
    // A browser that cannot decode H.264: its offer lists VP8 only.
    const page = await vp8OnlyPage(browser);
    // Without trickle: every candidate in the offer, no PATCH.
    await page.goto(gw.httpUrl.replace(/\/janus$/, `/demos/whep.html?id=${key.mountpoint}&trickle=0`));
    await waitInPage(page, () => window.demo.state, (s) => s === 'idle' || s === 'broken', 'page ready', 10000);
    await page.click('#play');
    const demo = await waitInPage(
      page,
      () => window.demo,
      (d) => d.stats?.framesDecoded > 30 && d.stats.audioPackets > 50,
      'VP8 frames decoded and audio',
      20000,
    );
    assert.equal(demo.status, 201);
    assert.ok(demo.offerCandidates > 0, 'the non-trickle offer carries the candidates');
    assert.deepEqual(demo.patches, []);
    assert.match(demo.stats.videoCodec, /VP8/);
    assert.equal(demo.stats.width, 640);
    assert.equal(demo.stats.height, 360);
    console.log(`# WHEP VP8: ${JSON.stringify(demo.stats)}`);
    await page.click('#stop');
    await waitInPage(page, () => window.demo.deleted, (s) => s === 200, 'DELETE answered', 5000);
    await page.close();
  });
});
