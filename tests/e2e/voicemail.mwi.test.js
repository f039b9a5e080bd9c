// Message waiting (RFC 3842) with SIPp as the phone, and the nobody-registered path, through
// kamailio: account 100 (sip:dave@…) has a mailbox and no browser at all; the gateway keeps
// its line registered.
// Subscribe mode: SIPp (tests/e2e/sipp/mwi_subscribe.xml) subscribes to message-summary for
// dave (kamailio routes the SUBSCRIBE to the gateway's line): 200, a NOTIFY of the empty
// mailbox; bob (baresip), offering PCMA only, calls dave: the mailbox answers at once, bob
// hears the greeting (600 Hz, A-law at the right level) and leaves his 440 Hz tone; SIPp then
// gets `Messages-Waiting: yes`, `Voice-Message: 1/0`, and unsubscribes (`Expires: 0`, a
// terminated NOTIFY). Another event package gets 489 (mwi_refused.xml). SIPp's exit code and
// its regexp checks decide.
// Unsolicited mode: once bob's call is in the mailbox, SIPp registers as a second contact of
// dave and waits as UAS (mwi_unsolicited.xml); the message landing sends a NOTIFY without
// subscription to dave's address of record, which kamailio forks to SIPp.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startGateway } from './lib/gateway.js';
import { startKamailio, startBaresip, analyze, freeSipPort } from './lib/sip.js';
import { probe, rows } from './lib/voicemail.js';
import { cli, until, runSipp } from './lib/mailbox.js';

/** A registry with account 100 (dave, mailbox on) and a gateway with `mwi` mode, its line up. */
async function mailboxGateway(kamailio, name, mwi) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bifrons-e2e-${name}-`));
  const db = path.join(dir, 'registry.db');
  const recDir = path.join(dir, 'recordings');
  const dbUrl = `sqlite://${db}`;
  // No user on the trunk: the account's own line registers dave (no trunk-wide line).
  cli(dbUrl, ['trunk', 'add', 'kam', '--registrar', kamailio.registrar, '--password'], 'davepw\n');
  cli(dbUrl, ['account', 'add', '100', '--trunk', 'kam', '--uri', kamailio.uri('dave'), '--voicemail', 'true']);
  const gw = await startGateway({
    name,
    env: {
      BIFRONS_DATABASE_URL: dbUrl,
      BIFRONS_RECORDINGS_DIR: recDir,
      BIFRONS_SIP_TIMER_T1_MS: '100',
      BIFRONS_VOICEMAIL_MAX_SECONDS: '60',
      BIFRONS_VOICEMAIL_MWI: mwi,
    },
  });
  await until(() => /mailbox line open.*extension=100/.test(fs.readFileSync(gw.logFile, 'utf8')), 'mailbox line of 100 registered', 30000);
  return { dir, db, recDir, gw };
}

/** bob calls dave; waits for the message to start, lets 2 s be recorded, hangs up; the row. */
async function leaveMessage(bob, kamailio, { db, recDir }, whileRecording = async () => {}) {
  bob.command('dial', kamailio.uri('dave'));
  const [open] = await until(() => { const r = rows(db); return r.length ? r : null; }, 'message started', 30000);
  assert.equal(open.owner, '100');
  const file = path.join(recDir, open.file_path);
  await whileRecording();
  await until(() => fs.existsSync(file) && probe(file).duration >= 2, 'message audio written', 30000);
  bob.command('hangup');
  const [row] = await until(() => { const r = rows(db, `id = ${open.id}`); return r[0]?.size_bytes > 0 ? r : null; }, 'message saved', 30000);
  assert.match(row.caller, /bob/);
  return row;
}

/** The message-summary bodies SIPp received (its message trace), in order. */
function summaries(trace) {
  return [...trace.matchAll(/Messages-Waiting: (yes|no)\r?\n(?:.*\r?\n)*?Voice-Message: (\d+)\/(\d+)/g)]
    .map((m) => `${m[1]} ${m[2]}/${m[3]}`);
}

describe('message waiting to a subscribed SIP phone (SIPp), and a mailbox nobody is registered for', () => {
  let kamailio;
  let sipp;
  let bob;
  let mb;

  before(async () => {
    kamailio = await startKamailio();
    mb = await mailboxGateway(kamailio, 'voicemail-mwi', 'subscribe');
    sipp = runSipp({ name: 'mwi-subscribe', scenario: 'mwi_subscribe.xml', port: await freeSipPort(), remote: `127.0.0.1:${kamailio.port}` });
    bob = await startBaresip({ kamailio, user: 'bob', toneHz: 440, codecs: 'PCMA' });
  });
  after(async () => {
    await sipp?.stop();
    await mb?.gw.stop();
    await bob?.stop();
    await kamailio?.stop();
    if (mb?.dir) fs.rmSync(mb.dir, { recursive: true, force: true });
  });

  it('SIPp subscribed through kamailio gets 200 and the empty mailbox at once', async () => {
    await until(() => summaries(sipp.messages()).length > 0, 'first NOTIFY at SIPp', 30000);
    console.log(`# SIPp's first message-summary: ${summaries(sipp.messages())[0]}`);
    assert.deepEqual(summaries(sipp.messages()), ['no 0/0']);
  });

  it('a PCMA call to an account nobody is registered for is answered by the mailbox at once, and SIPp sees the message wait', async () => {
    const row = await leaveMessage(bob, kamailio, mb);
    const log = fs.readFileSync(mb.gw.logFile, 'utf8');
    assert.ok(log.split('\n').some((l) => /inbound call to the mailbox/.test(l) && /why=NobodyRegistered/.test(l)), 'taken at once: nobody registered');

    // The greeting in A-law: 600 Hz at the level it was made (0.3 of full scale, RMS about
    // 6950); μ-law bytes sent as PCMA would decode to a distorted, much weaker or louder wave.
    const heard = await until(() => { const w = bob.received(); return w && w.samples.length > 8000 ? w : null; }, "bob's recording");
    const greeting = heard.samples.slice(0, 8000 * 2);
    const a = analyze(greeting, heard.rate);
    let sum = 0;
    let n = 0;
    for (const s of greeting) { if (Math.abs(s) > 0) { sum += s * s; n++; } }
    const rms = Math.sqrt(sum / Math.max(1, n));
    console.log(`# bob (PCMA) heard: dominant ${a.hz} Hz, peak ${a.peak}, rms of the tone ${rms.toFixed(0)}; message ${row.duration_ms} ms`);
    assert.ok(Math.abs(a.hz - 600) <= 15, `greeting tone, got ${a.hz} Hz`);
    assert.ok(rms > 5500 && rms < 8500, `greeting level in A-law: rms ${rms}`);

    // SIPp got Messages-Waiting: yes with 1/0, answered it, unsubscribed: its checks passed.
    const code = await sipp.exited;
    console.log(`# SIPp message-summaries: ${summaries(sipp.messages()).join(', ')}; exit ${code}`);
    assert.equal(code, 0, `SIPp failed:\n${sipp.errors()}\n${sipp.messages().slice(-3000)}`);
    const bodies = summaries(sipp.messages());
    assert.equal(bodies[0], 'no 0/0');
    assert.ok(bodies.includes('yes 1/0'), bodies.join(', '));
    assert.match(sipp.messages(), /Subscription-State: terminated/);
  });

  it('another event package gets 489 with Allow-Events: message-summary', async () => {
    const refused = runSipp({ name: 'mwi-refused', scenario: 'mwi_refused.xml', port: await freeSipPort(), remote: `127.0.0.1:${kamailio.port}`, timeoutS: 30 });
    const code = await refused.exited;
    const trace = refused.messages();
    await refused.stop();
    assert.equal(code, 0, `SIPp failed:\n${trace.slice(-3000)}`);
    assert.match(trace, /SIP\/2.0 489/);
  });
});

describe('unsolicited message waiting to a SIP phone (SIPp as UAS)', () => {
  let kamailio;
  let phone;
  let bob;
  let mb;

  before(async () => {
    kamailio = await startKamailio();
    mb = await mailboxGateway(kamailio, 'voicemail-mwi-unsolicited', 'unsolicited');
    bob = await startBaresip({ kamailio, user: 'bob', toneHz: 440, codecs: 'PCMU' });
  });
  after(async () => {
    await phone?.stop();
    await mb?.gw.stop();
    await bob?.stop();
    await kamailio?.stop();
    if (mb?.dir) fs.rmSync(mb.dir, { recursive: true, force: true });
  });

  it('a message left sends a NOTIFY without subscription to the account address, forked to the phone', async () => {
    const phonePort = await freeSipPort();
    await leaveMessage(bob, kamailio, mb, async () => {
      // The call is the mailbox's already: now SIPp becomes a second contact of dave.
      phone = runSipp({ name: 'mwi-unsolicited', scenario: 'mwi_unsolicited.xml', port: phonePort });
      const reg = runSipp({ name: 'mwi-register', scenario: 'register.xml', port: await freeSipPort(), remote: `127.0.0.1:${kamailio.port}`,
        extra: ['-key', 'contact_port', String(phonePort), '-au', 'dave', '-ap', 'davepw'], timeoutS: 30 });
      const regCode = await reg.exited;
      const regTrace = reg.messages();
      await reg.stop();
      assert.equal(regCode, 0, `SIPp REGISTER failed:\n${regTrace.slice(-3000)}`);
    });
    const code = await phone.exited;
    const trace = phone.messages();
    console.log(`# unsolicited NOTIFY at SIPp: ${summaries(trace).join(', ')}; exit ${code}`);
    assert.equal(code, 0, `SIPp failed:\n${phone.errors()}\n${trace.slice(-3000)}`);
    assert.ok(summaries(trace).includes('yes 1/0'), summaries(trace).join(', '));
  });
});
