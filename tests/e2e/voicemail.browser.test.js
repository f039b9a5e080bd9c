// janus.plugin.voicemail from janus.js in headless Chromium: `record` with the browser's offer
// gets `starting` + an answer, `started` after webrtcup, and `done` when the configured
// max_seconds (5 s) of the fake microphone are recorded; the Ogg/Opus file decodes with
// ffprobe at 5 s ± 10 % and its `recordings` row has the file's size. `stop` closes a message
// early; wrong requests get Janus' VoiceMail codes.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchChromium } from './lib/browser.js';
import { startGateway } from './lib/gateway.js';
import { openHandle, probe, rows, waitEvent, waitRecorded } from './lib/voicemail.js';

const MAX_SECONDS = 5;

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
    // Some audio recorded first (the gateway's count, not a timer, is what is checked).
    await waitRecorded(gw, page, 'b');
    await page.evaluate(() => window.send('b', { request: 'stop' }, false));
    const done = await waitEvent(page, 'b', (e) => e.status === 'done' || e.error_code, 'done');
    assert.equal(done.status, 'done', JSON.stringify(done));
    const [row] = rows(db, `id = ${done.id}`);
    assert.equal(row.owner, '1001');
    assert.ok(row.duration_ms > 0 && row.duration_ms < MAX_SECONDS * 1000, JSON.stringify(row));
    assert.equal(row.size_bytes, fs.statSync(path.join(recDir, row.file_path)).size);
  });

  it('answers wrong requests with the VoiceMail codes while another message is recorded', async () => {
    // Handle d records through all of it and must still be saved whole.
    await openHandle(page, 'd');
    await page.evaluate(() => window.send('d', { request: 'record', mailbox: 'busy' }, true));
    await waitEvent(page, 'd', (e) => e.status === 'started', 'started');

    await openHandle(page, 'c');
    const expect = async (body, withOffer, code) => {
      await page.evaluate(() => { window.vm.c.events = []; });
      await page.evaluate(([b, o]) => window.send('c', b, o), [body, withOffer]);
      const ev = await waitEvent(page, 'c', (e) => e.error_code || e.status, `error ${code}`);
      assert.equal(ev.error_code, code, `${JSON.stringify(body)}: ${JSON.stringify(ev)}`);
      assert.equal(typeof ev.error, 'string');
    };
    const cases = [
      [{ request: 'record' }, false, 463],
      [{ request: 'RECORD' }, false, 463],
      [{ request: 'stop' }, false, 468],
      [{ request: 'update' }, false, 463],
      [{ request: 'update' }, true, 468],
      [{ request: 'dance' }, false, 462],
      [{ request: '' }, false, 462],
      [{ nothing: 1 }, false, 463],
      [{ request: 7 }, false, 464],
      [{ request: null }, false, 464],
      [{ request: ['record'] }, false, 464],
      [{ request: 'record', caller: 12 }, true, 464],
      [{ request: 'record', caller: 'x'.repeat(257) }, true, 464],
      [{ request: 'record', mailbox: '' }, true, 464],
      [{ request: 'record', mailbox: 'm'.repeat(65) }, true, 464],
      [{ request: 'record', mailbox: 42 }, true, 464],
    ];
    for (const [body, withOffer, code] of cases) await expect(body, withOffer, code);
    console.log(`# ${cases.length} bad requests answered with their codes`);
    // The handle still works after all of these...
    await page.evaluate(() => window.send('c', { request: 'record' }, true));
    await waitEvent(page, 'c', (e) => e.status === 'starting', 'starting after errors');
    // ... and d's message is saved whole.
    await page.evaluate(() => window.send('d', { request: 'stop' }, false));
    const done = await waitEvent(page, 'd', (e) => e.status === 'done' || e.error_code, 'done');
    assert.equal(done.status, 'done', JSON.stringify(done));
    const [row] = rows(db, `id = ${done.id}`);
    assert.equal(row.owner, 'busy');
    assert.ok(row.duration_ms > 0 && row.size_bytes === fs.statSync(path.join(recDir, row.file_path)).size, JSON.stringify(row));
  });

  it('the demo page leaves a message', async () => {
    const demo = await browser.newPage();
    try {
      await demo.goto(gw.httpUrl.replace(/\/janus$/, '/demos/'));
      const link = demo.locator('#demos tr[data-plugin="janus.plugin.voicemail"] a');
      assert.equal(await link.getAttribute('href'), '/demos/voicemail.html');
      await demo.waitForFunction(() => document.querySelector('#demos tr[data-plugin="janus.plugin.voicemail"] .have')?.textContent === 'loaded');
      await link.click();
      await demo.waitForFunction(() => window.demo?.state === 'idle', null, { timeout: 20000 });
      await demo.fill('#caller', 'Demo visitor');
      await demo.click('#record');
      await demo.waitForFunction(() => window.demo.state === 'recording', null, { timeout: 30000 });
      // Audio written (the file past its header pages) before Stop.
      const [open] = rows(db, "caller = 'Demo visitor'");
      const file = path.join(recDir, open.file_path);
      const deadline = Date.now() + 30000;
      while (fs.statSync(file).size < 2000) {
        assert.ok(Date.now() < deadline, `demo message stays at ${fs.statSync(file).size} bytes`);
        await new Promise((r) => setTimeout(r, 200));
      }
      await demo.click('#stop');
      await demo.waitForFunction(() => window.demo.state === 'done', null, { timeout: 30000 });
      const done = await demo.evaluate(() => window.demo.done);
      assert.equal(await demo.locator('#message-id').textContent(), `#${done.id}`);
      const [row] = rows(db, `id = ${done.id}`);
      assert.equal(row.caller, 'Demo visitor');
      assert.ok(row.duration_ms > 0, JSON.stringify(row));
      assert.equal(await demo.locator('#error').isHidden(), true);
    } finally {
      await demo.close();
    }
  });
});
