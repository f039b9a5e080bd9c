// The listen line on a mountpoint whose audio is G.711: a permanent RTP mountpoint fed by
// ffmpeg with PCMU (a 1 kHz sine, in packets of 1024 samples as ffmpeg's RTP muxer cuts them),
// an account bound to it (registered at kamailio by the gateway), and baresip calling it with
// PCMA only: what baresip records must be the 1 kHz tone (μ-law re-encoded to A-law, re-cut
// into 20 ms packets). Then a PCMU caller is on the line when the mountpoint is destroyed: the
// gateway's BYE reaches baresip through kamailio and baresip ends the call.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStreamingGateway, spawnProcess, waitLive, adminStreaming, BIN } from './lib/streaming.js';
import { freePorts } from './lib/gateway.js';
import { startKamailio, startBaresip, analyze } from './lib/sip.js';

/** Waits until `test(text)` holds for the text of `read()`; returns it, or null after `ms`. */
async function waitFor(read, test, ms) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const text = read();
    if (test(text)) return text;
    await sleep(200);
  }
  return null;
}

describe('streaming listen line: a G.711 RTP mountpoint', () => {
  let gw;
  let kamailio;
  let bob;
  let carol;
  let feeder;
  const MOUNTPOINT = 7711;
  const gwLog = () => fs.readFileSync(gw.logFile, 'utf8');

  function cli(args, input = '') {
    const r = spawnSync(BIN, args, { input, env: { ...process.env, BIFRONS_DATABASE_URL: gw.dbUrl }, encoding: 'utf8' });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  }

  before(async () => {
    kamailio = await startKamailio();
    gw = await startStreamingGateway('streaming-listen-g711', { BIFRONS_SIP_REGISTRY_POLL: '1', BIFRONS_SIP_TIMER_T1_MS: '100' });
  });

  after(async () => {
    await feeder?.stop();
    await bob?.stop();
    await carol?.stop();
    await gw?.stop();
    await kamailio?.stop();
  });

  it('a PCMA caller hears the PCMU mountpoint\'s 1 kHz tone', async () => {
    const [port] = await freePorts(1);
    const created = await adminStreaming(gw, {
      request: 'create', type: 'rtp', id: MOUNTPOINT, permanent: true, description: 'g711 radio',
      media: [{ type: 'audio', mid: 'a', port, pt: 0, codec: 'pcmu' }],
    });
    assert.equal(created?.streaming, 'created', JSON.stringify(created));
    for (const [args, input] of [
      [['trunk', 'add', 'kam', '--registrar', kamailio.registrar, '--username', 'erin', '--password'], 'erinpw\n'],
      [['account', 'add', 'radio', '--trunk', 'kam', '--uri', kamailio.uri('erin')], ''],
      [['account', 'edit', 'radio', '--listen', String(MOUNTPOINT)], ''],
    ]) {
      const r = cli(args, input);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.out}`);
    }
    assert.ok(await waitFor(gwLog, (l) => /listen line open.*extension=radio|extension=radio.*listen line open/.test(l), 20000),
      `the listen line did not open:\n${gwLog().slice(-3000)}`);

    feeder = spawnProcess('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=8000',
      '-c:a', 'pcm_mulaw', '-ar', '8000', '-ac', '1', '-payload_type', '0', '-f', 'rtp', `rtp://127.0.0.1:${port}`]);
    await waitLive(gw, MOUNTPOINT, 20000);

    bob = await startBaresip({ kamailio, user: 'bob', toneHz: 440, codecs: 'PCMA' });
    bob.command('dial', kamailio.uri('erin'));
    assert.ok(await waitFor(gwLog, (l) => /listen call answered.*codec="PCMA".*G711\(Mu\)/.test(l), 20000),
      `the listen call was not answered with PCMA from a μ-law source:\n${gwLog().slice(-3000)}\n${bob.log().slice(-2000)}`);
    const recorded = () => {
      const f = fs.readdirSync(bob.dir).filter((n) => n.endsWith('-dec.wav')).sort().pop();
      return f ? fs.statSync(`${bob.dir}/${f}`).size : 0;
    };
    assert.ok(await waitFor(recorded, (size) => size > 44 + 5 * 16000, 30000),
      `baresip recorded too little (${recorded()} bytes):\n${bob.log().slice(-1500)}`);
    bob.command('hangup');
    const over = await waitFor(gwLog, (l) => l.includes('listen call over'), 20000);
    assert.ok(over, `the listen call did not end:\n${gwLog().slice(-3000)}`);
    const line = over.split('\n').find((l) => l.includes('listen call over'));
    assert.match(line, /RemoteBye/);
    assert.match(line, /sinks=0/);

    const wav = await waitFor(() => bob.received(), (w) => w && w.samples.length >= 4 * w.rate, 15000);
    assert.ok(wav, `baresip's recording did not close:\n${bob.log().slice(-1500)}`);
    const samples = wav.samples.slice(wav.rate);
    const a = analyze(samples, wav.rate);
    console.log(`# G.711 listen line: baresip (PCMA) heard ${samples.length} samples at ${wav.rate} Hz, rms ${a.rms.toFixed(0)}, peak ${a.peak}, dominant ${a.hz} Hz; ${line.trim()}`);
    assert.ok(Math.abs(a.hz - 1000) <= 20, `dominant frequency ${a.hz} Hz`);
    assert.ok(a.rms > 1000, `rms ${a.rms}`);
  });

  it('destroying the mountpoint: our BYE ends the call at baresip', async () => {
    carol = await startBaresip({ kamailio, user: 'carol', toneHz: 440, codecs: 'PCMU' });
    carol.command('dial', kamailio.uri('erin'));
    assert.ok(await waitFor(gwLog, (l) => /listen call answered.*codec="PCMU"/.test(l), 20000),
      `the second listen call was not answered:\n${gwLog().slice(-3000)}`);
    assert.ok(await carol.waitLog(/Call established|call established/i, 15000), `baresip did not establish:\n${carol.log().slice(-2000)}`);
    const destroyed = await adminStreaming(gw, { request: 'destroy', id: MOUNTPOINT, permanent: true });
    assert.equal(destroyed?.streaming, 'destroyed', JSON.stringify(destroyed));
    assert.ok(await waitFor(gwLog, (l) => l.includes('why=mountpoint destroyed: BYE sent'), 20000),
      `no BYE after the mountpoint went:\n${gwLog().slice(-3000)}`);
    const ended = await carol.waitLog(/terminated|Call closed|session closed/i, 15000);
    assert.ok(ended, `baresip did not end the call on our BYE:\n${carol.log().slice(-3000)}\n${kamailio.log().split('\n').filter((l) => /REQ /.test(l)).join('\n')}`);
    console.log(`# baresip: ${ended.split('\n').filter((l) => /terminated|closed/i.test(l)).join(' | ').trim()}`);
  });
});
