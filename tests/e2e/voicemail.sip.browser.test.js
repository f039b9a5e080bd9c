// The answering machine: baresip (bob, PCMU, playing a 440 Hz tone as its "message") calls a
// registry account with voicemail on, through kamailio. The account's browser tab rings and
// does not answer; after the ring timeout the mailbox answers: bob hears the greeting (its
// recording's dominant frequency is the 600 Hz greeting tone), is recorded, hangs up; the
// message is an Ogg/Opus file with the caller's tone and a row with bob's caller id; the tab
// gets the `voicemail` event. A second call the tab declines lands there too and ends on `#`.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { launchChromium } from './lib/browser.js';
import { startSipSite } from './lib/sip_page.js';
import { startGateway } from './lib/gateway.js';
import { startKamailio, startBaresip, analyze } from './lib/sip.js';
import { probe, rows } from './lib/voicemail.js';
import { cli as registryCli, until } from './lib/mailbox.js';

describe('voicemail answering machine for SIP calls', () => {
  let kamailio;
  let bob;
  let gw;
  let site;
  let browser;
  let page;
  let dir;
  let db;
  let recDir;

  before(async () => {
    kamailio = await startKamailio();
    bob = await startBaresip({ kamailio, user: 'bob', toneHz: 440, codecs: 'PCMU' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-vmsip-'));
    db = path.join(dir, 'registry.db');
    recDir = path.join(dir, 'recordings');
    const dbUrl = `sqlite://${db}`;
    const cli = (args, input = '') => registryCli(dbUrl, args, input);
    cli(['trunk', 'add', 'kam', '--registrar', kamailio.registrar, '--username', 'dave', '--password'], 'davepw\n');
    cli(['account', 'add', '100', '--trunk', 'kam', '--uri', kamailio.uri('dave'), '--voicemail', 'true']);
    cli(['account', 'set-secret', '100'], 'web-secret-100\n');
    gw = await startGateway({
      name: 'voicemail-sip',
      env: {
        BIFRONS_DATABASE_URL: dbUrl,
        BIFRONS_RECORDINGS_DIR: recDir,
        BIFRONS_SIP_RING_TIMEOUT: '3',
        BIFRONS_SIP_TIMER_T1_MS: '100',
        BIFRONS_VOICEMAIL_MAX_SECONDS: '60',
      },
    });
    site = await startSipSite();
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(site.url);
    await page.waitForFunction(() => typeof window.connect === 'function');
    await page.evaluate((s) => window.connect(s), gw.wsUrl);
  });
  after(async () => {
    await browser?.close();
    await site?.close();
    await gw?.stop();
    await bob?.stop();
    await kamailio?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a call the registered browser does not answer lands in the mailbox after the ring timeout', async () => {
    await page.evaluate(() => window.attachPhone('tab'));
    await page.evaluate(() => window.sendRequest('tab', { request: 'register', type: 'account', account: '100', secret: 'web-secret-100' }));
    await until(async () => (await page.evaluate(() => window.eventsOf('tab'))).some((e) => e.event === 'registered'), 'registered');

    bob.command('dial', kamailio.uri('dave'));
    await until(async () => (await page.evaluate(() => window.eventsOf('tab'))).some((e) => e.event === 'incomingcall'), 'the tab rings');
    // Nobody answers: after the 3 s ring timeout the mailbox does, and a message row appears.
    const [open] = await until(() => { const r = rows(db); return r.length ? r : null; }, 'message started', 30000);
    assert.equal(open.owner, '100');
    const file = path.join(recDir, open.file_path);
    // Let 2 s of bob's tone be recorded (what the file's flushed pages hold), then bob hangs up.
    await until(() => fs.existsSync(file) && probe(file).duration >= 2, 'message audio written', 30000);
    bob.command('hangup');
    const [row] = await until(() => { const r = rows(db, `id = ${open.id}`); return r[0]?.size_bytes > 0 ? r : null; }, 'message saved', 30000);

    const p = probe(file);
    console.log(`# mailbox message ${row.file_path}: ffprobe ${p.codec} ${p.duration} s, row ${row.duration_ms} ms, ${row.size_bytes} bytes, caller ${row.caller}`);
    assert.equal(p.codec, 'opus', p.stderr);
    assert.ok(p.duration > 1.5, `message length ${p.duration} s`);
    assert.equal(row.size_bytes, fs.statSync(file).size);
    assert.match(row.caller, /bob/);
    // The tab heard the call was taken elsewhere (by the mailbox), not a missed call left ringing.
    await until(async () => (await page.evaluate(() => window.eventsOf('tab'))).some((e) => e.event === 'hangup'), 'tab stops ringing');

    // Message waiting: the account's registered tab gets a `voicemail` event.
    const vm = await until(async () => (await page.evaluate(() => window.eventsOf('tab'))).find((e) => e.event === 'voicemail'), 'voicemail event');
    console.log(`# message waiting event: ${JSON.stringify(vm)}`);
    assert.equal(vm.result.account, '100');
    assert.equal(vm.result.id, row.id);
    assert.equal(vm.result.new, 1);
    assert.equal(vm.result.total, 1);
    assert.match(vm.result.caller, /bob/);

    // The message holds bob's 440 Hz tone: decode it with ffmpeg to 8 kHz PCM and measure.
    const pcm = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', '1', '-ar', '8000', '-'], { maxBuffer: 64 << 20 });
    const samples = [];
    for (let i = 0; i + 1 < pcm.stdout.length; i += 2) samples.push(pcm.stdout.readInt16LE(i));
    const m = analyze(samples, 8000);
    console.log(`# message audio: peak ${m.peak}, rms ${m.rms.toFixed(0)}, dominant ${m.hz} Hz`);
    assert.ok(m.rms > 500 && Math.abs(m.hz - 440) <= 15, `the caller's tone in the message: ${JSON.stringify(m)}`);

    // bob heard the greeting: its recording's dominant frequency is the 600 Hz tone.
    const heard = await until(() => { const w = bob.received(); return w && w.samples.length > 8000 ? w : null; }, "bob's recording");
    const a = analyze(heard.samples, heard.rate);
    console.log(`# bob heard: peak ${a.peak}, rms ${a.rms.toFixed(0)}, dominant ${a.hz} Hz`);
    assert.ok(Math.abs(a.hz - 600) <= 15, `greeting tone, got ${a.hz} Hz`);
  });

  it('a call every tab declines goes to the mailbox too, and # ends the message', async () => {
    const from = (await page.evaluate(() => window.eventsOf('tab'))).length;
    bob.command('dial', kamailio.uri('dave'));
    await until(async () => (await page.evaluate(() => window.eventsOf('tab'))).slice(from).some((e) => e.event === 'incomingcall'), 'the tab rings');
    await page.evaluate(() => window.sendRequest('tab', { request: 'decline' }));
    const [open] = await until(() => { const r = rows(db, "kind = 'voicemail' AND size_bytes = 0"); return r.length ? r : null; }, 'second message started', 30000);
    const file = path.join(recDir, open.file_path);
    await until(() => fs.existsSync(file) && fs.statSync(file).size > 4000, 'message audio written', 30000);
    // bob presses # (RFC 4733) and stays on the line: the mailbox ends the message and hangs up.
    bob.command('sndcode', '#');
    const [row] = await until(() => { const r = rows(db, `id = ${open.id}`); return r[0]?.size_bytes > 0 ? r : null; }, 'message saved after #', 30000);
    const log = fs.readFileSync(gw.logFile, 'utf8');
    assert.match(log, /mailbox recording ended end=Hash/);
    assert.ok(log.split('\n').some((l) => /why=AllDeclined/.test(l)), 'taken after the decline');
    console.log(`# message after decline: ${row.duration_ms} ms, ${row.size_bytes} bytes, ended by #`);
    const vm = await until(async () => (await page.evaluate(() => window.eventsOf('tab'))).slice(from).find((e) => e.event === 'voicemail'), 'second voicemail event');
    assert.equal(vm.result.new, 2);
    assert.equal(vm.result.total, 2);
  });
});

