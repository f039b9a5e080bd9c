// The answering machine honours the mailbox settings: account 100's mailbox gets an uploaded
// greeting (an 800 Hz WAV, through the panel REST API), a 2 s longest message and room for one
// message (`bifrons mailbox set`). baresip (bob, PCMU, 440 Hz tone) calls it through kamailio,
// the account's browser tab rings and does not answer: bob hears the uploaded greeting (his
// recording's dominant frequency is 800 Hz, not the default 600 Hz tone), the message ends by
// itself at 2 s although bob stays on the line; a second call finds the mailbox full and is
// not taken (no second row, "mailbox full" in the log).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchChromium } from './lib/browser.js';
import { startSipSite } from './lib/sip_page.js';
import { startGateway } from './lib/gateway.js';
import { startKamailio, startBaresip, analyze } from './lib/sip.js';
import { addUser } from './lib/panel.js';
import { rows } from './lib/voicemail.js';
import { cli as registryCli, until } from './lib/mailbox.js';

describe('answering machine with mailbox settings', () => {
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
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-vmset-'));
    db = path.join(dir, 'registry.db');
    recDir = path.join(dir, 'recordings');
    const dbUrl = `sqlite://${db}`;
    const cli = (args, input = '') => registryCli(dbUrl, args, input);
    cli(['trunk', 'add', 'kam', '--registrar', kamailio.registrar, '--username', 'dave', '--password'], 'davepw\n');
    cli(['account', 'add', '100', '--trunk', 'kam', '--uri', kamailio.uri('dave')]);
    cli(['account', 'set-secret', '100'], 'web-secret-100\n');
    cli(['mailbox', 'set', '100', '--enabled', 'true', '--max-length', '2', '--max-messages', '1']);
    await addUser(dbUrl, 'admin', 'admin', 'admin-password');
    gw = await startGateway({
      name: 'voicemail-settings',
      env: {
        BIFRONS_DATABASE_URL: dbUrl,
        BIFRONS_RECORDINGS_DIR: recDir,
        BIFRONS_SIP_RING_TIMEOUT: '3',
        BIFRONS_SIP_TIMER_T1_MS: '100',
        BIFRONS_VOICEMAIL_MAX_SECONDS: '60',
        BIFRONS_VOICEMAIL_SILENCE_SECONDS: '0',
      },
    });
    // The greeting: 2 s of 800 Hz, uploaded as a WAV through the panel.
    const wavFile = path.join(dir, 'greeting.wav');
    const ff = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=800:duration=2', '-ar', '8000', '-ac', '1', '-c:a', 'pcm_s16le', '-y', wavFile]);
    assert.equal(ff.status, 0, String(ff.stderr));
    const panel = `http://127.0.0.1:${gw.ports.adminHttp}/panel/api/v1`;
    const login = await fetch(`${panel}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'admin-password' }),
    });
    const cookie = login.headers.get('set-cookie').split(';')[0];
    const me = await (await fetch(`${panel}/me`, { headers: { Cookie: cookie } })).json();
    const accounts = await (await fetch(`${panel}/accounts`, { headers: { Cookie: cookie } })).json();
    const up = await fetch(`${panel}/accounts/${accounts[0].id}/mailbox/greeting`, {
      method: 'PUT',
      headers: { Cookie: cookie, 'X-CSRF-Token': me.csrf_token, 'Content-Type': 'audio/wav' },
      body: fs.readFileSync(wavFile),
    });
    assert.equal(up.status, 200, await up.text());

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

  it('plays the uploaded greeting and ends the message at the mailbox max length', async () => {
    await page.evaluate(() => window.attachPhone('tab'));
    await page.evaluate(() => window.sendRequest('tab', { request: 'register', type: 'account', account: '100', secret: 'web-secret-100' }));
    await until(async () => (await page.evaluate(() => window.eventsOf('tab'))).some((e) => e.event === 'registered'), 'registered');

    bob.command('dial', kamailio.uri('dave'));
    const [open] = await until(() => { const r = rows(db); return r.length ? r : null; }, 'message started', 30000);
    // bob stays on the line: the mailbox ends the message after 2 s by itself.
    const [row] = await until(() => { const r = rows(db, `id = ${open.id}`); return r[0]?.size_bytes > 0 ? r : null; }, 'message saved', 30000);
    const log = fs.readFileSync(gw.logFile, 'utf8');
    assert.match(log, /mailbox recording ended end=MaxLength/);
    console.log(`# message with max_length_s 2: ${row.duration_ms} ms, ${row.size_bytes} bytes`);
    assert.ok(row.duration_ms > 1000 && row.duration_ms <= 2500, `duration ${row.duration_ms} ms`);

    const heard = await until(() => { const w = bob.received(); return w && w.samples.length > 8000 ? w : null; }, "bob's recording");
    // The greeting's first 2 s (the beep follows).
    const a = analyze(heard.samples.slice(0, Math.round(heard.rate * 1.8)), heard.rate);
    console.log(`# bob heard: peak ${a.peak}, rms ${a.rms.toFixed(0)}, dominant ${a.hz} Hz`);
    assert.ok(Math.abs(a.hz - 800) <= 20, `uploaded greeting at 800 Hz, got ${a.hz} Hz`);
    bob.command('hangup');
  });

  it('a full mailbox takes no call', async () => {
    await sleep(1000);
    const from = (await page.evaluate(() => window.eventsOf('tab'))).length;
    bob.command('dial', kamailio.uri('dave'));
    await until(async () => (await page.evaluate(() => window.eventsOf('tab'))).slice(from).some((e) => e.event === 'incomingcall'), 'the tab rings');
    await until(() => /mailbox full/.test(fs.readFileSync(gw.logFile, 'utf8')), '"mailbox full" logged', 30000);
    await until(async () => (await page.evaluate(() => window.eventsOf('tab'))).slice(from).some((e) => e.event === 'missed_call' || e.event === 'hangup'), 'the call ends unanswered', 30000);
    assert.equal(rows(db).length, 1, 'no second message');
    bob.command('hangup');
  });
});
