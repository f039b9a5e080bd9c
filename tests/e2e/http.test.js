// Janus API over plain HTTP with fetch: REST paths, long poll (maxev), CORS and status codes.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './lib/gateway.js';
import { httpPost, httpGet, tx } from './lib/raw.js';

function assertJsonOk(res) {
  assert.equal(res.status, 200, `HTTP ${res.status}: ${res.text}`);
  assert.match(res.headers.get('content-type') || '', /^application\/json/);
  assert.equal(res.headers.get('access-control-allow-origin'), '*');
}

describe('Janus API over HTTP', () => {
  let gw;
  let base;

  before(async () => {
    gw = await startGateway({ name: 'http' });
    base = gw.httpUrl;
  });
  after(async () => {
    await gw?.stop();
  });

  async function createSession() {
    const res = await httpPost(base, { janus: 'create', transaction: tx('c') });
    assertJsonOk(res);
    return res.json.data.id;
  }

  async function attachEcho(S) {
    const res = await httpPost(`${base}/${S}`, { janus: 'attach', plugin: 'janus.plugin.echotest', transaction: tx('a') });
    assertJsonOk(res);
    return res.json.data.id;
  }

  async function echoMessage(S, H, body = { audio: true }) {
    const t = tx('m');
    const res = await httpPost(`${base}/${S}/${H}`, { janus: 'message', transaction: t, body });
    assertJsonOk(res);
    assert.equal(res.json.janus, 'ack');
    assert.equal(res.json.session_id, S);
    assert.equal(res.json.transaction, t);
    return t;
  }

  function assertEchoEvent(ev, S, H, t) {
    assert.equal(ev.janus, 'event');
    assert.equal(ev.session_id, S);
    assert.equal(ev.sender, H);
    assert.equal(ev.transaction, t);
    assert.deepEqual(ev.plugindata, { plugin: 'janus.plugin.echotest', data: { echotest: 'event', result: 'ok' } });
  }

  it('GET /janus/info answers server_info listing echotest', async () => {
    const res = await httpGet(`${base}/info`);
    assertJsonOk(res);
    assert.equal(res.json.janus, 'server_info');
    assert.equal(typeof res.json.transaction, 'string');
    assert.ok(res.json.plugins['janus.plugin.echotest']);
  });

  it('POST /janus create: data.id and no session_id', async () => {
    const res = await httpPost(base, { janus: 'create', transaction: 'h1' });
    assertJsonOk(res);
    assert.equal(res.json.janus, 'success');
    assert.equal(res.json.transaction, 'h1');
    assert.equal(res.json.session_id, undefined);
    assert.ok(Number.isSafeInteger(res.json.data.id) && res.json.data.id > 0);
  });

  it('POST /janus/S attach answers with the handle id and session_id', async () => {
    const S = await createSession();
    const res = await httpPost(`${base}/${S}`, { janus: 'attach', plugin: 'janus.plugin.echotest', transaction: 'h2' });
    assertJsonOk(res);
    assert.equal(res.json.janus, 'success');
    assert.equal(res.json.session_id, S);
    assert.equal(res.json.transaction, 'h2');
    assert.ok(Number.isSafeInteger(res.json.data.id) && res.json.data.id > 0);
  });

  // Janus hands plugin messages to a pool, so events of different messages may come in any order.
  it('long poll with maxev=1 returns one object per GET', async () => {
    const S = await createSession();
    const H = await attachEcho(S);
    const t1 = await echoMessage(S, H, { audio: true });
    const t2 = await echoMessage(S, H, { video: true });
    const first = await httpGet(`${base}/${S}?maxev=1&rid=${Date.now()}`);
    assertJsonOk(first);
    assert.ok(!Array.isArray(first.json), 'maxev=1 must give a bare object');
    const second = await httpGet(`${base}/${S}?rid=${Date.now()}`); // maxev defaults to 1
    assertJsonOk(second);
    assert.ok(!Array.isArray(second.json));
    const byTx = Object.fromEntries([first.json, second.json].map((e) => [e.transaction, e]));
    assert.deepEqual(Object.keys(byTx).sort(), [t1, t2].sort());
    assertEchoEvent(byTx[t1], S, H, t1);
    assertEchoEvent(byTx[t2], S, H, t2);
  });

  it('long poll with maxev=10 returns arrays holding the queued events', async () => {
    const S = await createSession();
    const H = await attachEcho(S);
    const sent = [await echoMessage(S, H), await echoMessage(S, H), await echoMessage(S, H)];
    const got = [];
    // Events are queued as the plugin produces them; gather until all three arrived (each GET
    // returns at once when something is queued).
    while (got.length < sent.length) {
      const res = await httpGet(`${base}/${S}?maxev=10&rid=${Date.now()}`);
      assertJsonOk(res);
      assert.ok(Array.isArray(res.json), `maxev=10 must give an array, got ${res.text}`);
      assert.ok(res.json.length >= 1 && res.json.length <= 10);
      got.push(...res.json.filter((e) => e.janus === 'event'));
    }
    assert.deepEqual(got.map((e) => e.transaction).sort(), [...sent].sort());
    for (const ev of got) assertEchoEvent(ev, S, H, ev.transaction);
  });

  it('a pending long poll is answered as soon as an event is produced', async () => {
    const S = await createSession();
    const H = await attachEcho(S);
    const started = Date.now();
    const poll = httpGet(`${base}/${S}?maxev=10&rid=${started}`);
    // The poll is parked on the server now; the event must wake it (the server holds an idle poll
    // for 30 s, so an answer well before that can only come from the event).
    await new Promise((r) => setTimeout(r, 300));
    const t = await echoMessage(S, H);
    const res = await poll;
    const elapsed = Date.now() - started;
    assertJsonOk(res);
    assert.ok(Array.isArray(res.json));
    assertEchoEvent(res.json[0], S, H, t);
    assert.ok(elapsed < 20000, `long poll answered after ${elapsed} ms`);
  });

  it('trickle, keepalive, detach and destroy over HTTP', async () => {
    const S = await createSession();
    const H = await attachEcho(S);
    const cand = { candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0 };
    for (const extra of [{ candidate: cand }, { candidates: [cand] }, { candidate: { completed: true } }]) {
      const res = await httpPost(`${base}/${S}/${H}`, { janus: 'trickle', transaction: 'tr', ...extra });
      assertJsonOk(res);
      assert.deepEqual(res.json, { janus: 'ack', session_id: S, transaction: 'tr' });
    }
    const ka = await httpPost(`${base}/${S}`, { janus: 'keepalive', transaction: 'ka' });
    assert.deepEqual(ka.json, { janus: 'ack', session_id: S, transaction: 'ka' });
    const det = await httpPost(`${base}/${S}/${H}`, { janus: 'detach', transaction: 'd' });
    assertJsonOk(det);
    assert.deepEqual(det.json, { janus: 'success', session_id: S, transaction: 'd' });
    const detached = await httpGet(`${base}/${S}?maxev=10`);
    assert.ok(detached.json.some((e) => e.janus === 'detached' && e.sender === H && e.session_id === S),
      `no detached event in ${detached.text}`);
    const des = await httpPost(`${base}/${S}`, { janus: 'destroy', transaction: 'x' });
    assert.deepEqual(des.json, { janus: 'success', session_id: S, transaction: 'x' });
    const after = await httpGet(`${base}/${S}`);
    assert.equal(after.status, 404);
  });

  it('ids may come from the body as well as the path; a conflict is 457', async () => {
    const S = await createSession();
    const same = await httpPost(`${base}/${S}`, { janus: 'keepalive', transaction: 'k1', session_id: S });
    assert.equal(same.json.janus, 'ack');
    const bodyOnly = await httpPost(base, { janus: 'keepalive', transaction: 'k2', session_id: S });
    assert.equal(bodyOnly.json.janus, 'ack');
    const conflict = await httpPost(`${base}/${S}`, { janus: 'keepalive', transaction: 'k3', session_id: S + 1 });
    assertJsonOk(conflict);
    assert.equal(conflict.json.error.code, 457);
  });

  it('Janus errors are HTTP 200 with a JSON error', async () => {
    const res = await httpPost(`${base}/123456`, { janus: 'keepalive', transaction: 'e' });
    assertJsonOk(res);
    assert.equal(res.json.janus, 'error');
    assert.equal(res.json.transaction, 'e');
    assert.equal(res.json.error.code, 458);
    const bad = await httpPost(base, '{"janus":');
    assertJsonOk(bad);
    assert.equal(bad.json.error.code, 454);
    const notObject = await httpPost(base, '[]');
    assertJsonOk(notObject);
    assert.equal(notObject.json.error.code, 455);
  });

  it('the body is parsed as JSON whatever the Content-Type (sendBeacon posts text/plain)', async () => {
    const res = await httpPost(base, '{"janus":"ping","transaction":"tp"}', { 'Content-Type': 'text/plain;charset=UTF-8' });
    assertJsonOk(res);
    assert.deepEqual(res.json, { janus: 'pong', transaction: 'tp' });
  });

  it('GET of an unknown or non-numeric session is 404', async () => {
    assert.equal((await httpGet(`${base}/987654321`)).status, 404);
    assert.equal((await httpGet(`${base}/not-a-number`)).status, 404);
  });

  it('GET /janus/S/H redirects to the session long poll', async () => {
    const S = await createSession();
    const H = await attachEcho(S);
    const res = await fetch(`${base}/${S}/${H}`, { redirect: 'manual', signal: AbortSignal.timeout(20000) });
    await res.arrayBuffer();
    assert.equal(res.status, 302);
    assert.equal(new URL(res.headers.get('location'), base).pathname, `/janus/${S}`);
  });

  it('CORS: every answer allows any origin; OPTIONS preflight is 200 and echoes method and headers', async () => {
    const pre = await fetch(base, {
      method: 'OPTIONS',
      headers: { Origin: 'http://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
      signal: AbortSignal.timeout(20000),
    });
    await pre.arrayBuffer();
    assert.equal(pre.status, 200);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
    assert.match(pre.headers.get('access-control-allow-methods') || '', /POST/);
    assert.match(pre.headers.get('access-control-allow-headers') || '', /content-type/i);
    const S = await createSession();
    const pre2 = await fetch(`${base}/${S}`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://app.example', 'Access-Control-Request-Method': 'GET' },
      signal: AbortSignal.timeout(20000),
    });
    await pre2.arrayBuffer();
    assert.equal(pre2.status, 200);
    assert.equal(pre2.headers.get('access-control-allow-origin'), '*');
    const post = await httpPost(base, { janus: 'ping', transaction: 'c' }, { 'Content-Type': 'application/json', Origin: 'http://app.example' });
    assert.equal(post.headers.get('access-control-allow-origin'), '*');
  });
});

describe('HTTP with api_secret', () => {
  const SECRET = 'e2e-http-secret';
  let gw;

  before(async () => {
    gw = await startGateway({ name: 'http-secret', apiSecret: SECRET });
  });
  after(async () => {
    await gw?.stop();
  });

  it('POSTs need apisecret (403 otherwise); long polls take it from the query string', async () => {
    const refused = await httpPost(gw.httpUrl, { janus: 'create', transaction: 'c' });
    assert.equal(refused.status, 200);
    assert.equal(refused.json.error.code, 403);
    const ok = await httpPost(gw.httpUrl, { janus: 'create', transaction: 'c', apisecret: SECRET });
    const S = ok.json.data.id;
    const H = (await httpPost(`${gw.httpUrl}/${S}`, { janus: 'attach', plugin: 'janus.plugin.echotest', transaction: 'a', apisecret: SECRET })).json.data.id;
    const noSecretPoll = await httpGet(`${gw.httpUrl}/${S}?maxev=1`);
    assert.equal(noSecretPoll.status, 403);
    const ack = await httpPost(`${gw.httpUrl}/${S}/${H}`, { janus: 'message', transaction: 'm', body: { audio: true }, apisecret: SECRET });
    assert.equal(ack.json.janus, 'ack');
    const poll = await httpGet(`${gw.httpUrl}/${S}?maxev=1&apisecret=${SECRET}`);
    assert.equal(poll.status, 200);
    assert.equal(poll.json.transaction, 'm');
  });
});
