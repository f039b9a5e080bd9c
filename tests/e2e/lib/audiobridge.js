// Helpers of the audio bridge tests: the participant page server, Chromium, polling a page,
// and a UDP receiver that decodes G.711 RTP (the room mix forwarded with rtp_forward) so the
// tones in it can be measured.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const FILES = {
  '/': ['pages/audiobridge.html', 'text/html'],
  '/adapter.js': ['node_modules/webrtc-adapter/out/adapter.js', 'text/javascript'],
  '/janus.js': ['node_modules/janus-gateway/npm/dist/janus.es.js', 'text/javascript'],
};

/** Serves the participant page and its two scripts on a free loopback port. */
export async function startPageServer() {
  const server = http.createServer((req, res) => {
    const entry = FILES[new URL(req.url, 'http://x').pathname];
    if (!entry) {
      res.writeHead(req.url === '/favicon.ico' ? 204 : 404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': entry[1], 'Cache-Control': 'no-store' });
    res.end(fs.readFileSync(path.join(root, entry[0])));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

export { launchChromium } from './browser.js';

/** Polls `fn(arg)` in the page until `check` accepts its value; the deadline is a hang guard. */
export async function waitInPage(page, fn, check, what, arg = undefined, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg);
    if (check(last)) return last;
    if (Date.now() > deadline) {
      const st = await page.evaluate(() => window.e2e);
      throw new Error(`${what} not reached within ${timeoutMs} ms; last ${JSON.stringify(last)}; page state ${JSON.stringify(st)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Opens a page that joins `room` as `display` sending a `freq` Hz tone (in `codec` if given);
 * `opts.join`: more fields of the `join` request, `opts.stereo`: ask for stereo Opus.
 */
export async function joinPage(browser, siteUrl, server, room, display, freq, codec = undefined, opts = {}) {
  const page = await browser.newPage();
  const log = [];
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  await page.goto(siteUrl);
  await page.waitForFunction(() => typeof window.joinRoom === 'function');
  const ids = await page.evaluate(([s, r, d, f, c, o]) => window.joinRoom(s, r, d, f, c, o), [server, room, display, freq, codec, opts]);
  return { page, ids, log, freq, display };
}

// G.711 μ-law decoding (ITU-T G.711), for the forwarded mix.
function ulaw(code) {
  const u = ~code & 0xff;
  const t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
  return (u & 0x80) ? 0x84 - t : t - 0x84;
}

/**
 * Listens for RTP on a free UDP port of 127.0.0.1: counts packets, checks the header, and keeps
 * the decoded PCMU samples (8 kHz) of the last `keep` packets.
 */
export async function startRtpReceiver({ keep = 150 } = {}) {
  const socket = dgram.createSocket('udp4');
  const st = { packets: 0, badHeaders: 0, seqGaps: 0, tsSteps: new Map(), pts: new Set(), ssrcs: new Set(), pcm: [], lastSeq: null, lastTs: null };
  socket.on('message', (msg) => {
    if (msg.length < 12 || (msg[0] >> 6) !== 2) {
      st.badHeaders++;
      return;
    }
    st.packets++;
    const pt = msg[1] & 0x7f;
    const seq = msg.readUInt16BE(2);
    const ts = msg.readUInt32BE(4);
    st.pts.add(pt);
    st.ssrcs.add(msg.readUInt32BE(8));
    if (st.lastSeq !== null && ((st.lastSeq + 1) & 0xffff) !== seq) st.seqGaps++;
    if (st.lastTs !== null) {
      const step = (ts - st.lastTs) >>> 0;
      st.tsSteps.set(step, (st.tsSteps.get(step) || 0) + 1);
    }
    st.lastSeq = seq;
    st.lastTs = ts;
    const samples = [];
    for (let i = 12; i < msg.length; i++) samples.push(ulaw(msg[i]));
    st.pcm.push(samples);
    if (st.pcm.length > keep) st.pcm.shift();
  });
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { port: socket.address().port, state: st, close: () => new Promise((r) => socket.close(r)) };
}

/** Energy share of `freq` in `pcm` (Goertzel), 0..1. */
export function toneShare(pcm, freq, rate) {
  const w = (2 * Math.PI * freq) / rate;
  const coeff = 2 * Math.cos(w);
  let s1 = 0;
  let s2 = 0;
  let total = 0;
  for (const x of pcm) {
    const s0 = x + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
    total += x * x;
  }
  if (total === 0) return 0;
  const power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
  return (2 * power) / pcm.length / total;
}

// G.711 μ-law encoding (ITU-T G.711), for tones sent as a plain-RTP participant.
function ulawEncode(x) {
  const sign = x < 0 ? 0x80 : 0;
  const m = Math.min(Math.abs(x), 32635) + 0x84;
  let e = 7;
  for (let mask = 0x4000; (m & mask) === 0 && e > 0; mask >>= 1) e--;
  return ~(sign | (e << 4) | ((m >> (e + 3)) & 0x0f)) & 0xff;
}

/** Sends `seconds` of a `freq` Hz tone as PCMU RTP (20 ms packets, real time) to 127.0.0.1:`port`. */
export async function sendPcmuTone(port, freq, seconds) {
  const socket = dgram.createSocket('udp4');
  const packets = Math.round(seconds * 50);
  const start = Date.now();
  for (let k = 0; k < packets; k++) {
    const pkt = Buffer.alloc(12 + 160);
    pkt[0] = 0x80;
    pkt.writeUInt16BE(k & 0xffff, 2);
    pkt.writeUInt32BE((k * 160) >>> 0, 4);
    pkt.writeUInt32BE(0x5eed, 8);
    for (let i = 0; i < 160; i++) pkt[12 + i] = ulawEncode(Math.round(8000 * Math.sin((2 * Math.PI * freq * (k * 160 + i)) / 8000)));
    socket.send(pkt, port, '127.0.0.1');
    const wait = start + (k + 1) * 20 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  socket.close();
}

/** An audiobridge request through the Admin API's `message_plugin` of gateway `gw`. */
export async function adminBridge(gw, request) {
  const res = await fetch(gw.adminHttpUrl, {
    method: 'POST',
    body: JSON.stringify({
      janus: 'message_plugin', transaction: `t${Date.now()}${Math.random()}`, admin_secret: gw.adminSecret,
      plugin: 'janus.plugin.audiobridge', request,
    }),
  });
  return (await res.json()).response;
}
