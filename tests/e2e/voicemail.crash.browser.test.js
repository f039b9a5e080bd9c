// Kill -9 of the gateway while janus.plugin.voicemail records a browser's message: the Ogg/Opus
// file decodes up to the kill (pages are flushed as written), and after a restart the recovery
// pass fills in the row's duration and size from the file's complete pages.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchChromium } from './lib/browser.js';
import { startGateway } from './lib/gateway.js';
import { openHandle, probe, rows, waitEvent, waitSent } from './lib/voicemail.js';

describe('voicemail message cut by a crash', () => {
  let gw;
  let browser;
  let dir;
  let env;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-voicemail-crash-'));
    env = {
      BIFRONS_DATABASE_URL: `sqlite://${path.join(dir, 'registry.db')}`,
      BIFRONS_RECORDINGS_DIR: path.join(dir, 'recordings'),
      BIFRONS_VOICEMAIL_MAX_SECONDS: '120',
    };
    gw = await startGateway({ name: 'voicemail-crash', env });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('decodes up to the kill and the row is filled in at restart', async () => {
    const page = await browser.newPage();
    await page.goto(gw.httpUrl.replace(/\/janus$/, '/demos/'));
    await page.addScriptTag({ url: '/demos/adapter.js' });
    await openHandle(page, 'a');
    await page.evaluate(() => window.send('a', { request: 'record', caller: 'crash' }, true));
    await waitEvent(page, 'a', (e) => e.status === 'started', 'started');
    // About 3 s of audio sent (150 packets of 20 ms), then the gateway dies without a word.
    await waitSent(page, 'a', 150);
    // ... and written: the file has grown past its two header pages.
    const db = path.join(dir, 'registry.db');
    const [open] = rows(db);
    const growing = path.join(dir, 'recordings', open.file_path);
    const deadline = Date.now() + 30000;
    while (fs.statSync(growing).size < 6000) {
      assert.ok(Date.now() < deadline, `file stays at ${fs.statSync(growing).size} bytes`);
      await new Promise((r) => setTimeout(r, 200));
    }
    process.kill(gw.pid, 'SIGKILL');
    await gw.stop();
    await page.close();

    const [cut] = rows(db);
    assert.ok(cut, 'the row registered at the start is there');
    assert.equal(cut.size_bytes, 0, 'not finished before the restart');
    const file = path.join(dir, 'recordings', cut.file_path);
    const p = probe(file);
    const size = fs.statSync(file).size;
    console.log(`# after kill -9: ${cut.file_path} ${size} bytes, ffprobe ${p.codec} ${p.duration} s`);
    assert.equal(p.codec, 'opus', p.stderr);
    assert.ok(p.duration > 1.5, `decodes up to the kill: ${p.duration} s`);

    gw = await startGateway({ name: 'voicemail-crash-restart', env });
    const [row] = rows(db, `id = ${cut.id}`);
    console.log(`# after restart: row ${row.duration_ms} ms, ${row.size_bytes} bytes`);
    assert.ok(row.size_bytes > 0 && row.size_bytes <= size, JSON.stringify(row));
    assert.ok(Math.abs(row.duration_ms / 1000 - p.duration) < 0.5, `row ${row.duration_ms} ms vs ffprobe ${p.duration} s`);
    assert.equal(row.caller, 'crash');
  });
});
