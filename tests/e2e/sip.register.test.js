// The SIP plugin's `register` options with a real registrar (kamailio with digest auth), over
// the raw Janus WebSocket API: `ha1_secret`, `authuser`, `outbound_proxy`, `user_agent` and
// `force_tcp`/`force_udp`, each checked in what kamailio received, and their bad values.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startGateway } from './lib/gateway.js';
import { WsClient } from './lib/raw.js';
import { startKamailio, SIP_USERS } from './lib/sip.js';

const md5 = (s) => crypto.createHash('md5').update(s).digest('hex');

describe('SIP register options against kamailio', () => {
  let gw;
  let kamailio;
  let ws;
  let session;

  before(async () => {
    kamailio = await startKamailio();
    gw = await startGateway({ name: 'sip-register', env: { BIFRONS_SIP_TIMER_T1_MS: '100' } });
    ws = await WsClient.open(gw.wsUrl);
    session = (await ws.request({ janus: 'create' })).data.id;
  });

  after(async () => {
    ws?.close();
    await gw?.stop();
    await kamailio?.stop();
  });

  /** A fresh handle on the SIP plugin. */
  async function attach() {
    const r = await ws.request({ janus: 'attach', session_id: session, plugin: 'janus.plugin.sip' });
    return r.data.id;
  }

  /** Sends `body` on `handle`; resolves with the plugin's event (or error) for it. */
  async function send(handle, body, until = () => true) {
    const transaction = `reg-${crypto.randomBytes(4).toString('hex')}`;
    ws.send({ janus: 'message', session_id: session, handle_id: handle, transaction, body });
    return ws.next((m) => m.janus === 'event' && m.sender === handle
      && (m.plugindata?.data?.error_code || until(m.plugindata?.data?.result?.event)), 30000,
    `SIP event on ${handle} for ${JSON.stringify(body)}`).then((m) => m.plugindata.data);
  }

  /** The REGISTER lines kamailio logged for `user` after index `from`. */
  const registers = (user, from = 0) => kamailio.log().split('\n').slice(from)
    .filter((l) => new RegExp(`REQ REGISTER .* from ${user} `).test(l));

  const registered = (e) => e === 'registered' || e === 'registration_failed';

  it('ha1_secret with authuser registers; a wrong HA1 is refused with 401', async () => {
    const handle = await attach();
    // kamailio's realm is the To domain (127.0.0.1); HA1 = MD5(user:realm:password). The
    // address of record (frontdesk) differs from the digest user (bob).
    const ha1 = md5(`bob:127.0.0.1:${SIP_USERS.bob}`);
    const ok = await send(handle, {
      request: 'register', username: kamailio.uri('frontdesk'), authuser: 'bob', ha1_secret: ha1.toUpperCase(),
    }, registered);
    assert.equal(ok.result.event, 'registered', JSON.stringify(ok));
    assert.ok(registers('frontdesk').some((l) => /auth \[bob\]/.test(l)),
      `digest user bob for frontdesk seen by kamailio:\n${registers('frontdesk').join('\n')}`);
    await send(handle, { request: 'unregister' }, (e) => e === 'unregistered');

    const other = await attach();
    const bad = await send(other, {
      request: 'register', username: kamailio.uri('carol'), ha1_secret: md5('carol:127.0.0.1:wrong'),
    }, registered);
    assert.equal(bad.result.event, 'registration_failed', JSON.stringify(bad));
    assert.ok([401, 403].includes(bad.result.code), JSON.stringify(bad));
  });

  it('outbound_proxy carries the REGISTER when the registrar itself is unreachable', async () => {
    // The registrar is the username's host (127.0.0.1:5060: nothing listens there); only the
    // outbound proxy (kamailio) can take the request.
    const handle = await attach();
    const from = kamailio.log().split('\n').length;
    const ok = await send(handle, {
      request: 'register', username: 'sip:dave@127.0.0.1', secret: SIP_USERS.dave,
      outbound_proxy: kamailio.registrar,
    }, registered);
    assert.equal(ok.result.event, 'registered', JSON.stringify(ok));
    const seen = registers('dave', from);
    assert.ok(seen.some((l) => /REQ REGISTER sip:127\.0\.0\.1 from dave /.test(l)), seen.join('\n'));
  });

  it('user_agent and force_tcp shape the requests kamailio receives', async () => {
    const handle = await attach();
    const from = kamailio.log().split('\n').length;
    const ok = await send(handle, {
      request: 'register', username: kamailio.uri('erin'), secret: SIP_USERS.erin,
      user_agent: 'Front desk phone/2.1', force_tcp: true,
    }, registered);
    assert.equal(ok.result.event, 'registered', JSON.stringify(ok));
    const seen = registers('erin', from);
    assert.ok(seen.length >= 1, 'REGISTER seen');
    assert.ok(seen.every((l) => / proto tcp ua \[Front desk phone\/2\.1\]/.test(l)), seen.join('\n'));

    const udp = await attach();
    const from2 = kamailio.log().split('\n').length;
    const ok2 = await send(udp, {
      request: 'register', username: kamailio.uri('alice'), secret: SIP_USERS.alice, force_udp: true,
    }, registered);
    assert.equal(ok2.result.event, 'registered', JSON.stringify(ok2));
    assert.ok(registers('alice', from2).every((l) => / proto udp /.test(l)));
  });

  it('bad register options are refused with their codes and the handle stays usable', async () => {
    const handle = await attach();
    const cases = [
      [{ ha1_secret: 'not-hex' }, 444],
      [{ ha1_secret: md5('x').slice(0, 30) }, 444],
      [{ ha1_secret: 5 }, 444],
      [{ secret: 'x', outbound_proxy: 'not a uri' }, 446],
      [{ secret: 'x', outbound_proxy: 7 }, 444],
      [{ secret: 'x', user_agent: 'evil\r\nX-Injected: 1' }, 444],
      [{ secret: 'x', user_agent: '' }, 444],
      [{ secret: 'x', user_agent: 'x'.repeat(300) }, 444],
      [{ secret: 'x', force_tcp: true, force_udp: true }, 444],
      [{ secret: 'x', force_tcp: 'yes' }, 444],
      [{}, 443],
    ];
    for (const [extra, code] of cases) {
      const r = await send(handle, { request: 'register', username: kamailio.uri('alice'), ...extra });
      assert.equal(r.error_code, code, `${JSON.stringify(extra)} → ${JSON.stringify(r)}`);
    }
    const ok = await send(handle, { request: 'register', username: kamailio.uri('alice'), secret: SIP_USERS.alice }, registered);
    assert.equal(ok.result.event, 'registered', JSON.stringify(ok));
  });
});
