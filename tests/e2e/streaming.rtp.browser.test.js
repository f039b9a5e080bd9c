// RTP mountpoint options as Janus has them, each with a real source and Chromium (janus.js)
// watching: `iface` (ports bound on 127.0.0.2 only, fed there by ffmpeg), `mcast` (a 239.x
// group joined on `lo` inside the test's network namespace, fed by ffmpeg), `rtcpport` (the
// source's sender reports are received and a viewer's keyframe request reaches the source as
// an RTCP PLI) and a `data` port (a UDP datagram arrives in the browser's data channel).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { spawnSync } from 'node:child_process';
import { freePorts } from './lib/gateway.js';
import {
  startStreamingGateway, startViewerSite, launchChromium, openViewer, waitInPage, waitLive,
  adminStreaming, spawnProcess,
} from './lib/streaming.js';

/** ffmpeg sending VP8 (and Opus when `audio` is a URL) as RTP to the given URLs. */
function ffmpegRtp(video, audio) {
  const args = ['-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30'];
  if (audio) args.push('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000');
  args.push('-map', '0:v', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '300k', '-g', '30',
    '-payload_type', '100', '-f', 'rtp', video);
  if (audio) args.push('-map', '1:a', '-c:a', 'libopus', '-b:a', '32k', '-payload_type', '111', '-f', 'rtp', audio);
  return spawnProcess('ffmpeg', args);
}

const decoding = (page, what) => waitInPage(page, () => window.inboundStats(),
  (s) => s.video?.framesDecoded > 30, what, 20000);

describe('RTP mountpoint options in Chromium', () => {
  let gw;
  let site;
  let browser;
  const procs = [];
  const sockets = [];

  before(async () => {
    gw = await startStreamingGateway('streaming-rtp');
    site = await startViewerSite();
    browser = await launchChromium();
  });
  after(async () => {
    for (const p of procs) await p.stop();
    for (const s of sockets) s.close();
    await browser?.close();
    await site?.close();
    await gw?.stop();
  });

  it('iface: ports bound on 127.0.0.2 receive ffmpeg there; an unknown interface is 456', async () => {
    const [vport, aport] = await freePorts(2);
    const created = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 9001,
      media: [
        { type: 'video', mid: 'v', port: vport, pt: 100, codec: 'vp8', iface: '127.0.0.2' },
        { type: 'audio', mid: 'a', port: aport, pt: 111, codec: 'opus', iface: '127.0.0.2' },
      ],
    });
    assert.equal(created.streaming, 'created', JSON.stringify(created));
    const bad = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 9002,
      media: [{ type: 'video', port: 0, codec: 'vp8', iface: 'no-such-if0' }],
    });
    assert.equal(bad.error_code, 456, JSON.stringify(bad));
    procs.push(ffmpegRtp(`rtp://127.0.0.2:${vport}?pkt_size=1200`, `rtp://127.0.0.2:${aport}`));
    await waitLive(gw, 9001);
    const page = await openViewer(browser, site, gw.wsUrl, 9001);
    const stats = await decoding(page, 'frames over 127.0.0.2');
    console.log(`# iface 127.0.0.2: ${JSON.stringify(stats.video)}`);
    await page.evaluate(() => window.hangup());
    await page.close();
  });

  it('mcast: a 239.x group joined on lo, fed by ffmpeg, plays', async (t) => {
    if (process.env.E2E_NETNS !== '1') {
      t.skip('needs the e2e network namespace (tests/e2e/run) to route 239.0.0.0/8 on lo');
      return;
    }
    // Inside the namespace only: lo takes multicast and 239.0.0.0/8 goes out through it.
    spawnSync('ip', ['link', 'set', 'lo', 'multicast', 'on']);
    spawnSync('ip', ['route', 'replace', '239.0.0.0/8', 'dev', 'lo']);
    const [vport] = await freePorts(1);
    const created = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 9003,
      media: [{ type: 'video', mid: 'v', port: vport, pt: 100, codec: 'vp8', mcast: '239.255.10.1', iface: 'lo' }],
    });
    assert.equal(created.streaming, 'created', JSON.stringify(created));
    const bad = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 9004,
      media: [{ type: 'video', port: vport + 1, codec: 'vp8', mcast: '10.0.0.1' }],
    });
    assert.equal(bad.error_code, 456, 'a unicast address is no multicast group');
    procs.push(ffmpegRtp(`rtp://239.255.10.1:${vport}?pkt_size=1200&ttl=1`));
    await waitLive(gw, 9003);
    const page = await openViewer(browser, site, gw.wsUrl, 9003, { offer_audio: false });
    const stats = await decoding(page, 'frames from the multicast group');
    console.log(`# mcast 239.255.10.1: ${JSON.stringify(stats.video)}`);
    await page.evaluate(() => window.hangup());
    await page.close();
  });

  it('rtcpport: sender reports are received and viewer keyframe requests reach the source as PLI', async () => {
    const [vport, rtcpport] = await freePorts(2);
    const created = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 9005,
      media: [{ type: 'video', mid: 'v', port: vport, rtcpport, pt: 100, codec: 'vp8' }],
    });
    assert.equal(created.streaming, 'created', JSON.stringify(created));
    assert.equal(created.stream.ports[0].rtcp_port, rtcpport);
    // The source: VP8 inter frames only (no keyframe ever), so the viewer asks for one; its
    // RTCP socket sends sender reports and listens for feedback.
    const ssrc = 0x1234abcd;
    const rtp = dgram.createSocket('udp4');
    const rtcp = dgram.createSocket('udp4');
    sockets.push(rtp, rtcp);
    await new Promise((r) => rtcp.bind(0, '127.0.0.1', r));
    const plis = [];
    rtcp.on('message', (m) => {
      if (m.length >= 12 && m[1] === 206 && (m[0] & 0x1f) === 1) plis.push(m.readUInt32BE(8));
    });
    let seq = 0;
    const timer = setInterval(() => {
      const pkt = Buffer.alloc(12 + 3 + 20);
      pkt[0] = 0x80; pkt[1] = 0x80 | 100;
      pkt.writeUInt16BE(seq & 0xffff, 2);
      pkt.writeUInt32BE((seq * 3000) >>> 0, 4);
      pkt.writeUInt32BE(ssrc, 8);
      pkt[12] = 0x10; pkt[13] = 0x01; // VP8: start of partition, inter frame
      rtp.send(pkt, vport, '127.0.0.1');
      if (seq % 15 === 0) {
        const sr = Buffer.alloc(28);
        sr[0] = 0x80; sr[1] = 200; sr.writeUInt16BE(6, 2); sr.writeUInt32BE(ssrc, 4);
        rtcp.send(sr, rtcpport, '127.0.0.1');
      }
      seq += 1;
    }, 33);
    try {
      await waitLive(gw, 9005);
      const page = await openViewer(browser, site, gw.wsUrl, 9005);
      await waitInPage(page, () => window.e2e, (st) => st.webrtcup, 'webrtcup');
      const deadline = Date.now() + 20000;
      while (plis.length === 0) {
        assert.ok(Date.now() < deadline, 'no PLI reached the source');
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(plis[0], ssrc, 'the PLI names the SSRC of the sender reports');
      const info = (await adminStreaming(gw, { request: 'info', id: 9005 })).info;
      const port = info.ports.find((p) => p.type === 'video');
      assert.equal(port.rtcp_port, rtcpport);
      assert.ok(port.sender_reports > 0 && port.plis_sent > 0, JSON.stringify(port));
      console.log(`# RTCP: ${JSON.stringify(port)}, PLIs at the source ${plis.length}`);
      await page.evaluate(() => window.hangup());
      await page.close();
    } finally {
      clearInterval(timer);
    }
  });

  it('data: a UDP datagram to the data port arrives in the browser data channel', async () => {
    const [aport, dport] = await freePorts(2);
    const created = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 9006,
      media: [
        { type: 'audio', mid: 'a', port: aport, pt: 111, codec: 'opus' },
        { type: 'data', mid: 'd', port: dport },
      ],
    });
    assert.equal(created.streaming, 'created', JSON.stringify(created));
    assert.deepEqual(created.stream.ports.map((p) => p.type), ['audio', 'data']);
    const listed = (await adminStreaming(gw, { request: 'list' })).list.find((m) => m.id === 9006);
    assert.deepEqual(listed.media.map((m) => [m.mid, m.type]), [['a', 'audio'], ['d', 'data']]);
    const page = await openViewer(browser, site, gw.wsUrl, 9006);
    await waitInPage(page, () => window.e2e, (st) => st.webrtcup, 'webrtcup');
    const udp = dgram.createSocket('udp4');
    sockets.push(udp);
    const text = `hello viewers ${Date.now()}`;
    const st = await waitInPage(page, () => window.e2e, (s) => {
      udp.send(Buffer.from(text), dport, '127.0.0.1');
      return s.data.includes(text);
    }, 'text in the data channel', 20000);
    assert.ok(st.data.every((d) => d === text), JSON.stringify(st.data));
    console.log(`# data: ${st.data.length} message(s) received`);
    await page.evaluate(() => window.hangup());
    await page.close();
  });
});
