// The measuring half of scripts/bench-egress (run by it, inside its network namespace).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { freePorts } from '../tests/e2e/lib/gateway.js';
import {
  startStreamingGateway, addKey, publish, waitLive, adminStreaming, spawnProcess,
} from '../tests/e2e/lib/streaming.js';

const N = Number(process.env.BENCH_EGRESSES || 2);
const SECONDS = Number(process.env.BENCH_SECONDS || 15);
const TICK = 100; // USER_HZ on Linux
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-bench-egress-'));
const procs = [];

/** CPU seconds used by `pid` so far (user + system). */
function cpu(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}
function rssMb(pid) {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS'));
  return Number(line.split(/\s+/)[1]) / 1024;
}
/** Share of one core the gateway uses over `seconds`. */
async function load(pid, seconds) {
  const c0 = cpu(pid);
  const t0 = Date.now();
  await sleep(seconds * 1000);
  return (cpu(pid) - c0) / ((Date.now() - t0) / 1000);
}
function receiver(port, file) {
  return spawnProcess('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-listen', '1',
    '-f', 'flv', '-i', `rtmp://127.0.0.1:${port}/app/bench`, '-c', 'copy', '-f', 'flv', file]);
}
function offsetMs(file) {
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,start_time',
    '-of', 'json', file], { encoding: 'utf8' });
  const s = JSON.parse(r.stdout || '{"streams":[]}').streams;
  const v = s.find((x) => x.codec_type === 'video');
  const a = s.find((x) => x.codec_type === 'audio');
  return v && a ? Math.abs(Number(v.start_time) - Number(a.start_time)) * 1000 : NaN;
}
async function waitAllLive(gw, ids) {
  const deadline = Date.now() + 30000;
  for (;;) {
    const list = (await adminStreaming(gw, { request: 'egress_list' })).list;
    if (ids.every((id) => list.find((e) => e.id === id)?.state === 'live')) return;
    if (Date.now() > deadline) throw new Error(`egresses not live: ${JSON.stringify(list)}`);
    await sleep(200);
  }
}
/** Starts one egress of `mountpoint` per receiver; measures; stops them; returns offsets. */
async function run(gw, label, mountpoints, baseline) {
  const ids = [];
  const files = [];
  const rxs = [];
  for (const m of mountpoints) {
    const [port] = await freePorts(1);
    const file = path.join(tmp, `${label}-${ids.length}.flv`);
    const rx = receiver(port, file);
    procs.push(rx);
    rxs.push(rx);
    await sleep(300);
    const r = await adminStreaming(gw, { request: 'egress_start', id: m, url: `rtmp://127.0.0.1:${port}/app`, key: 'bench' });
    if (r.streaming !== 'egress_started') throw new Error(JSON.stringify(r));
    ids.push(r.egress.id);
    files.push(file);
  }
  await waitAllLive(gw, ids);
  await sleep(2000);
  const share = await load(gw.pid, SECONDS);
  const rss = rssMb(gw.pid);
  const list = (await adminStreaming(gw, { request: 'egress_list' })).list;
  for (const id of ids) await adminStreaming(gw, { request: 'egress_stop', egress_id: id });
  for (const rx of rxs) await Promise.race([rx.exited, sleep(10000)]);
  const offsets = files.map(offsetMs);
  const per = (share - baseline) / ids.length;
  console.log(`${label}: ${ids.length} egress(es): gateway ${(share * 100).toFixed(1)} % of a core `
    + `(${(baseline * 100).toFixed(1)} % before), ${(per * 100).toFixed(1)} % per egress; RSS ${rss.toFixed(0)} MB`);
  console.log(`${label}: A/V start offset on the received streams (ms): ${offsets.map((o) => o.toFixed(1)).join(', ')}`);
  console.log(`${label}: video frames passed ${list[0]?.video_frames_passed ?? 0}, transcoded ${list[0]?.video_frames_transcoded ?? 0}`);
}

const gw = await startStreamingGateway('bench-egress');
try {
  console.log(`bench-egress: ${N} egress(es) per scenario, ${SECONDS} s measures, ${os.cpus().length} cores`);
  // 1. passthrough
  const key = addKey(gw, 'bench-cam');
  procs.push(publish(key.url, { size: '640x480', gop: 60 }));
  await waitLive(gw, key.mountpoint);
  await sleep(2000);
  const base1 = await load(gw.pid, SECONDS);
  await run(gw, 'passthrough', Array(N).fill(key.mountpoint), base1);

  // 2. VP8 → H.264, one mountpoint (and encoder) per egress
  const mps = [];
  for (let i = 0; i < N; i++) {
    const [vport, aport] = await freePorts(2);
    const id = 8100 + i;
    const created = await adminStreaming(gw, { request: 'create', type: 'rtp', id,
      media: [{ type: 'video', mid: 'v', port: vport, pt: 100, codec: 'vp8' },
        { type: 'audio', mid: 'a', port: aport, pt: 111, codec: 'opus' }] });
    if (created.streaming !== 'created') throw new Error(JSON.stringify(created));
    procs.push(spawnProcess('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', 'testsrc2=size=640x480:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-map', '0:v', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '800k', '-g', '60',
      '-payload_type', '100', '-f', 'rtp', `rtp://127.0.0.1:${vport}?pkt_size=1200`,
      '-map', '1:a', '-c:a', 'libopus', '-b:a', '64k', '-payload_type', '111', '-f', 'rtp', `rtp://127.0.0.1:${aport}`]));
    await waitLive(gw, id);
    mps.push(id);
  }
  await sleep(2000);
  const base2 = await load(gw.pid, SECONDS);
  await run(gw, 'vp8→h264', mps, base2);
} finally {
  for (const p of procs) await p.stop();
  await gw.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}
