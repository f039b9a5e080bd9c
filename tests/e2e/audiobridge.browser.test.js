// The audio bridge with real peers: three janus.js participants in two headless Chromium
// processes (two over WebSocket, one over HTTP long poll), each sending its own tone from an
// OscillatorNode (one in Opus, one in PCMU, one in PCMA), in a room created with janode's audiobridge plugin. Checks: alone a
// participant hears nothing; together each hears the others' tones and not its own
// (mix-minus); talking events, judged on the RFC 6464 levels Chromium sends; the mix forwarded as PCMU to a UDP socket carries all three
// tones; a plain-RTP PCMU participant is heard in the browsers; a recording of the mix decodes with ffmpeg and holds the three tones; mute silences one; kick removes one; destroy tells everybody.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import AudioBridgePlugin from 'janode/plugins/audiobridge';
import { startGateway } from './lib/gateway.js';
import { connect } from './lib/janode.js';
import {
  startPageServer, launchChromium, waitInPage, joinPage, startRtpReceiver, toneShare, sendPcmuTone,
} from './lib/audiobridge.js';

const ROOM = 4321;
const SECRET = 'mod-secret';
const TONES = [440, 1000, 2500];

/** Waits for the participant's analyser to report, then returns what it hears. */
function hearing(p) {
  return waitInPage(p.page, (f) => window.hearing(f), (h) => h !== null, `${p.display} hearing`, TONES);
}

/** The participant's level (dB) at its own tone and the quietest of the others' tones. */
async function ownAndOthers(p, present) {
  const h = await hearing(p);
  const own = h.levels[p.freq];
  const others = present.filter((f) => f !== p.freq).map((f) => h.levels[f]);
  return { h, own, othersMin: Math.min(...others) };
}

describe('audio bridge with Chromium + janus.js participants', () => {
  let gw;
  let site;
  let browsers = [];
  let conn;
  let mod;
  let session;
  let rtp;
  const recDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-ab-rec-'));

  before(async () => {
    gw = await startGateway({ name: 'audiobridge-browser', env: { BIFRONS_RECORDINGS_DIR: recDir } });
    site = await startPageServer();
    browsers = [await launchChromium(), await launchChromium()];
    conn = await connect(gw.wsUrl);
    session = await conn.create();
    mod = await session.attach(AudioBridgePlugin);
    rtp = await startRtpReceiver();
  });
  after(async () => {
    await rtp?.close();
    await conn?.close().catch(() => {});
    for (const b of browsers) await b?.close();
    await site?.close();
    await gw?.stop();
    fs.rmSync(recDir, { recursive: true, force: true });
  });

  it('mixes three participants, each hearing the others but not itself', async (t) => {
    const created = await mod.create({
      room: ROOM, description: 'e2e', secret: SECRET, sampling_rate: 16000,
      talking_events: true, talking_packets_threshold: 10, talking_level_threshold: 50, allow_rtp: true,
    });
    assert.equal(created.room, ROOM);
    assert.equal((await mod.exists({ room: ROOM })).exists, true);

    // Alone: the first participant receives packets, but nothing of itself.
    const a = await joinPage(browsers[0], site.url, gw.wsUrl, ROOM, 'alice', TONES[0]);
    await waitInPage(a.page, () => window.e2e, (s) => s.webrtcup || s.errors.length > 0, 'alice webrtcup');
    assert.deepEqual((await a.page.evaluate(() => window.e2e)).errors, []);
    const before1 = await waitInPage(a.page, () => window.inboundAudio(), (s) => s?.packetsReceived > 0, 'alice packets');
    await sleep(3000);
    const after1 = await a.page.evaluate(() => window.inboundAudio());
    assert.ok(after1.packetsReceived - before1.packetsReceived > 100, `alice alone gets the room's packets: ${JSON.stringify([before1, after1])}`);
    const alone = await hearing(a);
    t.diagnostic(`alone: alice received ${after1.packetsReceived - before1.packetsReceived} packets in 3 s, rms ${alone.rms.toFixed(5)}`);
    assert.ok(alone.rms < 0.003, `alone, alice hears (nearly) nothing: rms ${alone.rms}`);

    // Together.
    // Bob speaks G.711 μ-law, carol A-law: transcoded into the room's 16 kHz and back.
    const b = await joinPage(browsers[1], site.url, gw.httpUrl, ROOM, 'bob', TONES[1], 'pcmu');
    const c = await joinPage(browsers[0], site.url, gw.wsUrl, ROOM, 'carol', TONES[2], 'pcma');
    const all = [a, b, c];
    for (const p of all) {
      await waitInPage(p.page, () => window.e2e, (s) => s.webrtcup || s.errors.length > 0, `${p.display} webrtcup`);
      assert.deepEqual((await p.page.evaluate(() => window.e2e)).errors, [], p.display);
    }
    const start = await Promise.all(all.map((p) => p.page.evaluate(() => window.inboundAudio())));
    await sleep(3000);
    for (const [i, p] of all.entries()) {
      const now = await p.page.evaluate(() => window.inboundAudio());
      assert.ok(now.packetsReceived - (start[i]?.packetsReceived ?? 0) > 50, `${p.display} received ${JSON.stringify([start[i], now])}`);
      assert.match(now.mimeType, p === a ? /opus/i : p === b ? /PCMU/i : /PCMA/i, `${p.display}'s codec`);
      const { h, own, othersMin } = await ownAndOthers(p, TONES);
      t.diagnostic(`${p.display} (${p.freq} Hz, ${now.mimeType}): ${now.packetsReceived - (start[i]?.packetsReceived ?? 0)} packets in 3 s, rms ${h.rms.toFixed(4)}, own tone ${own.toFixed(1)} dB, others >= ${othersMin.toFixed(1)} dB, dominant ${h.dominantHz.toFixed(0)} Hz`);
      assert.ok(h.rms > 0.01, `${p.display} hears the room: rms ${h.rms}`);
      assert.ok(othersMin > own + 20, `${p.display} hears the others (${othersMin} dB) well above itself (${own} dB): ${JSON.stringify(h)}`);
      assert.notEqual(Math.abs(h.dominantHz - p.freq) < 15, true, `${p.display}'s dominant ${h.dominantHz} Hz is not its own tone`);
    }

    // listparticipants: three, set up; the ids the joins reported.
    const list = await mod.listParticipants({ room: ROOM, secret: SECRET });
    assert.deepEqual(list.participants.map((p) => p.feed).sort(), all.map((p) => p.ids.id).sort());
    assert.ok(list.participants.every((p) => p.setup === true), JSON.stringify(list.participants));

    // Talking events: alice, there first, saw each talker start; everyone saw itself.
    for (const p of all) {
      const st = await p.page.evaluate(() => window.e2e);
      const talkers = new Set(st.messages.filter((m) => m.audiobridge === 'talking' && m.room === ROOM).map((m) => m.id));
      const expected = p === a ? all : [p];
      for (const q of expected) assert.ok(talkers.has(q.ids.id), `${p.display} saw ${q.display} talking: ${JSON.stringify([...talkers])}`);
    }
    // Chromium puts its RFC 6464 level in every audio packet once the answer kept the extension:
    // each participant's talking state was judged on those levels, not on the decoded audio.
    const levelLines = fs.readFileSync(gw.logFile, 'utf8').split('\n')
      .filter((l) => l.includes('talking detection from the RFC 6464 audio level extension'));
    // (The log names the room mix's own participant numbers; only these three send levels.)
    const judged = new Set(levelLines.map((l) => l.match(/participant=(\d+)/)?.[1]));
    assert.equal(judged.size, all.length, `talking from RFC 6464 levels: ${JSON.stringify(levelLines)}`);

    // The room mix forwarded as PCMU: all three tones, RTP numbered per packet.
    const fwd = await mod.startForward({ room: ROOM, secret: SECRET, host: '127.0.0.1', audio_port: rtp.port, codec: 'pcmu', ptype: 0 });
    assert.ok(fwd.forwarder.audio_stream > 0, JSON.stringify(fwd));
    await sleep(2500);
    const st = rtp.state;
    assert.ok(st.packets > 100, `forwarded packets: ${st.packets}`);
    assert.deepEqual([...st.pts], [0]);
    assert.equal(st.seqGaps, 0);
    assert.equal(st.tsSteps.get(160) > 100, true, `timestamps step by 160: ${JSON.stringify([...st.tsSteps])}`);
    const mix = st.pcm.flat();
    t.diagnostic(`forwarded PCMU: ${st.packets} packets, seq gaps ${st.seqGaps}, shares ${TONES.map((f) => `${f} Hz ${toneShare(mix, f, 8000).toFixed(2)}`).join(', ')}`);
    for (const f of TONES) assert.ok(toneShare(mix, f, 8000) > 0.1, `${f} Hz in the forwarded mix: ${toneShare(mix, f, 8000)}`);
    const fl = await mod.listForward({ room: ROOM, secret: SECRET });
    assert.equal(fl.forwarders.length, 1);
    await mod.stopForward({ room: ROOM, stream: fwd.forwarder.audio_stream, secret: SECRET });
    assert.equal((await mod.listForward({ room: ROOM, secret: SECRET })).forwarders.length, 0);

    // Recording of the mix to Ogg/Opus: the file decodes, lasts as long as it ran, holds all tones.
    const recStarted = Date.now();
    assert.equal((await mod.enableRecording({ room: ROOM, record: true, filename: 'e2e-mix', secret: SECRET })).record, true);
    assert.equal((await mod.list()).list.find((r) => r.room === ROOM).record, true);
    await sleep(3000);
    assert.equal((await mod.enableRecording({ room: ROOM, record: false, secret: SECRET })).record, false);
    const recMs = Date.now() - recStarted;
    const file = path.join(recDir, 'audiobridge', 'e2e-mix.opus');
    const probed = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name,sample_rate', '-of', 'json', file]));
    assert.equal(probed.streams[0].codec_name, 'opus');
    const seconds = Number(probed.format.duration);
    assert.ok(Math.abs(seconds * 1000 - recMs) < recMs * 0.1, `recording lasts ${seconds} s for ${recMs} ms of recording`);
    t.diagnostic(`recording: ${seconds.toFixed(2)} s in the file for ${recMs} ms recorded`);
    const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-ac', '1', '-ar', '16000', '-']);
    const pcm = Array.from(new Int16Array(raw.buffer, raw.byteOffset, Math.floor(raw.length / 2)));
    for (const f of TONES) assert.ok(toneShare(pcm, f, 16000) > 0.1, `${f} Hz in the recording: ${toneShare(pcm, f, 16000)}`);

    // Mute bob: alice stops hearing 1000 Hz and still hears carol.
    await mod.mute({ room: ROOM, feed: b.ids.id, secret: SECRET });
    await sleep(1500);
    const muted = await hearing(a);
    t.diagnostic(`bob muted: alice hears 1000 Hz at ${muted.levels[TONES[1]].toFixed(1)} dB, 2500 Hz at ${muted.levels[TONES[2]].toFixed(1)} dB`);
    assert.ok(muted.levels[TONES[1]] < muted.levels[TONES[2]] - 20, `bob muted: ${JSON.stringify(muted.levels)}`);
    // Muted, bob stops talking for the room (10 quiet packets).
    await waitInPage(a.page, () => window.e2e.messages, (ms) => ms.some((m) => m.audiobridge === 'stopped-talking' && m.id === b.ids.id), 'bob stopped talking');
    const aState = await a.page.evaluate(() => window.e2e);
    assert.ok(aState.messages.some((m) => m.audiobridge === 'event' && m.participants?.some((p) => p.id === b.ids.id && p.muted === true)), 'alice told bob is muted');
    await mod.unmute({ room: ROOM, feed: b.ids.id, secret: SECRET });

    // A plain-RTP participant (PCMU from a UDP socket of this test) is heard in the browsers.
    const rtpBack = await startRtpReceiver();
    const plain = await (await session.attach(AudioBridgePlugin)).join({ room: ROOM, display: 'phone', codec: 'pcmu', rtp_participant: { ip: '127.0.0.1', port: rtpBack.port, payload_type: 0 } });
    const quiet = (await waitInPage(a.page, (f) => window.hearing(f), (h) => h !== null, 'alice hearing', [700])).levels[700];
    const sending = sendPcmuTone(plain.rtp_participant.port, 700, 3);
    await sleep(2000);
    const loudNow = (await waitInPage(a.page, (f) => window.hearing(f), (h) => h !== null, 'alice hearing', [700])).levels[700];
    await sending;
    t.diagnostic(`plain-RTP 700 Hz at alice: ${quiet.toFixed(1)} dB before, ${loudNow.toFixed(1)} dB while it sends`);
    assert.ok(loudNow > quiet + 30 && loudNow > -45, `alice hears the phone's 700 Hz: ${quiet} → ${loudNow} dB`);
    const back = rtpBack.state.pcm.flat();
    assert.ok(toneShare(back, 440, 8000) > 0.05 && toneShare(back, 700, 8000) < 0.01, `the phone hears alice, not itself: ${toneShare(back, 440, 8000)}, ${toneShare(back, 700, 8000)}`);
    await rtpBack.close();

    // Kick carol: she is told, the others see her leave.
    await mod.kick({ room: ROOM, feed: c.ids.id, secret: SECRET });
    await waitInPage(c.page, () => window.e2e.messages, (ms) => ms.some((m) => m.kicked === c.ids.id), 'carol kicked');
    await waitInPage(a.page, () => window.e2e.messages, (ms) => ms.some((m) => m.leaving === c.ids.id), 'alice sees carol leave');
    assert.equal((await mod.listParticipants({ room: ROOM, secret: SECRET })).participants.length, 3, 'alice, bob and the phone');

    // Destroy: both remaining participants are told; the room is gone.
    await mod.destroy({ room: ROOM, secret: SECRET });
    for (const p of [a, b]) {
      await waitInPage(p.page, () => window.e2e.messages, (ms) => ms.some((m) => m.audiobridge === 'destroyed' && m.room === ROOM), `${p.display} destroyed`);
    }
    assert.equal((await mod.exists({ room: ROOM })).exists, false);
    for (const p of all) await p.page.close();
  });
});
