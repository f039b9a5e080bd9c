// SDES-SRTP towards the PBX with real peers: Chromium + janus.js (fake microphone) ⇄ Bifrons ⇄
// kamailio ⇄ baresip with its srtp module. `carol` requires SRTP (`mediaenc=srtp-mand`: she
// offers and accepts only RTP/SAVP with a=crypto, and decrypts or drops every packet), `bob`
// speaks plain RTP only. Audio is checked at both ends as in sip.browser.test.js.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSipSite, waitInPage, waitEvent, eventCount } from './lib/sip_page.js';
import { startGateway, REPO_ROOT } from './lib/gateway.js';
import { launchChromium } from './lib/browser.js';
import { startKamailio, startBaresip, analyze } from './lib/sip.js';


/** `accept` of the pending `incomingcall` with `body` extra fields (e.g. `srtp`). */
function acceptWith(page, name, body) {
  return page.evaluate(([n, extra]) => new Promise((resolve, reject) => {
    const phone = window.phones[n];
    phone.handle.createAnswer({
      jsep: phone.incoming,
      tracks: [{ type: 'audio', capture: { echoCancellation: false, noiseSuppression: false, autoGainControl: false }, recv: true }],
      success: (jsep) => phone.handle.send({ message: { request: 'accept', ...extra }, jsep, success: () => resolve('ack'), error: (e) => reject(new Error(String(e))) }),
      error: (e) => reject(new Error(`createAnswer: ${e?.message || e}`)),
    });
  }), [name, body]);
}

describe('SIP plugin: SDES-SRTP with baresip and kamailio', () => {
  let gw;
  let site;
  let browser;
  let kamailio;
  let carol; // SRTP mandatory (RTP/SAVP), G.711, answers automatically, plays 440 Hz
  let bob; // plain RTP only, G.711, answers automatically, plays 660 Hz
  let erin; // SRTP optional (crypto lines in RTP/AVP), G.711, plays 550 Hz
  let page;
  let ids;
  let dbDir;
  let dbUrl;

  /** Runs the gateway's CLI on the test registry; `input` goes to stdin (secrets). */
  function cli(args, input = '') {
    const bin = process.env.BIFRONS_BIN || path.join(REPO_ROOT, 'target', 'debug', 'bifrons');
    const r = spawnSync(bin, args, { input, env: { ...process.env, BIFRONS_DATABASE_URL: dbUrl }, encoding: 'utf8' });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  }

  async function sipInfo(handle = ids) {
    const res = await fetch(`${gw.adminHttpUrl}/${handle.sessionId}/${handle.handleId}`, {
      method: 'POST',
      body: JSON.stringify({ janus: 'handle_info', transaction: 'hi', admin_secret: gw.adminSecret }),
    });
    const reply = await res.json();
    assert.equal(reply.janus, 'success', JSON.stringify(reply));
    return reply.info.plugin_specific;
  }

  /** Polls `handle_info` until `check(plugin_specific)` holds (a hang guard of 30 s). */
  async function waitInfo(check, what, handle = ids) {
    const deadline = Date.now() + 30000;
    for (;;) {
      const sip = await sipInfo(handle);
      if (check(sip)) return sip;
      if (Date.now() > deadline) throw new Error(`${what} not reached; last ${JSON.stringify(sip)}`);
      await sleep(200);
    }
  }

  /** The SDP of the browser's last INVITE as kamailio logged it (its body spans lines). */
  function lastOffer() {
    const log = kamailio.log();
    const body = log.slice(log.lastIndexOf('NEWINVITE-SDP from alice'));
    const end = body.indexOf(' INFO: ', 30);
    return end > 0 ? body.slice(0, end) : body;
  }

  /** What `peer` recorded of the browser: loud, and the fake microphone's 400 Hz beep. */
  function assertHeardBrowser(peer, what) {
    const wav = peer.received();
    assert.ok(wav, `${peer.user} wrote no recording; log:\n${peer.log()}`);
    const a = analyze(wav.samples, wav.rate);
    console.log(`# ${what}: ${peer.user} heard the browser: ${wav.samples.length} samples at ${wav.rate} Hz, peak ${a.peak}, rms ${a.rms.toFixed(0)}, dominant ${a.hz} Hz`);
    assert.ok(a.peak > 1000 && a.rms > 100, `${peer.user}'s recording is silent: ${JSON.stringify(a)}`);
    assert.ok(a.hz > 300 && a.hz < 500, `the fake microphone's 400 Hz beep, got ${a.hz} Hz`);
  }

  before(async () => {
    kamailio = await startKamailio();
    carol = await startBaresip({ kamailio, user: 'carol', toneHz: 440, codecs: 'PCMU', mediaenc: 'srtp-mand' });
    bob = await startBaresip({ kamailio, user: 'bob', toneHz: 660, codecs: 'PCMU' });
    erin = await startBaresip({ kamailio, user: 'erin', toneHz: 550, codecs: 'PCMU', mediaenc: 'srtp' });
    // The registry: a trunk to kamailio (dave's credentials) that requires SRTP, set and
    // changed through the CLI, and an account on it.
    dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-sipsrtpdb-'));
    dbUrl = `sqlite://${path.join(dbDir, 'registry.db')}`;
    for (const [args, input] of [
      [['trunk', 'add', 'secure', '--registrar', kamailio.registrar, '--username', 'dave', '--codecs', 'PCMU', '--srtp', 'sdes_optional', '--password'], 'davepw\n'],
      [['trunk', 'edit', 'secure', '--srtp', 'sdes_mandatory'], ''],
      [['account', 'add', '500', '--trunk', 'secure', '--uri', kamailio.uri('dave')], ''],
      [['account', 'set-secret', '500'], 'web-secret-500\n'],
    ]) {
      const r = cli(args, input);
      assert.equal(r.status, 0, `bifrons ${args.join(' ')}: ${r.out}`);
    }
    assert.match(cli(['trunk', 'list']).out, /secure .* sdes_mandatory/);
    const bad = cli(['trunk', 'edit', 'secure', '--srtp', 'zrtp']);
    assert.notEqual(bad.status, 0);
    assert.match(bad.out, /srtp/);
    gw = await startGateway({ name: 'sip-srtp', env: { BIFRONS_DATABASE_URL: dbUrl, BIFRONS_SIP_RING_TIMEOUT: '20', RUST_LOG: 'info,bifrons_sip::rtp=debug' } /* refused packets logged */ });
    site = await startSipSite();
    browser = await launchChromium();
    page = await browser.newPage();
    page.on('pageerror', (e) => console.log(`pageerror: ${e.message}`));
    await page.goto(site.url);
    await page.waitForFunction(() => typeof window.connect === 'function');
    await page.evaluate((s) => window.connect(s), gw.wsUrl);
    // The browser is alice at kamailio: calls go through the proxy, which logs their SDP.
    ids = await page.evaluate(() => window.attachPhone('alice'));
    await page.evaluate(([u, p]) => window.sendRequest('alice', { request: 'register', username: u, secret: 'alicepw', proxy: p }),
      [kamailio.uri('alice'), kamailio.registrar]);
    await waitEvent(page, 'alice', 'registered');
  });

  after(async () => {
    await page?.evaluate(() => window.disconnect()).catch(() => {});
    await browser?.close();
    await site?.close();
    await gw?.stop();
    await carol?.stop();
    await bob?.stop();
    await erin?.stop();
    await kamailio?.stop();
    if (dbDir) fs.rmSync(dbDir, { recursive: true, force: true });
  });

  it('sdes_mandatory call to a baresip requiring SRTP: RTP/SAVP offer, accepted, audio both ways over SRTP', async () => {
    const from = await eventCount(page, 'alice');
    await page.evaluate(([uri]) => window.call('alice', uri, { srtp: 'sdes_mandatory' }), [kamailio.uri('carol')]);
    const accepted = await waitEvent(page, 'alice', 'accepted', 30000, from);
    assert.equal(accepted.jsep, 'answer');

    // The offer kamailio relayed: RTP/SAVP with both suites' crypto lines.
    const offer = lastOffer();
    assert.match(offer, /m=audio \d+ RTP\/SAVP [0-9 ]+\r?\n/, offer);
    assert.match(offer, /a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:[A-Za-z0-9+/]{40}/, offer);
    assert.match(offer, /a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:[A-Za-z0-9+/]{40}/, offer);

    const stats = await waitInPage(page, (n) => window.audioStats(n), 'alice',
      (s) => s.inbound?.packetsReceived > 50 && s.inbound?.totalAudioEnergy > 0.01, 'browser hears carol');
    console.log(`# SRTP call: browser inbound ${JSON.stringify(stats.inbound)}`);
    const heard = await waitInPage(page, (n) => window.dominantHz(n), 'alice', (d) => Math.abs(d.hz - 440) < 30, "browser hears carol's 440 Hz");
    console.log(`# the browser hears carol over SRTP at ${heard.hz.toFixed(0)} Hz (${heard.db.toFixed(0)} dB)`);

    // Every packet from carol passed SRTP authentication under her key (a plain or forged
    // packet would be refused and counted), and everything we sent her was protected.
    const sip = await waitInfo((i) => i.media?.packets_from_sip > 50 && i.media?.packets_to_sip > 50, 'media both ways');
    console.log(`# handle_info media: ${JSON.stringify(sip.media)}`);
    assert.equal(sip.media.leg, 'opus<->pcmu', JSON.stringify(sip));
    assert.equal(sip.media.srtp?.suite, 'AES_CM_128_HMAC_SHA1_80', JSON.stringify(sip.media));
    assert.ok(sip.media.srtp.protected >= sip.media.packets_to_sip - 5, JSON.stringify(sip.media));
    assert.equal(sip.media.srtp.refused, 0, JSON.stringify(sip.media));
    await sleep(1500);

    await page.evaluate(() => window.sendRequest('alice', { request: 'hangup' }));
    const hangup = await waitEvent(page, 'alice', 'hangup', 15000, from);
    assert.equal(hangup.code, 200, JSON.stringify(hangup));
    await sleep(500);
    assertHeardBrowser(carol, 'outgoing SRTP call');
  });

  it('srtp_profile AES_CM_128_HMAC_SHA1_32: only that suite is offered, and carol uses it', async () => {
    const from = await eventCount(page, 'alice');
    await page.evaluate(([uri]) => window.call('alice', uri, { srtp: 'sdes_mandatory', srtp_profile: 'AES_CM_128_HMAC_SHA1_32' }), [kamailio.uri('carol')]);
    await waitEvent(page, 'alice', 'accepted', 30000, from);
    const offer = lastOffer();
    assert.match(offer, /a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:/, offer);
    assert.doesNotMatch(offer, /HMAC_SHA1_80/, offer);
    await waitInPage(page, (n) => window.dominantHz(n), 'alice', (d) => Math.abs(d.hz - 440) < 30, "browser hears carol's 440 Hz (_32)");
    const sip = await waitInfo((i) => i.media?.packets_from_sip > 50 && i.media?.srtp?.protected > 50, 'SRTP both ways (_32)');
    console.log(`# srtp_profile _32: ${JSON.stringify(sip.media)}`);
    assert.equal(sip.media.srtp.suite, 'AES_CM_128_HMAC_SHA1_32');
    assert.equal(sip.media.srtp.refused, 0, JSON.stringify(sip.media));
    await page.evaluate(() => window.sendRequest('alice', { request: 'hangup' }));
    await waitEvent(page, 'alice', 'hangup', 15000, from);
    await sleep(500);
  });

  it('sdes_mandatory towards a plain baresip fails with hangup 488; the handle calls again (sdes_optional falls back to RTP)', async () => {
    let from = await eventCount(page, 'alice');
    await page.evaluate(([uri]) => window.call('alice', uri, { srtp: 'sdes_mandatory' }), [kamailio.uri('bob')]);
    const hangup = await waitEvent(page, 'alice', 'hangup', 30000, from);
    console.log(`# mandatory SRTP to plain bob: hangup ${hangup.code} ${hangup.reason}`);
    assert.equal(hangup.code, 488, JSON.stringify(hangup));
    assert.ok(!(await page.evaluate(() => window.eventsOf('alice'))).slice(from).some((e) => e.event === 'accepted'));
    await sleep(500);

    // The same handle, the same peer: sdes_optional offers crypto in RTP/AVP; bob ignores it
    // and the call runs in plain RTP.
    from = await eventCount(page, 'alice');
    await page.evaluate(([uri]) => window.call('alice', uri, { srtp: 'sdes_optional' }), [kamailio.uri('bob')]);
    await waitEvent(page, 'alice', 'accepted', 30000, from);
    const offer = lastOffer();
    assert.match(offer, /m=audio \d+ RTP\/AVP [0-9 ]+\r?\n/, offer);
    assert.match(offer, /a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:/, offer);
    await waitInPage(page, (n) => window.audioStats(n), 'alice',
      (s) => s.inbound?.packetsReceived > 50 && s.inbound?.totalAudioEnergy > 0.01, 'browser hears bob');
    await waitInPage(page, (n) => window.dominantHz(n), 'alice', (d) => Math.abs(d.hz - 660) < 30, "browser hears bob's 660 Hz");
    const sip = await waitInfo((i) => i.media?.packets_from_sip > 50, 'media from bob');
    assert.equal(sip.media.srtp, null, `plain RTP with bob: ${JSON.stringify(sip.media)}`);
    await page.evaluate(() => window.sendRequest('alice', { request: 'hangup' }));
    await waitEvent(page, 'alice', 'hangup', 15000, from);
    await sleep(500);
  });

  it('incoming calls: a plain caller refused by accept sdes_mandatory (452); carol with SRTP → incomingcall srtp sdes_mandatory, audio both ways', async () => {
    // bob calls without SRTP: incomingcall has no srtp, accept insisting on it gets 452.
    let from = await eventCount(page, 'alice');
    bob.command('dial', kamailio.uri('alice'));
    let incoming = await waitEvent(page, 'alice', 'incomingcall', 20000, from);
    assert.equal(incoming.result.srtp, undefined, JSON.stringify(incoming.result));
    const before452 = await eventCount(page, 'alice');
    await acceptWith(page, 'alice', { srtp: 'sdes_mandatory' });
    const refused = (await waitInPage(page, (n) => window.eventsOf(n), 'alice', (e) => e.length > before452, 'accept answer'))[before452];
    assert.equal(refused.error_code, 452, JSON.stringify(refused));
    console.log(`# accept sdes_mandatory of a plain caller: ${refused.error_code} ${refused.error}`);
    await page.evaluate(() => window.sendRequest('alice', { request: 'decline' }));
    await waitEvent(page, 'alice', 'hangup', 15000, before452 + 1);
    await sleep(1000);

    // carol calls with RTP/SAVP: incomingcall says sdes_mandatory; a plain accept answers
    // with SRTP (as Janus does when the caller offers it).
    from = await eventCount(page, 'alice');
    carol.command('dial', kamailio.uri('alice'));
    incoming = await waitEvent(page, 'alice', 'incomingcall', 20000, from);
    assert.match(String(incoming.result.username), /carol/);
    assert.equal(incoming.result.srtp, 'sdes_mandatory', JSON.stringify(incoming.result));
    await acceptWith(page, 'alice', {});
    await waitEvent(page, 'alice', 'accepted', 15000, from);
    await waitInPage(page, (n) => window.audioStats(n), 'alice',
      (s) => s.inbound?.packetsReceived > 50 && s.inbound?.totalAudioEnergy > 0.01, 'browser hears carol (inbound)');
    const heard = await waitInPage(page, (n) => window.dominantHz(n), 'alice', (d) => Math.abs(d.hz - 440) < 30, "browser hears carol's 440 Hz (inbound)");
    console.log(`# inbound SRTP call: the browser hears carol at ${heard.hz.toFixed(0)} Hz`);
    const sip = await waitInfo((i) => i.media?.packets_from_sip > 50 && i.media?.srtp?.protected > 50, 'SRTP both ways (inbound)');
    console.log(`# handle_info media (inbound): ${JSON.stringify(sip.media)}`);
    assert.equal(sip.media.srtp.suite, 'AES_CM_128_HMAC_SHA1_80', JSON.stringify(sip.media));
    // RTP: every packet from carol authenticated.
    assert.equal(sip.media.srtp.refused, 0, JSON.stringify(sip.media));
    await sleep(1500);

    // carol puts the call on hold and resumes it: two re-INVITEs with RTP/SAVP. Our answers
    // keep our key (a=crypto again), so SRTP media flows on afterwards both ways.
    const reinvites = () => kamailio.log().split('REINVITE-SDP from carol').length - 1;
    const r0 = reinvites();
    carol.command('hold');
    await waitInPage(page, () => 0, null, () => reinvites() > r0, 'hold re-INVITE from carol', 15000);
    await sleep(1000);
    carol.command('resume');
    await waitInPage(page, () => 0, null, () => reinvites() > r0 + 1, 'resume re-INVITE from carol', 15000);
    const log = kamailio.log();
    assert.match(log.slice(log.lastIndexOf('REINVITE-SDP from carol')).slice(0, 2000), /RTP\/SAVP[\s\S]*a=crypto/);
    const atResume = await sipInfo();
    const resumed = await waitInfo((i) => i.media?.packets_from_sip > atResume.media.packets_from_sip + 50
      && i.media?.srtp?.protected > atResume.media.srtp.protected + 50, 'SRTP both ways after hold/resume');
    console.log(`# after carol's hold/resume re-INVITEs: ${JSON.stringify(resumed.media)}`);
    assert.equal(resumed.media.srtp.refused, 0, JSON.stringify(resumed.media));
    // carol's RTCP reports are SRTCP, and they authenticate too. (A datagram too short for
    // SRTCP reaches the RTCP port at the start of the call: refused, in rtcp_refused, and it
    // must not block the reports after it.)
    assert.ok(resumed.media.srtp.rtcp_received > 0, JSON.stringify(resumed.media));
    await waitInPage(page, (n) => window.dominantHz(n), 'alice', (d) => Math.abs(d.hz - 440) < 30, "browser hears carol's 440 Hz after resume");
    assert.ok(!(await page.evaluate(() => window.eventsOf('alice'))).slice(from).some((e) => e.event === 'hangup'), 'the call survived');
    carol.command('hangup');
    const hangup = await waitEvent(page, 'alice', 'hangup', 15000, from);
    assert.equal(hangup.code, 200, JSON.stringify(hangup));
    await sleep(500);
    assertHeardBrowser(carol, 'incoming SRTP call');
  });

  it("an account whose trunk requires SRTP calls with RTP/SAVP without asking for it", async () => {
    const acct = await page.evaluate(() => window.attachPhone('acct'));
    await page.evaluate(() => window.sendRequest('acct', { request: 'register', type: 'account', account: '500', secret: 'web-secret-500' }));
    await waitEvent(page, 'acct', 'registered');
    const from = await eventCount(page, 'acct');
    await page.evaluate(([uri]) => window.call('acct', uri), [kamailio.uri('carol')]);
    await waitEvent(page, 'acct', 'accepted', 30000, from);
    const log = kamailio.log();
    const offer = log.slice(log.lastIndexOf('NEWINVITE-SDP from dave'));
    assert.match(offer.slice(0, 1500), /m=audio \d+ RTP\/SAVP 0 101\r?\n/, offer.slice(0, 1500));
    await waitInPage(page, (n) => window.dominantHz(n), 'acct', (d) => Math.abs(d.hz - 440) < 30, "browser hears carol's 440 Hz (account)");
    const sip = await waitInfo((i) => i.media?.srtp?.protected > 50 && i.media?.packets_from_sip > 50, 'SRTP both ways (account)', acct);
    console.log(`# account on an SRTP trunk: ${JSON.stringify(sip.media)}`);
    assert.equal(sip.media.srtp.refused, 0, JSON.stringify(sip.media));
    await page.evaluate(() => window.sendRequest('acct', { request: 'hangup' }));
    await waitEvent(page, 'acct', 'hangup', 15000, from);
  });

  it('baresip offering optional SRTP (crypto in RTP/AVP): incomingcall srtp sdes_optional, answered with SRTP', async () => {
    const from = await eventCount(page, 'alice');
    erin.command('dial', kamailio.uri('alice'));
    const incoming = await waitEvent(page, 'alice', 'incomingcall', 20000, from);
    assert.equal(incoming.result.srtp, 'sdes_optional', JSON.stringify(incoming.result));
    const log = kamailio.log();
    const offer = log.slice(log.lastIndexOf('NEWINVITE-SDP from erin')).slice(0, 2000);
    assert.match(offer, /m=audio \d+ RTP\/AVP [\s\S]*a=crypto:/, offer);
    await acceptWith(page, 'alice', {});
    await waitEvent(page, 'alice', 'accepted', 15000, from);
    await waitInPage(page, (n) => window.dominantHz(n), 'alice', (d) => Math.abs(d.hz - 550) < 30, "browser hears erin's 550 Hz");
    const sip = await waitInfo((i) => i.media?.packets_from_sip > 50 && i.media?.srtp?.protected > 50, 'SRTP both ways (optional)');
    console.log(`# optional SRTP from erin: ${JSON.stringify(sip.media)}`);
    assert.equal(sip.media.srtp.refused, 0, JSON.stringify(sip.media));
    await page.evaluate(() => window.sendRequest('alice', { request: 'hangup' }));
    await waitEvent(page, 'alice', 'hangup', 15000, from);
  });
});
