// The SIP plugin's in-dialog requests with real peers: Chromium + janus.js ⇄ Bifrons ⇄
// kamailio ⇄ baresip. MESSAGE both ways (in and out of dialog), INFO, blind transfer (REFER)
// with its NOTIFY progress, the browser's ICE restart (`update`), the PBX's re-INVITEs (hold and
// resume from baresip, with and without `autoaccept_reinvites`), and the caller/callee of call
// recordings.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchChromium } from './lib/browser.js';
import { startSipSite, waitInPage, waitEvent, eventCount, MIC } from './lib/sip_page.js';
import { startGateway, REPO_ROOT } from './lib/gateway.js';
import { startKamailio, startBaresip } from './lib/sip.js';


describe('SIP plugin in-dialog requests with Chromium, baresip and kamailio', () => {
  let gw;
  let site;
  let browser;
  let kamailio;
  let bob; // G.711, answers automatically, its current contact is alice (MESSAGE target)
  let carol; // G.711, answers automatically: the transfer target
  let page;
  let dbDir;
  let recDir;

  before(async () => {
    kamailio = await startKamailio();
    bob = await startBaresip({ kamailio, user: 'bob', toneHz: 440, codecs: 'PCMU', contact: kamailio.uri('alice') });
    carol = await startBaresip({ kamailio, user: 'carol', toneHz: 660, codecs: 'PCMU', contact: kamailio.uri('dave') });
    dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-sipreq-'));
    recDir = path.join(dbDir, 'recordings');
    const dbUrl = `sqlite://${path.join(dbDir, 'registry.db')}`;
    // A registry account (100, dave at kamailio) for the shared-line MESSAGE test.
    const bin = process.env.BIFRONS_BIN || path.join(REPO_ROOT, 'target', 'debug', 'bifrons');
    for (const [args, input] of [
      [['trunk', 'add', 'kam', '--registrar', kamailio.registrar, '--username', 'dave', '--password'], 'davepw\n'],
      [['account', 'add', '100', '--trunk', 'kam', '--uri', kamailio.uri('dave')], ''],
      [['account', 'set-secret', '100'], 'web-secret-100\n'],
    ]) {
      const r = spawnSync(bin, args, { input, env: { ...process.env, BIFRONS_DATABASE_URL: dbUrl }, encoding: 'utf8' });
      assert.equal(r.status, 0, `bifrons ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    }
    gw = await startGateway({ name: 'sip-requests', env: { BIFRONS_DATABASE_URL: dbUrl, BIFRONS_SIP_TIMER_T1_MS: '100', BIFRONS_RECORDINGS_DIR: recDir } });
    site = await startSipSite();
    browser = await launchChromium();
    page = await browser.newPage();
    page.on('pageerror', (e) => console.log(`pageerror: ${e.message}`));
    await page.goto(site.url);
    await page.waitForFunction(() => typeof window.connect === 'function');
    await page.evaluate((s) => window.connect(s), gw.wsUrl);
    // alice: registered at kamailio with digest credentials, reachable for MESSAGEs.
    await page.evaluate(() => window.attachPhone('alice'));
    await page.evaluate(([u, p]) => window.sendRequest('alice', { request: 'register', username: u, secret: 'alicepw', proxy: p }),
      [kamailio.uri('alice'), kamailio.registrar]);
    await waitEvent(page, 'alice', 'registered');
  });

  after(async () => {
    await page?.evaluate(() => window.disconnect()).catch(() => {});
    await browser?.close();
    await site?.close();
    await gw?.stop();
    await bob?.stop();
    await carol?.stop();
    await kamailio?.stop();
    if (dbDir) fs.rmSync(dbDir, { recursive: true, force: true });
  });

  /** Calls `uri` from phone `name` and waits until audio flows. */
  async function callAndHear(name, uri, extra = {}) {
    const from = await eventCount(page, name);
    await page.evaluate(([n, u, x]) => window.call(n, u, x), [name, uri, extra]);
    const accepted = await waitEvent(page, name, 'accepted', 20000, from);
    await waitInPage(page, (n) => window.audioStats(n), name,
      (s) => s.inbound?.packetsReceived > 25 && s.inbound?.totalAudioEnergy > 0.001, `${name} hears the peer`);
    return accepted;
  }

  /** Asserts phone `name` keeps receiving audio: > 25 packets more within a few seconds. */
  async function stillHears(name, what) {
    const before = (await page.evaluate((n) => window.audioStats(n), name)).inbound;
    const after = await waitInPage(page, (n) => window.audioStats(n), name,
      (s) => s.inbound?.packetsReceived > before.packetsReceived + 25 && s.inbound.totalAudioEnergy > before.totalAudioEnergy,
      `${what}: audio still flowing`, 15000);
    return [before.packetsReceived, after.inbound.packetsReceived];
  }

  async function hangup(name) {
    const from = await eventCount(page, name);
    await page.evaluate((n) => window.sendRequest(n, { request: 'hangup' }), name);
    await waitEvent(page, name, 'hangup', 15000, from);
  }

  it('MESSAGE out of dialog both ways, in the dialog of a call, INFO in the call; recording rows name caller and callee', async () => {
    // Out of dialog, through kamailio to bob: messagesent, then messagedelivery with bob's 200.
    let from = await eventCount(page, 'alice');
    await page.evaluate((u) => window.sendRequest('alice', { request: 'message', uri: u, content: 'hello bob, out of dialog', call_id: 'e2e-msg-1' }), kamailio.uri('bob'));
    const sentOut = await waitEvent(page, 'alice', 'messagesent', 10000, from);
    assert.equal(sentOut.call_id, 'e2e-msg-1', JSON.stringify(sentOut));
    let delivery = await waitEvent(page, 'alice', 'messagedelivery', 15000, from);
    assert.equal(delivery.code, 200, JSON.stringify(delivery));
    assert.equal(delivery.reason, 'OK');
    assert.equal(delivery.call_id, 'e2e-msg-1', 'the delivery names the MESSAGE it is about');
    assert.match(kamailio.log(), /MESSAGE-BODY from alice to bob call-id e2e-msg-1: hello bob, out of dialog/);

    // A content type baresip does not take: its refusal comes back as the delivery status.
    from = await eventCount(page, 'alice');
    await page.evaluate((u) => window.sendRequest('alice', { request: 'message', uri: u, content: '{"a":1}', content_type: 'application/json' }), kamailio.uri('bob'));
    delivery = await waitEvent(page, 'alice', 'messagedelivery', 15000, from);
    console.log(`# MESSAGE of type application/json to baresip: ${delivery.code} ${delivery.reason}`);
    assert.equal(delivery.code, 415, JSON.stringify(delivery));
    assert.equal(delivery.reason, 'Unsupported Media Type');

    // bob's MESSAGE to alice (through kamailio): the browser gets `message`.
    from = await eventCount(page, 'alice');
    bob.command('message', 'hi alice from bob');
    const incoming = await waitEvent(page, 'alice', 'message', 15000, from);
    assert.equal(incoming.result.content, 'hi alice from bob', JSON.stringify(incoming));
    assert.equal(incoming.result.content_type, 'text/plain', JSON.stringify(incoming));
    assert.match(String(incoming.result.sender), /^sip:bob@/, JSON.stringify(incoming));

    // In the dialog of a call through kamailio: MESSAGE and INFO follow the dialog's route.
    const accepted = await callAndHear('alice', kamailio.uri('bob'));
    from = await eventCount(page, 'alice');
    await page.evaluate(() => window.sendRequest('alice', { request: 'message', content: 'hello bob, in the call' }));
    const sent = await waitEvent(page, 'alice', 'messagesent', 10000, from);
    assert.equal(sent.call_id, accepted.call_id, 'an in-dialog message carries the call id');
    delivery = await waitEvent(page, 'alice', 'messagedelivery', 15000, from);
    assert.equal(delivery.code, 200, JSON.stringify(delivery));
    assert.match(kamailio.log(), new RegExp(`MESSAGE-BODY from alice to bob call-id ${accepted.call_id}: hello bob, in the call`));
    const inDialog = kamailio.log().split('\n').filter((l) => /REQ MESSAGE .* from alice /.test(l));
    assert.ok(inDialog.length >= 3, `three MESSAGEs from alice through kamailio: ${inDialog.join('\n')}`);

    from = await eventCount(page, 'alice');
    const infosBefore = kamailio.log().split('\n').filter((l) => /REQ INFO .* from alice /.test(l)).length;
    await page.evaluate(() => window.sendRequest('alice', { request: 'info', type: 'application/x-bifrons-note', content: 'note=1', headers: { 'X-Bifrons-Test': 'info' } }));
    await waitEvent(page, 'alice', 'infosent', 10000, from);
    const deadline = Date.now() + 8000;
    let infosAfter = infosBefore;
    while (infosAfter === infosBefore && Date.now() < deadline) {
      await sleep(200);
      infosAfter = kamailio.log().split('\n').filter((l) => /REQ INFO .* from alice /.test(l)).length;
    }
    assert.equal(infosAfter - infosBefore, 1, 'one INFO in the dialog');

    // Recording: both rows carry who called whom.
    from = await eventCount(page, 'alice');
    await page.evaluate(() => window.sendRequest('alice', { request: 'recording', action: 'start', audio: true, peer_audio: true }));
    await waitEvent(page, 'alice', 'recordingupdated', 10000, from);
    await sleep(1500);
    from = await eventCount(page, 'alice');
    await page.evaluate(() => window.sendRequest('alice', { request: 'recording', action: 'stop' }));
    await waitEvent(page, 'alice', 'recordingupdated', 10000, from);
    const rows = spawnSync('sqlite3', [path.join(dbDir, 'registry.db'),
      "SELECT file_path || '|' || caller || '|' || callee FROM recordings WHERE kind = 'call'"], { encoding: 'utf8' });
    const lines = rows.stdout.trim().split('\n').filter(Boolean);
    console.log(`# call recording rows: ${lines.join(' ; ')}`);
    assert.equal(lines.length, 2, rows.stdout + rows.stderr);
    for (const line of lines) {
      const [, caller, callee] = line.split('|');
      assert.equal(caller, kamailio.uri('alice'), line);
      assert.equal(callee, kamailio.uri('bob'), line);
    }
    await hangup('alice');
  });

  it("a MESSAGE to a registry account reaches every tab registered for it", async () => {
    for (const tab of ['tab1', 'tab2']) {
      await page.evaluate((t) => window.attachPhone(t), tab);
      await page.evaluate((t) => window.sendRequest(t, { request: 'register', type: 'account', account: '100', secret: 'web-secret-100' }), tab);
      await waitEvent(page, tab, 'registered');
    }
    const from1 = await eventCount(page, 'tab1');
    const from2 = await eventCount(page, 'tab2');
    carol.command('message', 'hi dave, from carol');
    for (const [tab, from] of [['tab1', from1], ['tab2', from2]]) {
      const got = await waitEvent(page, tab, 'message', 15000, from);
      assert.equal(got.result.content, 'hi dave, from carol', JSON.stringify(got));
      assert.match(String(got.result.sender), /^sip:carol@/, JSON.stringify(got));
    }
    for (const tab of ['tab1', 'tab2']) {
      await page.evaluate((t) => window.sendRequest(t, { request: 'unregister' }), tab);
      await waitEvent(page, tab, 'unregistered');
    }
  });

  it('blind transfer: the browser transfers baresip bob to carol; carol gets the call, the browser sees the NOTIFY progress; a MESSAGE to nowhere is delivered 408', async () => {
    await page.evaluate(() => window.attachPhone('xfer'));
    await page.evaluate(() => window.sendRequest('xfer', { request: 'register', type: 'guest' }));
    await waitEvent(page, 'xfer', 'registered');
    // A guest's MESSAGE to nowhere: messagedelivery 408 once the SIP timers give up (64 × T1).
    const fromLost = await eventCount(page, 'xfer');
    const t0 = Date.now();
    await page.evaluate(() => window.sendRequest('xfer', { request: 'message', uri: 'sip:nobody@127.0.0.1:9', content: 'anyone?' }));
    await waitEvent(page, 'xfer', 'messagesent', 10000, fromLost);
    const lost = await waitEvent(page, 'xfer', 'messagedelivery', 20000, fromLost);
    console.log(`# MESSAGE to an unreachable peer: ${lost.code} ${lost.reason} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.equal(lost.code, 408, JSON.stringify(lost));
    await callAndHear('xfer', bob.directUri);
    const from = await eventCount(page, 'xfer');
    await page.evaluate((u) => window.sendRequest('xfer', { request: 'transfer', uri: u }), kamailio.uri('carol'));
    const transferring = await waitEvent(page, 'xfer', 'transferring', 10000, from);
    assert.ok(transferring.call_id, JSON.stringify(transferring));
    const done = await waitInPage(page, (n) => window.eventsOf(n), 'xfer',
      (evs) => evs.slice(from).some((e) => e.event === 'notify' && /^SIP\/2\.0 2\d\d/.test(e.result.content)),
      'a notify with the 2xx sipfrag', 20000);
    const notifies = done.slice(from).filter((e) => e.event === 'notify').map((e) => e.result);
    console.log(`# transfer NOTIFYs: ${notifies.map((n) => `${n.substate}: ${n.content.trim()}`).join(' | ')}`);
    for (const n of notifies) {
      assert.equal(n.notify, 'refer', JSON.stringify(n));
      assert.equal(n['content-type'], 'message/sipfrag', JSON.stringify(n));
    }
    assert.ok(await carol.waitLog(/Call established/, 10000), `carol got the transferred call:\n${carol.log().slice(-1500)}`);
    // The browser ends its side (if bob has not already).
    const evs = await page.evaluate((n) => window.eventsOf(n), 'xfer');
    if (!evs.slice(from).some((e) => e.event === 'hangup')) await hangup('xfer');
    // Awaited: baresip acts on a command when it reads it, and a hang-up read after the next
    // test's call came in would end that call instead.
    await carol.command('hangup');
    await bob.command('hangup');
  });

  it('update: an ICE restart from the browser is answered and refreshes the SIP leg; audio goes on', async () => {
    await page.evaluate(() => window.attachPhone('ice'));
    await page.evaluate(() => window.sendRequest('ice', { request: 'register', type: 'guest' }));
    await waitEvent(page, 'ice', 'registered');
    await callAndHear('ice', kamailio.uri('bob'));
    // ICE credentials of both sides, and whether the offer/answer is settled.
    const iceOf = (n) => {
      const pc = window.phones[n].handle.webrtcStuff.pc;
      const u = (d) => (d?.sdp.match(/a=ice-ufrag:(\S+)/) || [])[1];
      return { local: u(pc.localDescription), remote: u(pc.remoteDescription), state: pc.signalingState };
    };
    const before = await page.evaluate(iceOf, 'ice');
    const reinvites = () => kamailio.log().split('REINVITE-SDP').length;
    const reinvitesBefore = reinvites();
    const from = await eventCount(page, 'ice');
    const sent = await page.evaluate((mic) => new Promise((resolve) => {
      const phone = window.phones.ice;
      phone.handle.createOffer({
        iceRestart: true,
        tracks: [{ type: 'audio', capture: mic, recv: true }],
        success: (jsep) => phone.handle.send({ message: { request: 'update' }, jsep, success: () => resolve('ack'), error: (e) => resolve(`error: ${e}`) }),
        error: (e) => resolve(`createOffer: ${e?.message || e}`),
      });
    }), MIC);
    assert.equal(sent, 'ack');
    await waitEvent(page, 'ice', 'updating', 10000, from);
    const accepted = await waitEvent(page, 'ice', 'accepted', 15000, from);
    assert.equal(accepted.jsep, 'answer', 'the answer to the update comes with accepted');
    const after = await waitInPage(page, iceOf, 'ice', (u) => u.state === 'stable', 'renegotiation settled');
    console.log(`# ICE restart: browser ufrag ${before.local} → ${after.local}, gateway ufrag ${before.remote} → ${after.remote}`);
    assert.notEqual(after.local, before.local, 'the browser restarted ICE');
    assert.notEqual(after.remote, before.remote, 'the gateway answered with new ICE credentials');
    assert.ok(reinvites() > reinvitesBefore, 'a re-INVITE went to the PBX (session refresh)');
    const [p0, p1] = await stillHears('ice', 'after the ICE restart');
    console.log(`# after the ICE restart the browser still receives: ${p0} → ${p1} packets`);
    await hangup('ice');
  });

  it('re-INVITEs from baresip (hold, resume): answered by the gateway, or offered to the browser as updatingcall with autoaccept_reinvites false', async () => {
    await page.evaluate(() => window.attachPhone('held'));
    await page.evaluate(() => window.sendRequest('held', { request: 'register', type: 'guest' }));
    await waitEvent(page, 'held', 'registered');

    // The gateway's log line for each re-INVITE it answered, by call and offered direction.
    const answered = async (callId, direction) => {
      const needle = `PBX re-INVITE answered by the gateway call_id=${callId} direction=Some(${direction})`;
      const deadline = Date.now() + 10000;
      while (Date.now() < deadline) {
        if (fs.readFileSync(gw.logFile, 'utf8').includes(needle)) return true;
        await sleep(200);
      }
      return false;
    };
    // Default (autoaccept_reinvites true): the browser is not involved, audio resumes.
    const first = await callAndHear('held', bob.directUri);
    let from = await eventCount(page, 'held');
    bob.command('hold');
    assert.ok(await answered(first.call_id, 'SendOnly'), "bob's hold re-INVITE (sendonly) answered");
    await sleep(1000);
    bob.command('resume');
    assert.ok(await answered(first.call_id, 'SendRecv'), "bob's resume re-INVITE (sendrecv) answered");
    let [p0, p1] = await stillHears('held', 'after bob held and resumed');
    console.log(`# autoaccept: after bob's hold/resume the browser receives ${p0} → ${p1} packets`);
    let evs = await page.evaluate((n) => window.eventsOf(n), 'held');
    assert.ok(!evs.slice(from).some((e) => e.event === 'updatingcall' || e.event === 'hangup'), JSON.stringify(evs.slice(from)));
    await hangup('held');

    // autoaccept_reinvites false: each re-INVITE gives updatingcall with an offer; the browser
    // answers with update, the gateway says updated.
    await sleep(500);
    await callAndHear('held', bob.directUri, { autoaccept_reinvites: false });
    for (const cmd of ['hold', 'resume']) {
      from = await eventCount(page, 'held');
      bob.command(cmd);
      const updating = await waitEvent(page, 'held', 'updatingcall', 15000, from);
      assert.equal(updating.jsep, 'offer', JSON.stringify(updating));
      const answered = await page.evaluate(() => new Promise((resolve) => {
        const phone = window.phones.held;
        phone.handle.createAnswer({
          jsep: phone.lastOffer,
          tracks: [{ type: 'audio', capture: true, recv: true }],
          success: (jsep) => phone.handle.send({ message: { request: 'update' }, jsep, success: () => resolve('ack'), error: (e) => resolve(`error: ${e}`) }),
          error: (e) => resolve(`createAnswer: ${e?.message || e}`),
        });
      }));
      assert.equal(answered, 'ack');
      await waitEvent(page, 'held', 'updated', 10000, from);
    }
    [p0, p1] = await stillHears('held', 'after updatingcall/update twice');
    console.log(`# updatingcall flow: after bob's hold/resume the browser receives ${p0} → ${p1} packets`);
    await hangup('held');
  });
});
