// The loop media engine (src/media/rtc/, webrtc-rs's sans-I/O `rtc` core) against headless
// Chromium with fake camera and microphone, before it sits behind the Janus API: the bare echo
// peer `examples/loop_echo` answers Chromium's offer (Opus + VP8, BUNDLE, rtcp-mux, its host
// candidates on 127.0.0.1 in the SDP), and the audio and video it echoes come back to
// Chromium (received packets, decoded frames), as do text and binary data-channel messages. Needs `cargo build --example loop_echo`
// (`cargo nextest`/`cargo test` build it too).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { launchChromium } from './lib/browser.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const LOOP_ECHO = process.env.LOOP_ECHO_BIN || path.join(here, '../../target/debug/examples/loop_echo');

/** Serves an empty page: getUserMedia needs a secure context, which 127.0.0.1 over HTTP is. */
async function startBlankSite() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>loop</title>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

/** Starts loop_echo; `next(check)` resolves with the first stdout object `check` accepts. */
function startLoopEcho() {
  assert.ok(fs.existsSync(LOOP_ECHO), `${LOOP_ECHO} missing: cargo build --example loop_echo`);
  const child = spawn(LOOP_ECHO, [], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, RUST_LOG: 'warn' } });
  const lines = [];
  const waiters = [];
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    let value;
    try { value = JSON.parse(line); } catch { return; }
    lines.push(value);
    for (const w of [...waiters]) {
      if (w.check(value)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(value); }
    }
  });
  return {
    pid: child.pid,
    send: (value) => child.stdin.write(`${JSON.stringify(value)}\n`),
    next: (check, what, timeoutMs = 60000) => new Promise((resolve, reject) => {
      const found = lines.find(check);
      if (found) return resolve(found);
      const timer = setTimeout(() => reject(new Error(`${what} not reported within ${timeoutMs} ms; last ${JSON.stringify(lines.at(-1))?.slice(0, 300)}`)), timeoutMs);
      waiters.push({ check, resolve: (v) => { clearTimeout(timer); resolve(v); } });
    }),
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', resolve);
      process.kill(child.pid, 'SIGTERM');
    }),
  };
}

/** Polls `fn` until `check` accepts its value; the deadline is a hang guard only. */
async function waitFor(fn, check, what, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (check(value)) return value;
    assert.ok(Date.now() < deadline, `${what} not seen within ${timeoutMs} ms; last ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('loop media engine with Chromium', () => {
  let site;
  let browser;
  let loop;

  before(async () => {
    site = await startBlankSite();
    browser = await launchChromium();
    loop = startLoopEcho();
  });
  after(async () => {
    await browser?.close();
    await site?.close();
    await loop?.stop();
  });

  it('answers Chromium and echoes its Opus audio, VP8 video and data-channel messages back', async () => {
    const page = await browser.newPage();
    await page.goto(site.url);
    const offer = await page.evaluate(async () => {
      const pc = new RTCPeerConnection();
      window.pc = pc;
      // A data channel in the offer: the loop starts SCTP only because of it.
      window.dc = pc.createDataChannel('JanusDataChannel');
      window.dcEchoes = [];
      window.dc.binaryType = 'arraybuffer';
      window.dc.onmessage = (e) => window.dcEchoes.push(typeof e.data === 'string' ? e.data : `bin:${new Uint8Array(e.data).join(',')}`);
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
      for (const track of stream.getTracks()) pc.addTrack(track, stream);
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
      });
      return pc.localDescription.sdp;
    });
    loop.send({ offer });
    const reply = await loop.next((v) => 'answer' in v || 'error' in v, 'answer');
    assert.ok(reply.answer, `loop refused the offer: ${reply.error}`);
    assert.match(reply.answer, /a=candidate:.* 127\.0\.0\.1 /);
    await page.evaluate((sdp) => window.pc.setRemoteDescription({ type: 'answer', sdp }), reply.answer);

    // Generous bounds: a loaded machine slows media, it must not change the outcome.
    await loop.next((v) => v.connected >= 1 && v.echoed?.audio >= 50 && v.echoed?.video >= 50, 'audio and video echoed');
    const deadline = Date.now() + 60000;
    let got;
    for (;;) {
      got = await page.evaluate(async () => {
        const out = { audio: 0, video: 0, frames: 0, codecs: [] };
        const stats = await window.pc.getStats();
        stats.forEach((s) => {
          if (s.type === 'inbound-rtp') {
            out[s.kind] = s.packetsReceived;
            if (s.kind === 'video') out.frames = s.framesDecoded ?? 0;
            const codec = stats.get(s.codecId);
            if (codec) out.codecs.push(codec.mimeType);
          }
        });
        return out;
      });
      if (got.audio >= 50 && got.video >= 50 && got.frames >= 10) break;
      assert.ok(Date.now() < deadline, `echo not received by Chromium: ${JSON.stringify(got)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual(got.codecs.sort(), ['audio/opus', 'video/VP8']);

    // Text and binary data-channel messages come back on the same channel.
    await page.evaluate(async () => {
      if (window.dc.readyState !== 'open') await new Promise((r) => window.dc.addEventListener('open', r, { once: true }));
      window.dc.send('hello loop');
      window.dc.send(new Uint8Array([1, 2, 250]));
    });
    const echoes = await waitFor(() => page.evaluate(() => window.dcEchoes), (e) => e.length >= 2, 'data-channel echoes');
    assert.deepEqual([...echoes].sort(), ['bin:1,2,250', 'hello loop']);
    await page.close();
  });
});
