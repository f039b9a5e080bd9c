// `recording` of a mountpoint fed over RTMP: its Opus audio (transcoded from AAC) goes to an
// Ogg/Opus file that ffprobe reads back with the duration recorded; errors as Janus'.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { startStreamingGateway, addKey, publish, waitLive, adminStreaming } from './lib/streaming.js';

describe('streaming: recording a mountpoint', () => {
  let gw;
  const publishers = [];

  before(async () => {
    gw = await startStreamingGateway('streaming-recording');
  });
  after(async () => {
    for (const p of publishers) await p.stop();
    await gw?.stop();
  });

  it('records the audio to Ogg/Opus with the right duration', async () => {
    const key = addKey(gw, 'rec-cam');
    const pub = publish(key.url);
    publishers.push(pub);
    await waitLive(gw, key.mountpoint);
    const id = key.mountpoint;
    assert.deepEqual(await adminStreaming(gw, { request: 'recording', action: 'start', id, audio: 'take1' }), { streaming: 'ok' });
    const again = await adminStreaming(gw, { request: 'recording', action: 'start', id, audio: 'take2' });
    assert.equal(again.error_code, 452, JSON.stringify(again));
    await new Promise((r) => setTimeout(r, 3000));
    assert.deepEqual(await adminStreaming(gw, { request: 'recording', action: 'stop', id }), { streaming: 'ok' });
    const file = path.join(gw.recordingsDir, 'streaming', String(id), 'take1.opus');
    assert.ok(fs.existsSync(file), `${file} written`);
    const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name,sample_rate',
      '-of', 'json', file], { encoding: 'utf8' });
    const info = JSON.parse(probe.stdout);
    assert.equal(info.streams[0].codec_name, 'opus');
    const duration = Number(info.format.duration);
    assert.ok(duration > 2.0 && duration < 4.5, `duration ${duration}`);
    console.log(`# recorded ${duration} s of ${info.streams[0].codec_name}`);
  });

  it('answers bad recording requests with Janus codes', async () => {
    const code = async (req) => (await adminStreaming(gw, { request: 'recording', ...req })).error_code;
    assert.equal(await code({ action: 'start', id: 424242, audio: 'x' }), 455);
    assert.equal(await code({ id: 1, audio: 'x' }), 453);
    assert.equal(await code({ action: 'pause', id: 1, audio: 'x' }), 454);
    assert.equal(await code({ action: 'start', id: 1 }), 452);
    assert.equal(await code({ action: 'start', id: 1, video: 'v' }), 452);
    assert.equal(await code({ action: 'start', id: 1, audio: '../escape' }), 459);
  });
});
