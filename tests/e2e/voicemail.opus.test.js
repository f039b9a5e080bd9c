// Opus callers at the mailbox: bob (baresip) offers Opus only (48 kHz stereo) and calls
// account 100 (sip:dave@…) through kamailio while nobody is registered for it. The mailbox
// line answers in Opus: bob hears the greeting (its recording's dominant frequency is the
// 600 Hz default tone), leaves his 440 Hz tone, hangs up; the message is an Ogg/Opus file
// ffprobe decodes, holding the tone, with a row of bob's caller id.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startGateway } from './lib/gateway.js';
import { startKamailio, startBaresip, analyze } from './lib/sip.js';
import { probe, rows } from './lib/voicemail.js';
import { cli, until } from './lib/mailbox.js';

describe('a mailbox answering an Opus-only SIP caller', () => {
  let kamailio;
  let bob;
  let gw;
  let dir;
  let db;
  let recDir;

  before(async () => {
    kamailio = await startKamailio();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-vmopus-'));
    db = path.join(dir, 'registry.db');
    recDir = path.join(dir, 'recordings');
    const dbUrl = `sqlite://${db}`;
    cli(dbUrl, ['trunk', 'add', 'kam', '--registrar', kamailio.registrar, '--password'], 'davepw\n');
    cli(dbUrl, ['account', 'add', '100', '--trunk', 'kam', '--uri', kamailio.uri('dave'), '--voicemail', 'true']);
    gw = await startGateway({
      name: 'voicemail-opus',
      env: {
        BIFRONS_DATABASE_URL: dbUrl,
        BIFRONS_RECORDINGS_DIR: recDir,
        BIFRONS_SIP_TIMER_T1_MS: '100',
        BIFRONS_VOICEMAIL_MAX_SECONDS: '60',
      },
    });
    await until(() => /mailbox line open.*extension=100/.test(fs.readFileSync(gw.logFile, 'utf8')), 'mailbox line of 100 registered', 30000);
    bob = await startBaresip({ kamailio, user: 'bob', toneHz: 440, codecs: 'opus/48000/2' });
  });
  after(async () => {
    await gw?.stop();
    await bob?.stop();
    await kamailio?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers in Opus: bob hears the greeting and his tone is recorded', async () => {
    bob.command('dial', kamailio.uri('dave'));
    const [open] = await until(() => { const r = rows(db); return r.length ? r : null; }, 'message started', 30000);
    const file = path.join(recDir, open.file_path);
    await until(() => fs.existsSync(file) && probe(file).duration >= 2, 'message audio written', 30000);
    bob.command('hangup');
    const [row] = await until(() => { const r = rows(db, `id = ${open.id}`); return r[0]?.size_bytes > 0 ? r : null; }, 'message saved', 30000);
    assert.match(row.caller, /bob/);
    assert.match(bob.log(), /Set audio encoder: opus 48000Hz/, 'bob speaks Opus');

    const p = probe(file);
    const pcm = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', '1', '-ar', '8000', '-'], { maxBuffer: 64 << 20 });
    assert.equal(pcm.status, 0, `ffmpeg decodes the message: ${pcm.stderr}`);
    const samples = [];
    for (let i = 0; i + 1 < pcm.stdout.length; i += 2) samples.push(pcm.stdout.readInt16LE(i));
    const m = analyze(samples, 8000);
    console.log(`# message ${row.file_path}: ffprobe ${p.codec} ${p.duration} s, row ${row.duration_ms} ms, ${row.size_bytes} bytes; audio rms ${m.rms.toFixed(0)}, dominant ${m.hz} Hz`);
    assert.equal(p.codec, 'opus', p.stderr);
    assert.ok(p.duration > 1.5, `message length ${p.duration} s`);
    assert.ok(m.rms > 500 && Math.abs(m.hz - 440) <= 15, `the caller's tone in the message: ${JSON.stringify(m)}`);

    // bob's recording of what he heard (48 kHz): the 600 Hz greeting first.
    const heard = await until(() => { const w = bob.received(); return w && w.samples.length > w.rate ? w : null; }, "bob's recording");
    const a = analyze(heard.samples.slice(0, heard.rate * 2), heard.rate);
    console.log(`# bob (Opus) heard: dominant ${a.hz} Hz, peak ${a.peak}, rms ${a.rms.toFixed(0)} at ${heard.rate} Hz`);
    assert.ok(a.rms > 1000 && Math.abs(a.hz - 600) <= 15, `greeting tone, got ${JSON.stringify(a)}`);
  });
});
