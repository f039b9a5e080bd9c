// Bad input: every malformed request gets the exact Janus error, the connection keeps working, and
// other sessions are not disturbed.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import EchoTestPlugin from 'janode/plugins/echotest';
import { startGateway } from './lib/gateway.js';
import { connect } from './lib/janode.js';
import { WsClient, tx } from './lib/raw.js';
import { audioOffer } from './lib/sdp.js';

/**
 * Each case builds a raw frame from the live ids: S (session), H (fresh echotest handle), N (handle
 * whose PeerConnection was negotiated, so trickled candidates are validated at once instead of
 * being queued). `code` is the Janus error code the reply must carry; `envelope` marks errors raised
 * while the envelope is validated, whose replies need not echo the transaction.
 */
const CASES = [
  { name: 'invalid JSON', code: 454, frame: () => '{not json' },
  { name: 'truncated JSON', code: 454, frame: () => '{"janus":"create","transaction":"x",' },
  { name: 'JSON string instead of an object', code: 454, frame: () => '"create"' },
  { name: 'JSON number instead of an object', code: 454, frame: () => '42' },
  { name: 'empty object (no transaction)', code: 456, frame: () => '{}' },
  { name: 'transaction is a number', code: 467, frame: () => '{"transaction":123,"janus":"info"}' },
  { name: 'transaction is a nested object', code: 467, frame: () => '{"janus":"create","transaction":{"a":[[[[{"b":[1,{"c":null}]}]]]]},"garbage":[[[[[]]]]]}' },
  { name: 'missing janus', envelope: true, code: 456, frame: (t) => `{"transaction":"${t}"}` },
  { name: 'janus is a number', envelope: true, code: 467, frame: (t) => `{"transaction":"${t}","janus":42}` },
  { name: 'create with a string id', envelope: true, code: 467, frame: (t) => `{"transaction":"${t}","janus":"create","id":"abc"}` },
  { name: 'create with a negative id', envelope: true, code: 467, frame: (t) => `{"transaction":"${t}","janus":"create","id":-5}` },
  { name: 'unknown request', code: 453, frame: (t, { S }) => `{"transaction":"${t}","janus":"frobnicate","session_id":${S}}` },
  { name: 'session request without session', code: 457, frame: (t) => `{"transaction":"${t}","janus":"keepalive"}` },
  { name: 'session request on a handle', code: 457, frame: (t, { S, H }) => `{"transaction":"${t}","janus":"attach","session_id":${S},"handle_id":${H},"plugin":"janus.plugin.echotest"}` },
  { name: 'handle request without handle', code: 457, frame: (t, { S }) => `{"transaction":"${t}","janus":"message","session_id":${S},"body":{}}` },
  { name: 'unknown session', code: 458, frame: (t) => `{"transaction":"${t}","janus":"keepalive","session_id":4242}` },
  { name: 'session id above 2^53 (unknown)', code: 458, frame: (t) => `{"transaction":"${t}","janus":"keepalive","session_id":9007199254740993}` },
  { name: 'negative session id', code: 458, frame: (t) => `{"transaction":"${t}","janus":"keepalive","session_id":-1}` },
  { name: 'integer too big for 64 bits', envelope: true, code: 454, frame: (t) => `{"transaction":"${t}","janus":"keepalive","session_id":1000000000000000000000000000000}` },
  { name: 'unknown handle', code: 459, frame: (t, { S }) => `{"transaction":"${t}","janus":"message","session_id":${S},"handle_id":98765,"body":{}}` },
  { name: 'negative handle id', code: 459, frame: (t, { S }) => `{"transaction":"${t}","janus":"keepalive","session_id":${S},"handle_id":-1}` },
  { name: 'attach without plugin', code: 456, frame: (t, { S }) => `{"transaction":"${t}","janus":"attach","session_id":${S}}` },
  { name: 'attach with a numeric plugin', code: 467, frame: (t, { S }) => `{"transaction":"${t}","janus":"attach","session_id":${S},"plugin":5}` },
  { name: 'attach to an unknown plugin', code: 460, frame: (t, { S }) => `{"transaction":"${t}","janus":"attach","session_id":${S},"plugin":"janus.plugin.nope"}` },
  { name: 'message without body', code: 456, frame: (t, { S, H }) => `{"transaction":"${t}","janus":"message","session_id":${S},"handle_id":${H}}` },
  { name: 'message body is a string', code: 467, frame: (t, { S, H }) => `{"transaction":"${t}","janus":"message","session_id":${S},"handle_id":${H},"body":"x"}` },
  { name: 'message body is an array', code: 467, frame: (t, { S, H }) => `{"transaction":"${t}","janus":"message","session_id":${S},"handle_id":${H},"body":[1,2]}` },
  { name: 'jsep is not an object', code: 455, frame: (t, { S, H }) => `{"transaction":"${t}","janus":"message","session_id":${S},"handle_id":${H},"body":{},"jsep":"x"}` },
  { name: 'jsep without sdp', code: 456, frame: (t, { S, H }) => `{"transaction":"${t}","janus":"message","session_id":${S},"handle_id":${H},"body":{},"jsep":{"type":"offer"}}` },
  { name: 'jsep without type', code: 456, frame: (t, { S, H }) => `{"transaction":"${t}","janus":"message","session_id":${S},"handle_id":${H},"body":{},"jsep":{"sdp":"v=0"}}` },
  { name: 'jsep of unknown type', code: 464, frame: (t, { S, H }) => `{"transaction":"${t}","janus":"message","session_id":${S},"handle_id":${H},"body":{},"jsep":{"type":"bogus","sdp":"v=0"}}` },
  { name: 'offer whose SDP does not parse', code: 465, frame: (t, { S, H }) => `{"transaction":"${t}","janus":"message","session_id":${S},"handle_id":${H},"body":{"audio":true},"jsep":{"type":"offer","sdp":"this is not SDP"}}` },
  { name: 'trickle with neither candidate nor candidates', code: 456, frame: (t, { S, H }) => `{"transaction":"${t}","janus":"trickle","session_id":${S},"handle_id":${H}}` },
  { name: 'trickle with both candidate and candidates', code: 454, frame: (t, { S, H }) => `{"transaction":"${t}","janus":"trickle","session_id":${S},"handle_id":${H},"candidate":{"completed":true},"candidates":[]}` },
  { name: 'trickle for an unknown handle', code: 459, frame: (t, { S }) => `{"transaction":"${t}","janus":"trickle","session_id":${S},"handle_id":13579,"candidate":{"completed":true}}` },
  { name: 'trickle candidate without candidate string', code: 456, frame: (t, { S, N }) => `{"transaction":"${t}","janus":"trickle","session_id":${S},"handle_id":${N},"candidate":{"sdpMid":"0","sdpMLineIndex":0}}` },
  { name: 'trickle candidate string is a number', code: 467, frame: (t, { S, N }) => `{"transaction":"${t}","janus":"trickle","session_id":${S},"handle_id":${N},"candidate":{"candidate":5,"sdpMid":"0"}}` },
  { name: 'trickle candidate without sdpMid/sdpMLineIndex', code: 456, frame: (t, { S, N }) => `{"transaction":"${t}","janus":"trickle","session_id":${S},"handle_id":${N},"candidate":{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host"}}` },
  { name: 'trickle sdpMid is a number', code: 467, frame: (t, { S, N }) => `{"transaction":"${t}","janus":"trickle","session_id":${S},"handle_id":${N},"candidate":{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMid":0}}` },
  { name: 'trickle sdpMLineIndex is a string', code: 467, frame: (t, { S, N }) => `{"transaction":"${t}","janus":"trickle","session_id":${S},"handle_id":${N},"candidate":{"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host","sdpMLineIndex":"0"}}` },
];

describe('malformed requests', () => {
  let gw;
  let ws;
  const ids = {};

  before(async () => {
    gw = await startGateway({ name: 'malformed' });
    ws = await WsClient.open(gw.wsUrl);
    ids.S = (await ws.request({ janus: 'create' })).data.id;
    ids.H = (await ws.request({ janus: 'attach', session_id: ids.S, plugin: 'janus.plugin.echotest' })).data.id;
    ids.N = (await ws.request({ janus: 'attach', session_id: ids.S, plugin: 'janus.plugin.echotest' })).data.id;
    const ev = await ws.request(
      { janus: 'message', session_id: ids.S, handle_id: ids.N, body: { audio: true }, jsep: { type: 'offer', sdp: audioOffer() } },
      { skipAck: true },
    );
    assert.equal(ev.jsep?.type, 'answer', `negotiation for the trickle cases failed: ${JSON.stringify(ev)}`);
  });
  after(async () => {
    ws?.close();
    await gw?.stop();
  });

  it(`has at least 20 cases (${CASES.length})`, () => {
    assert.ok(CASES.length >= 20);
  });

  for (const c of CASES) {
    it(`${c.name} → ${c.code}`, async () => {
      const t = tx('bad');
      const frame = c.frame(t, ids);
      ws.send(frame);
      const reply = await ws.next((m) => m.janus === 'error' || m.transaction === t, 10000, `reply to ${frame.slice(0, 120)}`);
      assert.equal(reply.janus, 'error', `expected an error for ${frame}, got ${JSON.stringify(reply)}`);
      assert.equal(reply.error?.code, c.code, `${frame} → ${JSON.stringify(reply)}`);
      assert.equal(typeof reply.error.reason, 'string');
      assert.ok(reply.error.reason.length > 0);
      // Errors found while the envelope is validated (parse, transaction, janus, id) carry no
      // transaction in Janus; from then on the transaction is echoed.
      if (!c.envelope && frame.includes(`"transaction":"${t}"`)) assert.equal(reply.transaction, t, 'transaction echoed');
    });
  }

  it('plugin-level validation errors come inside the plugin event, not as Janus errors', async () => {
    for (const body of [{ audio: 'yes' }, { bitrate: -5 }, { nested: { a: [[[{ b: null }]]] } }]) {
      const t = tx('plug');
      ws.send({ janus: 'message', session_id: ids.S, handle_id: ids.H, transaction: t, body });
      const ack = await ws.next((m) => m.transaction === t);
      assert.equal(ack.janus, 'ack', JSON.stringify(body));
      const ev = await ws.next((m) => m.transaction === t);
      assert.equal(ev.janus, 'event');
      assert.equal(ev.sender, ids.H);
      assert.equal(ev.plugindata.plugin, 'janus.plugin.echotest');
      assert.equal(ev.plugindata.data.echotest, 'event');
      assert.equal(ev.plugindata.data.error_code, 413, JSON.stringify(ev));
      assert.equal(typeof ev.plugindata.data.error, 'string');
    }
  });

  it('the abused connection still works', async () => {
    const pong = await ws.request({ janus: 'ping' });
    assert.equal(pong.janus, 'pong');
    const ka = await ws.request({ janus: 'keepalive', session_id: ids.S });
    assert.equal(ka.janus, 'ack');
  });

  it('a separate healthy session completes an echotest round trip', async () => {
    const conn = await connect(gw.wsUrl);
    try {
      const session = await conn.create(3600);
      const handle = await session.attach(EchoTestPlugin);
      const t = tx('ok');
      const ev = await handle.sendRequest({ janus: 'message', transaction: t, body: { audio: true, video: true } });
      assert.equal(ev.transaction, t);
      assert.deepEqual(ev.plugindata.data, { echotest: 'event', result: 'ok' });
      const offered = await handle.message({ audio: true }, { type: 'offer', sdp: audioOffer() });
      assert.equal(offered.jsep?.type, 'answer');
      await session.destroy();
    } finally {
      await conn.close().catch(() => {});
    }
  });
});
