// `recording` of a mountpoint fed over RTMP: its Opus audio (transcoded from AAC) goes to an
// Ogg/Opus file and its H.264 video to a Matroska file, both registered in `recordings`, that
// ffprobe/ffmpeg read back with the published size and the duration recorded; errors as Janus'.

import { describe, it, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  startStreamingGateway, addKey, publish, waitLive, adminStreaming, stopAll,
} from './lib/streaming.js';

describe('streaming: recording a mountpoint', () => {
  let gw;
  const publishers = [];

  before(async () => {
    gw = await startStreamingGateway('streaming-recording');
  });
  after(async () => {
    await stopAll(publishers);
    await gw?.stop();
  });
  afterEach(() => stopAll(publishers));

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

  it('records H.264 video to Matroska beside the Ogg/Opus audio, both registered', async () => {
    const key = addKey(gw, 'rec-video');
    // A keyframe every 0.5 s: the file starts at the cached keyframe, at most that early.
    const pub = publish(key.url, { gop: 15 });
    publishers.push(pub);
    await waitLive(gw, key.mountpoint);
    const id = key.mountpoint;
    const started = Date.now();
    const reply = await adminStreaming(gw, {
      request: 'recording', action: 'start', id,
      media: [{ mid: 'a', filename: 'both' }, { mid: 'v', filename: 'both' }],
    });
    assert.deepEqual(reply, { streaming: 'ok' });
    await new Promise((r) => setTimeout(r, 8000));
    assert.deepEqual(await adminStreaming(gw, { request: 'recording', action: 'stop', id }), { streaming: 'ok' });
    const recorded = (Date.now() - started) / 1000;
    const mkv = path.join(gw.recordingsDir, 'streaming', String(id), 'both.mkv');
    const opus = path.join(gw.recordingsDir, 'streaming', String(id), 'both.opus');
    assert.ok(fs.existsSync(mkv) && fs.existsSync(opus), 'both files written');
    const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries',
      'format=duration,format_name:stream=codec_name,width,height,profile', '-of', 'json', mkv], { encoding: 'utf8' });
    assert.equal(probe.status, 0, probe.stderr);
    const info = JSON.parse(probe.stdout);
    assert.match(info.format.format_name, /matroska/);
    assert.equal(info.streams[0].codec_name, 'h264');
    assert.equal(info.streams[0].width, 640);
    assert.equal(info.streams[0].height, 360);
    const duration = Number(info.format.duration);
    assert.ok(Math.abs(duration - recorded) <= recorded * 0.1, `duration ${duration} s for ${recorded} s recorded`);
    // Every frame decodes.
    const decode = spawnSync('ffmpeg', ['-v', 'error', '-i', mkv, '-f', 'null', '-'], { encoding: 'utf8' });
    assert.equal(decode.status, 0);
    assert.equal(decode.stderr.trim(), '', 'decoding reports no error');
    const frames = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0',
      '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', mkv], { encoding: 'utf8' });
    const decoded = Number(frames.stdout.trim());
    assert.ok(decoded >= recorded * 30 * 0.8, `${decoded} frames decoded for ${recorded} s at 30 fps`);
    const rows = spawnSync('sqlite3', [gw.dbUrl.replace(/^sqlite:\/\//, ''),
      `SELECT file_path, codec, duration_ms, size_bytes FROM recordings WHERE owner = 'mountpoint-${id}' ORDER BY file_path`],
    { encoding: 'utf8' });
    const registered = rows.stdout.trim().split('\n').map((l) => l.split('|'));
    assert.deepEqual(registered.map((r) => [r[0], r[1]]), [
      [`streaming/${id}/both.mkv`, 'h264'], [`streaming/${id}/both.opus`, 'opus']]);
    assert.equal(Number(registered[0][3]), fs.statSync(mkv).size, 'the row has the file size');
    assert.ok(Math.abs(Number(registered[0][2]) / 1000 - duration) < 0.1, `row duration ${registered[0][2]} ms`);
    console.log(`# H.264 recording: ${duration} s for ${recorded} s, ${decoded} frames, ${fs.statSync(mkv).size} bytes`);
  });

  it('answers bad recording requests with Janus codes', async () => {
    const code = async (req) => (await adminStreaming(gw, { request: 'recording', ...req })).error_code;
    assert.equal(await code({ action: 'start', id: 424242, audio: 'x' }), 455);
    assert.equal(await code({ id: 1, audio: 'x' }), 453);
    assert.equal(await code({ action: 'pause', id: 1, audio: 'x' }), 454);
    assert.equal(await code({ action: 'start', id: 1 }), 452);
    const rtp = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: 777,
      media: [{ type: 'video', mid: 'v', port: 0, pt: 100, codec: 'vp8' }],
    });
    assert.equal(rtp.streaming, 'created');
    assert.equal(await code({ action: 'start', id: 777, video: 'v' }), 459, 'VP8 video is not recorded');
    assert.equal(await code({ action: 'start', id: 1, audio: '../escape' }), 459);
  });
});
