// Admin API over HTTP (/admin) and WebSocket (janus-admin-protocol).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './lib/gateway.js';
import { connect } from './lib/janode.js';
import { WsClient, httpPost, httpGet } from './lib/raw.js';

describe('Admin API', () => {
  let gw;
  let api; // Janus API socket owning a live session with one echotest handle
  let S;
  let H;

  before(async () => {
    gw = await startGateway({ name: 'admin' });
    api = await WsClient.open(gw.wsUrl);
    S = (await api.request({ janus: 'create' })).data.id;
    H = (await api.request({ janus: 'attach', session_id: S, plugin: 'janus.plugin.echotest', opaque_id: 'e2e-opaque' })).data.id;
  });
  after(async () => {
    api?.close();
    await gw?.stop();
  });

  const admin = (body, path = '') => httpPost(`${gw.adminHttpUrl}${path}`, { transaction: 'adm', ...body });

  it('HTTP: info and ping need no secret', async () => {
    const info = await admin({ janus: 'info' });
    assert.equal(info.status, 200);
    assert.equal(info.json.janus, 'server_info');
    assert.ok(info.json.plugins['janus.plugin.echotest']);
    const ping = await admin({ janus: 'ping' });
    assert.deepEqual(ping.json, { janus: 'pong', transaction: 'adm' });
    const getInfo = await httpGet(`${gw.adminHttpUrl}/info`);
    assert.equal(getInfo.status, 200);
    assert.equal(getInfo.json.janus, 'server_info');
  });

  it('HTTP: missing or wrong admin_secret is 403', async () => {
    const missing = await admin({ janus: 'list_sessions' });
    assert.equal(missing.status, 200);
    assert.equal(missing.json.janus, 'error');
    assert.equal(missing.json.error.code, 403);
    const wrong = await admin({ janus: 'list_sessions', admin_secret: 'nope' });
    assert.equal(wrong.json.error.code, 403);
    const wrongOnHandle = await admin({ janus: 'handle_info', admin_secret: 'nope' }, `/${S}/${H}`);
    assert.equal(wrongOnHandle.json.error.code, 403);
  });

  it('HTTP: list_sessions contains the live session', async () => {
    const res = await admin({ janus: 'list_sessions', admin_secret: gw.adminSecret });
    assert.equal(res.json.janus, 'success');
    assert.equal(res.json.transaction, 'adm');
    assert.ok(Array.isArray(res.json.sessions));
    assert.ok(res.json.sessions.includes(S), `${S} not in ${JSON.stringify(res.json.sessions)}`);
  });

  it('HTTP: list_handles and handle_info name the plugin', async () => {
    const lh = await admin({ janus: 'list_handles', admin_secret: gw.adminSecret }, `/${S}`);
    assert.equal(lh.json.janus, 'success');
    assert.equal(lh.json.session_id, S);
    assert.deepEqual(lh.json.handles, [H]);
    const hi = await admin({ janus: 'handle_info', admin_secret: gw.adminSecret }, `/${S}/${H}`);
    assert.equal(hi.json.janus, 'success');
    assert.equal(hi.json.session_id, S);
    assert.equal(hi.json.handle_id, H);
    assert.equal(hi.json.info.plugin, 'janus.plugin.echotest');
    assert.equal(hi.json.info.session_id, S);
    assert.equal(hi.json.info.handle_id, H);
    assert.equal(hi.json.info.opaque_id, 'e2e-opaque');
    const unknown = await admin({ janus: 'handle_info', admin_secret: gw.adminSecret }, `/${S}/12345`);
    assert.equal(unknown.json.error.code, 459);
  });

  it('HTTP: get_status and set_session_timeout', async () => {
    const st = await admin({ janus: 'get_status', admin_secret: gw.adminSecret });
    assert.equal(st.json.janus, 'success');
    assert.equal(typeof st.json.status, 'object');
    assert.equal(st.json.status.session_timeout, 60);
    assert.equal(typeof st.json.status.token_auth, 'boolean');
    // Janus' key and default (README, [media] min_nack_queue).
    assert.equal(st.json.status.min_nack_queue, 200);
    const set = await admin({ janus: 'set_session_timeout', timeout: 120, admin_secret: gw.adminSecret });
    assert.equal(set.json.janus, 'success');
    assert.equal(set.json.timeout, 120);
    const st2 = await admin({ janus: 'get_status', admin_secret: gw.adminSecret });
    assert.equal(st2.json.status.session_timeout, 120);
    const bad = await admin({ janus: 'set_session_timeout', timeout: 'soon', admin_secret: gw.adminSecret });
    assert.equal(bad.json.error.code, 467);
    const missing = await admin({ janus: 'set_session_timeout', admin_secret: gw.adminSecret });
    assert.equal(missing.json.error.code, 456);
    const back = await admin({ janus: 'set_session_timeout', timeout: 60, admin_secret: gw.adminSecret });
    assert.equal(back.json.timeout, 60);
  });

  it('HTTP: set_min_nack_queue changes what get_status shows, at most 1000', async () => {
    const set = (body) => admin({ janus: 'set_min_nack_queue', admin_secret: gw.adminSecret, ...body });
    const status = async () =>
      (await admin({ janus: 'get_status', admin_secret: gw.adminSecret })).json.status.min_nack_queue;
    const changed = await set({ min_nack_queue: 300 });
    assert.equal(changed.json.janus, 'success');
    assert.equal(changed.json.min_nack_queue, 300);
    assert.equal(await status(), 300);
    // Janus lowers what is past its ceiling instead of refusing it.
    assert.equal((await set({ min_nack_queue: 5000 })).json.min_nack_queue, 1000);
    assert.equal(await status(), 1000);
    assert.equal((await set({ min_nack_queue: -1 })).json.error.code, 467);
    assert.equal((await set({ min_nack_queue: 'long' })).json.error.code, 467);
    assert.equal((await set({})).json.error.code, 456);
    assert.equal(await status(), 1000);
    assert.equal((await set({ min_nack_queue: 200 })).json.min_nack_queue, 200);
  });

  it('HTTP: unknown admin request at a path is 457', async () => {
    const res = await admin({ janus: 'frobnicate', admin_secret: gw.adminSecret });
    assert.equal(res.json.error.code, 457);
  });

  it('WebSocket: janus-admin-protocol with raw frames', async () => {
    const ws = await WsClient.open(gw.adminWsUrl, 'janus-admin-protocol');
    try {
      assert.equal(ws.protocol, 'janus-admin-protocol');
      const info = await ws.request({ janus: 'info' });
      assert.equal(info.janus, 'server_info');
      const ping = await ws.request({ janus: 'ping', transaction: 'wp' });
      assert.deepEqual(ping, { janus: 'pong', transaction: 'wp' });
      const denied = await ws.request({ janus: 'list_sessions' });
      assert.equal(denied.error.code, 403);
      const wrong = await ws.request({ janus: 'get_status', admin_secret: 'nope' });
      assert.equal(wrong.error.code, 403);
      const list = await ws.request({ janus: 'list_sessions', admin_secret: gw.adminSecret });
      assert.ok(list.sessions.includes(S));
      const st = await ws.request({ janus: 'get_status', admin_secret: gw.adminSecret });
      assert.equal(typeof st.status.session_timeout, 'number');
    } finally {
      ws.close();
    }
  });

  it('WebSocket: janode admin helpers (listSessions, listHandles, handleInfo)', async () => {
    const conn = await connect(gw.adminWsUrl, { admin: true, apisecret: gw.adminSecret });
    try {
      const sessions = await conn.listSessions();
      assert.ok(sessions.sessions.includes(S));
      const handles = await conn.listHandles(S);
      assert.deepEqual(handles.handles, [H]);
      const info = await conn.handleInfo(S, H);
      assert.equal(info.info.plugin, 'janus.plugin.echotest');
    } finally {
      await conn.close().catch(() => {});
    }
  });

  it('the Janus API port does not serve the Admin API', async () => {
    const res = await httpPost(gw.httpUrl, { janus: 'list_sessions', transaction: 'x', admin_secret: gw.adminSecret });
    assert.equal(res.json.janus, 'error');
    assert.equal(res.json.error.code, 457);
  });
});
