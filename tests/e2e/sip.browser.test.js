// The SIP plugin with real peers: Chromium + janus.js (fake microphone) ⇄ Bifrons ⇄ baresip,
// with kamailio (digest auth) as registrar and proxy. Audio is checked at both ends: the
// browser's inbound audio energy, and what baresip recorded of the browser.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { launchChromium } from './lib/browser.js';
import { startSipSite, waitInPage, waitEvent } from './lib/sip_page.js';
import { startGateway, REPO_ROOT } from './lib/gateway.js';
import { addUser } from './lib/panel.js';
import { startKamailio, startBaresip, analyze } from './lib/sip.js';

/** CPU seconds (user + system) the process `pid` has used, from /proc (100 ticks/s). */
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The gateway's CPU share (percent of one core) over `ms` of wall time. */
async function gatewayCpu(pid, ms = 3000) {
  const c0 = cpuSeconds(pid);
  const t0 = Date.now();
  await sleep(ms);
  return (100 * (cpuSeconds(pid) - c0)) / ((Date.now() - t0) / 1000);
}

describe('SIP plugin with Chromium, baresip and kamailio', () => {
  let gw;
  let site;
  let browser;
  let kamailio;
  let bob; // G.711 only, answers automatically, plays 440 Hz
  let carol; // Opus only, answers automatically, plays 660 Hz
  let early; // answers 183 with SDP first (baresip answermode=early), as 'erin'
  let page;

  async function handleInfo(sessionId, handleId) {
    const res = await fetch(`${gw.adminHttpUrl}/${sessionId}/${handleId}`, {
      method: 'POST',
      body: JSON.stringify({ janus: 'handle_info', transaction: 'hi', admin_secret: gw.adminSecret }),
    });
    const reply = await res.json();
    assert.equal(reply.janus, 'success', JSON.stringify(reply));
    return reply.info;
  }

  /** Runs the gateway's CLI on the test registry; `input` goes to stdin (secrets). */
  function cli(args, input = '') {
    const bin = process.env.BIFRONS_BIN || path.join(REPO_ROOT, 'target', 'debug', 'bifrons');
    const r = spawnSync(bin, args, { input, env: { ...process.env, BIFRONS_DATABASE_URL: dbUrl }, encoding: 'utf8' });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  }
  let dbDir;
  let dbUrl;
  let recDir;

  before(async () => {
    kamailio = await startKamailio();
    bob = await startBaresip({ kamailio, user: 'bob', toneHz: 440, codecs: 'PCMU' });
    carol = await startBaresip({ kamailio, user: 'carol', toneHz: 660, codecs: 'opus' });
    early = await startBaresip({ kamailio, user: 'erin', toneHz: 550, codecs: 'PCMU', mode: 'early' });
    // The registry: a trunk to kamailio with dave's SIP password, one with a wrong password,
    // an account on each, web secrets set through the CLI (secrets on stdin).
    dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-sipdb-'));
    dbUrl = `sqlite://${path.join(dbDir, 'registry.db')}`;
    recDir = path.join(dbDir, 'recordings');
    for (const [args, input] of [
      [['trunk', 'add', 'kam', '--registrar', kamailio.registrar, '--username', 'dave', '--password'], 'davepw\n'],
      [['trunk', 'add', 'kam-wrong', '--registrar', kamailio.registrar, '--username', 'dave', '--password'], 'not-the-password\n'],
      [['account', 'add', '100', '--trunk', 'kam', '--uri', kamailio.uri('dave'), '--display-name', 'Dave'], ''],
      [['account', 'add', '200', '--trunk', 'kam-wrong', '--uri', kamailio.uri('dave')], ''],
      [['account', 'set-secret', '100'], 'web-secret-100\n'],
      [['account', 'set-secret', '200'], 'web-secret-200\n'],
      [['trunk', 'add', 'kam-info', '--registrar', kamailio.registrar, '--username', 'dave', '--password', '--dtmf', 'info', '--codecs', 'PCMU,PCMA'], 'davepw\n'],
      [['account', 'add', '300', '--trunk', 'kam-info', '--uri', kamailio.uri('dave')], ''],
      [['account', 'set-secret', '300'], 'web-secret-300\n'],
      [['trunk', 'add', 'kam-ip', '--registrar', kamailio.registrar, '--register', 'false'], ''],
      [['account', 'add', '400', '--trunk', 'kam-ip', '--uri', 'sip:frontdesk@127.0.0.1'], ''],
      [['account', 'set-secret', '400'], 'web-secret-400\n'],
    ]) {
      const r = cli(args, input);
      assert.equal(r.status, 0, `bifrons ${args.join(' ')}: ${r.out}`);
    }
    assert.match(cli(['account', 'list']).out, /100 .* set/);
    // Inbound calls ring 4 s before the unanswered policy (480) applies; T1 = 100 ms makes an
    // unreachable PBX fail in 6.4 s (64 × T1) instead of 32 s.
    gw = await startGateway({ name: 'sip', env: { BIFRONS_DATABASE_URL: dbUrl, BIFRONS_SIP_RING_TIMEOUT: '4', BIFRONS_SIP_UNANSWERED_CODE: '480', BIFRONS_SIP_TIMER_T1_MS: '100', BIFRONS_SIP_REGISTRY_POLL: '1', BIFRONS_RECORDINGS_DIR: recDir } });
    site = await startSipSite();
    browser = await launchChromium();
    page = await browser.newPage();
    page.on('pageerror', (e) => console.log(`pageerror: ${e.message}`));
    await page.goto(site.url);
    await page.waitForFunction(() => typeof window.connect === 'function');
    await page.evaluate((s) => window.connect(s), gw.wsUrl);
  });

  after(async () => {
    await page?.evaluate(() => window.disconnect()).catch(() => {});
    await browser?.close();
    await site?.close();
    await gw?.stop();
    await bob?.stop();
    await carol?.stop();
    await early?.stop();
    await kamailio?.stop();
    if (dbDir) fs.rmSync(dbDir, { recursive: true, force: true });
  });

  it('guest call to a G.711-only baresip is transcoded both ways; bad requests on another handle get their codes meanwhile', async () => {
    const ids = await page.evaluate(() => window.attachPhone('guest'));
    await page.evaluate(() => window.sendRequest('guest', { request: 'register', type: 'guest' }));
    await waitEvent(page, 'guest', 'registered');
    await page.evaluate((uri) => window.call('guest', uri), bob.directUri);
    await waitEvent(page, 'guest', 'calling');
    const accepted = await waitEvent(page, 'guest', 'accepted');
    assert.equal(accepted.jsep, 'answer', 'accepted carries the answer');
    assert.ok(accepted.call_id, 'call_id on call events');

    const stats = await waitInPage(page, (n) => window.audioStats(n), 'guest',
      (s) => s.inbound?.packetsReceived > 50 && s.inbound?.totalAudioEnergy > 0.01, 'browser hears baresip');
    console.log(`# G.711 call: browser inbound ${JSON.stringify(stats.inbound)}`);
    const heard = await waitInPage(page, (n) => window.dominantHz(n), 'guest', (d) => Math.abs(d.hz - 440) < 30, "browser hears bob's 440 Hz");
    console.log(`# the browser hears bob through the transcoder at ${heard.hz.toFixed(0)} Hz (${heard.db.toFixed(0)} dB)`);

    console.log(`# gateway CPU during one transcoded call: ${(await gatewayCpu(gw.pid)).toFixed(1)} % of a core`);
    const info = await handleInfo(ids.sessionId, ids.handleId);
    const sip = info.plugin_specific;
    assert.equal(sip.media?.leg, 'opus<->pcmu', JSON.stringify(sip));
    assert.equal(sip.transcoded_legs, 1);
    assert.equal(sip.passthrough_legs, 0);
    assert.ok(sip.media.packets_to_sip > 50 && sip.media.packets_to_browser > 50, JSON.stringify(sip.media));

    // Bad input on a second handle while the call is live: each gets its plugin error code.
    await page.evaluate(() => window.attachPhone('bad'));
    const offerless = { type: 'offer', sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\na=mid:0\r\na=sendrecv\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\na=setup:actpass\r\n' };
    const cases = [
      [{}, 443],
      [{ request: 42 }, 444],
      [{ request: 'fly' }, 442],
      [{ request: 'subscribe', event: 'message-summary' }, 442], // not implemented yet, said so
      [{ request: 'transfer', uri: bob.directUri }, 447], // no call
      [{ request: 'transfer' }, 443],
      [{ request: 'transfer', uri: 'nobody' }, 446],
      [{ request: 'transfer', uri: 42 }, 444],
      [{ request: 'transfer', uri: bob.directUri, replace: 'some-call-id' }, 444], // attended: not offered
      [{ request: 'message' }, 443],
      [{ request: 'message', content: 5 }, 444],
      [{ request: 'message', content: 'hi' }, 447], // no call to send it in
      [{ request: 'message', content: 'hi', uri: bob.directUri }, 447], // not registered
      [{ request: 'message', content: 'hi', uri: 'bob' }, 446],
      [{ request: 'message', content: 'hi', content_type: 'text/plain\r\nX-Evil: 1' }, 444], // header injection
      [{ request: 'message', content: 'hi', headers: { 'X-A': 'a\r\nBYE sip:x SIP/2.0' } }, 444], // header injection
      [{ request: 'message', content: 'x'.repeat(9000) }, 444], // too long
      [{ request: 'info', content: 'x' }, 443],
      [{ request: 'info', type: 'application/x-a' }, 443],
      [{ request: 'info', type: 'not a type', content: 'x' }, 444],
      [{ request: 'info', type: 'application/x-a', content: 'x' }, 447], // no call
      [{ request: 'update' }, 447], // no call
      [{ request: 'update', jsep: offerless }, 447], // no call
      [{ request: 'recording', action: 'start' }, 444], // nothing to record
      [{ request: 'recording', action: 'jump', audio: true }, 444],
      [{ request: 'recording', action: 'start', audio: true }, 447], // no call
      [{ request: 'call', uri: bob.directUri }, 447], // not registered yet
      [{ request: 'hangup' }, 447],
      [{ request: 'accept' }, 447],
      [{ request: 'decline' }, 447],
      [{ request: 'hold' }, 447],
      [{ request: 'unhold' }, 447],
      [{ request: 'dtmf_info', digit: '5' }, 447],
      [{ request: 'unregister' }, 447],
      [{ request: 'register' }, 443],
      [{ request: 'register', username: 'sip:x@127.0.0.1' }, 443],
      [{ request: 'register', username: 'not a uri', secret: 'x' }, 446],
      [{ request: 'register', username: 5, secret: 'x' }, 444],
      [{ request: 'register', type: 'robot' }, 444],
      [{ request: 'register', type: 'account', account: 'nobody', secret: 'whatever-secret' }, 444],
      [{ request: 'register', type: 'account', account: 'nobody' }, 443],
      [{ request: 'register', type: 'guest', register_ttl: 'long' }, 444],
      [{ request: 'register', type: 'guest' }, null], // now registered as a guest
      [{ request: 'register', type: 'guest' }, 445],
      [{ request: 'call' }, 443],
      [{ request: 'call', uri: 7 }, 444],
      [{ request: 'call', uri: 'bob' }, 446],
      [{ request: 'call', uri: 'sip:bob@host:99999' }, 446],
      [{ request: 'call', uri: bob.directUri }, 448], // no jsep
      [{ request: 'call', uri: bob.directUri, jsep: offerless }, 448], // SDP with no audio
      [{ request: 'call', uri: bob.directUri, autoaccept_reinvites: 'yes' }, 444],
      [{ request: 'accept', autoaccept_reinvites: 1 }, 444],
      [{ request: 'message', content: 'hi' }, 447], // registered, still no call
      [{ request: 'call', uri: bob.directUri, headers: { 'X-Evil': 'a\r\nBYE sip:x SIP/2.0' } }, 444], // header injection
      [{ request: 'call', uri: bob.directUri, headers: { Via: 'SIP/2.0/UDP 10.0.0.1' } }, 444], // owned by the dialog
      [{ request: 'decline', code: 99 }, 444],
      [{ request: 'dtmf_info', digit: 'xy' }, 444],
      [{ request: 'dtmf_info' }, 443],
      [{ request: 'hold', direction: 'sideways' }, 444],
      [{ request: 'hangup' }, 447],
      [{ request: 'accept' }, 447],
    ];
    const outcomes = [];
    for (const [body, code] of cases) {
      const before = (await page.evaluate(() => window.eventsOf('bad'))).length;
      const { jsep, ...message } = body;
      await page.evaluate(([m, j]) => window.sendRequest('bad', m, j), [message, jsep]);
      const evs = await waitInPage(page, (n) => window.eventsOf(n), 'bad', (e) => e.length > before, `answer to ${JSON.stringify(body)}`, 10000);
      const got = evs[before];
      outcomes.push([JSON.stringify(message), got.error_code]);
      if (code === null) assert.equal(got.event, 'registered', JSON.stringify(got));
      else assert.equal(got.error_code, code, `${JSON.stringify(body)} → ${JSON.stringify(got)}`);
    }
    assert.ok(cases.length >= 30);
    console.log(`# bad requests answered by code while a call was live: ${cases.length}`);

    // The live call kept flowing all along.
    const before = (await page.evaluate((n) => window.audioStats(n), 'guest')).inbound.packetsReceived;
    await sleep(1000);
    const afterStats = (await page.evaluate((n) => window.audioStats(n), 'guest')).inbound;
    assert.ok(afterStats.packetsReceived > before + 25, `call still live: ${before} → ${afterStats.packetsReceived}`);

    // Record both sides for about 3 s: two Ogg/Opus files that decode, and their rows.
    let from = (await page.evaluate(() => window.eventsOf('guest'))).length;
    await page.evaluate(() => window.sendRequest('guest', { request: 'recording', action: 'start', audio: true, peer_audio: true }));
    await waitEvent(page, 'guest', 'recordingupdated', 10000, from);
    const recStart = Date.now();
    await sleep(3000);
    from = (await page.evaluate(() => window.eventsOf('guest'))).length;
    await page.evaluate(() => window.sendRequest('guest', { request: 'recording', action: 'stop' }));
    await waitEvent(page, 'guest', 'recordingupdated', 10000, from);
    const recSeconds = (Date.now() - recStart) / 1000;
    const rows = spawnSync('sqlite3', [path.join(dbDir, 'registry.db'),
      "SELECT file_path || '|' || duration_ms || '|' || size_bytes || '|' || owner FROM recordings WHERE kind = 'call'"], { encoding: 'utf8' });
    const lines = rows.stdout.trim().split('\n').filter(Boolean);
    assert.equal(lines.length, 2, `two call recordings in the registry: ${rows.stdout}${rows.stderr}`);
    for (const line of lines) {
      const [file, durationMs, size, owner] = line.split('|');
      assert.equal(owner, 'sip');
      assert.ok(Number(size) > 1000, line);
      const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name', '-of', 'json', path.join(recDir, file)], { encoding: 'utf8' });
      const info = JSON.parse(probe.stdout || '{}');
      const duration = Number(info.format?.duration);
      console.log(`# recording ${file}: ffprobe ${info.streams?.[0]?.codec_name} ${duration.toFixed(2)} s, row ${durationMs} ms, ${size} bytes; recorded for ${recSeconds.toFixed(2)} s`);
      assert.equal(info.streams?.[0]?.codec_name, 'opus', probe.stdout + probe.stderr);
      assert.ok(Math.abs(duration - recSeconds) / recSeconds < 0.1, `duration ${duration} s vs ${recSeconds} s`);
      assert.ok(Math.abs(Number(durationMs) / 1000 - recSeconds) / recSeconds < 0.1, `row ${durationMs} ms vs ${recSeconds} s`);
    }

    await sleep(500);
    await page.evaluate(() => window.sendRequest('guest', { request: 'hangup' }));
    await waitEvent(page, 'guest', 'hangingup');
    const hangup = await waitEvent(page, 'guest', 'hangup');
    assert.equal(hangup.code, 200, JSON.stringify(hangup));

    // What baresip heard of the browser: not silence.
    await sleep(500);
    const wav = bob.received();
    assert.ok(wav, `baresip wrote no recording; log:\n${bob.log()}`);
    const a = analyze(wav.samples, wav.rate);
    console.log(`# baresip heard the browser: ${wav.samples.length} samples at ${wav.rate} Hz, peak ${a.peak}, rms ${a.rms.toFixed(0)}, dominant ${a.hz} Hz`);
    assert.ok(a.peak > 1000 && a.rms > 100, `baresip recording is silent: ${JSON.stringify(a)}`);
    assert.ok(a.hz > 300 && a.hz < 500, `the fake microphone's 400 Hz beep, got ${a.hz} Hz`);
  });

  it('Opus passthrough with an Opus baresip: no transcoding leg, audio both ways, baresip hangs up', async () => {
    const ids = await page.evaluate(() => window.attachPhone('opus'));
    await page.evaluate(() => window.sendRequest('opus', { request: 'register', type: 'guest', username: 'sip:web@127.0.0.1' }));
    await waitEvent(page, 'opus', 'registered');
    await page.evaluate((uri) => window.call('opus', uri), carol.directUri);
    await waitEvent(page, 'opus', 'accepted');
    const stats = await waitInPage(page, (n) => window.audioStats(n), 'opus',
      (s) => s.inbound?.packetsReceived > 50 && s.inbound?.totalAudioEnergy > 0.01, 'browser hears carol');
    console.log(`# Opus call: browser inbound ${JSON.stringify(stats.inbound)}`);
    const heard = await waitInPage(page, (n) => window.dominantHz(n), 'opus', (d) => Math.abs(d.hz - 660) < 30, "browser hears carol's 660 Hz");
    console.log(`# the browser hears carol over Opus passthrough at ${heard.hz.toFixed(0)} Hz (${heard.db.toFixed(0)} dB)`);
    console.log(`# gateway CPU during one Opus passthrough call: ${(await gatewayCpu(gw.pid)).toFixed(1)} % of a core`);
    const sip = (await handleInfo(ids.sessionId, ids.handleId)).plugin_specific;
    assert.equal(sip.media?.leg, 'passthrough', JSON.stringify(sip));
    assert.equal(sip.transcoded_legs, 0, 'no transcoder leg');
    assert.equal(sip.passthrough_legs, 1);
    assert.ok(sip.media.packets_to_sip > 50 && sip.media.packets_to_browser > 50, JSON.stringify(sip.media));
    await sleep(1500);
    // Hang up from baresip's side: the browser gets `hangup`.
    const from = (await page.evaluate(() => window.eventsOf('opus'))).length;
    carol.command('hangup');
    const hangup = await waitEvent(page, 'opus', 'hangup', 15000, from);
    assert.equal(hangup.code, 200, JSON.stringify(hangup));
    await sleep(500);
    const wav = carol.received();
    assert.ok(wav, `carol wrote no recording; log:\n${carol.log()}`);
    const a = analyze(wav.samples, wav.rate);
    console.log(`# carol heard the browser over Opus: ${wav.samples.length} samples at ${wav.rate} Hz, peak ${a.peak}, rms ${a.rms.toFixed(0)}, dominant ${a.hz} Hz`);
    assert.ok(a.peak > 1000 && a.rms > 100, `carol's recording is silent: ${JSON.stringify(a)}`);
    assert.ok(a.hz > 300 && a.hz < 500, `the fake microphone's 400 Hz beep, got ${a.hz} Hz`);
  });

  it('baresip calls a browser registered with digest credentials through kamailio: incomingcall, accept, audio both ways', async () => {
    await page.evaluate(() => window.attachPhone('alice'));
    await page.evaluate(([u, p]) => window.sendRequest('alice', { request: 'register', username: u, secret: 'alicepw', proxy: p }),
      [kamailio.uri('alice'), kamailio.registrar]);
    await waitEvent(page, 'alice', 'registering');
    await waitEvent(page, 'alice', 'registered');

    // A wrong password is refused by kamailio: registration_failed with its status.
    await page.evaluate(() => window.attachPhone('mallory'));
    await page.evaluate(([u, p]) => window.sendRequest('mallory', { request: 'register', username: u, secret: 'wrong', proxy: p }),
      [kamailio.uri('dave'), kamailio.registrar]);
    const failed = await waitEvent(page, 'mallory', 'registration_failed');
    assert.ok([401, 403, 407].includes(failed.code), JSON.stringify(failed));

    const from = (await page.evaluate(() => window.eventsOf('alice'))).length;
    bob.command('dial', kamailio.uri('alice'));
    const incoming = await waitEvent(page, 'alice', 'incomingcall', 20000, from);
    assert.equal(incoming.jsep, 'offer', 'incomingcall carries the gateway offer');
    assert.match(String(incoming.result.username), /bob/);
    await page.evaluate(() => window.accept('alice'));
    await waitEvent(page, 'alice', 'accepted', 15000, from);
    const stats = await waitInPage(page, (n) => window.audioStats(n), 'alice',
      (s) => s.inbound?.packetsReceived > 50 && s.inbound?.totalAudioEnergy > 0.01, 'browser hears bob');
    console.log(`# inbound call: browser inbound ${JSON.stringify(stats.inbound)}`);
    await waitInPage(page, (n) => window.dominantHz(n), 'alice', (d) => Math.abs(d.hz - 440) < 30, "browser hears bob's 440 Hz (inbound call)");
    await sleep(1500);
    bob.command('hangup');
    const hangup = await waitEvent(page, 'alice', 'hangup', 15000, from);
    assert.equal(hangup.code, 200);
    await sleep(500);
    const wav = bob.received();
    const a = analyze(wav.samples, wav.rate);
    console.log(`# bob heard the browser (inbound call): peak ${a.peak}, rms ${a.rms.toFixed(0)}, dominant ${a.hz} Hz`);
    assert.ok(a.peak > 1000 && a.rms > 100, `bob's recording is silent: ${JSON.stringify(a)}`);
    assert.ok(a.hz > 300 && a.hz < 500, `the fake microphone's 400 Hz beep, got ${a.hz} Hz`);
  });

  it('registry account: one registration for two tabs, both ring, first accept wins, calls go out through the trunk', async () => {
    const registersOf = () => kamailio.log().split('\n').filter((l) => /REQ REGISTER .* from dave /.test(l)).length;
    const registersBefore = registersOf();
    for (const tab of ['tab1', 'tab2']) {
      await page.evaluate((t) => window.attachPhone(t), tab);
      await page.evaluate((t) => window.sendRequest(t, { request: 'register', type: 'account', account: '100', secret: 'web-secret-100' }), tab);
      const reg = await waitEvent(page, tab, 'registered');
      assert.equal(reg.result.account, '100');
      assert.equal(reg.result.register_sent, true);
    }
    assert.equal(registersOf() - registersBefore, 2, 'one REGISTER and its authenticated retry: one registration for both tabs');

    // A wrong web secret is refused; a trunk with a wrong SIP password fails at kamailio.
    await page.evaluate(() => window.attachPhone('tab3'));
    await page.evaluate(() => window.sendRequest('tab3', { request: 'register', type: 'account', account: '100', secret: 'wrong-secret' }));
    const refused = (await waitInPage(page, (n) => window.eventsOf(n), 'tab3', (e) => e.length > 0, 'tab3 answer'))[0];
    assert.equal(refused.error_code, 444, JSON.stringify(refused));
    await page.evaluate(() => window.sendRequest('tab3', { request: 'register', type: 'account', account: '200', secret: 'web-secret-200' }));
    const failed = await waitEvent(page, 'tab3', 'registration_failed', 15000, 1);
    assert.ok([401, 403].includes(failed.code), JSON.stringify(failed));

    // The admin panel's live view shows the account line registered on its trunk, and the
    // refused one failed with the registrar's answer.
    await addUser(dbUrl, 'admin', 'admin', 'e2e-admin-password');
    const panel = `${gw.adminHttpUrl.replace(/\/admin$/, '')}/panel/api/v1`;
    const login = await fetch(`${panel}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'e2e-admin-password' }),
    });
    assert.equal(login.status, 200);
    const live = await (await fetch(`${panel}/live`, { headers: { Cookie: login.headers.get('set-cookie').split(';')[0] } })).json();
    assert.equal(live.feeds.sip, true);
    const line = live.sip_registrations.find((r) => r.account === '100');
    assert.equal(line?.state, 'registered', JSON.stringify(live.sip_registrations));
    assert.equal(line.trunk, 'kam');
    assert.ok(line.expires_s > 0, JSON.stringify(line));
    const refusedLine = live.sip_registrations.find((r) => r.account === '200');
    assert.equal(refusedLine?.state, 'failed', JSON.stringify(live.sip_registrations));
    assert.ok(!JSON.stringify(live).includes('web-secret'), 'no secret in the live view');

    // bob calls the account: both tabs ring; tab1 takes it, tab2 hears it was taken elsewhere.
    const from1 = (await page.evaluate(() => window.eventsOf('tab1'))).length;
    const from2 = (await page.evaluate(() => window.eventsOf('tab2'))).length;
    bob.command('dial', kamailio.uri('dave'));
    await waitEvent(page, 'tab1', 'incomingcall', 20000, from1);
    await waitEvent(page, 'tab2', 'incomingcall', 20000, from2);
    await page.evaluate(() => window.accept('tab1'));
    await waitEvent(page, 'tab1', 'accepted', 15000, from1);
    const elsewhere = await waitEvent(page, 'tab2', 'hangup', 15000, from2);
    assert.equal(elsewhere.reason, 'Call completed elsewhere');
    const stats = await waitInPage(page, (n) => window.audioStats(n), 'tab1',
      (s) => s.inbound?.packetsReceived > 50 && s.inbound?.totalAudioEnergy > 0.01, 'tab1 hears bob');
    console.log(`# account call: tab1 inbound ${JSON.stringify(stats.inbound)}`);

    // A second call to the account meanwhile: busy tab1 reports missed_call, idle tab2 rings
    // and declines; with every target out, the caller gets the unanswered status.
    const busy1 = (await page.evaluate(() => window.eventsOf('tab1'))).length;
    const idle2 = (await page.evaluate(() => window.eventsOf('tab2'))).length;
    carol.command('dial', kamailio.uri('dave'));
    const missed = await waitEvent(page, 'tab1', 'missed_call', 20000, busy1);
    assert.match(String(missed.result.caller), /carol/);
    await waitEvent(page, 'tab2', 'incomingcall', 20000, idle2);
    await page.evaluate(() => window.sendRequest('tab2', { request: 'decline' }));
    await waitEvent(page, 'tab2', 'declining', 10000, idle2);
    assert.ok(await carol.waitLog(/480 Temporarily Unavailable/, 8000), `carol did not see 480:\n${carol.log().slice(-1500)}`);
    await sleep(1500);
    bob.command('hangup');
    await waitEvent(page, 'tab1', 'hangup', 15000, busy1);
    // baresip completes its WAV when its side of the call is closed, which may come after
    // the browser's hangup event: read it once it has samples (bounded wait).
    let wav = bob.received();
    for (let i = 0; i < 50 && !(wav?.samples.length > 8000); i++) {
      await sleep(200);
      wav = bob.received();
    }
    const a = analyze(wav.samples, wav.rate);
    console.log(`# bob heard the account's browser: peak ${a.peak}, rms ${a.rms.toFixed(0)}, dominant ${a.hz} Hz`);
    assert.ok(a.peak > 1000 && a.hz > 300 && a.hz < 500, JSON.stringify(a));

    // A call from the account goes out through its trunk (kamailio) to bob.
    await sleep(500);
    const from3 = (await page.evaluate(() => window.eventsOf('tab2'))).length;
    await page.evaluate((uri) => window.call('tab2', uri), kamailio.uri('bob'));
    await waitEvent(page, 'tab2', 'accepted', 20000, from3);
    assert.ok(kamailio.log().split('\n').some((l) => /REQ INVITE sip:bob@.* from dave /.test(l)), 'INVITE through kamailio from the account');
    await page.evaluate(() => window.sendRequest('tab2', { request: 'hangup' }));
    await waitEvent(page, 'tab2', 'hangup', 15000, from3);

    // An admin edits the trunk: the open line registers again with the new settings, without
    // the browsers doing anything.
    const beforeEdit = registersOf();
    const edited = cli(['trunk', 'edit', 'kam', '--expiry', '120']);
    assert.equal(edited.status, 0, edited.out);
    const deadline = Date.now() + 10000;
    while (registersOf() === beforeEdit && Date.now() < deadline) await sleep(200);
    assert.ok(registersOf() > beforeEdit, 'a new REGISTER after the trunk edit');
  });

  it('hold/unhold, DTMF both ways (RFC 4733 from the browser, SIP INFO, RFC 4733 from baresip), decline and unanswered calls', async () => {
    const ids = await page.evaluate(() => window.attachPhone('keys'));
    await page.evaluate(() => window.sendRequest('keys', { request: 'register', type: 'guest' }));
    await waitEvent(page, 'keys', 'registered');
    const from = (await page.evaluate(() => window.eventsOf('keys'))).length;
    // Through kamailio (record-routed), which logs the re-INVITEs' SDP.
    await page.evaluate((uri) => window.call('keys', uri), kamailio.uri('bob'));
    await waitEvent(page, 'keys', 'accepted', 20000, from);
    await waitInPage(page, (n) => window.audioStats(n), 'keys', (s) => s.inbound?.packetsReceived > 25, 'media up');
    const fromSip = async () => (await handleInfo(ids.sessionId, ids.handleId)).plugin_specific.media.packets_from_sip;

    // Hold: a re-INVITE with a=sendonly; baresip answers recvonly and stops sending.
    await page.evaluate(() => window.sendRequest('keys', { request: 'hold' }));
    await waitEvent(page, 'keys', 'holding', 10000, from);
    await sleep(800);
    const h0 = await fromSip();
    await sleep(1000);
    const h1 = await fromSip();
    assert.ok(h1 - h0 < 5, `baresip kept sending while held: ${h0} → ${h1}`);
    const lastReinvite = () => kamailio.log().split('REINVITE-SDP').pop().split(/REQ |INFO: <script>/)[0];
    assert.match(lastReinvite(), /a=sendonly/, 'the hold re-INVITE offered a=sendonly');
    await page.evaluate(() => window.sendRequest('keys', { request: 'unhold' }));
    await waitEvent(page, 'keys', 'resuming', 10000, from);
    await sleep(800);
    const u0 = await fromSip();
    await sleep(1000);
    const u1 = await fromSip();
    assert.ok(u1 - u0 > 25, `media did not resume: ${u0} → ${u1}`);
    assert.match(lastReinvite(), /a=sendrecv/, 'the unhold re-INVITE offered a=sendrecv');

    // DTMF from the browser's RTP (RFC 4733) and as SIP INFO reach baresip.
    await page.evaluate(() => window.sendDtmf('keys', '5'));
    await page.evaluate(() => window.sendRequest('keys', { request: 'dtmf_info', digit: '7' }));
    await waitEvent(page, 'keys', 'dtmfsent', 10000, from);
    assert.ok(await bob.waitLog("'5'", 8000), `baresip did not get the RFC 4733 digit:\n${bob.log()}`);
    assert.ok(await bob.waitLog("'7'", 8000), `baresip did not get the INFO digit:\n${bob.log()}`);

    // DTMF from baresip (RFC 4733) is reported to the browser.
    bob.command('sndcode', '3');
    const dtmf = await waitEvent(page, 'keys', 'dtmf', 10000, from);
    assert.equal(dtmf.result.signal, '3', JSON.stringify(dtmf));

    await page.evaluate(() => window.sendRequest('keys', { request: 'hangup' }));
    await waitEvent(page, 'keys', 'hangup', 10000, from);

    // An inbound call the browser declines: bob hears the decline code. (alice's phone from
    // the inbound-call test is still registered, and alone at kamailio as alice.)
    const fromDecline = (await page.evaluate(() => window.eventsOf('alice'))).length;
    bob.command('dial', kamailio.uri('alice'));
    await waitEvent(page, 'alice', 'incomingcall', 20000, fromDecline);
    await page.evaluate(() => window.sendRequest('alice', { request: 'decline', code: 603 }));
    const declining = await waitEvent(page, 'alice', 'declining', 10000, fromDecline);
    assert.equal(declining.result.code, 603);
    assert.ok(await bob.waitLog(/603 Decline|call: .*603/, 8000), `bob did not see 603:\n${bob.log().slice(-2000)}`);

    // Nobody answers: after the ring timeout the call is refused with the configured status
    // (480) and the browser gets missed_call and hangup.
    await sleep(500);
    const fromMiss = (await page.evaluate(() => window.eventsOf('alice'))).length;
    bob.command('dial', kamailio.uri('alice'));
    await waitEvent(page, 'alice', 'incomingcall', 20000, fromMiss);
    await waitEvent(page, 'alice', 'missed_call', 10000, fromMiss);
    const unanswered = await waitEvent(page, 'alice', 'hangup', 10000, fromMiss);
    assert.equal(unanswered.code, 480, JSON.stringify(unanswered));
    assert.ok(await bob.waitLog(/480 Temporarily Unavailable/, 8000), `bob did not see 480:\n${bob.log().slice(-2000)}`);

    // The account's tabs let go: the shared line unregisters once the last one leaves.
    await page.evaluate(() => window.sendRequest('tab1', { request: 'unregister' }));
    await page.evaluate(() => window.sendRequest('tab2', { request: 'unregister' }));
    await waitEvent(page, 'tab1', 'unregistered');
    await waitEvent(page, 'tab2', 'unregistered');
  });

  it("an account's calls follow its trunk: its codec list (no Opus offered) and its DTMF mode (SIP INFO)", async () => {
    // (the INVITE's SDP is read back from kamailio's log)
    await page.evaluate(() => window.attachPhone('tab4'));
    await page.evaluate(() => window.sendRequest('tab4', { request: 'register', type: 'account', account: '300', secret: 'web-secret-300' }));
    await waitEvent(page, 'tab4', 'registered');
    const from = (await page.evaluate(() => window.eventsOf('tab4'))).length;
    await page.evaluate(([uri, extra]) => window.call('tab4', uri, extra), [kamailio.uri('bob'), { headers: { 'X-Bifrons-Test': 'campaign-42' } }]);
    await waitEvent(page, 'tab4', 'accepted', 20000, from);
    await waitInPage(page, (n) => window.audioStats(n), 'tab4', (s) => s.inbound?.packetsReceived > 25, 'media up');
    const infosBefore = kamailio.log().split('\n').filter((l) => /REQ INFO .* from dave /.test(l)).length;
    await page.evaluate(() => window.sendDtmf('tab4', '4'));
    assert.ok(await bob.waitLog("'4'", 8000), `bob did not get the digit:\n${bob.log().slice(-1500)}`);
    const infosAfter = kamailio.log().split('\n').filter((l) => /REQ INFO .* from dave /.test(l)).length;
    assert.equal(infosAfter - infosBefore, 1, 'the browser digit went out as one SIP INFO (trunk dtmf mode info)');
    await page.evaluate(() => window.sendRequest('tab4', { request: 'hangup' }));
    await waitEvent(page, 'tab4', 'hangup', 10000, from);

    // The INVITE offered the trunk's codecs only: PCMU and PCMA, no Opus.
    assert.match(kamailio.log(), /NEWINVITE-SDP from dave x-bifrons-test=campaign-42:/, 'the custom header reached the PBX');
    const offer = kamailio.log().split('NEWINVITE-SDP from dave x-bifrons-test=campaign-42:').pop().split(/REQ |INFO: <script>/)[0];
    assert.match(offer, /m=audio \d+ RTP\/AVP 0 8 101/, offer);
    assert.doesNotMatch(offer, /opus/i, offer);
  });

  it('a 183 with SDP gives progress with the answer, then accepted without a second one; a REFER from baresip gives transfer', async () => {
    await page.evaluate(() => window.attachPhone('early'));
    await page.evaluate(() => window.sendRequest('early', { request: 'register', type: 'guest' }));
    await waitEvent(page, 'early', 'registered');
    const from = (await page.evaluate(() => window.eventsOf('early'))).length;
    await page.evaluate((uri) => window.call('early', uri), early.directUri);
    const progress = await waitEvent(page, 'early', 'progress', 20000, from);
    assert.equal(progress.jsep, 'answer', 'progress carries the answer');
    early.command('accept');
    const accepted = await waitEvent(page, 'early', 'accepted', 15000, from);
    assert.equal(accepted.jsep, null, 'no second answer after progress');
    await waitInPage(page, (n) => window.audioStats(n), 'early', (s) => s.inbound?.packetsReceived > 25 && s.inbound?.totalAudioEnergy > 0.01, 'media after accept');
    // baresip asks us to transfer the call (REFER): the browser is told.
    early.command('transfer', kamailio.uri('bob'));
    const transfer = await waitEvent(page, 'early', 'transfer', 10000, from);
    assert.match(String(transfer.result.refer_to), /bob/);
    await page.evaluate(() => window.sendRequest('early', { request: 'hangup' }));
    await waitEvent(page, 'early', 'hangup', 10000, from);
  });

  it('an unreachable PBX fails within the SIP timers and the handle stays usable; an IP-authenticated trunk needs no REGISTER', async () => {
    const dead = 'sip:nobody@127.0.0.1:9'; // discard port: nothing answers SIP there
    await page.evaluate(() => window.attachPhone('lost'));
    const t0 = Date.now();
    await page.evaluate((u) => window.sendRequest('lost', { request: 'register', username: u, secret: 'x', proxy: 'sip:127.0.0.1:9' }), dead);
    const failed = await waitEvent(page, 'lost', 'registration_failed', 20000);
    const took = (Date.now() - t0) / 1000;
    console.log(`# unreachable registrar: registration_failed ${failed.code} after ${took.toFixed(1)} s`);
    assert.equal(failed.code, 408, JSON.stringify(failed));
    assert.ok(took < 12, `within the SIP timers (64 × T1 = 6.4 s), took ${took} s`);

    // Same handle: register as a guest, a call to nowhere times out, then a real call works.
    await page.evaluate(() => window.sendRequest('lost', { request: 'register', type: 'guest' }));
    await waitEvent(page, 'lost', 'registered');
    let from = (await page.evaluate(() => window.eventsOf('lost'))).length;
    await page.evaluate((uri) => window.call('lost', uri), dead);
    const timeout = await waitEvent(page, 'lost', 'hangup', 20000, from);
    assert.equal(timeout.code, 408, JSON.stringify(timeout));
    await sleep(500);
    from = (await page.evaluate(() => window.eventsOf('lost'))).length;
    await page.evaluate((uri) => window.call('lost', uri), bob.directUri);
    await waitEvent(page, 'lost', 'accepted', 20000, from);
    await page.evaluate(() => window.sendRequest('lost', { request: 'hangup' }));
    await waitEvent(page, 'lost', 'hangup', 10000, from);

    // Account 400 is on a trunk without registration: registered at once, and its calls go to
    // the trunk's proxy whatever host the dialled URI names.
    await page.evaluate(() => window.attachPhone('ip'));
    await page.evaluate(() => window.sendRequest('ip', { request: 'register', type: 'account', account: '400', secret: 'web-secret-400' }));
    const reg = await waitEvent(page, 'ip', 'registered');
    assert.equal(reg.result.register_sent, false);
    from = (await page.evaluate(() => window.eventsOf('ip'))).length;
    await page.evaluate(() => window.call('ip', 'sip:bob@pbx.invalid'));
    await waitEvent(page, 'ip', 'accepted', 20000, from);
    assert.ok(kamailio.log().split('\n').some((l) => /REQ INVITE sip:bob@127\.0\.0\.1:\d+ from frontdesk /.test(l)), 'INVITE sent to the trunk');
    await page.evaluate(() => window.sendRequest('ip', { request: 'hangup' }));
    await waitEvent(page, 'ip', 'hangup', 10000, from);
  });
});
