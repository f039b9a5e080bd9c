// WHIP ingest (RFC 9725) and the streaming plugin's `publish` extension, with real peers: one
// Chromium publishes its fake camera + microphone from the gateway's /demos/whip.html (a plain
// RTCPeerConnection) with a stream key made by the CLI; a second Chromium watches the mountpoint
// over WHEP (/demos/whep.html) and over janus.js `watch`: frames decoded keep growing and the
// audio is not silent. The same from a janus.js handle's `publish` request. Bad requests get
// their status (401, 404, 400, 409, 415; Janus 453/455/457/460) while the running publish and
// its viewers keep going, and the stream key never appears in the gateway's log.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts } from './lib/gateway.js';
import {
  startStreamingGateway, addKey, launchChromium, waitInPage, waitLive, adminStreaming, startViewerSite, openViewer, keyCli, whipPublish,
  vp8OnlyPage,
} from './lib/streaming.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** A janus.js publisher page: `window.publish(server, message)` resolves with the plugin's event. */
const PUBLISHER = `<!doctype html><html><head><meta charset="utf-8"><title>e2e publisher</title>
<script src="/adapter.js"></script>
<script type="module">
import Janus from '/janus.js';
window.e2e = { events: [], webrtcup: false };
let handle = null;
window.publish = (server, message) => new Promise((resolve, reject) => {
  Janus.init({ debug: false, callback: () => {
    const janus = new Janus({ server, iceServers: [], success: () => {
      janus.attach({ plugin: 'janus.plugin.streaming',
        success: (h) => {
          handle = h;
          h.createOffer({ tracks: [{ type: 'audio', capture: true, recv: false }, { type: 'video', capture: true, recv: false }],
            success: (jsep) => h.send({ message, jsep }),
            error: (e) => reject(new Error('createOffer: ' + e)) });
        },
        error: (e) => reject(new Error('attach: ' + e)),
        webrtcState: (on) => { if (on) window.e2e.webrtcup = true; },
        onmessage: (msg, jsep) => {
          window.e2e.events.push(msg);
          if (jsep) handle.handleRemoteJsep({ jsep });
          resolve(msg);
        },
      });
    }, error: (e) => reject(new Error('session: ' + e)) });
  } });
});
// Sends a message and resolves with the plugin's next event.
window.ask = (message) => new Promise((resolve) => {
  const n = window.e2e.events.length;
  handle.send({ message, error: (e) => resolve({ transportError: String(e) }) });
  const t = setInterval(() => { if (window.e2e.events.length > n) { clearInterval(t); resolve(window.e2e.events[n]); } }, 50);
});
window.outbound = async () => {
  const out = {};
  const report = await handle.webrtcStuff.pc.getStats();
  report.forEach((s) => { if (s.type === 'outbound-rtp') out[s.kind] = { packetsSent: s.packetsSent, framesEncoded: s.framesEncoded, pliCount: s.pliCount }; });
  return out;
};
</script></head><body>e2e publisher</body></html>`;

async function startPublisherSite() {
  const files = {
    '/adapter.js': path.join(here, 'node_modules/webrtc-adapter/out/adapter.js'),
    '/janus.js': path.join(here, 'node_modules/janus-gateway/npm/dist/janus.es.js'),
  };
  const server = http.createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    if (p === '/') res.writeHead(200, { 'Content-Type': 'text/html' }).end(PUBLISHER);
    else if (files[p]) res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(fs.readFileSync(files[p]));
    else res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

/** Plays the WHEP page's audio out loud (Chromium measures energy on playout) and reads its inbound stats. */
async function whepInbound(page) {
  return page.evaluate(async () => {
    const pc = window.pcForTest();
    if (!window.__audio) {
      const tracks = pc.getReceivers().map((r) => r.track).filter((t) => t.kind === 'audio');
      window.__audio = new Audio();
      window.__audio.srcObject = new MediaStream(tracks);
      window.__audio.play().catch(() => {});
    }
    const out = {};
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp') out[s.kind] = { framesDecoded: s.framesDecoded, totalAudioEnergy: s.totalAudioEnergy, packetsReceived: s.packetsReceived };
    });
    return out;
  });
}

/** Waits until a janus.js viewer decodes frames and hears audio. */
async function viewerPlays(page, what, minFrames = 30) {
  return waitInPage(page, () => window.inboundStats(),
    (s) => s.video?.framesDecoded > minFrames && s.audio?.totalAudioEnergy > 0.01, what, 30000);
}

describe('WHIP ingest and janus.js publish', () => {
  /** `[streaming] keyframe_cache_packets` of this file's gateway. */
  const KEYFRAME_CACHE = 600;
  let gw;
  let pubBrowser;
  let viewBrowser;
  let site;
  let pubSite;
  let whip;
  let whipPage;
  let whepPage;
  let live;

  before(async () => {
    const [port] = await freePorts(1);
    gw = await startStreamingGateway('whip', {
      BIFRONS_WHEP_ENABLED: 'true', BIFRONS_WHEP_BIND: '127.0.0.1', BIFRONS_WHEP_PORT: String(port),
      // A small keyframe cache, so that the PLI test below outgrows it in seconds.
      BIFRONS_STREAMING_KEYFRAME_CACHE_PACKETS: String(KEYFRAME_CACHE),
    });
    whip = `http://127.0.0.1:${port}/whip`;
    pubBrowser = await launchChromium();
    viewBrowser = await launchChromium();
    site = await startViewerSite();
    pubSite = await startPublisherSite();
  });
  after(async () => {
    await pubBrowser?.close();
    await viewBrowser?.close();
    await site?.close();
    await pubSite?.close();
    await gw?.stop();
  });

  it('a browser publishes over WHIP; another watches over WHEP and janus.js', async () => {
    const key = addKey(gw, 'whip-cam');
    assert.match(key.output, new RegExp(`WHIP URL:\\s+http://\\S+/whip/${key.mountpoint}`), key.output);
    whipPage = await pubBrowser.newPage();
    await whipPage.goto(gw.httpUrl.replace(/\/janus$/, '/demos/whip.html'));
    await waitInPage(whipPage, () => window.demo.state, (s) => s === 'idle' || s === 'broken', 'page ready', 10000);
    await whipPage.fill('#key', key.key);
    await whipPage.click('#publish');
    const pub = await waitInPage(whipPage, () => window.demo, (d) => d.state === 'publishing' && d.stats?.framesEncoded > 30,
      'publishing over WHIP', 30000);
    assert.equal(pub.status, 201);
    assert.match(pub.location, new RegExp(`^/whip/${key.mountpoint}/[0-9a-f]{16}$`), 'the Location names the mountpoint, not the key');
    assert.match(pub.etag, /^"[0-9a-f]+"$/);
    assert.match(pub.stats.videoCodec, /VP8/);
    assert.match(pub.stats.audioCodec, /opus/);
    const info = await waitLive(gw, key.mountpoint);
    assert.equal(info.source, 'webrtc');
    assert.deepEqual(info.media.map((m) => m.codec), ['opus', 'vp8']);
    live = { key, mountpoint: key.mountpoint };

    // WHEP viewer in the second browser.
    whepPage = await viewBrowser.newPage();
    await whepPage.goto(gw.httpUrl.replace(/\/janus$/, `/demos/whep.html?id=${key.mountpoint}`));
    await waitInPage(whepPage, () => window.demo.state, (s) => s === 'idle', 'WHEP page ready', 10000);
    await whepPage.click('#play');
    await waitInPage(whepPage, () => window.demo.stats, (s) => s?.framesDecoded > 30, 'WHEP frames', 30000);
    let heard = null;
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      heard = await whepInbound(whepPage);
      if (heard.audio?.totalAudioEnergy > 0.01 && heard.video?.framesDecoded > 30) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(heard.audio?.totalAudioEnergy > 0.01, `WHEP audio not silent: ${JSON.stringify(heard)}`);
    assert.match((await whepPage.evaluate(() => window.demo.stats)).videoCodec, /VP8/);

    // janus.js viewer in the same second browser.
    const viewer = await openViewer(viewBrowser, site, gw.httpUrl, key.mountpoint);
    const seen = await viewerPlays(viewer, 'janus.js viewer of the WHIP publish');
    const later = await viewerPlays(viewer, 'frames keep coming', seen.video.framesDecoded + 30);
    console.log(`# WHIP -> WHEP: ${JSON.stringify(heard)}; -> janus.js: video ${later.video.framesDecoded} frames, audio energy ${later.audio.totalAudioEnergy.toFixed(4)}`);
    await viewer.close();
  });

  it('refuses bad WHIP requests with their statuses while the publish goes on', async () => {
    assert.ok(live, 'needs the publish of the first test');
    const sdp = { 'Content-Type': 'application/sdp' };
    const offer = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n'
      + 'a=mid:0\r\na=sendonly\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n'
      + 'a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n'
      + 'a=setup:actpass\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\n';
    const post = (target, headers, body = offer) => fetch(`${whip}/${target}`, { method: 'POST', headers: { ...sdp, ...headers }, body });
    const bearer = (k) => ({ Authorization: `Bearer ${k}` });
    const other = addKey(gw, 'whip-other');

    const none = await post(live.mountpoint, {});
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await post(live.mountpoint, bearer('0'.repeat(64)))).status, 401, 'unknown key');
    assert.equal((await post(live.mountpoint, bearer('not a key'))).status, 401, 'malformed key');
    assert.equal((await post(live.mountpoint, bearer(other.key))).status, 401, 'key of another mountpoint');
    assert.equal((await post(live.key.key, bearer(other.key))).status, 401, 'key in the URL is not the token');
    assert.equal((await post(987654, bearer(other.key))).status, 404, 'unknown mountpoint');
    assert.equal((await post('..%2F..', bearer(other.key))).status, 404);
    assert.equal((await post(other.mountpoint, bearer(other.key), 'v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n')).status, 400, 'SDP without media');
    assert.equal((await post(other.mountpoint, bearer(other.key), 'hello')).status, 400, 'not SDP');
    assert.equal((await post(other.mountpoint, { ...bearer(other.key), 'Content-Type': 'text/plain' })).status, 415);
    const busy = await post(live.mountpoint, bearer(live.key.key));
    assert.equal(busy.status, 409, await busy.text());
    assert.equal((await post(live.key.key, bearer(live.key.key))).status, 409, 'by key: busy too');
    const frag = { 'Content-Type': 'application/trickle-ice-sdpfrag' };
    assert.equal((await fetch(`${whip}/${live.mountpoint}/ffffffffffffffff`, { method: 'PATCH', headers: frag, body: 'a=end-of-candidates\r\n' })).status, 404);
    assert.equal((await fetch(`${whip}/${live.mountpoint}/ffffffffffffffff`, { method: 'DELETE' })).status, 404);
    const session = new URL(await whipPage.evaluate(() => window.demo.location), whip);
    assert.equal((await fetch(session, { method: 'PATCH', headers: frag, body: 'v=0\r\n' })).status, 400);
    assert.equal((await fetch(session, { method: 'PATCH', headers: { ...frag, 'If-Match': '"0000"' }, body: 'a=end-of-candidates\r\n' })).status, 412);
    assert.equal((await fetch(session, { method: 'PATCH', headers: sdp, body: 'a=end-of-candidates\r\n' })).status, 415);

    // The key's mountpoint was not created by the refused publishes, the live one is still live.
    const refusedInfo = await adminStreaming(gw, { request: 'info', id: other.mountpoint });
    assert.equal(refusedInfo.error_code, 455, JSON.stringify(refusedInfo));
    assert.equal((await adminStreaming(gw, { request: 'info', id: live.mountpoint })).info.live, true);
    const before = (await whepPage.evaluate(() => window.demo.stats)).framesDecoded;
    await waitInPage(whepPage, () => window.demo.stats, (s) => s.framesDecoded > before + 30, 'WHEP frames after the refusals', 30000);

    // ICE restart of the publisher (RFC 9725 §4.3.3): 200, a new ETag, media goes on.
    const oldEtag = await whipPage.evaluate(() => window.demo.etag);
    assert.equal(await whipPage.evaluate(() => window.restartIce()), 200);
    assert.notEqual(await whipPage.evaluate(() => window.demo.etag), oldEtag);
    const afterRestart = (await whepPage.evaluate(() => window.demo.stats)).framesDecoded;
    await waitInPage(whepPage, () => window.demo.stats, (s) => s.framesDecoded > afterRestart + 30, 'WHEP frames after the publisher ICE restart', 30000);

    const log = fs.readFileSync(gw.logFile, 'utf8');
    assert.ok(!log.includes(live.key.key) && !log.includes(other.key), 'a stream key was logged');
  });

  it('DELETE ends the publish: viewers are told, the mountpoint takes a new publisher', async () => {
    assert.ok(live, 'needs the publish of the first test');
    const viewer = await openViewer(viewBrowser, site, gw.httpUrl, live.mountpoint);
    await viewerPlays(viewer, 'janus.js viewer before DELETE');
    await whipPage.click('#stop');
    await waitInPage(whipPage, () => window.demo.deleted, (s) => s !== undefined, 'DELETE answered', 10000);
    assert.equal(await whipPage.evaluate(() => window.demo.deleted), 200);
    await waitInPage(viewer, () => window.e2e.statuses, (s) => s.includes('stopped'), 'viewer told stopped', 10000);
    assert.equal((await adminStreaming(gw, { request: 'info', id: live.mountpoint })).info.live, false);
    const location = await whipPage.evaluate(() => window.demo.location);
    assert.equal((await fetch(new URL(location, whip), { method: 'DELETE' })).status, 404, 'a deleted publish is gone');
    // Publishing again (to the key's URL this time) feeds the same viewers.
    await whipPage.fill('#id', '');
    await whipPage.click('#publish');
    await waitInPage(whipPage, () => window.demo, (d) => d.state === 'publishing' && d.location !== location, 'second publish', 30000);
    const frames = (await viewer.evaluate(() => window.inboundStats())).video.framesDecoded;
    await viewerPlays(viewer, 'viewer plays the new publish', frames + 30);
    await whipPage.click('#stop');
    await viewer.close();
  });

  it('revoking the stream key ends a live WHIP or janus.js publish; other mountpoints go on', async () => {
    const doomedKey = addKey(gw, 'whip-revoked');
    const keptKey = addKey(gw, 'whip-kept');
    const jsKey = addKey(gw, 'janusjs-revoked');
    const doomed = await whipPublish(pubBrowser, gw, doomedKey);
    const kept = await whipPublish(pubBrowser, gw, keptKey);
    const jsPub = await pubBrowser.newPage();
    await jsPub.goto(pubSite.url);
    await jsPub.waitForFunction(() => typeof window.publish === 'function');
    const jsOk = await jsPub.evaluate(([s, id, key]) => window.publish(s, { request: 'publish', id, key }), [gw.httpUrl, jsKey.mountpoint, jsKey.key]);
    assert.equal(jsOk.result?.status, 'publishing', JSON.stringify(jsOk));
    const viewer = await openViewer(viewBrowser, site, gw.httpUrl, doomedKey.mountpoint);
    const keptViewer = await openViewer(viewBrowser, site, gw.httpUrl, keptKey.mountpoint);
    await viewerPlays(viewer, 'viewer of the publish whose key is revoked');
    await viewerPlays(keptViewer, 'viewer of the other publish');
    await waitLive(gw, jsKey.mountpoint);
    keyCli(gw, ['revoke', 'whip-revoked']);
    keyCli(gw, ['revoke', 'janusjs-revoked']);
    // The key is checked every 5 s while live.
    await waitInPage(viewer, () => window.e2e.statuses, (s) => s.includes('stopped'), 'viewer told stopped', 20000);
    const told = await waitInPage(jsPub, () => window.e2e.events, (ev) => ev.some((m) => m.result?.status === 'unpublished'),
      'the janus.js publisher told unpublished', 20000);
    assert.equal(told.find((m) => m.result?.status === 'unpublished').result.reason, 'stream key revoked');
    assert.equal((await adminStreaming(gw, { request: 'info', id: jsKey.mountpoint })).info.live, false);
    await jsPub.close();
    assert.equal((await adminStreaming(gw, { request: 'info', id: doomedKey.mountpoint })).info.live, false);
    const location = new URL(await doomed.evaluate(() => window.demo.location), whip);
    const frag = { 'Content-Type': 'application/trickle-ice-sdpfrag' };
    assert.equal((await fetch(location, { method: 'PATCH', headers: frag, body: 'a=end-of-candidates\r\n' })).status, 404, 'the publish is gone');
    assert.equal((await fetch(location, { method: 'DELETE' })).status, 404, 'the publish is gone');
    const offer = await doomed.evaluate(async () => {
      const pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'sendonly' });
      const o = await pc.createOffer();
      pc.close();
      return o.sdp;
    });
    const again = await fetch(`${whip}/${doomedKey.mountpoint}`, {
      method: 'POST', headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${doomedKey.key}` }, body: offer,
    });
    assert.equal(again.status, 401, 'the revoked key publishes no more');
    // The other publish and its viewer go on.
    assert.equal((await adminStreaming(gw, { request: 'info', id: keptKey.mountpoint })).info.live, true);
    const frames = (await keptViewer.evaluate(() => window.inboundStats())).video.framesDecoded;
    const still = await viewerPlays(keptViewer, 'the other publish goes on', frames + 30);
    assert.ok(!(await keptViewer.evaluate(() => window.e2e.statuses)).includes('stopped'));
    console.log(`# revoke: publish ${doomedKey.mountpoint} ended, ${keptKey.mountpoint} still at ${still.video.framesDecoded} frames`);
    await kept.click('#stop');
    for (const p of [viewer, keptViewer, doomed, kept]) await p.close();
  });

  it('a viewer without H.264 gets an H.264 WHIP publish as VP8, transcoded once for the mountpoint', async () => {
    const key = addKey(gw, 'whip-h264');
    const pub = await whipPublish(pubBrowser, gw, key, '?codec=h264');
    assert.match((await pub.evaluate(() => window.demo.stats)).videoCodec, /H264/);
    const info = await waitLive(gw, key.mountpoint);
    assert.deepEqual(info.media.map((m) => m.codec), ['opus', 'h264']);
    // A browser that cannot decode H.264: its offer lists VP8 only.
    const page = await vp8OnlyPage(viewBrowser);
    await page.goto(gw.httpUrl.replace(/\/janus$/, `/demos/whep.html?id=${key.mountpoint}`));
    await waitInPage(page, () => window.demo.state, (s) => s === 'idle', 'WHEP page ready', 10000);
    await page.click('#play');
    const demo = await waitInPage(page, () => window.demo, (d) => d.stats?.framesDecoded > 30, 'VP8 frames decoded', 45000);
    assert.equal(demo.status, 201);
    assert.match(demo.stats.videoCodec, /VP8/);
    console.log(`# WHIP H.264 -> WHEP VP8: ${JSON.stringify(demo.stats)}`);
    await page.click('#stop');
    await page.close();
    await pub.click('#stop');
    await pub.close();
  });

  it('a janus.js handle publishes into a mountpoint with `publish`', async () => {
    const created = await adminStreaming(gw, { request: 'create', type: 'rtmp', id: 7700, secret: 'pubsecret', description: 'janus.js studio' });
    assert.equal(created.streaming, 'created', JSON.stringify(created));
    // The RTMP mountpoint carries H.264: the browser's offer is narrowed to it.
    const page = await pubBrowser.newPage();
    await page.goto(pubSite.url);
    await page.waitForFunction(() => typeof window.publish === 'function');
    const wrong = await page.evaluate((s) => window.publish(s, { request: 'publish', id: 7700, secret: 'nope' }), gw.httpUrl);
    assert.equal(wrong.error_code, 457, JSON.stringify(wrong));
    await page.close();

    const pub = await pubBrowser.newPage();
    await pub.goto(pubSite.url);
    await pub.waitForFunction(() => typeof window.publish === 'function');
    const ok = await pub.evaluate((s) => window.publish(s, { request: 'publish', id: 7700, secret: 'pubsecret' }), gw.httpUrl);
    assert.equal(ok.result?.status, 'publishing', JSON.stringify(ok));
    assert.deepEqual(ok.result.codecs, ['opus', 'h264']);
    await waitInPage(pub, () => window.outbound(), (o) => o.video?.framesEncoded > 30, 'janus.js publisher sends', 30000);
    await waitLive(gw, 7700);

    // Watched over janus.js and WHEP.
    const viewer = await openViewer(viewBrowser, site, gw.httpUrl, 7700);
    const seen = await viewerPlays(viewer, 'janus.js viewer of the janus.js publish');
    const codecs = (await viewer.evaluate(() => window.inboundStats())).codecs.join(' ');
    assert.match(codecs, /H264/);
    const whepView = await viewBrowser.newPage();
    await whepView.goto(gw.httpUrl.replace(/\/janus$/, '/demos/whep.html?id=7700'));
    await waitInPage(whepView, () => window.demo.state, (s) => s === 'idle', 'WHEP page ready', 10000);
    await whepView.click('#play');
    await waitInPage(whepView, () => window.demo.stats, (s) => s?.framesDecoded > 30, 'WHEP frames of the janus.js publish', 30000);

    // A second publisher is refused (460), so is a key of another mountpoint (457) and a
    // publish without an offer (453); the first goes on.
    const second = await pubBrowser.newPage();
    await second.goto(pubSite.url);
    await second.waitForFunction(() => typeof window.publish === 'function');
    const busy = await second.evaluate((s) => window.publish(s, { request: 'publish', id: 7700, secret: 'pubsecret' }), gw.httpUrl);
    assert.equal(busy.error_code, 460, JSON.stringify(busy));
    const noOffer = await second.evaluate(() => window.ask({ request: 'publish', id: 7700, secret: 'pubsecret' }));
    assert.equal(noOffer.error_code, 453, JSON.stringify(noOffer));
    const notPublishing = await second.evaluate(() => window.ask({ request: 'unpublish' }));
    assert.equal(notPublishing.error_code, 460, JSON.stringify(notPublishing));
    await second.close();
    await viewerPlays(viewer, 'janus.js viewer after the refused publishers', seen.video.framesDecoded + 30);
    const pli = (await pub.evaluate(() => window.outbound())).video.pliCount;

    const bye = await pub.evaluate(() => window.ask({ request: 'unpublish' }));
    assert.equal(bye.result?.status, 'unpublished', JSON.stringify(bye));
    await waitInPage(viewer, () => window.e2e.statuses, (s) => s.includes('stopped'), 'viewer told stopped', 10000);
    console.log(`# janus.js publish: viewer ${JSON.stringify(seen.video)}, publisher PLIs received ${pli}`);
    await whepView.close();
    await viewer.close();
    await pub.close();
  });

  it("a viewer's keyframe request reaches the publisher as a PLI", async () => {
    // Browsers send keyframes rarely: once more video packets than the keyframe cache holds
    // have gone by since the last keyframe, a new viewer gets nothing cached, its browser asks
    // for a keyframe, and only the publisher can send one.
    const key = addKey(gw, 'whip-pli');
    const page = await pubBrowser.newPage();
    await page.goto(gw.httpUrl.replace(/\/janus$/, '/demos/whip.html'));
    await waitInPage(page, () => window.demo.state, (s) => s === 'idle', 'page ready', 10000);
    await page.fill('#key', key.key);
    await page.click('#publish');
    await waitInPage(page, () => window.demo, (d) => d.state === 'publishing' && d.stats?.videoPackets > 0, 'publishing', 30000);
    let base = null;
    const past = await waitInPage(page, () => window.demo.stats, (st) => {
      if (!base || st.keyFramesEncoded !== base.keyFramesEncoded) base = { ...st };
      return st.videoPackets - base.videoPackets > KEYFRAME_CACHE + 200;
    }, 'more packets than the keyframe cache holds since the last keyframe', 180000);
    const viewer = await openViewer(viewBrowser, site, gw.httpUrl, key.mountpoint);
    await waitInPage(viewer, () => window.inboundStats(), (s) => s.video?.framesDecoded > 10, 'frames after the PLI', 30000);
    // The page samples its stats once a second: wait for the sample that follows.
    const after = await waitInPage(page, () => window.demo.stats,
      (st) => st.pliCount > past.pliCount && st.keyFramesEncoded > past.keyFramesEncoded,
      'the publisher got a PLI and sent a keyframe', 10000);
    console.log(`# PLI: publisher PLIs ${past.pliCount} -> ${after.pliCount}, keyframes ${past.keyFramesEncoded} -> ${after.keyFramesEncoded}`);
    await viewer.close();
    await page.click('#stop');
    await page.close();
  });
});
