// What the RTMP egress tests share: an `ffmpeg -listen 1` receiver writing what it is sent to an
// FLV file, ffprobe's and ffmpeg's reading of that file, and waiting for an egress state.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { adminStreaming, spawnProcess } from './streaming.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `ffmpeg -listen 1` taking one RTMP publish on `port` (app `app`, key `key`) into `file`. */
export function rtmpReceiver(port, file, key = 'k1') {
  return spawnProcess('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-listen', '1',
    '-f', 'flv', '-i', `rtmp://127.0.0.1:${port}/app/${key}`, '-c', 'copy', '-f', 'flv', file]);
}

/**
 * What ffprobe says of `file`: `{ video, audio, duration }`, each stream with codec_name,
 * start_time (s), nb_read_frames, width/height or sample_rate; duration in seconds.
 */
export function probeFlv(file) {
  const r = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries',
    'format=duration:stream=codec_type,codec_name,start_time,nb_read_frames,width,height,sample_rate',
    '-of', 'json', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  return {
    video: info.streams.find((s) => s.codec_type === 'video'),
    audio: info.streams.find((s) => s.codec_type === 'audio'),
    duration: Number(info.format.duration),
  };
}

/** Decodes every frame of `file`; returns ffmpeg's error output (empty when all decoded). */
export function decodeErrors(file) {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr.trim();
}

/** Waits until egress `id` is in state `state` (per `egress_list` over the Admin API). */
export async function waitEgressState(gw, id, state, timeoutMs = 30000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    const list = await adminStreaming(gw, { request: 'egress_list' });
    last = list.list?.find((e) => e.id === id);
    if (last?.state === state) return last;
    if (Date.now() > deadline) throw new Error(`egress ${id} not ${state}: ${JSON.stringify(last ?? list)}`);
    await sleep(100);
  }
}
