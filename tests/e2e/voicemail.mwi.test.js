// Message waiting (RFC 3842) and the nobody-registered path, through kamailio: account 100
// (sip:dave@…) has a mailbox and no browser at all; the gateway keeps its line registered. A
// desk phone's message-waiting side subscribes to message-summary for dave (kamailio routes
// the SUBSCRIBE to the gateway's line) and reads the NOTIFYs. bob (baresip), offering PCMA
// only, calls dave: the mailbox answers at once, bob hears the greeting (600 Hz, A-law at the
// right level) and leaves his 440 Hz tone; the phone then gets `Messages-Waiting: yes`,
// `Voice-Message: 1/0`. Another event package gets 489; `Expires: 0` ends the subscription
// with a `terminated` NOTIFY.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startGateway } from './lib/gateway.js';
import { startKamailio, startBaresip, analyze } from './lib/sip.js';
import { probe, rows } from './lib/voicemail.js';
import { cli, until, startMwiPhone } from './lib/mailbox.js';

describe('message waiting to a SIP phone, and a mailbox nobody is registered for', () => {
  let kamailio;
  let phone;
  let bob;
  let gw;
  let dir;
  let db;
  let recDir;

  before(async () => {
    kamailio = await startKamailio();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-vmmwi-'));
    db = path.join(dir, 'registry.db');
    recDir = path.join(dir, 'recordings');
    const dbUrl = `sqlite://${db}`;
    // No user on the trunk: the account's own line registers dave (no trunk-wide line).
    cli(dbUrl, ['trunk', 'add', 'kam', '--registrar', kamailio.registrar, '--password'], 'davepw\n');
    cli(dbUrl, ['account', 'add', '100', '--trunk', 'kam', '--uri', kamailio.uri('dave'), '--voicemail', 'true']);
    gw = await startGateway({
      name: 'voicemail-mwi',
      env: {
        BIFRONS_DATABASE_URL: dbUrl,
        BIFRONS_RECORDINGS_DIR: recDir,
        BIFRONS_SIP_TIMER_T1_MS: '100',
        BIFRONS_VOICEMAIL_MAX_SECONDS: '60',
        BIFRONS_VOICEMAIL_MWI: 'subscribe',
      },
    });
    await until(() => /mailbox line open.*extension=100/.test(fs.readFileSync(gw.logFile, 'utf8')), 'mailbox line of 100 registered', 30000);
    phone = await startMwiPhone({ kamailio, user: 'dave' });
    phone.subscribe();
    bob = await startBaresip({ kamailio, user: 'bob', toneHz: 440, codecs: 'PCMA' });
  });
  after(async () => {
    await gw?.stop();
    await bob?.stop();
    phone?.close();
    await kamailio?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the phone subscribed gets 200 and the empty mailbox at once', async () => {
    const [first] = await until(() => { const b = phone.bodies(); return b.length ? b : null; }, 'first NOTIFY on the phone', 30000);
    console.log(`# phone's first message-summary: ${JSON.stringify(first)}, SUBSCRIBE answered ${JSON.stringify(phone.state.responses[0])}`);
    assert.deepEqual(phone.state.responses[0], { code: 200, expires: '600', allowEvents: null, cseq: '1 SUBSCRIBE' });
    assert.equal(first.event, 'message-summary');
    assert.match(first.substate, /^active;expires=\d+/);
    assert.deepEqual([first.waiting, first.new, first.old], [false, 0, 0]);
  });

  it('a PCMA call to an account nobody is registered for is answered by the mailbox at once, and the phone sees the message wait', async () => {
    bob.command('dial', kamailio.uri('dave'));
    const [open] = await until(() => { const r = rows(db); return r.length ? r : null; }, 'message started', 30000);
    assert.equal(open.owner, '100');
    const file = path.join(recDir, open.file_path);
    await until(() => fs.existsSync(file) && probe(file).duration >= 2, 'message audio written', 30000);
    bob.command('hangup');
    const [row] = await until(() => { const r = rows(db, `id = ${open.id}`); return r[0]?.size_bytes > 0 ? r : null; }, 'message saved', 30000);
    assert.match(row.caller, /bob/);
    const log = fs.readFileSync(gw.logFile, 'utf8');
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
    console.log(`# bob (PCMA) heard: dominant ${a.hz} Hz, peak ${a.peak}, rms of the tone ${rms.toFixed(0)}`);
    assert.ok(Math.abs(a.hz - 600) <= 15, `greeting tone, got ${a.hz} Hz`);
    assert.ok(rms > 5500 && rms < 8500, `greeting level in A-law: rms ${rms}`);

    const waiting = await until(() => phone.bodies().find((b) => b.waiting), 'Messages-Waiting: yes on the phone', 30000);
    console.log(`# phone's message-summary after the message: ${JSON.stringify(waiting)}`);
    assert.deepEqual([waiting.waiting, waiting.new, waiting.old], [true, 1, 0]);
  });

  it('another event package gets 489; Expires: 0 ends the subscription with a terminated NOTIFY', async () => {
    phone.subscribe('presence', 600, false);
    const refused = await until(() => phone.state.responses.find((r) => r.code === 489), '489 Bad Event', 30000);
    assert.equal(refused.allowEvents, 'message-summary');
    const before = phone.state.notifies.length;
    phone.subscribe('message-summary', 0, true);
    const last = await until(() => phone.state.notifies.slice(before).find((n) => /^terminated/.test(n.substate)), 'terminated NOTIFY', 30000);
    const ok = await until(() => phone.state.responses.find((r) => r.code === 200 && r.cseq === `${phone.state.cseq} SUBSCRIBE`), 'unsubscribe answered', 30000);
    console.log(`# unsubscribe: ${JSON.stringify(ok)}, last NOTIFY ${JSON.stringify(last)}`);
    assert.equal(ok.expires, '0');
  });
});
