// janus.plugin.voicemail from janus.js in headless Chromium: `record` with the browser's offer
// gets `starting` + an answer, `started` after webrtcup, and `done` when the configured
// max_seconds (5 s) of the fake microphone are recorded; the Ogg/Opus file decodes with
// ffprobe at 5 s ± 10 % and its `recordings` row has the file's size. `stop` closes a message
// early; wrong requests get Janus' VoiceMail codes.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchChromium } from './lib/browser.js';
import { startGateway } from './lib/gateway.js';

const MAX_SECONDS = 5;

/** Rows of `recordings` as objects (sqlite3 in JSON mode). */
function rows(db, where = "kind = 'voicemail'") {
  const out = spawnSync('sqlite3', ['-json', db,
    `SELECT id, kind, owner, caller, file_path, codec, duration_ms, size_bytes, heard FROM recordings WHERE ${where}`],
  { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return out.stdout.trim() ? JSON.parse(out.stdout) : [];
}

/** ffprobe's duration (s) and codec of `file`. */
function probe(file) {
  const out = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name',
    '-of', 'json', file], { encoding: 'utf8' });
  const info = JSON.parse(out.stdout || '{}');
  return { duration: Number(info.format?.duration), codec: info.streams?.[0]?.codec_name, stderr: out.stderr };
}

/**
 * In the page: a janus.js session over HTTP long poll and a voicemail handle. Every event,
 * JSEP and webrtc state goes to `window.vm[name]`; `send(name, body, withOffer)` sends a
 * request, with a fresh audio-only offer when asked.
 */
async function openHandle(page, name) {
  return page.evaluate(async (name) => {
    if (!window.Janus) {
      const { default: Janus } = await import('/demos/janus.js');
      await new Promise((resolve) => Janus.init({ debug: false, callback: resolve }));
      window.Janus = Janus;
      window.vm = {};
      window.send = (n, message, withOffer) => new Promise((resolve, reject) => {
        const h = window.vm[n].handle;
        if (!withOffer) {
          h.send({ message, success: resolve, error: (e) => reject(new Error(String(e))) });
          return;
        }
        h.createOffer({
          tracks: [{ type: 'audio', capture: true, recv: false }],
          success: (jsep) => h.send({ message, jsep, success: resolve, error: (e) => reject(new Error(String(e))) }),
          error: (e) => reject(new Error(String(e))),
        });
      });
    }
    const janus = await new Promise((resolve, reject) => {
      const j = new window.Janus({ server: '/janus', iceServers: [], success: () => resolve(j), error: (e) => reject(new Error(String(e))) });
    });
    const st = { events: [], answers: 0, webrtcup: false, detached: false, janus };
    window.vm[name] = st;
    st.handle = await new Promise((resolve, reject) => {
      janus.attach({
        plugin: 'janus.plugin.voicemail',
        success: resolve,
        error: (e) => reject(new Error(String(e))),
        webrtcState: (on) => { if (on) st.webrtcup = true; },
        ondetached: () => { st.detached = true; },
        onmessage: (msg, jsep) => {
          st.events.push(msg);
          if (jsep) {
            st.answers++;
            st.handle.handleRemoteJsep({ jsep });
          }
        },
      });
    });
    return st.handle.getId();
  }, name);
}

const eventsOf = (page, name) => page.evaluate((n) => window.vm[n].events, name);

/** Waits (hang guard only) until an event of handle `name` satisfies `pred`. */
async function waitEvent(page, name, pred, what, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await eventsOf(page, name);
    const found = events.find(pred);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms: ${JSON.stringify(events)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('voicemail plugin with janus.js in Chromium', () => {
  let gw;
  let browser;
  let page;
  let dir;
  let db;
  let recDir;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-voicemail-'));
    db = path.join(dir, 'registry.db');
    recDir = path.join(dir, 'recordings');
    gw = await startGateway({
      name: 'voicemail',
      env: {
        BIFRONS_DATABASE_URL: `sqlite://${db}`,
        BIFRONS_RECORDINGS_DIR: recDir,
        BIFRONS_VOICEMAIL_MAX_SECONDS: String(MAX_SECONDS),
        BIFRONS_VOICEMAIL_BASE_URL: '/vm/',
      },
    });
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(gw.httpUrl.replace(/\/janus$/, '/demos/'));
    await page.addScriptTag({ url: '/demos/adapter.js' });
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`records ${MAX_SECONDS} s of the microphone and stops by itself`, async () => {
    await openHandle(page, 'a');
    await page.evaluate(() => window.send('a', { request: 'record', caller: 'Visitor <web>' }, true));
    const starting = await waitEvent(page, 'a', (e) => e.status === 'starting' || e.error_code, 'starting');
    assert.equal(starting.status, 'starting', JSON.stringify(starting));
    assert.equal(await page.evaluate(() => window.vm.a.answers), 1, 'one JSEP answer');
    await waitEvent(page, 'a', (e) => e.status === 'started', 'started');
    assert.equal(await page.evaluate(() => window.vm.a.webrtcup), true);

    // A second `record` on the same handle while recording: 465.
    await page.evaluate(() => window.send('a', { request: 'record' }, true));
    const again = await waitEvent(page, 'a', (e) => e.error_code, '465');
    assert.equal(again.error_code, 465, JSON.stringify(again));

    const done = await waitEvent(page, 'a', (e) => e.status === 'done' || (e.error_code && e.error_code !== 465), 'done', 60000);
    assert.equal(done.status, 'done', JSON.stringify(done));
    assert.ok(Number.isSafeInteger(done.id) && done.id > 0, JSON.stringify(done));
    assert.match(done.recording, /^\/vm\/janus-voicemail-\d+\.opus$/);
    // Janus ends the handle after `done`.
    await page.waitForFunction(() => window.vm.a.detached, null, { timeout: 20000 });

    const [row] = rows(db, `id = ${done.id}`);
    assert.ok(row, `row ${done.id}`);
    assert.equal(row.kind, 'voicemail');
    assert.equal(row.owner, 'voicemail');
    assert.equal(row.caller, 'Visitor <web>');
    assert.equal(row.codec, 'opus');
    assert.equal(row.heard, 0);
    assert.equal(path.basename(row.file_path), path.basename(done.recording));
    const file = path.join(recDir, row.file_path);
    const size = fs.statSync(file).size;
    assert.equal(row.size_bytes, size, 'the row has the file size');
    const p = probe(file);
    console.log(`# message ${row.file_path}: ffprobe ${p.codec} ${p.duration} s, row ${row.duration_ms} ms, ${size} bytes`);
    assert.equal(p.codec, 'opus', p.stderr);
    assert.ok(Math.abs(p.duration - MAX_SECONDS) <= MAX_SECONDS * 0.1, `duration ${p.duration} s`);
    assert.ok(Math.abs(row.duration_ms / 1000 - MAX_SECONDS) <= MAX_SECONDS * 0.1, `row ${row.duration_ms} ms`);
  });

  it('stop closes a message early, with the mailbox and caller given', async () => {
    await openHandle(page, 'b');
    await page.evaluate(() => window.send('b', { request: 'record', mailbox: '1001' }, true));
    await waitEvent(page, 'b', (e) => e.status === 'started', 'started');
    // Some audio first (the packet clock, not a timer, is what is checked).
    await page.waitForFunction(async () => {
      const stats = await window.vm.b.handle.webrtcStuff.pc.getStats();
      let sent = 0;
      stats.forEach((r) => { if (r.type === 'outbound-rtp' && r.kind === 'audio') sent = r.packetsSent; });
      return sent > 50;
    }, null, { timeout: 30000, polling: 200 });
    await page.evaluate(() => window.send('b', { request: 'stop' }, false));
    const done = await waitEvent(page, 'b', (e) => e.status === 'done' || e.error_code, 'done');
    assert.equal(done.status, 'done', JSON.stringify(done));
    const [row] = rows(db, `id = ${done.id}`);
    assert.equal(row.owner, '1001');
    assert.ok(row.duration_ms > 0 && row.duration_ms < MAX_SECONDS * 1000, JSON.stringify(row));
    assert.equal(row.size_bytes, fs.statSync(path.join(recDir, row.file_path)).size);
  });

  it('answers wrong requests with the VoiceMail codes', async () => {
    await openHandle(page, 'c');
    const expect = async (body, withOffer, code) => {
      await page.evaluate(() => { window.vm.c.events = []; });
      await page.evaluate(([b, o]) => window.send('c', b, o), [body, withOffer]);
      const ev = await waitEvent(page, 'c', (e) => e.error_code || e.status, `error ${code}`);
      assert.equal(ev.error_code, code, `${JSON.stringify(body)}: ${JSON.stringify(ev)}`);
    };
    await expect({ request: 'record' }, false, 463);
    await expect({ request: 'stop' }, false, 468);
    await expect({ request: 'update' }, false, 463);
    await expect({ request: 'dance' }, false, 462);
    await expect({ nothing: 1 }, false, 463);
    await expect({ request: 7 }, false, 464);
    await expect({ request: 'record', caller: 12 }, true, 464);
    await expect({ request: 'record', mailbox: '' }, true, 464);
    // The handle still works after all of these.
    await page.evaluate(() => window.send('c', { request: 'record' }, true));
    await waitEvent(page, 'c', (e) => e.status === 'starting', 'starting after errors');
  });
});
