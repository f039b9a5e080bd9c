// Permanent mountpoints: `create`/`edit` with `permanent: true` (janode's streaming plugin and
// the Admin API) are kept in the registry and come back after the gateway restarts, with their
// edited description, their secret and their RTP ports (ffmpeg feeds them after the restart);
// `destroy` with `permanent: true` forgets them; a random port (0) cannot be made permanent
// (Janus' 470, for create and for edit); a non-permanent mountpoint does not come back.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import StreamingPlugin from 'janode/plugins/streaming';
import { connect } from './lib/janode.js';
import { freePorts } from './lib/gateway.js';
import { startStreamingGateway, adminStreaming, spawnProcess, waitLive } from './lib/streaming.js';

async function rejectsWithCode(promise, code) {
  await assert.rejects(promise, (err) => {
    assert.match(String(err.message), new RegExp(`^${code} `), String(err.message));
    return true;
  });
}

describe('permanent mountpoints survive a restart', () => {
  let gw;
  let conn;
  let handle;
  const procs = [];

  async function attach() {
    conn = await connect(gw.wsUrl);
    const session = await conn.create();
    handle = await session.attach(StreamingPlugin);
  }

  before(async () => {
    gw = await startStreamingGateway('streaming-permanent');
    await attach();
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await conn?.close().catch(() => {});
    await gw?.stop();
  });

  it('create, edit, restart, feed, destroy permanently, restart', async () => {
    const [audioPort, videoPort] = await freePorts(2);
    const media = [
      { type: 'audio', mid: 'a', port: audioPort, pt: 111, codec: 'opus' },
      { type: 'video', mid: 'v', port: videoPort, pt: 100, codec: 'vp8' },
    ];
    const created = await handle.createRtpMountpoint({
      id: 5150, name: 'lobby-cam', description: 'Lobby', secret: 'adm1n', pin: '4321', permanent: true, media,
    });
    assert.equal(created.id, 5150);
    const raw = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 5151, description: 'temporary',
      media: [{ type: 'audio', mid: 'a', port: 0, pt: 111, codec: 'opus' }],
    });
    assert.equal(raw.permanent, false);
    const editRandom = await adminStreaming(gw, { request: 'edit', id: 5151, new_description: 'x', permanent: true });
    assert.equal(editRandom.error_code, 470, 'a port picked at random cannot be made permanent by edit either');
    assert.equal((await adminStreaming(gw, { request: 'info', id: 5151 })).info.description, 'temporary', 'nothing changed');
    const random = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 5152, permanent: true,
      media: [{ type: 'audio', mid: 'a', port: 0, pt: 111, codec: 'opus' }],
    });
    assert.equal(random.error_code, 470, JSON.stringify(random));
    assert.match(random.error, /port 0/);
    assert.equal((await adminStreaming(gw, { request: 'info', id: 5152 })).error_code, 455, 'nothing was created');

    const edited = await adminStreaming(gw, {
      request: 'edit', id: 5150, secret: 'adm1n', new_description: 'Lobby (north)', permanent: true,
    });
    assert.equal(edited.streaming, 'edited', JSON.stringify(edited));
    assert.equal(edited.permanent, true);

    await conn.close();
    gw = await gw.restart();
    await attach();

    const listed = await handle.list();
    assert.deepEqual(listed.list.map((m) => [m.id, m.description]), [[5150, 'Lobby (north)']]);
    await rejectsWithCode(handle.info({ id: 5151 }), 455);
    await rejectsWithCode(handle.destroyMountpoint({ id: 5150, secret: 'wrong' }), 457);
    const info = await handle.info({ id: 5150, secret: 'adm1n' });
    assert.equal(info.name, 'lobby-cam');
    assert.equal(info.pin_required, true);
    assert.deepEqual(info.ports.map((p) => [p.type, p.port]), [['audio', audioPort], ['video', videoPort]]);
    assert.equal(info.secret, undefined);

    // The restored ports take media: ffmpeg feeds them and the mountpoint goes live.
    const ff = spawnProcess('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=15', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-map', '0:v', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '300k',
      '-payload_type', '100', '-f', 'rtp', `rtp://127.0.0.1:${videoPort}?pkt_size=1200`,
      '-map', '1:a', '-c:a', 'libopus', '-b:a', '32k', '-payload_type', '111', '-f', 'rtp', `rtp://127.0.0.1:${audioPort}`,
    ]);
    procs.push(ff);
    const live = await waitLive(gw, 5150);
    assert.ok(live.media.every((m) => m.age_ms !== undefined), JSON.stringify(live.media));
    await ff.stop();

    const destroyed = await handle.destroyMountpoint({ id: 5150, secret: 'adm1n', permanent: true });
    assert.equal(destroyed.id, 5150);

    await conn.close();
    gw = await gw.restart();
    await attach();
    assert.deepEqual((await handle.list()).list, [], 'a mountpoint destroyed permanently stays gone');
  });

  it('destroy without permanent only removes it until the next start', async () => {
    const [port] = await freePorts(1);
    await handle.createRtpMountpoint({
      id: 6160, description: 'comes back', permanent: true,
      media: [{ type: 'audio', mid: 'a', port, pt: 111, codec: 'opus' }],
    });
    await handle.destroyMountpoint({ id: 6160 });
    assert.deepEqual((await handle.list()).list, []);
    await conn.close();
    gw = await gw.restart();
    await attach();
    assert.deepEqual((await handle.list()).list.map((m) => m.id), [6160]);
  });
});
