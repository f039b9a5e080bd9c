// RTMP in, WebRTC out: ffmpeg publishes H.264 + AAC as OBS would (testsrc2 + sine, keyframe
// every 2 s) with a stream key made by `bifrons key add`; Chromium watches the mountpoint with
// janus.js. Frames are decoded at the published size, audio arrives and is not silent; a wrong
// key is refused; B-frames, audio-only and video-only publishes play; a publisher that drops
// and comes back keeps the same PeerConnection decoding.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import StreamingPlugin from 'janode/plugins/streaming';
import { connect } from './lib/janode.js';
import { addUser } from './lib/panel.js';
import {
  startStreamingGateway, addKey, publish, startViewerSite, launchChromium, openViewer, waitInPage,
  waitLive, adminStreaming, spawnProcess, keyCli, stopAll,
} from './lib/streaming.js';

describe('streaming: RTMP publish watched in Chromium', () => {
  let gw;
  let site;
  let browser;
  const publishers = [];

  before(async () => {
    gw = await startStreamingGateway('streaming-browser');
    site = await startViewerSite();
    browser = await launchChromium();
  });
  after(async () => {
    await stopAll(publishers);
    await browser?.close();
    await site?.close();
    await gw?.stop();
  });
  afterEach(() => stopAll(publishers));

  /** Publishes with a fresh key and watches it; returns the page, the key and the publisher. */
  async function publishAndWatch(name, opts = {}) {
    const key = addKey(gw, name);
    assert.match(key.url, /^rtmp:\/\/127\.0\.0\.1:\d+\/live\/[0-9a-f]{64}$/);
    const pub = publish(key.url, opts);
    publishers.push(pub);
    await waitLive(gw, key.mountpoint);
    const page = await openViewer(browser, site, gw.wsUrl, key.mountpoint);
    return { page, key, pub };
  }

  async function expectPlaying(page, { video = true, audio = true, width = 640, height = 360 } = {}) {
    await waitInPage(page, () => window.e2e, (st) => st.webrtcup || st.errors.length > 0, 'webrtcup');
    const st = await page.evaluate(() => window.e2e);
    assert.deepEqual(st.errors, []);
    assert.equal(st.webrtcup, true);
    assert.ok(st.statuses.includes('preparing') && st.statuses.includes('starting'), JSON.stringify(st.statuses));
    const stats = await waitInPage(
      page,
      () => window.inboundStats(),
      (s) => (!video || s.video?.framesDecoded > 30) && (!audio || (s.audio?.packetsReceived > 50 && s.audio?.totalAudioEnergy > 0)),
      `${video ? 'framesDecoded > 30 ' : ''}${audio ? 'audio packets > 50, not silent' : ''}`,
      20000,
    );
    if (video) {
      assert.equal(stats.video.frameWidth, width);
      assert.equal(stats.video.frameHeight, height);
    }
    if (audio) assert.ok(stats.audio.totalAudioEnergy > 0, JSON.stringify(stats.audio));
    await waitInPage(page, () => window.e2e.statuses, (s) => s.includes('started'), 'started event', 5000);
    const final = await page.evaluate(() => window.e2e);
    return { stats, firstFrameMs: final.firstFrameMs, webrtcupMs: final.webrtcupMs };
  }

  it('H.264 + AAC plays: frames at the published size, audio not silent', async () => {
    const { page } = await publishAndWatch('obs-like');
    const { stats, firstFrameMs, webrtcupMs } = await expectPlaying(page);
    console.log(`# webrtcup ${webrtcupMs} ms, first frame ${firstFrameMs} ms after watch; video ${JSON.stringify(stats.video)} audio ${JSON.stringify(stats.audio)} codecs ${JSON.stringify(stats.codecs)}`);
    assert.ok(stats.codecs.some((c) => /H264/.test(c)), JSON.stringify(stats.codecs));
    assert.ok(stats.codecs.some((c) => /opus/.test(c)), JSON.stringify(stats.codecs));
    await page.evaluate(() => window.hangup());
    await page.close();
  });

  it("the admin panel's live view lists the RTMP publisher with its viewer count", async () => {
    await addUser(gw.dbUrl, 'admin', 'admin', 'e2e-admin-password');
    const panel = `${gw.adminHttpUrl.replace(/\/admin$/, '')}/panel/api/v1`;
    const login = await fetch(`${panel}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'e2e-admin-password' }),
    });
    assert.equal(login.status, 200);
    const cookie = login.headers.get('set-cookie').split(';')[0];
    const { page, key } = await publishAndWatch('panel-live');
    await expectPlaying(page, { audio: false });
    let snapshot;
    const deadline = Date.now() + 10000;
    for (;;) {
      snapshot = await (await fetch(`${panel}/live`, { headers: { Cookie: cookie } })).json();
      const p = snapshot.publishers.find((x) => x.mountpoint === String(key.mountpoint));
      if (p?.viewers === 1 && p.kbps > 0) break;
      if (Date.now() > deadline) assert.fail(`publisher not live in the panel: ${JSON.stringify(snapshot)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(snapshot.feeds.publishers, true);
    const p = snapshot.publishers.find((x) => x.mountpoint === String(key.mountpoint));
    assert.equal(p.protocol, 'rtmp');
    assert.equal(p.stream_key, 'panel-live');
    assert.ok(!JSON.stringify(snapshot).includes(key.url.split('/').pop()), 'the key itself is never shown');
    await page.evaluate(() => window.hangup());
    await page.close();
  });

  it('revoking a live key drops its publisher: ffmpeg is disconnected, viewers get stopped', async () => {
    const { page, pub } = await publishAndWatch('revoked-live');
    await expectPlaying(page, { audio: false });
    keyCli(gw, ['revoke', 'revoked-live']);
    // The key is checked every 5 s while live.
    const { code } = await Promise.race([
      pub.exited,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`ffmpeg still publishing: ${pub.stderr()}`)), 15000)),
    ]);
    assert.notEqual(code, 0, 'ffmpeg saw the server close its publish');
    await waitInPage(page, () => window.e2e.statuses, (st) => st.includes('stopped'), 'stopped event', 10000);
    await page.evaluate(() => window.hangup());
    await page.close();
  });

  it('a wrong stream key is refused and ffmpeg exits non-zero', async () => {
    const wrong = publish(`${gw.rtmpBase}/${'0'.repeat(64)}`, { seconds: 5 });
    publishers.push(wrong);
    const { code } = await wrong.exited;
    assert.notEqual(code, 0, wrong.stderr());
    for (const bad of ['../../etc/passwd', `${'ab'.repeat(32)}?x=1`]) {
      const p = publish(`${gw.rtmpBase}/${bad}`, { seconds: 5 });
      publishers.push(p);
      assert.notEqual((await p.exited).code, 0, `${bad}: ${p.stderr()}`);
    }
  });

  for (const [what, opts, expect] of [
    ['B-frames (x264 -bf 2)', { bframes: 2 }, {}],
    ['audio only', { video: false }, { video: false }],
    ['video only', { audio: false }, { audio: false }],
  ]) {
    it(`${what} plays`, async () => {
      const { page } = await publishAndWatch(`pub-${what.replace(/[^a-z0-9]+/gi, '-')}`, opts);
      const { stats } = await expectPlaying(page, expect);
      if (expect.video !== false) {
        // Decoding goes on at the published rate (30 fps; a -bf 2 publish is re-encoded, see
        // streaming.bframes.browser.test.js): at least 45 more frames in 3 s, no keyframe
        // requests storm.
        await new Promise((r) => setTimeout(r, 3000));
        const later = await page.evaluate(() => window.inboundStats());
        assert.ok(later.video.framesDecoded - stats.video.framesDecoded >= 45, `${JSON.stringify(stats.video)} -> ${JSON.stringify(later.video)}`);
        assert.ok(later.video.pliCount <= 3, `keyframe requests: ${later.video.pliCount}`);
      }
      console.log(`# ${what}: video ${JSON.stringify(stats.video)} audio ${JSON.stringify(stats.audio)}`);
      await page.evaluate(() => window.hangup());
      await page.close();
    });
  }

  it('a second publisher on a live key is refused', async () => {
    const key = addKey(gw, 'busy-key');
    const first = publish(key.url);
    publishers.push(first);
    await waitLive(gw, key.mountpoint);
    const second = publish(key.url, { seconds: 5 });
    publishers.push(second);
    assert.notEqual((await second.exited).code, 0, second.stderr());
    const info = await adminStreaming(gw, { request: 'info', id: key.mountpoint });
    assert.equal(info.info.live, true, 'the first publisher goes on');
    await first.stop();
  });

  it('publisher dropped and restarted: stopped, started, frames keep decoding on the same PeerConnection', async () => {
    const { page, key, pub } = await publishAndWatch('drop-resume');
    await expectPlaying(page);
    const before = await page.evaluate(() => window.inboundStats());
    await pub.stop();
    await waitInPage(page, () => window.e2e.statuses, (s) => s.includes('stopped'), 'stopped event', 10000);
    const paused = await page.evaluate(() => window.inboundStats());
    const again = publish(key.url);
    publishers.push(again);
    await waitInPage(page, () => window.e2e.statuses, (s) => s.lastIndexOf('started') > s.indexOf('stopped'), 'started event after stopped', 15000);
    const after = await waitInPage(
      page,
      () => window.inboundStats(),
      (s) => s.video?.framesDecoded > paused.video.framesDecoded + 30 && s.audio?.packetsReceived > paused.audio.packetsReceived + 50,
      'frames decoded and audio received after the publisher came back',
      20000,
    );
    const st = await page.evaluate(() => window.e2e);
    assert.equal(st.offers, 1, 'no new offer');
    assert.equal(after.pcId, before.pcId, 'same PeerConnection');
    assert.equal(after.video.ssrc, before.video.ssrc, 'same SSRC for the browser');
    assert.equal(after.video.frameWidth, 640);
    console.log(`# resume: frames ${before.video.framesDecoded} -> ${paused.video.framesDecoded} (publisher gone) -> ${after.video.framesDecoded}; statuses ${st.statuses.join(',')}`);
    await page.evaluate(() => window.hangup());
    await page.close();
    await again.stop();
  });

  it('30 malformed requests get their exact codes while a viewer keeps watching', async () => {
    const { page, key } = await publishAndWatch('malformed');
    await expectPlaying(page);
    const mp = key.mountpoint;
    const before = await page.evaluate(() => window.inboundStats());
    const conn = await connect(gw.wsUrl);
    const session = await conn.create();
    const handle = await session.attach(StreamingPlugin);
    const media = [{ type: 'audio', mid: 'a', port: 0, pt: 111, codec: 'opus' }];
    const table = [
      [{ request: 'info' }, 453],
      [{ request: 'info', id: '1' }, 454],
      [{ request: 'info', id: -5 }, 454],
      [{ request: 'info', id: 1.5 }, 454],
      [{ request: 'info', id: 987654 }, 455],
      [{ request: 'destroy' }, 453],
      [{ request: 'create', type: 'rtp', id: mp, media }, 456],
      [{ request: 'create', type: 5 }, 454],
      [{ request: 'create', type: 'rtp', media: 'x' }, 454],
      [{ request: 'create', type: 'rtp', media: [{ type: 'audio', port: 0 }] }, 453],
      [{ request: 'create', type: 'rtp', media: [{ type: 'text', port: 0, codec: 'opus' }] }, 456],
      [{ request: 'create', type: 'rtp', media: [{ type: 'audio', port: 70000, codec: 'opus' }] }, 454],
      [{ request: 'create', type: 'rtp', media: [{ type: 'audio', port: 0, codec: 'mp3' }] }, 456],
      [{ request: 'create', type: 'rtp', is_private: 'yes', media }, 454],
      [{ request: 'create', type: 'rtp', secret: 5, media }, 454],
      [{ request: 'create', type: 'rtp', audio: true }, 453],
      [{ request: 'create', type: 'rtp', permanent: true, media }, 470],
      [{ request: 'create', type: 'rtsp', media }, 454],
      [{ request: 'enable', id: 987654 }, 455],
      [{ request: 7 }, 454],
      [{ request: 'bogus' }, 452],
      [{ request: 'watch' }, 453],
      [{ request: 'watch', id: 987654 }, 455],
      [{ request: 'watch', id: mp, pin: 5 }, 454],
      [{ request: 'watch', id: mp, media: [1] }, 454],
      [{ request: 'watch', id: mp, offer_audio: false, offer_video: false }, 452],
      [{ request: 'start' }, 455],
      [{ request: 'pause' }, 455],
      [{ request: 'configure', audio: false }, 455],
      [{ request: 'switch', id: mp }, 455],
    ];
    assert.ok(table.length >= 20);
    const got = [];
    for (const [body, code] of table) {
      let answer;
      try {
        const reply = await handle.message(body);
        answer = reply?.plugindata?.data?.error_code ?? 'ok';
      } catch (err) {
        answer = Number(/^(\d+) /.exec(String(err.message))?.[1] ?? String(err.message));
      }
      got.push([JSON.stringify(body), answer, code]);
    }
    const wrong = got.filter(([, answer, code]) => answer !== code);
    assert.deepEqual(wrong, [], `requests answered with the wrong code: ${JSON.stringify(wrong)}`);
    // The watching handle itself: a second watch is refused, the viewer goes on.
    await page.evaluate((id) => window.request({ request: 'watch', id }), mp);
    await waitInPage(page, () => window.e2e.events, (ev) => ev.some((e) => e.error_code === 460), '460 for a second watch', 5000);
    const after = await waitInPage(
      page,
      () => window.inboundStats(),
      (s) => s.video?.framesDecoded > before.video.framesDecoded + 30,
      'the viewer still decoding',
      10000,
    );
    assert.equal(after.pcId, before.pcId);
    assert.ok((await handle.list()).list.some((m) => m.id === mp), 'the session still works');
    console.log(`# ${table.length} malformed requests; viewer frames ${before.video.framesDecoded} -> ${after.video.framesDecoded}`);
    await handle.detach().catch(() => {});
    await session.destroy().catch(() => {});
    await conn.close().catch(() => {});
    await page.evaluate(() => window.hangup());
    await page.close();
  });

  it('an RTP mountpoint fed by ffmpeg (VP8 + Opus) plays', async () => {
    const created = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 7000, description: 'ffmpeg RTP',
      media: [
        { type: 'audio', mid: 'a', port: 0, pt: 111, codec: 'opus' },
        { type: 'video', mid: 'v', port: 0, pt: 100, codec: 'vp8' },
      ],
    });
    assert.equal(created.streaming, 'created', JSON.stringify(created));
    const port = (t) => created.stream.ports.find((p) => p.type === t).port;
    const ff = spawnProcess('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-map', '0:v', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '800k', '-g', '60',
      '-payload_type', '100', '-f', 'rtp', `rtp://127.0.0.1:${port('video')}?pkt_size=1200`,
      '-map', '1:a', '-c:a', 'libopus', '-b:a', '64k', '-payload_type', '111', '-f', 'rtp', `rtp://127.0.0.1:${port('audio')}`,
    ]);
    publishers.push(ff);
    await waitLive(gw, 7000);
    const page = await openViewer(browser, site, gw.wsUrl, 7000);
    const { stats } = await expectPlaying(page);
    assert.ok(stats.codecs.some((c) => /VP8/.test(c)), JSON.stringify(stats.codecs));
    console.log(`# RTP VP8+Opus: video ${JSON.stringify(stats.video)} audio ${JSON.stringify(stats.audio)}`);
    await page.evaluate(() => window.hangup());
    await page.close();
    await ff.stop();
  });

  it('the demo page lists the mountpoints and plays one', async () => {
    const key = addKey(gw, 'demo-page');
    const pub = publish(key.url);
    publishers.push(pub);
    await waitLive(gw, key.mountpoint);
    const page = await browser.newPage();
    await page.goto(gw.httpUrl.replace(/\/janus$/, '/demos/streaming.html'));
    await waitInPage(page, () => window.demo, (d) => d.list.some((m) => m.id), 'mountpoint list', 10000);
    await page.selectOption('#list', String(key.mountpoint));
    await page.click('#watch');
    // A sample of Chromium's stats can lack the codec entry its inbound stream names (seen once:
    // 30 frames decoded, codec shown as '-'), so the codecs are checked once the page shows them.
    const demo = await waitInPage(page, () => window.demo, (d) => d.stats?.framesDecoded > 30 && d.stats.kbps > 0
      && d.stats.videoCodec && d.stats.audioCodec, 'frames decoded, a bitrate and the codecs on the demo page', 20000);
    assert.match(demo.stats.videoCodec, /H264/);
    assert.match(demo.stats.audioCodec, /opus/);
    assert.ok(demo.stats.kbps > 0);
    assert.equal(demo.stats.width, 640);
    await page.click('#stop');
    await page.close();
    await pub.stop();
  });

  it('pause, start and switch to another mountpoint on the same PeerConnection', async () => {
    const { page, key } = await publishAndWatch('switch-a');
    await expectPlaying(page);
    const other = addKey(gw, 'switch-b');
    const pubB = publish(other.url, { size: '320x240' });
    publishers.push(pubB);
    await waitLive(gw, other.mountpoint);

    await page.evaluate(() => window.request({ request: 'pause' }));
    await waitInPage(page, () => window.e2e.statuses, (s) => s.includes('pausing'), 'pausing', 5000);
    await new Promise((r) => setTimeout(r, 500));
    const paused = await page.evaluate(() => window.inboundStats());
    await new Promise((r) => setTimeout(r, 1500));
    const stillPaused = await page.evaluate(() => window.inboundStats());
    assert.ok(stillPaused.video.packetsReceived - paused.video.packetsReceived < 10, 'no media while paused');
    await page.evaluate(() => window.request({ request: 'start' }));
    await waitInPage(page, () => window.inboundStats(), (s) => s.video.framesDecoded > stillPaused.video.framesDecoded + 15, 'decoding after start', 10000);

    await page.evaluate((id) => window.request({ request: 'switch', id }), other.mountpoint);
    await waitInPage(page, () => window.e2e.events, (ev) => ev.some((e) => e.result?.switched === 'ok' && e.result.id === other.mountpoint), 'switched event', 5000);
    const switched = await waitInPage(
      page,
      () => window.inboundStats(),
      (s) => s.video?.frameWidth === 320 && s.video.frameHeight === 240,
      'frames of the other mountpoint (320x240)',
      10000,
    );
    const later = await waitInPage(page, () => window.inboundStats(), (s) => s.video.framesDecoded > switched.video.framesDecoded + 30, 'decoding after the switch', 10000);
    const st = await page.evaluate(() => window.e2e);
    assert.equal(st.offers, 1, 'no renegotiation');
    assert.equal(later.pcId, switched.pcId);
    const infoA = (await adminStreaming(gw, { request: 'info', id: key.mountpoint })).info;
    const infoB = (await adminStreaming(gw, { request: 'info', id: other.mountpoint })).info;
    assert.equal(infoA.viewers, 0);
    assert.equal(infoB.viewers, 1);
    await page.evaluate(() => window.hangup());
    await page.close();
    await pubB.stop();
  });

  it('kick_all and destroy hang the viewers up', async () => {
    const { page, key } = await publishAndWatch('kick-destroy');
    await expectPlaying(page);
    const kicked = await adminStreaming(gw, { request: 'kick_all', id: key.mountpoint });
    assert.equal(kicked.streaming, 'kicked_all');
    await waitInPage(page, () => window.e2e, (st) => st.statuses.includes('kicked_all') && st.hangup, 'kicked_all then hangup', 5000);
    await page.close();
    const second = await openViewer(browser, site, gw.wsUrl, key.mountpoint);
    await expectPlaying(second);
    const destroyed = await adminStreaming(gw, { request: 'destroy', id: key.mountpoint });
    assert.equal(destroyed.destroyed, key.mountpoint);
    await waitInPage(second, () => window.e2e, (st) => st.statuses.includes('stopped') && st.hangup, 'stopped then hangup', 5000);
    await second.close();
  });
});
