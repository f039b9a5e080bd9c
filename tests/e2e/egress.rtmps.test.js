// rtmps:// egress: the gateway publishes inside TLS to a real TLS peer on loopback, socat
// (`OPENSSL-LISTEN`, a certificate for 127.0.0.1 signed by a CA made here with openssl) in
// front of `ffmpeg -listen 1`, which writes what it receives to an FLV file for ffprobe.
// - with `[egress] tls_ca_file` naming that CA: the egress reaches `live`, the received file has
//   H.264 + AAC, more than 100 pictures, and every frame decodes;
// - a gateway without the CA configured: the same kind of receiver's certificate is not
//   trusted → the egress ends `failed` with a TLS reason, no retry; the source mountpoint stays
//   live and the Janus API keeps answering.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePorts } from './lib/gateway.js';
import { startStreamingGateway, addKey, publish, waitLive, adminStreaming, spawnProcess } from './lib/streaming.js';
import { rtmpReceiver, probeFlv, decodeErrors, waitEgressState } from './lib/egress.js';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-rtmps-'));

function openssl(args) {
  const r = spawnSync('openssl', args, { cwd: tmp, encoding: 'utf8' });
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A CA and a server certificate for 127.0.0.1 it signed (P-256 keys), in `tmp`. */
function makeCertificates() {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Bifrons e2e CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  fs.writeFileSync(path.join(tmp, 'server.ext'),
    'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext']);
}

/** `ffmpeg -listen 1` on a plain port behind socat's TLS listener on another: `{ tlsPort, file, procs }`. */
async function tlsReceiver(name) {
  const [tlsPort, plainPort] = await freePorts(2);
  const file = path.join(tmp, `${name}.flv`);
  const ffmpeg = rtmpReceiver(plainPort, file);
  const socat = spawnProcess('socat', [
    `OPENSSL-LISTEN:${tlsPort},bind=127.0.0.1,reuseaddr,cert=${path.join(tmp, 'server.pem')},key=${path.join(tmp, 'server.key')},verify=0`,
    `TCP:127.0.0.1:${plainPort}`]);
  await sleep(500);
  return { tlsPort, file, ffmpeg, socat };
}

describe('rtmps:// egress through a real TLS peer', () => {
  const procs = [];
  const gateways = [];

  before(() => makeCertificates());
  after(async () => {
    for (const p of procs) await p.stop();
    for (const gw of gateways) await gw.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('publishes H.264 + AAC inside TLS to a receiver whose CA is in [egress] tls_ca_file', async () => {
    const gw = await startStreamingGateway('egress-rtmps', { BIFRONS_EGRESS_TLS_CA_FILE: path.join(tmp, 'ca.pem') });
    gateways.push(gw);
    const key = addKey(gw, 'rtmps-cam');
    procs.push(publish(key.url, { gop: 30 }));
    await waitLive(gw, key.mountpoint);
    const rx = await tlsReceiver('tls');
    procs.push(rx.ffmpeg, rx.socat);
    const started = await adminStreaming(gw, {
      request: 'egress_start', id: key.mountpoint, url: `rtmps://127.0.0.1:${rx.tlsPort}/app`, key: 'k1',
    });
    assert.equal(started.streaming, 'egress_started', JSON.stringify(started));
    assert.equal(started.egress.target, `rtmps://127.0.0.1:${rx.tlsPort}/app`);
    const id = started.egress.id;
    await waitEgressState(gw, id, 'live');
    const until = Date.now() + 60000;
    for (;;) {
      const e = (await adminStreaming(gw, { request: 'egress_list' })).list.find((x) => x.id === id);
      if (e.state === 'live' && e.video_frames_passed >= 150) break;
      if (Date.now() > until) throw new Error(`too few frames sent: ${JSON.stringify(e)}`);
      await sleep(300);
    }
    const stopped = await adminStreaming(gw, { request: 'egress_stop', egress_id: id });
    assert.equal(stopped.streaming, 'egress_stopped', JSON.stringify(stopped));
    const exit = await Promise.race([rx.ffmpeg.exited, sleep(15000).then(() => null)]);
    assert.ok(exit, `the receiver ended with the unpublish: ${rx.ffmpeg.stderr()} ${rx.socat.stderr()}`);
    const { video, audio, duration } = probeFlv(rx.file);
    assert.equal(video?.codec_name, 'h264');
    assert.equal(audio?.codec_name, 'aac');
    assert.ok(Number(video.nb_read_frames) > 100, `${video.nb_read_frames} video frames`);
    assert.equal(decodeErrors(rx.file), '', 'every frame decodes');
    console.log(`# rtmps: ${video.nb_read_frames} H.264 frames, ${audio.nb_read_frames} AAC frames, ${duration} s received through TLS`);
  });

  it('without the CA configured, the receiver is not trusted: failed with a TLS reason, nothing else disturbed', async () => {
    const gw = await startStreamingGateway('egress-rtmps-untrusted');
    gateways.push(gw);
    const key = addKey(gw, 'rtmps-untrusted');
    procs.push(publish(key.url, { gop: 30 }));
    await waitLive(gw, key.mountpoint);
    const rx = await tlsReceiver('untrusted');
    procs.push(rx.ffmpeg, rx.socat);
    const started = await adminStreaming(gw, {
      request: 'egress_start', id: key.mountpoint, url: `rtmps://127.0.0.1:${rx.tlsPort}/app`, key: 'k1',
    });
    assert.equal(started.streaming, 'egress_started', JSON.stringify(started));
    const failed = await waitEgressState(gw, started.egress.id, 'failed');
    assert.match(failed.reason, /^TLS: /, JSON.stringify(failed));
    assert.match(failed.reason, /certificate/i, JSON.stringify(failed));
    assert.ok(!JSON.stringify(failed).includes('k1'), 'the key is not shown');
    console.log(`# untrusted receiver: ${failed.reason}`);
    // Nothing reached ffmpeg, the source is still live, the API answers.
    assert.ok(!fs.existsSync(rx.file) || fs.statSync(rx.file).size === 0, 'no media went to an untrusted peer');
    const info = await adminStreaming(gw, { request: 'info', id: key.mountpoint });
    assert.equal(info.info.live, true, 'the source is still live');
    const stopped = await adminStreaming(gw, { request: 'egress_stop', egress_id: started.egress.id });
    assert.equal(stopped.streaming, 'egress_stopped');
    assert.equal((await adminStreaming(gw, { request: 'egress_list' })).list.length, 0);
  });
});
