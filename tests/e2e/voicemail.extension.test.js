// The mailbox extension, through kamailio: `[voicemail] extension = "*97"` names registry
// account *97 (sip:erin@…), whose line the gateway keeps registered. bob leaves a message
// (his 440 Hz tone) in mailbox 100 (sip:dave@…, nobody registered). The mailbox owner's desk
// phone (baresip "dave", its message waiting subscribed for dave) dials the extension: the
// gateway knows the mailbox from the caller's address and asks for the PIN; after a wrong
// PIN and the right one (RFC 4733 digits) it beeps once (one new message) and plays the
// message; `7` deletes it (row and file); then the gateway hangs up. The phone's recording
// holds the message's tone; its message waiting goes back to 0/0.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway } from './lib/gateway.js';
import { startKamailio, startBaresip } from './lib/sip.js';
import { probe, rows } from './lib/voicemail.js';
import { cli, until, setPin, startMwiPhone, secondsOf } from './lib/mailbox.js';

describe('the mailbox extension from a desk phone', () => {
  let kamailio;
  let phone;
  let mwi;
  let bob;
  let gw;
  let dir;
  let db;
  let recDir;
  const log = () => fs.readFileSync(gw.logFile, 'utf8');

  /** Keys `digits` on the phone's call, RFC 4733, one after the other. */
  async function key(digits) {
    for (const d of digits) {
      await phone.command('sndcode', d);
      await sleep(400);
    }
  }

  before(async () => {
    kamailio = await startKamailio();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-vmext-'));
    db = path.join(dir, 'registry.db');
    recDir = path.join(dir, 'recordings');
    const dbUrl = `sqlite://${db}`;
    cli(dbUrl, ['trunk', 'add', 'kam', '--registrar', kamailio.registrar, '--password'], 'davepw\n');
    cli(dbUrl, ['trunk', 'add', 'kam-vm', '--registrar', kamailio.registrar, '--password'], 'erinpw\n');
    cli(dbUrl, ['account', 'add', '100', '--trunk', 'kam', '--uri', kamailio.uri('dave'), '--voicemail', 'true']);
    cli(dbUrl, ['account', 'add', '*97', '--trunk', 'kam-vm', '--uri', kamailio.uri('erin')]);
    gw = await startGateway({
      name: 'voicemail-extension',
      env: {
        BIFRONS_DATABASE_URL: dbUrl,
        BIFRONS_RECORDINGS_DIR: recDir,
        BIFRONS_SIP_TIMER_T1_MS: '100',
        BIFRONS_VOICEMAIL_MAX_SECONDS: '60',
        BIFRONS_VOICEMAIL_EXTENSION: '*97',
        BIFRONS_VOICEMAIL_MWI: 'subscribe',
      },
    });
    const id = spawnSync('sqlite3', [db, "SELECT id FROM sip_accounts WHERE extension = '100'"], { encoding: 'utf8' }).stdout.trim();
    await setPin(gw, dbUrl, id, '4711');
    await until(() => /mailbox line open.*extension=100/.test(log()) && /mailbox line open.*extension=\*97.*menu=true/.test(log()), 'mailbox lines registered', 30000);
    phone = await startBaresip({ kamailio, user: 'dave', mode: 'manual' });
    mwi = await startMwiPhone({ kamailio, user: 'dave' });
    mwi.subscribe();
    bob = await startBaresip({ kamailio, user: 'bob', toneHz: 440 });
  });
  after(async () => {
    await gw?.stop();
    await bob?.stop();
    await phone?.stop();
    mwi?.close();
    await kamailio?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** bob leaves a message, `phone` hears it through the menu and deletes it with `7`. */
  async function menuCall(codec) {
    const count = (re) => (log().match(new RegExp(re, 'g')) || []).length;
    const summaries = mwi.bodies().length;
    // Earlier calls left one of each log line below.
    const answered = count('mailbox menu answered');
    bob.command('dial', kamailio.uri('dave'));
    const [open] = await until(() => { const r = rows(db); return r.length ? r : null; }, 'message started', 30000);
    const file = path.join(recDir, open.file_path);
    await until(() => fs.existsSync(file) && probe(file).duration >= 3, 'message audio written', 30000);
    bob.command('hangup');
    await until(() => rows(db, `id = ${open.id}`)[0]?.size_bytes > 0, 'message saved', 30000);
    await until(() => mwi.bodies().slice(summaries).some((b) => b.new === 1), 'the phone sees 1 new message', 30000);

    phone.command('dial', kamailio.uri('erin'));
    await until(() => count('mailbox menu answered') > answered, 'the menu answers', 30000);
    const opus = log().match(/mailbox menu answered.*/g)[answered].includes('opus=true');
    assert.equal(opus, codec === 'opus', `the menu answered in ${codec}`);
    await sleep(1500);
    await key('1234#');
    await until(() => count('mailbox menu: wrong PIN or mailbox') > answered, 'wrong PIN refused', 30000);
    // The error tone comes after a second's delay; then the PIN prompt again.
    await sleep(2500);
    await key('4711#');
    await until(() => count('mailbox menu: logged in.*new=1') > answered, 'logged in with one new message', 30000);
    await until(() => count('mailbox menu: playing message') > answered, 'message playing', 30000);
    await sleep(2000);
    await key('7');
    await until(() => count('mailbox menu: message deleted') > answered, 'message deleted', 30000);
    await until(() => count('mailbox menu over') > answered, 'the menu hangs up', 30000);

    assert.equal(rows(db, `id = ${open.id}`).length, 0, 'the row is gone');
    assert.ok(!fs.existsSync(file), 'the file is gone');
    const heard = await until(() => { const w = phone.received(); return w && w.samples.length > 8000 ? w : null; }, "the phone's recording");
    const tone = secondsOf(heard.samples, heard.rate, 440);
    const beeps = secondsOf(heard.samples, heard.rate, 1000);
    console.log(`# the ${codec} phone heard ${(heard.samples.length / heard.rate).toFixed(1)} s: ${tone} s of the message's 440 Hz, ${beeps} s of 1000 Hz count beeps`);
    assert.ok(tone >= 1.0, `the message was heard: ${tone} s of 440 Hz`);
    assert.ok(beeps >= 0.1, `one count beep: ${beeps} s of 1000 Hz`);
    const last = await until(() => { const b = mwi.bodies(); const l = b[b.length - 1]; return l && l.new === 0 && l.old === 0 ? l : null; }, 'message waiting back to 0/0', 30000);
    console.log(`# phone's message-summary after the deletion: ${JSON.stringify(last)}`);
  }

  it('PIN, one beep, the message, 7 deletes it, hang up; message waiting back to 0/0', async () => {
    await menuCall('PCMU');
  });

  it('the same from an Opus-only desk phone: tones and message in Opus', async () => {
    await phone.stop();
    phone = await startBaresip({ kamailio, user: 'dave', mode: 'manual', codecs: 'opus' });
    await menuCall('opus');
  });
});
