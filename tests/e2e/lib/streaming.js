// Helpers of the streaming tests: a gateway with its RTMP server on a free port and a SQLite
// registry these helpers can reach, stream keys made with the real CLI, ffmpeg publishers
// (H.264 + AAC as OBS sends them, or RTP), and a janus.js viewer page in Chromium.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway, freePorts, REPO_ROOT } from './gateway.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const BIN = process.env.BIFRONS_BIN || path.join(REPO_ROOT, 'target', 'debug', 'bifrons');

/**
 * Starts the gateway with `[rtmp]` on, on a free loopback port; `rtmpBase` is rtmp://…/live.
 * `restart()` stops it and starts a new one on the same registry (and RTMP port): what a
 * permanent mountpoint must survive.
 */
export async function startStreamingGateway(name = 'streaming', extraEnv = {}, keep = {}) {
  const [rtmpPort] = keep.rtmpPort ? [keep.rtmpPort] : await freePorts(1);
  const dbDir = keep.dbDir || fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-streaming-db-'));
  const dbUrl = `sqlite://${path.join(dbDir, 'registry.db')}`;
  const recordingsDir = path.join(dbDir, 'recordings');
  const gw = await startGateway({
    name,
    env: {
      BIFRONS_DATABASE_URL: dbUrl,
      BIFRONS_RTMP_ENABLED: 'true',
      BIFRONS_RTMP_BIND: '127.0.0.1',
      BIFRONS_RTMP_PORT: String(rtmpPort),
      BIFRONS_RTMP_PUBLIC_HOST: '127.0.0.1',
      BIFRONS_RECORDINGS_DIR: recordingsDir,
      ...extraEnv,
    },
  });
  const stop = gw.stop;
  return {
    ...gw,
    dbUrl,
    recordingsDir,
    rtmpPort,
    rtmpBase: `rtmp://127.0.0.1:${rtmpPort}/live`,
    stop: async () => {
      await stop();
      fs.rmSync(dbDir, { recursive: true, force: true });
    },
    restart: async () => {
      await stop();
      return startStreamingGateway(name, extraEnv, { dbDir, rtmpPort });
    },
  };
}

/** Runs `bifrons key ...` against the gateway's registry; returns stdout (throws on failure). */
export function keyCli(gw, args) {
  const r = spawnSync(BIN, ['key', ...args], {
    env: {
      ...process.env,
      BIFRONS_DATABASE_URL: gw.dbUrl,
      BIFRONS_RTMP_PORT: String(gw.rtmpPort),
      BIFRONS_RTMP_PUBLIC_HOST: '127.0.0.1',
    },
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`bifrons key ${args.join(' ')}: ${r.status} ${r.stderr}`);
  return r.stdout;
}

/** `bifrons key add NAME [--mountpoint ID]`: the key and the RTMP URL it printed. */
export function addKey(gw, name, mountpoint) {
  const out = keyCli(gw, ['add', name, ...(mountpoint ? ['--mountpoint', String(mountpoint)] : [])]);
  const url = /RTMP URL:\s+(\S+)/.exec(out)?.[1];
  const key = /OBS Stream Key:\s+(\S+)/.exec(out)?.[1];
  const id = Number(/feeding mountpoint (\d+)/.exec(out)?.[1]);
  if (!url || !key || !id) throw new Error(`unexpected key add output: ${out}`);
  return { url, key, mountpoint: id, output: out };
}

/**
 * Starts ffmpeg publishing to `url` like OBS does: testsrc2 640x360@30 in H.264 (keyframe every
 * 2 s) and a 440 Hz sine in AAC, paced in real time. Options: `video`/`audio` false to leave one
 * out, `bframes` for x264 B-frames, `seconds` to stop on its own, `gop` for another keyframe
 * interval (in frames).
 */
export function publish(url, { video = true, audio = true, bframes = 0, seconds = 0, size = '640x360', gop = 60 } = {}) {
  const args = ['-hide_banner', '-loglevel', 'error', '-re'];
  if (video) args.push('-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=30`);
  if (audio) args.push('-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000');
  if (seconds) args.push('-t', String(seconds));
  if (video) {
    args.push('-c:v', 'libx264', '-preset', 'veryfast', '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0',
      '-pix_fmt', 'yuv420p', '-b:v', '1500k', '-bf', String(bframes));
    if (!bframes) args.push('-tune', 'zerolatency');
  }
  if (audio) args.push('-c:a', 'aac', '-b:a', '128k', '-ar', '48000', '-ac', '2');
  args.push('-f', 'flv', url);
  return spawnProcess('ffmpeg', args);
}

/** Starts `cmd` and tracks its exit: `{ child, exited: Promise<{code, signal}>, stderr(), stop() }`. */
export function spawnProcess(cmd, args) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err = (err + d).slice(-4000); });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let done = false;
  exited.then(() => { done = true; });
  return {
    child,
    exited,
    stderr: () => err,
    stop: async () => {
      if (!done) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/**
 * Stops (SIGKILL) and forgets every process in `processes`, newest first. Each test stops its
 * publishers when it ends: an encoding ffmpeg left running takes CPU from every later test.
 */
export async function stopAll(processes) {
  while (processes.length) await processes.pop().stop();
}

/** The janus.js viewer page the tests drive (served with adapter.js and janus.js). */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Bifrons e2e: streaming viewer</title>
<script src="/adapter.js"></script>
<script type="module">
import Janus from '/janus.js';
const state = { webrtcup: false, hangup: null, events: [], statuses: [], errors: [], offers: 0,
  watchAt: 0, firstFrameMs: null, data: [] };
window.e2e = state;
let janus = null;
let handle = null;
function fail(where, e) { state.errors.push(where + ': ' + (typeof e === 'string' ? e : (e && e.message) || JSON.stringify(e))); }
window.watch = (server, id, extra) => new Promise((resolve, reject) => {
  Janus.init({ debug: false, callback: () => {
    janus = new Janus({ server, iceServers: [], success: () => {
      janus.attach({ plugin: 'janus.plugin.streaming', opaqueId: 'e2e-streaming',
        success: (h) => {
          handle = h;
          state.watchAt = performance.now();
          h.send({ message: Object.assign({ request: 'watch', id }, extra || {}),
            success: () => resolve({ sessionId: janus.getSessionId(), handleId: h.getId() }),
            error: (e) => { fail('watch', e); reject(new Error('watch: ' + e)); } });
        },
        error: (e) => { fail('attach', e); reject(new Error('attach: ' + e)); },
        webrtcState: (on, reason) => { if (on) { state.webrtcup = true; state.webrtcupMs = Math.round(performance.now() - state.watchAt); } else state.hangup = reason || 'down'; },
        onmessage: (msg, jsep) => {
          state.events.push(msg);
          if (msg.result && msg.result.status) state.statuses.push(msg.result.status);
          if (msg.error_code) fail('event', msg.error_code + ' ' + msg.error);
          if (jsep && jsep.type === 'offer') {
            state.offers++;
            handle.createAnswer({ jsep, tracks: [{ type: 'data' }],
              success: (answer) => handle.send({ message: { request: 'start' }, jsep: answer }),
              error: (e) => fail('createAnswer', e) });
          }
        },
        ondata: (data) => { state.data.push(typeof data === 'string' ? data : '[binary]'); },
        onremotetrack: (track, mid, on) => {
          if (!on) return;
          // Play what arrives, as a viewer page does: Chromium measures audio energy on playout.
          const el = document.createElement(track.kind);
          el.autoplay = true;
          el.muted = false;
          el.srcObject = new MediaStream([track]);
          document.body.appendChild(el);
          el.play().catch(() => {});
        },
      });
    }, error: (e) => { fail('session', e); reject(new Error('session: ' + e)); } });
  } });
});
window.request = (message) => new Promise((resolve) => {
  handle.send({ message, success: (r) => resolve(r === undefined ? null : r), error: (e) => resolve({ transportError: String(e) }) });
});
window.inboundStats = async () => {
  const out = { audio: null, video: null, codecs: [] };
  const pc = handle && handle.webrtcStuff && handle.webrtcStuff.pc;
  if (!pc) return out;
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type === 'codec') out.codecs.push(s.mimeType + ' ' + (s.sdpFmtpLine || ''));
    if (s.type !== 'inbound-rtp') return;
    out[s.kind] = { packetsReceived: s.packetsReceived, framesDecoded: s.framesDecoded, frameWidth: s.frameWidth,
      frameHeight: s.frameHeight, totalAudioEnergy: s.totalAudioEnergy, audioLevel: s.audioLevel, ssrc: s.ssrc,
      packetsLost: s.packetsLost, pliCount: s.pliCount, freezeCount: s.freezeCount,
      totalSamplesReceived: s.totalSamplesReceived, concealedSamples: s.concealedSamples };
  });
  if (out.video && out.video.framesDecoded > 0 && state.firstFrameMs === null) {
    state.firstFrameMs = Math.round(performance.now() - state.watchAt);
  }
  out.pcId = pc.__e2eId || (pc.__e2eId = Math.random().toString(36).slice(2));
  return out;
};
window.hangup = () => new Promise((resolve) => { if (!janus) return resolve(); janus.destroy({ success: resolve, error: resolve }); });
</script></head><body><p>e2e streaming viewer</p></body></html>`;

const FILES = {
  '/adapter.js': path.join(here, '..', 'node_modules/webrtc-adapter/out/adapter.js'),
  '/janus.js': path.join(here, '..', 'node_modules/janus-gateway/npm/dist/janus.es.js'),
};

/** Serves the viewer page and its scripts on a free loopback port. */
export async function startViewerSite() {
  const server = http.createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    if (p === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html', 'Cache-Control': 'no-store' }).end(PAGE);
    } else if (FILES[p]) {
      res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(fs.readFileSync(FILES[p]));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

export { launchChromium } from './browser.js';

/** Polls `fn` in the page until `check` accepts its value (the deadline is the assertion). */
export async function waitInPage(page, fn, check, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await page.evaluate(fn);
    if (check(last)) return last;
    if (Date.now() > deadline) {
      const st = await page.evaluate(() => window.e2e);
      throw new Error(`${what} not reached within ${timeoutMs} ms; last ${JSON.stringify(last)}; page ${JSON.stringify(st)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Opens a viewer page and watches mountpoint `id` over `server`; returns the page. */
export async function openViewer(browser, site, server, id, extra) {
  const page = await browser.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.consoleLines = consoleLines;
  await page.goto(site.url);
  await page.waitForFunction(() => typeof window.watch === 'function');
  page.ids = await page.evaluate(([s, i, x]) => window.watch(s, i, x), [server, id, extra]);
  return page;
}

/** Waits until the mountpoint `id` has a live source, as `info` tells. */
export async function waitLive(gw, id, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await adminStreaming(gw, { request: 'info', id });
    if (info?.info?.live) return info.info;
    if (Date.now() > deadline) throw new Error(`mountpoint ${id} not live: ${JSON.stringify(info)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A synchronous streaming request through the Admin API's `message_plugin`. */
export async function adminStreaming(gw, request) {
  const res = await fetch(gw.adminHttpUrl, {
    method: 'POST',
    body: JSON.stringify({
      janus: 'message_plugin', transaction: `t${Date.now()}${Math.random()}`, admin_secret: gw.adminSecret,
      plugin: 'janus.plugin.streaming', request,
    }),
  });
  const reply = await res.json();
  return reply.response;
}

/**
 * Publishes `browser`'s fake camera (640x480) + microphone over WHIP from the gateway's
 * /demos/whip.html with stream key `key` (from `addKey`); `query`: page options such as
 * `?codec=h264`. Resolves with the page once 30 frames are encoded.
 */
export async function whipPublish(browser, gw, key, query = '') {
  const page = await browser.newPage();
  await page.goto(gw.httpUrl.replace(/\/janus$/, `/demos/whip.html${query}`));
  await waitInPage(page, () => window.demo.state, (s) => s === 'idle', 'WHIP page ready', 10000);
  await page.fill('#key', key.key);
  await page.click('#publish');
  await waitInPage(page, () => window.demo, (d) => d.state === 'publishing' && d.stats?.framesEncoded > 30, 'publishing over WHIP', 30000);
  return page;
}

/** A page of `browser` that cannot decode H.264: every video transceiver it adds offers VP8 only. */
export async function vp8OnlyPage(browser) {
  const page = await browser.newPage();
  await page.addInitScript(() => {
    const add = RTCPeerConnection.prototype.addTransceiver;
    RTCPeerConnection.prototype.addTransceiver = function (kind, init) {
      const t = add.call(this, kind, init);
      if (kind === 'video') {
        t.setCodecPreferences(RTCRtpReceiver.getCapabilities('video').codecs.filter((c) => c.mimeType === 'video/VP8'));
      }
      return t;
    };
  });
  return page;
}
