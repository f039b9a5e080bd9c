// janode's streaming plugin against the gateway: list/info/create/destroy round trips with
// Janus' exact error codes (unknown id 455, missing secret 453, wrong secret 457, duplicate
// id 456, bad types 454), private mountpoints hidden from `list`, and an `rtmp` mountpoint.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import StreamingPlugin from 'janode/plugins/streaming';
import { connect } from './lib/janode.js';
import { startStreamingGateway } from './lib/streaming.js';

/** The Janus error code janode put at the front of a rejected request's message. */
async function rejectsWithCode(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.match(String(err.message), new RegExp(`^${code} `), String(err.message));
    return true;
  });
}

describe('streaming plugin through janode', () => {
  let gw;
  let conn;
  let session;
  let handle;

  before(async () => {
    gw = await startStreamingGateway('streaming-janode');
    conn = await connect(gw.wsUrl);
    session = await conn.create();
    handle = await session.attach(StreamingPlugin);
  });
  after(async () => {
    await handle?.detach().catch(() => {});
    await session?.destroy().catch(() => {});
    await conn?.close().catch(() => {});
    await gw?.stop();
  });

  const media = [
    { type: 'audio', mid: 'a', port: 0, pt: 111, codec: 'opus' },
    { type: 'video', mid: 'v', port: 0, pt: 96, codec: 'vp8' },
  ];

  it('list, create, info, destroy round trip with exact error codes', async () => {
    const empty = await handle.list();
    assert.deepEqual(empty.list, []);

    const created = await handle.createRtpMountpoint({
      id: 4242, name: 'cam-4242', description: 'RTP camera', secret: 'adminpwd', pin: '1234', media,
    });
    assert.equal(created.id, 4242);
    assert.equal(created.name, 'cam-4242');
    assert.equal(created.description, 'RTP camera');

    await rejectsWithCode(handle.createRtpMountpoint({ id: 4242, name: 'again', media }), 456);

    const listed = await handle.list();
    assert.deepEqual(listed.list.map((m) => m.id), [4242]);
    assert.equal(listed.list[0].description, 'RTP camera');
    assert.deepEqual(listed.list[0].media.map((m) => [m.mid, m.type]), [['a', 'audio'], ['v', 'video']]);

    const publicInfo = await handle.info({ id: 4242 });
    assert.equal(publicInfo.id, 4242);
    assert.equal(publicInfo.name, undefined, 'the name needs the secret');
    assert.equal(publicInfo.secret, undefined);
    const adminInfo = await handle.info({ id: 4242, secret: 'adminpwd' });
    assert.equal(adminInfo.name, 'cam-4242');
    assert.equal(adminInfo.viewers, 0);
    assert.equal(adminInfo.secret, undefined, 'secrets are never sent back');
    assert.equal(adminInfo.pin, undefined);
    assert.deepEqual(adminInfo.media.map((m) => m.codec), ['opus', 'vp8']);
    assert.ok(adminInfo.ports.every((p) => p.port > 0), JSON.stringify(adminInfo.ports));

    await rejectsWithCode(handle.info({ id: 999999 }), 455);
    await rejectsWithCode(handle.destroyMountpoint({ id: 999999 }), 455);
    await rejectsWithCode(handle.destroyMountpoint({ id: 4242 }), 453);
    await rejectsWithCode(handle.destroyMountpoint({ id: 4242, secret: 'wrong' }), 457);
    const destroyed = await handle.destroyMountpoint({ id: 4242, secret: 'adminpwd' });
    assert.equal(destroyed.id, 4242);
    await rejectsWithCode(handle.info({ id: 4242 }), 455);
    assert.deepEqual((await handle.list()).list, []);
  });

  it('private mountpoints are hidden from list but answer info', async () => {
    await handle.createRtpMountpoint({ id: 77, is_private: true, media });
    assert.deepEqual((await handle.list()).list.map((m) => m.id), []);
    assert.equal((await handle.info({ id: 77 })).id, 77);
    await handle.destroyMountpoint({ id: 77 });
  });

  it('an rtmp mountpoint is created, listed and destroyed', async () => {
    const reply = await handle.message({ request: 'create', type: 'rtmp', id: 500, description: 'OBS' });
    const data = reply.plugindata.data;
    assert.equal(data.streaming, 'created');
    assert.equal(data.stream.id, 500);
    const info = await handle.info({ id: 500 });
    assert.equal(info.source, 'rtmp');
    assert.equal(info.live, false);
    assert.deepEqual(info.media.map((m) => m.codec), ['opus', 'h264']);
    await handle.destroyMountpoint({ id: 500 });
  });

  it('bad types and unknown requests get 452, 453 and 454', async () => {
    await rejectsWithCode(handle.info({ id: 'seven' }), 454);
    await rejectsWithCode(handle.message({ request: 'create' }), 453);
    await rejectsWithCode(handle.message({ request: 'create', type: 'file' }), 454);
    await rejectsWithCode(handle.message({ request: 'nope' }), 452);
    await rejectsWithCode(handle.message({ request: 'create', type: 'rtp' }), 456);
  });

  it('kick_all needs the secret', async () => {
    await handle.createRtpMountpoint({ id: 88, secret: 'k', media });
    await rejectsWithCode(handle.message({ request: 'kick_all', id: 88, secret: 'no' }), 457);
    await rejectsWithCode(handle.message({ request: 'kick_all', id: 89 }), 455);
    const reply = await handle.message({ request: 'kick_all', id: 88, secret: 'k' });
    assert.equal(reply.plugindata.data.streaming, 'kicked_all');
    await handle.destroyMountpoint({ id: 88, secret: 'k' });
  });

  it('edit changes description, secret, PIN and privacy', async () => {
    await handle.createRtpMountpoint({ id: 99, description: 'before', secret: 'old', media });
    await rejectsWithCode(handle.message({ request: 'edit', id: 99, new_description: 'x' }), 453);
    await rejectsWithCode(handle.message({ request: 'edit', id: 99, secret: 'bad', new_description: 'x' }), 457);
    await rejectsWithCode(handle.message({ request: 'edit', id: 99, secret: 'old', new_is_private: 'yes' }), 454);
    const reply = await handle.message({
      request: 'edit', id: 99, secret: 'old', new_description: 'after', new_secret: 'new', new_pin: '42', new_is_private: true,
    });
    assert.deepEqual(reply.plugindata.data, { streaming: 'edited', id: 99, permanent: false });
    assert.deepEqual((await handle.list()).list.map((m) => m.id), [], 'now private');
    const info = await handle.info({ id: 99, secret: 'new' });
    assert.equal(info.description, 'after');
    assert.equal(info.pin_required, true);
    await rejectsWithCode(handle.destroyMountpoint({ id: 99, secret: 'old' }), 457);
    await handle.destroyMountpoint({ id: 99, secret: 'new' });
  });
});
