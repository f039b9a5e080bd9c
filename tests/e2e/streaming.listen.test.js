// The listen line with real peers: ffmpeg publishes H.264 + AAC (a 1 kHz sine) over RTMP, an
// account bound to the mountpoint (`bifrons account edit --listen`) registers at kamailio by
// itself, and baresip calls it: what baresip records must be the 1 kHz tone, G.711 from the
// mountpoint's Opus. Hanging up frees the mountpoint's sink; a binding to an unknown
// mountpoint is refused by the CLI.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { startStreamingGateway, addKey, spawnProcess, waitLive, adminStreaming, BIN } from './lib/streaming.js';
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

describe('streaming listen line', () => {
  let gw;
  let kamailio;
  let bob;
  let carol;
  let publisher;
  let mountpointId;
  const gwLog = () => fs.readFileSync(gw.logFile, 'utf8');

  /** Runs the gateway's CLI on the test registry; `input` goes to stdin (secrets). */
  function cli(args, input = '') {
    const r = spawnSync(BIN, args, { input, env: { ...process.env, BIFRONS_DATABASE_URL: gw.dbUrl }, encoding: 'utf8' });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  }

  before(async () => {
    kamailio = await startKamailio();
    gw = await startStreamingGateway('streaming-listen', { BIFRONS_SIP_REGISTRY_POLL: '1', BIFRONS_SIP_TIMER_T1_MS: '100' });
  });

  after(async () => {
    await publisher?.stop();
    await bob?.stop();
    await carol?.stop();
    await gw?.stop();
    await kamailio?.stop();
  });

  it('a caller hears the mountpoint tone as G.711 until it hangs up', async () => {
    const { url, mountpoint } = addKey(gw, 'radio');
    mountpointId = mountpoint;
    for (const [args, input] of [
      [['trunk', 'add', 'kam', '--registrar', kamailio.registrar, '--username', 'erin', '--password'], 'erinpw\n'],
      [['account', 'add', 'radio', '--trunk', 'kam', '--uri', kamailio.uri('erin')], ''],
    ]) {
      const r = cli(args, input);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.out}`);
    }

    // An unknown mountpoint is refused, and nothing is bound.
    const bad = cli(['account', 'edit', 'radio', '--listen', '999']);
    assert.notEqual(bad.status, 0, bad.out);
    assert.match(bad.out, /no streaming mountpoint 999/);

    // The binding appears while the gateway runs: its registry poll opens the line.
    const bound = cli(['account', 'edit', 'radio', '--listen', String(mountpoint)]);
    assert.equal(bound.status, 0, bound.out);
    assert.ok(await waitFor(gwLog, (l) => /listen line open.*extension=radio|extension=radio.*listen line open/.test(l), 20000),
      `the listen line did not open:\n${gwLog().slice(-3000)}`);

    publisher = spawnProcess('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re',
      '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30',
      '-f', 'lavfi', '-i', 'sine=frequency=1000:sample_rate=48000',
      '-c:v', 'libx264', '-preset', 'veryfast', '-g', '60', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p', '-b:v', '500k',
      '-c:a', 'aac', '-b:a', '128k', '-ar', '48000', '-ac', '2', '-f', 'flv', url]);
    await waitLive(gw, mountpoint, 20000);

    bob = await startBaresip({ kamailio, user: 'bob', toneHz: 440, codecs: 'PCMU' });
    bob.command('dial', kamailio.uri('erin'));
    assert.ok(await waitFor(gwLog, (l) => l.includes('listen call answered'), 20000),
      `the listen call was not answered:\n${gwLog().slice(-3000)}\n${bob.log().slice(-2000)}`);
    // Let baresip record about 5 s of the stream (8 kHz mono 16-bit: 16 000 bytes a second),
    // waiting for the data, not for a wall-clock figure; the WAV header is final at hang-up.
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
    console.log(`# ${line.trim()}`);
    assert.match(line, /RemoteBye/, 'ended by the caller');
    assert.match(line, /sinks=0/, 'the mountpoint has no sink left');
    assert.match(line, /active=0/);

    // baresip writes the WAV header's length when the call's recording closes.
    const wav = await waitFor(() => bob.received(), (w) => w && w.samples.length >= 4 * w.rate, 15000);
    assert.ok(wav, `baresip's recording did not close:\n${bob.log().slice(-1500)}`);
    // Skip the first second (jitter buffer start-up), analyse the rest.
    const samples = wav.samples.slice(wav.rate);
    const a = analyze(samples, wav.rate);
    console.log(`# listen line: baresip heard ${samples.length} samples at ${wav.rate} Hz, rms ${a.rms.toFixed(0)}, peak ${a.peak}, dominant ${a.hz} Hz`);
    assert.ok(Math.abs(a.hz - 1000) <= 20, `dominant frequency ${a.hz} Hz`);
    assert.ok(a.rms > 1000, `rms ${a.rms}`);
  });

  it('destroying the mountpoint ends the call with a BYE from the gateway', async () => {
    assert.ok(mountpointId, 'the first test set the mountpoint up');
    // A fresh caller (baresip holds a second call of its own on some runs).
    carol = await startBaresip({ kamailio, user: 'carol', toneHz: 440, codecs: 'PCMA' });
    carol.command('dial', kamailio.uri('erin'));
    assert.ok(await waitFor(gwLog, (l) => /listen call answered.*codec="PCMA"/.test(l), 20000),
      `the second listen call was not answered:\n${gwLog().slice(-3000)}`);
    const destroyed = await adminStreaming(gw, { request: 'destroy', id: mountpointId });
    assert.equal(destroyed?.streaming, 'destroyed', JSON.stringify(destroyed));
    const over = await waitFor(gwLog, (l) => l.includes('why=mountpoint destroyed: BYE sent'), 20000);
    assert.ok(over, `no BYE after the mountpoint went:\n${gwLog().slice(-3000)}`);
    console.log(`# ${over.split('\n').find((l) => l.includes('why=mountpoint destroyed')).trim()}`);
    // The BYE went out to the caller through the proxy (its route set).
    assert.ok(await waitFor(kamailio.log, (l) => /REQ BYE sip:carol\S* from erin/.test(l), 15000),
      `kamailio relayed no BYE to the caller:\n${kamailio.log().split('\n').filter((l) => /REQ /.test(l)).join('\n')}`);
    // The BYE (RFC 3261 §12.2.1.1: the INVITE's Record-Route as the route set, the caller's
    // Contact as Request-URI, its From tag in our To) ends the call at baresip.
    const ended = await carol.waitLog(/terminated|session closed/i, 15000);
    assert.ok(ended, `baresip did not end the call on our BYE:\n${carol.log().slice(-3000)}`);
  });
});
