// A mailbox owner's side of janus.plugin.voicemail, with janus.js in headless Chromium: a
// message recorded into mailbox 200 by an earlier step is listed (web secret of the account),
// played back over WebRTC (gateway offer, `start` with the answer, the browser hears audio
// energy, `done` at the end), marked heard/unheard and deleted; its download route serves the
// Ogg as stored and a WAV transcoded on demand (ffprobe durations, Content-Type/-Length,
// Accept-Ranges, a Range request answered 206 with the exact bytes), 403 for a wrong token,
// 404 for unknown ids and path tricks; wrong secrets are 403 and slowed down while another
// session keeps working; mailbox settings go through the panel REST API and the CLI without the
// PIN ever showing up in an answer or the log.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { launchChromium } from './lib/browser.js';
import { REPO_ROOT, startGateway } from './lib/gateway.js';
import { addUser } from './lib/panel.js';
import { openHandle, probe, rows, waitEvent } from './lib/voicemail.js';

const MAX_SECONDS = 3;
const SECRET = 'web-secret-200';
const PIN = '73915';
const BIN = process.env.BIFRONS_BIN || path.join(REPO_ROOT, 'target', 'debug', 'bifrons');

describe('voicemail mailbox owner: list, play, mark, delete, downloads, settings', () => {
  let gw;
  let browser;
  let page;
  let dir;
  let db;
  let dbUrl;
  let recDir;
  let base;
  let messageId;
  let listed;

  const cli = (args, input = '') => {
    const r = spawnSync(BIN, args, { input, env: { ...process.env, BIFRONS_DATABASE_URL: dbUrl }, encoding: 'utf8' });
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };

  // A handle whose gateway offers are answered (receive-only audio, played in an <audio>
  // element so Chromium computes the inbound audio energy) and sent back with `start`.
  const openPlayer = (name) => page.evaluate(async (name) => {
    const st = { events: [], webrtcup: false, errors: [] };
    window.vm[name] = st;
    const janus = window.vm.a ? window.vm.a.janus : null;
    const j = janus || await new Promise((resolve, reject) => {
      const x = new window.Janus({ server: '/janus', iceServers: [], success: () => resolve(x), error: (e) => reject(new Error(String(e))) });
    });
    st.janus = j;
    st.handle = await new Promise((resolve, reject) => {
      j.attach({
        plugin: 'janus.plugin.voicemail',
        success: resolve,
        error: (e) => reject(new Error(String(e))),
        webrtcState: (on) => { if (on) st.webrtcup = true; },
        onremotetrack: (track, mid, on) => {
          if (!on) return;
          const el = document.createElement('audio');
          el.autoplay = true;
          el.srcObject = new MediaStream([track]);
          document.body.appendChild(el);
          el.play().catch((e) => st.errors.push(`play: ${e}`));
        },
        onmessage: (msg, jsep) => {
          st.events.push(msg);
          if (jsep && jsep.type === 'offer') {
            st.handle.createAnswer({
              jsep,
              tracks: [{ type: 'audio', capture: false, recv: true }],
              success: (answer) => st.handle.send({ message: { request: 'start' }, jsep: answer }),
              error: (e) => st.errors.push(`answer: ${e}`),
            });
          }
        },
      });
    });
    window.inbound = async (n) => {
      const pc = window.vm[n].handle.webrtcStuff.pc;
      let out = null;
      if (!pc) return out;
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') out = { packetsReceived: s.packetsReceived, totalAudioEnergy: s.totalAudioEnergy };
      });
      return out;
    };
  }, name);

  /** Sends `body` on handle `name` and returns the first event answering it. */
  const ask = async (name, body, what = body.request) => {
    await page.evaluate((n) => { window.vm[n].events = []; }, name);
    await page.evaluate(([n, b]) => window.send(n, b, false), [name, body]);
    return waitEvent(page, name, (e) => e.error_code || e.voicemail === 'list' || e.result || e.status, what);
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-vm-mailbox-'));
    db = path.join(dir, 'registry.db');
    dbUrl = `sqlite://${db}`;
    recDir = path.join(dir, 'recordings');
    cli(['trunk', 'add', 'pbx', '--registrar', 'sip:127.0.0.1:9', '--register', 'false', '--enabled', 'false']);
    cli(['account', 'add', '200', '--trunk', 'pbx', '--uri', 'sip:200@127.0.0.1']);
    cli(['account', 'set-secret', '200'], `${SECRET}\n`);
    cli(['account', 'add', '201', '--trunk', 'pbx', '--uri', 'sip:201@127.0.0.1']);
    cli(['account', 'set-secret', '201'], 'web-secret-201\n');
    await addUser(dbUrl, 'admin', 'admin', 'admin-password');
    gw = await startGateway({
      name: 'voicemail-mailbox',
      env: {
        BIFRONS_DATABASE_URL: dbUrl,
        BIFRONS_RECORDINGS_DIR: recDir,
        BIFRONS_VOICEMAIL_MAX_SECONDS: String(MAX_SECONDS),
      },
    });
    base = gw.httpUrl.replace(/\/janus$/, '');
    browser = await launchChromium();
    page = await browser.newPage();
    await page.goto(`${base}/demos/`);
    await page.addScriptTag({ url: '/demos/adapter.js' });
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists a message recorded into the mailbox, for the right secret only', async () => {
    await openHandle(page, 'a');
    await page.evaluate(() => window.send('a', { request: 'record', mailbox: '200', caller: 'Alice <web>' }, true));
    const done = await waitEvent(page, 'a', (e) => e.status === 'done' || e.error_code, 'done', 60000);
    assert.equal(done.status, 'done', JSON.stringify(done));
    messageId = done.id;

    await openHandle(page, 'o');
    const refused = await ask('o', { request: 'list', mailbox: '200', secret: 'not-the-secret' });
    assert.equal(refused.error_code, 403, JSON.stringify(refused));
    const other = await ask('o', { request: 'list', mailbox: '201', secret: SECRET });
    assert.equal(other.error_code, 403, 'the secret of 200 does not open 201');

    listed = await ask('o', { request: 'list', mailbox: '200', secret: SECRET });
    assert.equal(listed.voicemail, 'list', JSON.stringify(listed));
    assert.equal(listed.total, 1);
    assert.equal(listed.new, 1);
    const [m] = listed.messages;
    const [row] = rows(db, `id = ${messageId}`);
    assert.deepEqual(
      { id: m.id, caller: m.caller, duration: m.duration, size: m.size, heard: m.heard },
      { id: messageId, caller: 'Alice <web>', duration: row.duration_ms, size: row.size_bytes, heard: false },
    );
    assert.ok(m.created > Date.now() - 600000 && m.created <= Date.now(), `created ${m.created}`);
    assert.match(m.download.ogg, new RegExp(`^/voicemail/${messageId}\\.ogg\\?token=\\d+\\.[0-9a-f]{64}$`));
    // Mailbox 201 holds nothing of 200's.
    const empty = await ask('o', { request: 'list', mailbox: '201', secret: 'web-secret-201' });
    assert.equal(empty.total, 0, JSON.stringify(empty));
  });

  it('plays the message over WebRTC: the browser hears it, then done', async () => {
    await openPlayer('p');
    await page.evaluate(([id, s]) => window.send('p', { request: 'play', mailbox: '200', secret: s, id }, false), [messageId, SECRET]);
    const preparing = await waitEvent(page, 'p', (e) => e.status === 'preparing' || e.error_code, 'preparing');
    assert.equal(preparing.status, 'preparing', JSON.stringify(preparing));
    assert.equal(preparing.id, messageId);
    await waitEvent(page, 'p', (e) => e.status === 'playing' || e.error_code, 'playing');
    const done = await waitEvent(page, 'p', (e) => e.status === 'done' || e.error_code, 'done', 60000);
    assert.equal(done.status, 'done', JSON.stringify(done));
    assert.equal(done.complete, true);
    // Playout lags the last packet a little: wait for the stats to settle on a value.
    let stats = null;
    for (let i = 0; i < 50; i++) {
      stats = await page.evaluate(() => window.inbound('p'));
      if (stats && stats.totalAudioEnergy > 0.001) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    console.log(`# played message ${messageId}: ${JSON.stringify(stats)}`);
    assert.ok(stats.packetsReceived >= (MAX_SECONDS * 50) * 0.8, `packets ${stats.packetsReceived}`);
    assert.ok(stats.totalAudioEnergy > 0.001, `energy ${stats.totalAudioEnergy} (digital silence decodes to 0)`);
    assert.deepEqual(await page.evaluate(() => window.vm.p.errors), []);
  });

  it('serves the message as Ogg and as WAV, with ranges, 403 and 404', async () => {
    const [row] = rows(db, `id = ${messageId}`);
    const stored = fs.readFileSync(path.join(recDir, row.file_path));
    const { ogg, wav } = listed.messages[0].download;

    const res = await fetch(base + ogg);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'audio/ogg');
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    assert.equal(Number(res.headers.get('content-length')), stored.length);
    const oggBody = Buffer.from(await res.arrayBuffer());
    assert.ok(oggBody.equals(stored), 'the Ogg as stored');

    const ranged = await fetch(base + ogg, { headers: { Range: 'bytes=100-1099' } });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get('content-range'), `bytes 100-1099/${stored.length}`);
    assert.equal(Number(ranged.headers.get('content-length')), 1000);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(stored.subarray(100, 1100)), 'the exact bytes');

    const wavRes = await fetch(base + wav);
    assert.equal(wavRes.status, 200);
    assert.equal(wavRes.headers.get('content-type'), 'audio/wav');
    const wavBody = Buffer.from(await wavRes.arrayBuffer());
    assert.equal(Number(wavRes.headers.get('content-length')), wavBody.length);
    const wavTail = await fetch(base + wav, { headers: { Range: 'bytes=-500' } });
    assert.equal(wavTail.status, 206);
    assert.ok(Buffer.from(await wavTail.arrayBuffer()).equals(wavBody.subarray(wavBody.length - 500)));

    fs.writeFileSync(path.join(dir, 'dl.ogg'), oggBody);
    fs.writeFileSync(path.join(dir, 'dl.wav'), wavBody);
    const po = probe(path.join(dir, 'dl.ogg'));
    const pw = probe(path.join(dir, 'dl.wav'));
    console.log(`# downloads: ogg ${po.codec} ${po.duration} s ${oggBody.length} B, wav ${pw.codec} ${pw.duration} s ${wavBody.length} B, row ${row.duration_ms} ms`);
    assert.equal(po.codec, 'opus', po.stderr);
    assert.equal(pw.codec, 'pcm_s16le', pw.stderr);
    for (const d of [po.duration, pw.duration]) {
      assert.ok(Math.abs(d - row.duration_ms / 1000) <= 0.1 * MAX_SECONDS, `duration ${d} s vs ${row.duration_ms} ms`);
    }

    // curl too: the headers as a plain HTTP client sees them.
    const curl = spawnSync('curl', ['-s', '-D', '-', '-o', '/dev/null', '-r', '0-9', base + ogg], { encoding: 'utf8' });
    assert.match(curl.stdout, /^HTTP\/1\.1 206/m, curl.stdout);
    assert.match(curl.stdout, /^content-range: bytes 0-9\//im);

    const token = ogg.split('token=')[1];
    const status = async (p, opts) => (await fetch(base + p, opts)).status;
    const cases = [
      [`/voicemail/${messageId}.ogg`, 403, 'no token'],
      [`/voicemail/${messageId}.ogg?token=123.${'0'.repeat(64)}`, 403, 'forged token'],
      [`/voicemail/${messageId}.ogg?token=garbage`, 403, 'malformed token'],
      [`/voicemail/${messageId + 1}.ogg?token=${token}`, 403, "another message's token"],
      [`/voicemail/${messageId}.mp3?token=${token}`, 404, 'unknown format'],
      [`/voicemail/..%2F..%2Fregistry.db?token=${token}`, 404, 'traversal'],
      [`/voicemail/../registry.db.ogg?token=${token}`, 404, 'dot-dot'],
      [`/voicemail/0.ogg?token=${token}`, 404, 'id 0'],
      [`/voicemail/abc.ogg?token=${token}`, 404, 'not a number'],
    ];
    for (const [p, code, what] of cases) assert.equal(await status(p), code, `${what}: ${p}`);
    assert.equal(await status(ogg, { method: 'POST' }), 405, 'POST');
    listed.token = token;
  });

  it('the demo page lists and plays the mailbox', async () => {
    const demo = await browser.newPage();
    try {
      await demo.goto(`${base}/demos/voicemail.html`);
      await demo.waitForFunction(() => window.demo?.state === 'idle', null, { timeout: 20000 });
      await demo.fill('#owner-mailbox', '200');
      await demo.fill('#owner-secret', SECRET);
      await demo.click('#list');
      await demo.waitForFunction(() => window.owner.state === 'listed', null, { timeout: 20000 });
      const row = demo.locator(`#messages tr[data-id="${messageId}"]`);
      assert.match(await row.textContent(), /Alice <web>/);
      assert.match(await row.locator('a.ogg').getAttribute('href'), new RegExp(`^/voicemail/${messageId}\\.ogg\\?token=`));
      await row.locator('button.play').click();
      await demo.waitForFunction((id) => window.owner.played.includes(id), messageId, { timeout: 60000 });
      // The page heard it: inbound audio energy on its handle's PeerConnection.
      let energy = 0;
      for (let i = 0; i < 50 && !(energy > 0.001); i++) {
        energy = await demo.evaluate(async () => {
          let e = 0;
          (await window.owner.handle.webrtcStuff.pc.getStats()).forEach((s) => {
            if (s.type === 'inbound-rtp' && s.kind === 'audio') e = s.totalAudioEnergy;
          });
          return e;
        });
        await new Promise((r) => setTimeout(r, 200));
      }
      console.log(`# demo page played message ${messageId}: inbound audio energy ${energy}`);
      assert.ok(energy > 0.001, `energy ${energy}`);
      assert.equal(await demo.locator('#error').isHidden(), true, await demo.locator('#error').textContent());
      // A wrong secret shows the 403 in the page.
      await demo.fill('#owner-secret', 'wrong-secret');
      await demo.click('#list');
      await demo.waitForFunction(() => window.owner.state === 'error', null, { timeout: 20000 });
      assert.match(await demo.locator('#error').textContent(), /error 403/);
    } finally {
      await demo.close();
    }
  });

  it('marks and deletes the message; then it is 404 everywhere', async () => {
    const heard = await ask('o', { request: 'mark', mailbox: '200', secret: SECRET, id: messageId });
    assert.deepEqual([heard.result, heard.heard], ['marked', true], JSON.stringify(heard));
    assert.equal(rows(db, `id = ${messageId}`)[0].heard, 1);
    const unheard = await ask('o', { request: 'mark', mailbox: '200', secret: SECRET, id: messageId, heard: false });
    assert.equal(unheard.heard, false);
    assert.equal(rows(db, `id = ${messageId}`)[0].heard, 0);
    // Another mailbox's owner cannot touch it.
    const foreign = await ask('o', { request: 'delete', mailbox: '201', secret: 'web-secret-201', id: messageId });
    assert.equal(foreign.error_code, 404, JSON.stringify(foreign));

    const [row] = rows(db, `id = ${messageId}`);
    const file = path.join(recDir, row.file_path);
    assert.ok(fs.existsSync(file));
    const deleted = await ask('o', { request: 'delete', mailbox: '200', secret: SECRET, id: messageId });
    assert.deepEqual([deleted.result, deleted.id], ['deleted', messageId], JSON.stringify(deleted));
    assert.equal(rows(db, `id = ${messageId}`).length, 0, 'row gone');
    assert.equal(fs.existsSync(file), false, 'file gone');
    const again = await ask('o', { request: 'mark', mailbox: '200', secret: SECRET, id: messageId });
    assert.equal(again.error_code, 404);
    const play = await ask('o', { request: 'play', mailbox: '200', secret: SECRET, id: messageId });
    assert.equal(play.error_code, 404);
    assert.equal((await fetch(`${base}/voicemail/${messageId}.ogg?token=${listed.token}`)).status, 404, 'download of a deleted message');
    const list = await ask('o', { request: 'list', mailbox: '200', secret: SECRET });
    assert.equal(list.total, 0);
  });

  it('answers bad requests with their codes and slows down wrong secrets while another session works', async () => {
    await openHandle(page, 'bad');
    const cases = [
      [{ request: 'list' }, 463],
      [{ request: 'list', mailbox: '200' }, 463],
      [{ request: 'list', secret: SECRET }, 463],
      [{ request: 'list', mailbox: '', secret: SECRET }, 464],
      [{ request: 'list', mailbox: 7, secret: SECRET }, 464],
      [{ request: 'play', mailbox: '200', secret: SECRET }, 463],
      [{ request: 'play', mailbox: '200', secret: SECRET, id: '1' }, 464],
      [{ request: 'play', mailbox: '200', secret: SECRET, id: -4 }, 464],
      [{ request: 'delete', mailbox: '200', secret: SECRET, id: 0 }, 464],
      [{ request: 'mark', mailbox: '200', secret: SECRET, id: 1, heard: 'yes' }, 464],
      [{ request: 'play', mailbox: '200', secret: SECRET, id: 999999 }, 404],
      [{ request: 'start' }, 463],
      [{ request: 'list', mailbox: 'nobody', secret: SECRET }, 403],
    ];
    for (const [body, code] of cases) {
      const ev = await ask('bad', body, `code ${code}`);
      assert.equal(ev.error_code, code, `${JSON.stringify(body)}: ${JSON.stringify(ev)}`);
      assert.equal(typeof ev.error, 'string');
    }
    // Guessing: each wrong secret on mailbox 201 waits longer than the one before.
    const times = [];
    for (let i = 0; i < 4; i++) {
      const t0 = Date.now();
      const ev = await ask('bad', { request: 'list', mailbox: '201', secret: `guess-${i}` });
      times.push(Date.now() - t0);
      assert.equal(ev.error_code, 403);
    }
    console.log(`# wrong-secret answer times on one mailbox: ${times.join(', ')} ms`);
    // 250, 500, 1000, 2000 ms of added delay: the fourth took at least 1.5 s.
    assert.ok(times[3] >= 1500, `fourth guess answered after ${times[3]} ms`);
    // Meanwhile, mailbox 200's owner is served at once, and the right secret of 201 still works.
    const [ok, ok201] = await Promise.all([
      ask('o', { request: 'list', mailbox: '200', secret: SECRET }),
      (async () => { await openHandle(page, 'c'); return ask('c', { request: 'list', mailbox: '201', secret: 'web-secret-201' }); })(),
    ]);
    assert.equal(ok.voicemail, 'list');
    assert.equal(ok201.voicemail, 'list');
    console.log(`# ${cases.length} bad requests answered with their codes`);
  });

  it('sets mailbox settings through the panel REST API and the CLI; the PIN never shows', async () => {
    const panel = `http://127.0.0.1:${gw.ports.adminHttp}/panel/api/v1`;
    const login = await fetch(`${panel}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'admin-password' }),
    });
    assert.equal(login.status, 200);
    const cookie = login.headers.get('set-cookie').split(';')[0];
    const me = await (await fetch(`${panel}/me`, { headers: { Cookie: cookie } })).json();
    const call = async (method, p, body, type = 'application/json') => {
      const res = await fetch(panel + p, {
        method,
        headers: { Cookie: cookie, 'X-CSRF-Token': me.csrf_token, 'Content-Type': type },
        body: body === undefined ? undefined : (type === 'application/json' ? JSON.stringify(body) : body),
      });
      const text = await res.text();
      assert.ok(!text.includes(PIN), `${method} ${p} answer holds the PIN`);
      return { status: res.status, body: text ? JSON.parse(text) : null };
    };
    const accounts = (await call('GET', '/accounts')).body;
    const id = accounts.find((a) => a.extension === '200').id;
    const fresh = await call('GET', `/accounts/${id}/mailbox`);
    assert.equal(fresh.status, 200);
    assert.deepEqual(fresh.body, {
      account_id: id, extension: '200', enabled: false, greeting_file: null,
      max_messages: null, max_length_s: null, mwi: 'off', has_pin: false,
    });
    const set = await call('PUT', `/accounts/${id}/mailbox`, { enabled: true, max_messages: 2, max_length_s: 30, mwi: 'subscribe', pin: PIN });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual(
      [set.body.enabled, set.body.max_messages, set.body.max_length_s, set.body.mwi, set.body.has_pin],
      [true, 2, 30, 'subscribe', true],
    );
    for (const [body, code] of [
      [{ enabled: true, max_messages: 0 }, 400],
      [{ enabled: true, max_length_s: 4000 }, 400],
      [{ enabled: true, mwi: 'sometimes' }, 400],
      [{ enabled: true, pin: '12ab' }, 400],
      [{ enabled: 'yes' }, 400],
    ]) {
      const r = await call('PUT', `/accounts/${id}/mailbox`, body);
      assert.equal(r.status, code, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    }
    assert.equal((await call('GET', '/accounts/99999/mailbox')).status, 404);

    // Greeting upload: a WAV made by ffmpeg (a 600 Hz tone), then refused garbage.
    const wavFile = path.join(dir, 'greeting.wav');
    const ff = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=600:duration=1', '-ar', '16000', '-ac', '1', '-c:a', 'pcm_s16le', '-y', wavFile]);
    assert.equal(ff.status, 0, String(ff.stderr));
    const up = await call('PUT', `/accounts/${id}/mailbox/greeting`, fs.readFileSync(wavFile), 'audio/wav');
    assert.equal(up.status, 200, JSON.stringify(up.body));
    assert.match(up.body.greeting_file, /^voicemail\/greetings\/200-[0-9a-f]+\.wav$/);
    assert.ok(fs.existsSync(path.join(recDir, up.body.greeting_file)));
    const junk = await call('PUT', `/accounts/${id}/mailbox/greeting`, Buffer.from('not audio at all'), 'audio/wav');
    assert.equal(junk.status, 400);
    const cleared = await call('DELETE', `/accounts/${id}/mailbox/greeting`);
    assert.equal(cleared.body.greeting_file, null);
    assert.equal(fs.existsSync(path.join(recDir, up.body.greeting_file)), false, 'old greeting removed');

    const doc = await (await fetch(`http://127.0.0.1:${gw.ports.adminHttp}/panel/api/openapi.json`)).json();
    assert.ok(doc.paths['/panel/api/v1/accounts/{id}/mailbox'].put, 'documented');
    assert.ok(doc.paths['/panel/api/v1/accounts/{id}/mailbox/greeting'].put, 'documented');

    // The CLI sees the same mailbox, and sets a new PIN from stdin.
    const shown = cli(['mailbox', 'show', '200']);
    assert.match(shown, /enabled\s+true/);
    assert.match(shown, /max messages\s+2/);
    assert.match(shown, /mwi\s+subscribe/);
    assert.match(shown, /pin\s+set/);
    const setOut = cli(['mailbox', 'set', '200', '--max-length', '0', '--mwi', 'unsolicited', '--pin'], '246810\n');
    assert.match(setOut, /max length\s+\[voicemail\] max_seconds/);
    assert.ok(!setOut.includes('246810') && !shown.includes(PIN));
    const bad = spawnSync(BIN, ['mailbox', 'set', '200', '--pin'], { input: '12x4\n', env: { ...process.env, BIFRONS_DATABASE_URL: dbUrl }, encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /voicemail pin/);
    const after = (await call('GET', `/accounts/${id}/mailbox`)).body;
    assert.equal(after.mwi, 'unsolicited');
    assert.equal(after.max_length_s, null);

    // The panel's account page: the mailbox form and the greeting upload, in Chromium.
    const ui = await browser.newPage();
    try {
      await ui.goto(`http://127.0.0.1:${gw.ports.adminHttp}/panel/`);
      await ui.fill('#login-username', 'admin');
      await ui.fill('#login-password', 'admin-password');
      await ui.press('#login-password', 'Enter');
      await ui.locator('#top').waitFor({ state: 'visible' });
      await ui.goto(`http://127.0.0.1:${gw.ports.adminHttp}/panel/#/accounts`);
      await ui.getByRole('row').filter({ hasText: 'sip:200@127.0.0.1' }).getByRole('button', { name: 'Edit' }).click();
      await ui.locator('#f-mailbox-of-200-max_messages').waitFor();
      assert.equal(await ui.inputValue('#f-mailbox-of-200-max_messages'), '2');
      await ui.fill('#f-mailbox-of-200-max_messages', '7');
      await ui.fill('#f-mailbox-of-200-max_length_s', '45');
      await ui.selectOption('#f-mailbox-of-200-mwi', 'off');
      await ui.getByRole('button', { name: 'Save mailbox' }).click();
      await ui.getByText('Mailbox of 200 saved.').waitFor();
      await ui.getByRole('row').filter({ hasText: 'sip:200@127.0.0.1' }).getByRole('button', { name: 'Edit' }).click();
      await ui.locator('[aria-label="Greeting file"]').setInputFiles(wavFile);
      await ui.getByRole('button', { name: 'Upload greeting' }).click();
      await ui.getByText('Greeting of 200 uploaded.').waitFor();
      const viaUi = (await call('GET', `/accounts/${id}/mailbox`)).body;
      assert.deepEqual([viaUi.max_messages, viaUi.max_length_s, viaUi.mwi], [7, 45, 'off']);
      assert.match(viaUi.greeting_file, /^voicemail\/greetings\/200-[0-9a-f]+\.wav$/);
      assert.equal(viaUi.has_pin, true, 'the form keeps the PIN');
    } finally {
      await ui.close();
    }

    const log = fs.readFileSync(gw.logFile, 'utf8');
    for (const secret of [PIN, '246810', SECRET]) assert.ok(!log.includes(secret), `log holds ${secret}`);
  });
});
