// A spoken message: bob (baresip, PCMU) calls account 100 (sip:dave@…) through kamailio while
// nobody is registered for it, so the mailbox answers at once. bob's microphone is a WAV made
// with espeak-ng: 6 s of silence (over the greeting and beep), a sentence, 6 s of silence;
// bob hangs up once the message holds the sentence and a second more (media time: the
// recording's own length, which starts after the 2.3 s greeting and beep). bob heard the greeting (its dominant frequency
// is the 600 Hz default tone); the message holds speech energy for about as long as the
// sentence's own voiced part; its row has bob's caller id; a browser tab that registered for
// the account while bob was speaking gets the `voicemail` event.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { launchChromium } from './lib/browser.js';
import { startSipSite } from './lib/sip_page.js';
import { startGateway } from './lib/gateway.js';
import { startKamailio, startBaresip, analyze, readWav } from './lib/sip.js';
import { probe, rows } from './lib/voicemail.js';
import { cli, until, voicedSeconds } from './lib/mailbox.js';

const SENTENCE = 'Hello, this is Bob calling about the delivery. Please call me back tomorrow morning.';
const LEAD_SECONDS = 6;
const TAIL_SECONDS = 6;
/** The default greeting (2 s) and beep (0.3 s) before recording starts. */
const GREETING_AND_BEEP = 2.3;

/** Decodes `file` with ffmpeg to 8 kHz mono 16-bit samples. */
function decode8k(file) {
  const pcm = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', '1', '-ar', '8000', '-'], { maxBuffer: 64 << 20 });
  assert.equal(pcm.status, 0, String(pcm.stderr));
  const samples = new Array(pcm.stdout.length >> 1);
  for (let i = 0; i < samples.length; i++) samples[i] = pcm.stdout.readInt16LE(2 * i);
  return samples;
}

describe('a spoken message left by a SIP caller', () => {
  let kamailio;
  let bob;
  let gw;
  let site;
  let browser;
  let page;
  let dir;
  let db;
  let recDir;
  let sentenceVoiced;
  let sentenceSeconds;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-vmspeech-'));
    // The sentence as espeak-ng says it (22.05 kHz), then what bob plays: 8 kHz mono 16-bit
    // (baresip's aufile format for G.711) with silence before and after.
    const spoken = path.join(dir, 'sentence.wav');
    const es = spawnSync('espeak-ng', ['-w', spoken, SENTENCE], { encoding: 'utf8' });
    assert.equal(es.status, 0, `espeak-ng: ${es.stderr}`);
    const source = path.join(dir, 'message.wav');
    const ff = spawnSync('ffmpeg', ['-v', 'error', '-y', '-i', spoken,
      '-af', `adelay=${LEAD_SECONDS * 1000},apad=pad_dur=${TAIL_SECONDS}`, '-ar', '8000', '-ac', '1', '-c:a', 'pcm_s16le', source], { encoding: 'utf8' });
    assert.equal(ff.status, 0, `ffmpeg: ${ff.stderr}`);
    const wav = readWav(source);
    sentenceVoiced = voicedSeconds(wav.samples, wav.rate);
    sentenceSeconds = wav.samples.length / wav.rate - LEAD_SECONDS - TAIL_SECONDS;
    console.log(`# espeak-ng sentence: ${(wav.samples.length / wav.rate).toFixed(2)} s with the silences, ${sentenceVoiced.toFixed(2)} s voiced`);

    kamailio = await startKamailio();
    db = path.join(dir, 'registry.db');
    recDir = path.join(dir, 'recordings');
    const dbUrl = `sqlite://${db}`;
    cli(dbUrl, ['trunk', 'add', 'kam', '--registrar', kamailio.registrar, '--password'], 'davepw\n');
    cli(dbUrl, ['account', 'add', '100', '--trunk', 'kam', '--uri', kamailio.uri('dave'), '--voicemail', 'true']);
    cli(dbUrl, ['account', 'set-secret', '100'], 'web-secret-100\n');
    gw = await startGateway({
      name: 'voicemail-speech',
      env: {
        BIFRONS_DATABASE_URL: dbUrl,
        BIFRONS_RECORDINGS_DIR: recDir,
        BIFRONS_SIP_TIMER_T1_MS: '100',
        BIFRONS_VOICEMAIL_MAX_SECONDS: '60',
        // The lead-in silence must not end the message before bob speaks.
        BIFRONS_VOICEMAIL_SILENCE_SECONDS: '30',
      },
    });
    await until(() => /mailbox line open.*extension=100/.test(fs.readFileSync(gw.logFile, 'utf8')), 'mailbox line of 100 registered', 30000);
    bob = await startBaresip({ kamailio, user: 'bob', codecs: 'PCMU', sourceWav: source });
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

  it('bob hears the greeting, speaks, hangs up: the message holds his speech and the tab is told', async () => {
    bob.command('dial', kamailio.uri('dave'));
    const [open] = await until(() => { const r = rows(db); return r.length ? r : null; }, 'message started', 30000);
    assert.equal(open.owner, '100');
    const log = fs.readFileSync(gw.logFile, 'utf8');
    assert.ok(log.split('\n').some((l) => /inbound call to the mailbox/.test(l) && /why=NobodyRegistered/.test(l)), 'taken at once: nobody registered');

    // While bob speaks, a tab registers for the account: it is told when the message lands.
    await page.evaluate(() => window.attachPhone('tab'));
    await page.evaluate(() => window.sendRequest('tab', { request: 'register', type: 'account', account: '100', secret: 'web-secret-100' }));
    await until(async () => (await page.evaluate(() => window.eventsOf('tab'))).some((e) => e.event === 'registered'), 'registered');

    // The message holds the whole sentence and a second of silence after it: bob hangs up.
    const spoken = LEAD_SECONDS - GREETING_AND_BEEP + sentenceSeconds + 1;
    const recorded = path.join(recDir, open.file_path);
    await until(() => fs.existsSync(recorded) && probe(recorded).duration >= spoken, `${spoken.toFixed(1)} s recorded`, 120000);
    bob.command('hangup');
    const [row] = await until(() => { const r = rows(db, `id = ${open.id}`); return r[0]?.size_bytes > 0 ? r : null; }, 'message saved', 30000);
    const file = path.join(recDir, row.file_path);
    const p = probe(file);
    console.log(`# message ${row.file_path}: ffprobe ${p.codec} ${p.duration} s, row ${row.duration_ms} ms, ${row.size_bytes} bytes, caller ${row.caller}`);
    assert.equal(p.codec, 'opus', p.stderr);
    assert.match(row.caller, /bob/);
    assert.equal(row.size_bytes, fs.statSync(file).size);

    // Speech energy over about the sentence's voiced duration: a message cut short by the
    // greeting or by silence detection, or one with nothing (or a steady tone) in it, is not.
    const samples = decode8k(file);
    const voiced = voicedSeconds(samples, 8000);
    const m = analyze(samples, 8000);
    console.log(`# message audio: ${(samples.length / 8000).toFixed(2)} s, ${voiced.toFixed(2)} s voiced (sentence ${sentenceVoiced.toFixed(2)} s), rms ${m.rms.toFixed(0)}, peak ${m.peak}`);
    assert.ok(m.rms > 300, `speech energy in the message: rms ${m.rms}`);
    assert.ok(voiced > 0.85 * sentenceVoiced && voiced < 1.25 * sentenceVoiced,
      `voiced ${voiced} s against the sentence's ${sentenceVoiced} s`);

    // bob heard the greeting: the 600 Hz default tone.
    const heard = bob.received();
    assert.ok(heard && heard.samples.length > 8000, "bob's recording");
    const a = analyze(heard.samples.slice(0, 8000 * 3), heard.rate);
    console.log(`# bob heard: dominant ${a.hz} Hz, rms ${a.rms.toFixed(0)}`);
    assert.ok(Math.abs(a.hz - 600) <= 15, `greeting tone, got ${a.hz} Hz`);

    const vm = await until(async () => (await page.evaluate(() => window.eventsOf('tab'))).find((e) => e.event === 'voicemail'), 'voicemail event', 30000);
    console.log(`# message waiting event: ${JSON.stringify(vm)}`);
    assert.equal(vm.result.account, '100');
    assert.equal(vm.result.id, row.id);
    assert.equal(vm.result.new, 1);
    assert.match(vm.result.caller, /bob/);
  });
});
