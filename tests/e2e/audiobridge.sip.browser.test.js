// SIP participants of the audio bridge with real peers: kamailio (registrar/proxy), baresip
// phones playing tones and recording what they hear, and a janus.js participant in headless
// Chromium sending a 1000 Hz tone. The gateway's registry has trunk `kam` (kamailio, as dave)
// and account 100 (sip:dave@kamailio).
// - dial-out: `dial` calls bob through account 100; bob joins the room (`joined` with
//   `sip: true`), the browser hears bob's 440 Hz and bob's recording holds the browser's
//   1000 Hz; bob hangs up → `leaving`.
// - kick: a dialled bob kicked → the gateway's BYE (kamailio logs it, baresip ends the call).
// - dial-in: carol calls dave (the room's extension 100); the room has a PIN: a wrong PIN
//   keeps her out, the right one (RFC 4733 digits then #) puts her in; the browser hears her
//   700 Hz. Before typing she hears the PIN prompt (850 Hz beeps, checked in her recording).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway } from './lib/gateway.js';
import { startKamailio, startBaresip, analyze } from './lib/sip.js';
import AudioBridgePlugin from 'janode/plugins/audiobridge';
import { connect } from './lib/janode.js';
import { startPageServer, launchChromium, waitInPage, joinPage } from './lib/audiobridge.js';
import { cli as registryCli, until } from './lib/mailbox.js';

const ROOM = 7100;
const SECRET = 'room-secret';
const BROWSER_HZ = 1000;

/** The page's audio bridge events so far. */
const messages = (p) => p.page.evaluate(() => window.e2e.messages);

/** Waits until the browser hears `hz` as the loudest tone. */
function hears(p, hz, what) {
  return waitInPage(p.page, (f) => window.hearing(f), (h) => h !== null && h.rms > 0.01 && Math.abs(h.dominantHz - hz) < 25, what, [hz, BROWSER_HZ]);
}

/** Waits until a baresip phone's recording of the call has `seconds` of audio, and analyses it. */
async function phoneHeard(phone, seconds) {
  const wav = await until(() => { const w = phone.received(); return w && w.samples.length > seconds * w.rate ? w : null; }, `${phone.user}'s recording`);
  return analyze(wav.samples.slice(-2 * wav.rate), wav.rate);
}

describe('audio bridge SIP participants (kamailio + baresip)', () => {
  let kamailio;
  let bob;
  let gw;
  let site;
  let browser;
  let alice;
  let dir;
  let conn;
  let mod;

  before(async () => {
    kamailio = await startKamailio();
    bob = await startBaresip({ kamailio, user: 'bob', toneHz: 440, codecs: 'PCMU' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-absip-'));
    const dbUrl = `sqlite://${path.join(dir, 'registry.db')}`;
    const cli = (args, input = '') => registryCli(dbUrl, args, input);
    cli(['trunk', 'add', 'kam', '--registrar', kamailio.registrar, '--username', 'dave', '--password'], 'davepw\n');
    cli(['account', 'add', '100', '--trunk', 'kam', '--uri', kamailio.uri('dave')]);
    gw = await startGateway({
      name: 'audiobridge-sip',
      env: { BIFRONS_DATABASE_URL: dbUrl, BIFRONS_SIP_TIMER_T1_MS: '100' },
    });
    site = await startPageServer();
    browser = await launchChromium();
    conn = await connect(gw.wsUrl);
    mod = await (await conn.create()).attach(AudioBridgePlugin);
  });
  after(async () => {
    await conn?.close().catch(() => {});
    await browser?.close();
    await site?.close();
    await gw?.stop();
    await bob?.stop();
    await kamailio?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('dial-out: the callee joins, both sides hear each other, its hang-up is `leaving`', async () => {
    const created = await mod.create({ room: ROOM, secret: SECRET, sampling_rate: 16000 });
    assert.equal(created.room, ROOM);
    alice = await joinPage(browser, site.url, gw.wsUrl, ROOM, 'alice', BROWSER_HZ);
    await waitInPage(alice.page, () => window.e2e, (st) => st.webrtcup || st.errors.length > 0, 'alice webrtcup');
    assert.deepEqual((await alice.page.evaluate(() => window.e2e)).errors, []);
    // Bad dial requests: Janus-style codes, nothing dialled.
    const bad = [
      [{ room: ROOM, account: '100', secret: SECRET }, 483],
      [{ room: ROOM, uri: 'tel:+123', account: '100', secret: SECRET }, 484],
      [{ room: ROOM, uri: kamailio.uri('bob'), account: '999', secret: SECRET }, 484],
      [{ room: ROOM, uri: kamailio.uri('bob'), account: '100', secret: SECRET, codec: 'g729' }, 484],
      [{ room: ROOM, uri: kamailio.uri('bob'), account: '100', secret: 'wrong' }, 489],
      [{ room: 999999, uri: kamailio.uri('bob'), account: '100' }, 485],
      [{ room: ROOM, uri: 7, account: '100', secret: SECRET }, 484],
    ];
    for (const [body, code] of bad) {
      const r = await alice.page.evaluate((b) => window.request({ request: 'dial', ...b }), body);
      assert.equal(r.error_code, code, `${JSON.stringify(body)} → ${JSON.stringify(r)}`);
    }
    assert.ok(!kamailio.log().includes('NEWINVITE'), 'no call placed by a refused dial');
    const dialing = await alice.page.evaluate(([r, uri, s]) => window.request({ request: 'dial', room: r, uri, account: '100', secret: s, display: 'bob phone' }), [ROOM, kamailio.uri('bob'), SECRET]);
    console.log(`# dial answer: ${JSON.stringify(dialing)}`);
    assert.equal(dialing.audiobridge, 'dialing');
    const joined = await until(async () => (await messages(alice)).find((m) => m.audiobridge === 'joined' && m.participants?.[0]?.id === dialing.id), 'the SIP participant joined');
    assert.equal(joined.participants[0].sip, true);
    assert.match(joined.participants[0].uri, /^sip:bob@/);
    const list = await alice.page.evaluate((r) => window.request({ request: 'listparticipants', room: r }), ROOM);
    const phone = list.participants.find((p) => p.id === dialing.id);
    assert.ok(phone?.sip && phone.display === 'bob phone', JSON.stringify(list));

    const h = await hears(alice, 440, 'the browser hears bob');
    console.log(`# browser hears: dominant ${h.dominantHz.toFixed(0)} Hz, rms ${h.rms.toFixed(3)}, level 440 ${h.levels[440].toFixed(1)} dB`);
    // 3 s of the call for bob's recording, then bob hangs up (baresip completes the WAV then).
    await sleep(3000);
    bob.command('hangup');
    await until(async () => (await messages(alice)).some((m) => m.leaving === dialing.id), '`leaving` after bob hung up');
    const b = await phoneHeard(bob, 2);
    console.log(`# bob heard: peak ${b.peak}, rms ${b.rms.toFixed(0)}, dominant ${b.hz} Hz`);
    assert.ok(Math.abs(b.hz - BROWSER_HZ) <= 20 && b.rms > 300, `bob hears the browser's tone: ${JSON.stringify(b)}`);
    const after = await alice.page.evaluate((r) => window.request({ request: 'listparticipants', room: r }), ROOM);
    assert.ok(!after.participants.some((p) => p.id === dialing.id), 'no longer listed');
  });

  it('kick hangs the SIP participant up (BYE from the gateway)', async () => {
    const byesBefore = (kamailio.log().match(/REQ BYE \S+ from dave/g) || []).length;
    const dialing = await alice.page.evaluate(([r, uri, s]) => window.request({ request: 'dial', room: r, uri, account: '100', secret: s }), [ROOM, kamailio.uri('bob'), SECRET]);
    await until(async () => (await messages(alice)).some((m) => m.audiobridge === 'joined' && m.participants?.[0]?.id === dialing.id), 'dialled again');
    const kicked = await alice.page.evaluate(([r, id, s]) => window.request({ request: 'kick', room: r, id, secret: s }), [ROOM, dialing.id, SECRET]);
    assert.equal(kicked.audiobridge, 'success');
    await until(() => (kamailio.log().match(/REQ BYE \S+ from dave/g) || []).length > byesBefore, 'the BYE through kamailio', 20000);
    assert.ok(await bob.waitLog(/terminated/i, 10000), `bob's call ended:\n${bob.log().slice(-1500)}`);
    await until(async () => (await messages(alice)).some((m) => m.leaving === dialing.id || m.kicked === dialing.id), 'the room is told');
  });

  it('dial-in on the room extension, with a DTMF PIN', async () => {
    const carol = await startBaresip({ kamailio, user: 'carol', toneHz: 700, codecs: 'PCMU' });
    try {
      const room2 = ROOM + 1;
      const created = await alice.page.evaluate(([r, s]) => window.request({ request: 'create', room: r, secret: s, pin: '4321', sip_extension: '100', sampling_rate: 16000 }), [room2, SECRET]);
      assert.equal(created.audiobridge, 'created', JSON.stringify(created));
      await alice.page.evaluate((r) => window.request({ request: 'changeroom', room: r, pin: '4321' }), room2);
      await until(async () => (await messages(alice)).some((m) => m.audiobridge === 'roomchanged'), 'the browser is in the PIN room');

      const joinedIn = async () => (await alice.page.evaluate((r) => window.request({ request: 'listparticipants', room: r }), room2)).participants.find((p) => p.sip);
      carol.command('dial', kamailio.uri('dave'));
      assert.ok(await carol.waitLog(/Call established/, 20000), `carol's call is answered:\n${carol.log().slice(-1500)}`);
      // Asked for the PIN: carol hears the prompt tone before typing.
      await sleep(2500);
      // A wrong PIN: still out.
      for (const d of ['1', '1', '1', '#']) { carol.command('sndcode', d); await sleep(400); }
      await until(() => fs.readFileSync(gw.logFile, 'utf8').includes('wrong PIN'), 'the wrong PIN is noticed', 20000);
      assert.equal(await joinedIn(), undefined, 'not in with a wrong PIN');
      for (const d of ['4', '3', '2', '1', '#']) { carol.command('sndcode', d); await sleep(400); }
      const phone = await until(joinedIn, 'carol joined after the PIN');
      console.log(`# dial-in participant: ${JSON.stringify(phone)}`);
      assert.match(phone.uri, /carol/);
      const h = await hears(alice, 700, 'the browser hears carol');
      console.log(`# browser hears carol: dominant ${h.dominantHz.toFixed(0)} Hz, rms ${h.rms.toFixed(3)}`);
      carol.command('hangup');
      await until(async () => (await messages(alice)).some((m) => m.leaving === phone.id), '`leaving` after carol hung up');
      const wav = await until(() => { const w = carol.received(); return w && w.samples.length > 2 * w.rate ? w : null; }, "carol's recording");
      const prompt = analyze(wav.samples.slice(0, 2 * wav.rate), wav.rate);
      console.log(`# PIN prompt in carol's first 2 s: ${prompt.hz} Hz, rms ${prompt.rms.toFixed(0)}, peak ${prompt.peak}`);
      assert.ok(Math.abs(prompt.hz - 850) <= 10 && prompt.rms > 300, `carol heard the 850 Hz PIN prompt: ${JSON.stringify(prompt)}`);
    } finally {
      await carol.stop();
    }
  });
});
