// The audio bridge's API through janode's audiobridge plugin (WebSocket): create / list /
// exists / join / listparticipants / destroy round trip, then a table of malformed or refused
// requests, each answered with Janus' error code and text, while a room keeps mixing (its mix,
// forwarded as PCMU to a UDP socket here, keeps flowing with no sequence gap).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import AudioBridgePlugin from 'janode/plugins/audiobridge';
import { startGateway } from './lib/gateway.js';
import { connect } from './lib/janode.js';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRtpReceiver, toneShare } from './lib/audiobridge.js';

const ROOM = 777;
const SECRET = 'adm1n';
const PIN = '1234';

/** Asserts `promise` rejects with Janus audiobridge error `code` (and text matching `text`). */
async function rejectsWith(promise, code, text) {
  await assert.rejects(promise, (err) => {
    assert.match(err.message, new RegExp(`^${code}\\b`), `expected ${code}, got "${err.message}"`);
    if (text) assert.ok(err.message.includes(text), `expected "${text}" in "${err.message}"`);
    return true;
  });
}

describe('audio bridge API with janode', () => {
  let gw;
  let conn;
  let session;
  let mod;

  before(async () => {
    gw = await startGateway({ name: 'audiobridge-api' });
    conn = await connect(gw.wsUrl);
    session = await conn.create();
    mod = await session.attach(AudioBridgePlugin);
  });
  after(async () => {
    await conn?.close().catch(() => {});
    await gw?.stop();
  });

  it('create, list, exists, join, listparticipants, destroy round trip', async () => {
    const created = await mod.create({ room: ROOM, description: 'Round trip', secret: SECRET, pin: PIN, sampling_rate: 48000 });
    assert.equal(created.room, ROOM);
    assert.equal(created.permanent, false);
    const hidden = await mod.create({ room: ROOM + 1, is_private: true });
    assert.equal(hidden.room, ROOM + 1);
    // No room id: the bridge picks one (a JavaScript-safe integer).
    const picked = await mod.create({ description: 'picked' });
    assert.ok(Number.isSafeInteger(picked.room) && picked.room > 0, JSON.stringify(picked));

    const { list } = await mod.list();
    const mine = list.find((r) => r.room === ROOM);
    assert.deepEqual(mine, {
      room: ROOM, description: 'Round trip', sampling_rate: 48000, spatial_audio: false,
      pin_required: true, record: false, muted: false, num_participants: 0,
    });
    assert.ok(!list.some((r) => r.room === ROOM + 1), 'private rooms are not listed');
    assert.ok(list.some((r) => r.room === picked.room && r.description === 'picked'));
    assert.equal((await mod.exists({ room: ROOM })).exists, true);
    assert.equal((await mod.exists({ room: 5 })).exists, false);

    // A participant without media: listed, not set up.
    const guest = await session.attach(AudioBridgePlugin);
    const joined = await guest.join({ room: ROOM, pin: PIN, display: 'guest', muted: true });
    assert.equal(joined.room, ROOM);
    assert.deepEqual(joined.participants, []);
    const parts = await mod.listParticipants({ room: ROOM });
    assert.deepEqual(parts.participants, [{ feed: joined.feed, display: 'guest', muted: true, setup: false }]);
    assert.equal((await mod.list()).list.find((r) => r.room === ROOM).num_participants, 1);

    // Configure (display) and leave.
    await guest.configure({ display: 'renamed' });
    assert.equal((await mod.listParticipants({ room: ROOM })).participants[0].display, 'renamed');
    const left = await guest.leave();
    assert.equal(left.feed, joined.feed);
    assert.equal((await mod.listParticipants({ room: ROOM })).participants.length, 0);

    // edit: new description and PIN; the old PIN no longer opens the room.
    const edited = (await mod.message({ request: 'edit', room: ROOM, secret: SECRET, new_description: 'Renamed', new_pin: '9999' })).plugindata.data;
    assert.deepEqual(edited, { audiobridge: 'edited', room: ROOM, permanent: false });
    assert.equal((await mod.list()).list.find((r) => r.room === ROOM).description, 'Renamed');
    const late = await session.attach(AudioBridgePlugin);
    await rejectsWith(late.join({ room: ROOM, pin: PIN }), 489, 'Unauthorized (wrong pin)');
    // allowed: with the token list on, only listed tokens join.
    const allowed = await mod.allow({ room: ROOM, action: 'enable', secret: SECRET });
    assert.deepEqual(allowed.list, []);
    await rejectsWith(late.join({ room: ROOM, pin: '9999', token: 'guest-1' }), 489, 'Unauthorized (not in the allowed list)');
    assert.deepEqual((await mod.allow({ room: ROOM, action: 'add', list: ['guest-1'], secret: SECRET })).list, ['guest-1']);
    await rejectsWith(mod.allow({ room: ROOM, action: 'grant', secret: SECRET }), 484, "Unsupported action 'grant' (allowed)");
    const tokened = await late.join({ room: ROOM, pin: '9999', token: 'guest-1', display: 'late' });
    // mute_room: everybody is told; kick_all empties the room.
    const watcher = await session.attach(AudioBridgePlugin);
    await mod.allow({ room: ROOM, action: 'disable', secret: SECRET });
    await watcher.join({ room: ROOM, pin: '9999' });
    const roomMuted = new Promise((resolve) => watcher.once(AudioBridgePlugin.EVENT.AUDIOBRIDGE_ROOM_MUTED, resolve));
    // janode 1.8.0's muteRoom() sends unmute_room by mistake: the raw request instead.
    await mod.message({ request: 'mute_room', room: ROOM, secret: SECRET });
    const mutedEvent = await Promise.race([roomMuted, sleep(5000).then(() => ({ timeout: true }))]);
    assert.equal(mutedEvent.muted, true, `room muted event: ${JSON.stringify(mutedEvent)}`);
    assert.equal((await mod.list()).list.find((r) => r.room === ROOM).muted, true);
    await mod.message({ request: 'unmute_room', room: ROOM, secret: SECRET });
    assert.equal((await mod.list()).list.find((r) => r.room === ROOM).muted, false);
    await mod.message({ request: 'kick_all', room: ROOM, secret: SECRET });
    assert.equal((await mod.listParticipants({ room: ROOM })).participants.length, 0);
    assert.ok(tokened.feed);
    await late.detach();
    await watcher.detach();
    await mod.message({ request: 'edit', room: ROOM, secret: SECRET, new_pin: PIN });

    const destroyed = await mod.destroy({ room: ROOM + 1 });
    assert.equal(destroyed.room, ROOM + 1);
    assert.equal((await mod.exists({ room: ROOM + 1 })).exists, false);
    await guest.detach();
  });

  it('answers 41 malformed or refused requests with Janus codes while a room keeps mixing', async () => {
    const rtp = await startRtpReceiver();
    try {
      // The room of the previous test (secret + PIN) gets a forwarder: its mix must keep flowing.
      const fwd = await mod.startForward({ room: ROOM, secret: SECRET, host: '127.0.0.1', audio_port: rtp.port, codec: 'pcmu', ptype: 0 });
      assert.ok(fwd.forwarder.audio_stream > 0);
      const member = await session.attach(AudioBridgePlugin);
      const m = await member.join({ room: ROOM, pin: PIN, display: 'member' });
      await sleep(500);
      const before = rtp.state.packets;
      assert.ok(before > 5, `the mix flows: ${before} packets`);

      const other = await session.attach(AudioBridgePlugin);
      const cases = [
        [{}, 483, 'Missing mandatory element (request)'],
        [{ request: 5 }, 484, 'Invalid element type (request should be a string)'],
        [{ request: 'nope' }, 482, "Unknown request 'nope'"],
        [{ request: 'create', room: 'abc' }, 484, 'Invalid element type (room should be a positive integer)'],
        [{ request: 'create', room: -3 }, 484, 'room should be a positive integer'],
        [{ request: 'create', room: ROOM }, 486, `Room ${ROOM} already exists`],
        [{ request: 'create', sampling_rate: 44100 }, 499, 'Unsupported sampling rate 44100'],
        [{ request: 'create', description: 7 }, 484, 'Invalid element type (description should be a string)'],
        [{ request: 'create', is_private: 'yes' }, 484, 'Invalid element type (is_private should be a boolean)'],
        [{ request: 'create', allowed: [1] }, 484, 'Invalid element in the allowed array (not a string)'],
        [{ request: 'create', room: ROOM, permanent: true }, 486, `Room ${ROOM} already exists`],
        [{ request: 'exists' }, 483, 'Missing mandatory element (room)'],
        [{ request: 'exists', room: 'x' }, 484, 'room should be a positive integer'],
        [{ request: 'destroy', room: 999999 }, 485, 'No such room (999999)'],
        [{ request: 'destroy', room: ROOM }, 483, 'Missing mandatory element (secret)'],
        [{ request: 'destroy', room: ROOM, secret: 'wrong' }, 489, 'Unauthorized (wrong secret)'],
        [{ request: 'destroy', room: ROOM, secret: 5 }, 484, 'Invalid element type (secret should be a string)'],
        [{ request: 'edit', room: ROOM, secret: 'wrong', new_description: 'x' }, 489, 'Unauthorized (wrong secret)'],
        [{ request: 'listparticipants', room: 999999 }, 485, 'No such room (999999)'],
        [{ request: 'kick', room: ROOM, secret: SECRET }, 483, 'Missing mandatory element (id)'],
        [{ request: 'kick', room: ROOM, secret: SECRET, id: 12345 }, 492, `No such user 12345 in room ${ROOM}`],
        [{ request: 'mute', room: ROOM, id: m.feed }, 483, 'Missing mandatory element (secret)'],
        [{ request: 'rtp_forward', room: ROOM, secret: SECRET, host: '127.0.0.1' }, 483, 'Missing mandatory element (port)'],
        [{ request: 'rtp_forward', room: ROOM, secret: SECRET, host: '127.0.0.1', port: 5000, codec: 'g722' }, 484, 'Unsupported codec (g722)'],
        [{ request: 'rtp_forward', room: ROOM, secret: SECRET, host: '127.0.0.1', port: 0 }, 484, 'Invalid port number (0)'],
        [{ request: 'stop_rtp_forward', room: ROOM }, 483, 'Missing mandatory element (stream_id)'],
        [{ request: 'listforwarders', room: ROOM, secret: 'bad' }, 489, 'Unauthorized (wrong secret)'],
        [{ request: 'play_file', room: ROOM, secret: SECRET }, 483, 'Missing mandatory element (filename)'],
        [{ request: 'stop_file', room: ROOM, secret: SECRET, file_id: 'none' }, 484, 'No such file_id (none)'],
        // Asynchronous requests: the error comes in the event after the ack.
        [{ request: 'join', room: 999999 }, 485, 'No such room (999999)'],
        [{ request: 'join', room: ROOM }, 483, 'Missing mandatory element (pin)'],
        [{ request: 'join', room: ROOM, pin: 'bad' }, 489, 'Unauthorized (wrong pin)'],
        [{ request: 'join', room: ROOM, pin: PIN, codec: 'g729' }, 484, 'Invalid element (codec must opus, pcmu or pcma)'],
        [{ request: 'join', room: ROOM, pin: PIN, quality: 11 }, 484, 'quality should be a positive integer between 1 and 10'],
        [{ request: 'join', room: ROOM, pin: PIN, expected_loss: 30 }, 484, 'expected_loss should be a positive integer between 0 and 20'],
        [{ request: 'join', room: ROOM, pin: PIN, id: m.feed }, 490, `User ID ${m.feed} already exists`],
        [{ request: 'configure', muted: true }, 487, "Can't configure (not in a room)"],
        [{ request: 'leave' }, 487, "Can't leave (not in a room)"],
        [{ request: 'changeroom', room: ROOM }, 487, "Can't change room (not in a room in the first place)"],
      ];
      for (const [body, code, text] of cases) {
        await rejectsWith(other.message(body), code, text);
      }
      // The joined member cannot join twice, nor change to its own room.
      await rejectsWith(member.message({ request: 'join', room: ROOM, pin: PIN }), 491, 'Already in a room');
      await rejectsWith(member.message({ request: 'changeroom', room: ROOM, pin: PIN }), 491, 'Already in this room');

      // The room kept mixing throughout: packets every 20 ms, no sequence gap, and it still works.
      // The requests may take less than the 200 ms of 10 packets: wait for them (at most 5 s).
      const deadline = Date.now() + 5000;
      while (rtp.state.packets <= before + 10 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const after = rtp.state.packets;
      assert.ok(after > before + 10, `the mix kept flowing: ${before} → ${after}`);
      assert.equal(rtp.state.seqGaps, 0);
      const parts = await mod.listParticipants({ room: ROOM });
      assert.deepEqual(parts.participants.map((p) => p.feed), [m.feed]);
      await mod.kick({ room: ROOM, feed: m.feed, secret: SECRET });
      assert.equal((await mod.listParticipants({ room: ROOM })).participants.length, 0);
      await mod.destroy({ room: ROOM, secret: SECRET });
      assert.equal((await mod.exists({ room: ROOM })).exists, false);
      await rejectsWith(mod.destroy({ room: ROOM, secret: SECRET }), 485, `No such room (${ROOM})`);
    } finally {
      await rtp.close();
    }
  });
});

describe('plain-RTP participants and announcements', () => {
  let gw;
  let conn;
  let session;
  let mod;
  const recDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-ab-files-'));

  before(async () => {
    gw = await startGateway({ name: 'audiobridge-rtp', env: { BIFRONS_RECORDINGS_DIR: recDir } });
    conn = await connect(gw.wsUrl);
    session = await conn.create();
    mod = await session.attach(AudioBridgePlugin);
  });
  after(async () => {
    await conn?.close().catch(() => {});
    await gw?.stop();
    fs.rmSync(recDir, { recursive: true, force: true });
  });

  it('an Ogg/Opus file played into the room is heard, then ends by itself', async () => {
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=900:duration=1.5', '-c:a', 'libopus', '-ac', '1', path.join(recDir, 'greeting.opus')]);
    const room = 41;
    await mod.create({ room, sampling_rate: 16000, allow_rtp: true, secret: 's' });
    const listener = await startRtpReceiver({ keep: 60 });
    await (await session.attach(AudioBridgePlugin)).join({ room, codec: 'pcmu', rtp_participant: { ip: '127.0.0.1', port: listener.port } });
    await rejectsWith(mod.playFile({ room, secret: 's', filename: '/etc/passwd' }), 484, 'filename must be inside the recordings directory');
    await rejectsWith(mod.playFile({ room, secret: 's', filename: 'missing.opus' }), 499, 'Error opening file');
    await rejectsWith(mod.playFile({ room, filename: 'greeting.opus' }), 483, 'Missing mandatory element (secret)');
    const played = await mod.playFile({ room, secret: 's', filename: 'greeting.opus', file_id: 'hello' });
    assert.equal(played.file_id, 'hello');
    await rejectsWith(mod.playFile({ room, secret: 's', filename: 'greeting.opus', file_id: 'hello' }), 490, 'File ID exists (hello)');
    assert.equal((await mod.isPlaying({ room, secret: 's', file_id: 'hello' })).playing, true);
    const listed = await mod.listAnnouncements({ room, secret: 's' });
    assert.deepEqual(listed.announcements, [{ file_id: 'hello', filename: 'greeting.opus', playing: true, loop: false }]);
    await sleep(1000);
    const heard = listener.state.pcm.flat();
    assert.ok(toneShare(heard.slice(-8000), 900, 8000) > 0.5, `900 Hz heard: ${toneShare(heard.slice(-8000), 900, 8000)}`);
    await sleep(1500);
    assert.equal((await mod.isPlaying({ room, secret: 's', file_id: 'hello' })).playing, false, 'ended by itself');
    // A looping one runs until stopped.
    await mod.playFile({ room, secret: 's', filename: 'greeting.opus', file_id: 'loop', loop: true });
    await sleep(2000);
    assert.equal((await mod.isPlaying({ room, secret: 's', file_id: 'loop' })).playing, true);
    const stopped = await mod.stopAllFiles({ room, secret: 's' });
    assert.deepEqual(stopped.file_id_list, ['loop']);
    assert.equal((await mod.isPlaying({ room, secret: 's', file_id: 'loop' })).playing, false);
    await mod.destroy({ room, secret: 's' });
    await listener.close();
  });

  it('a PCMU tone sent over plain RTP reaches the other participant, not itself', async () => {
    const room = 31;
    await rejectsWith(
      (await session.attach(AudioBridgePlugin)).join({ room: 999, rtp_participant: { ip: '127.0.0.1', port: 4000 } }),
      485,
    );
    await mod.create({ room, sampling_rate: 8000 });
    await rejectsWith(
      (await session.attach(AudioBridgePlugin)).join({ room, codec: 'pcmu', rtp_participant: { ip: '127.0.0.1', port: 4000 } }),
      489, 'Plain RTP participants not allowed in this room',
    );
    await mod.destroy({ room });
    await mod.create({ room, sampling_rate: 8000, allow_rtp: true });

    const speaker = await startRtpReceiver();
    const listener = await startRtpReceiver();
    const s = await (await session.attach(AudioBridgePlugin)).join({ room, display: 'speaker', codec: 'pcmu', rtp_participant: { ip: '127.0.0.1', port: speaker.port, payload_type: 0 } });
    const l = await (await session.attach(AudioBridgePlugin)).join({ room, display: 'listener', codec: 'pcmu', rtp_participant: { ip: '127.0.0.1', port: listener.port, payload_type: 0 } });
    assert.equal(s.rtp_participant.payload_type, 0);
    assert.equal(s.rtp_participant.ip, '127.0.0.1');
    assert.ok(s.rtp_participant.port > 0 && l.rtp_participant.port !== s.rtp_participant.port);
    assert.ok((await mod.listParticipants({ room })).participants.every((p) => p.setup === true));

    // The speaker sends 3 s of a 600 Hz tone as PCMU, 20 ms per packet, from its own port.
    const tone = [];
    for (let i = 0; i < 160 * 150; i++) tone.push(Math.round(8000 * Math.sin((2 * Math.PI * 600 * i) / 8000)));
    const ulawEncode = (x) => {
      const sign = x < 0 ? 0x80 : 0;
      let m = Math.min(Math.abs(x), 32635) + 0x84;
      let e = 7;
      for (let mask = 0x4000; (m & mask) === 0 && e > 0; mask >>= 1) e--;
      return ~(sign | (e << 4) | ((m >> (e + 3)) & 0x0f)) & 0xff;
    };
    const dgram = await import('node:dgram');
    const out = dgram.createSocket('udp4');
    for (let k = 0; k < 150; k++) {
      const pkt = Buffer.alloc(12 + 160);
      pkt[0] = 0x80;
      pkt[1] = 0;
      pkt.writeUInt16BE(k, 2);
      pkt.writeUInt32BE(k * 160, 4);
      pkt.writeUInt32BE(0x1234, 8);
      for (let i = 0; i < 160; i++) pkt[12 + i] = ulawEncode(tone[k * 160 + i]);
      out.send(pkt, s.rtp_participant.port, '127.0.0.1');
      await sleep(20);
    }
    out.close();
    await sleep(200);
    const heard = listener.state.pcm.flat();
    const self = speaker.state.pcm.flat();
    const share = (pcm, f) => {
      const w = (2 * Math.PI * f) / 8000;
      const c = 2 * Math.cos(w);
      let s1 = 0; let s2 = 0; let total = 0;
      for (const x of pcm) { const s0 = x + c * s1 - s2; s2 = s1; s1 = s0; total += x * x; }
      return total === 0 ? 0 : (2 * (s1 * s1 + s2 * s2 - c * s1 * s2)) / pcm.length / total;
    };
    const rms = (pcm) => Math.sqrt(pcm.reduce((a, x) => a + x * x, 0) / Math.max(1, pcm.length));
    assert.ok(listener.state.packets > 100 && speaker.state.packets > 100, `mix packets: ${listener.state.packets}, ${speaker.state.packets}`);
    assert.equal(listener.state.seqGaps, 0);
    assert.ok(share(heard, 600) > 0.5, `the listener hears 600 Hz: ${share(heard, 600)}, rms ${rms(heard)}`);
    assert.ok(rms(heard) > 1000, `the listener's mix has energy: ${rms(heard)}`);
    assert.ok(rms(self) < 100, `the speaker hears nothing of itself: rms ${rms(self)}`);

    await mod.destroy({ room });
    const after = listener.state.packets;
    await sleep(300);
    assert.ok(listener.state.packets <= after + 1, 'no mix after the room is destroyed');
    await speaker.close();
    await listener.close();
  });
});

describe('string room and participant ids ([audiobridge] string_ids)', () => {
  let gw;
  let conn;
  let session;
  let mod;

  before(async () => {
    gw = await startGateway({ name: 'audiobridge-strings', env: { BIFRONS_AUDIOBRIDGE_STRING_IDS: 'true' } });
    conn = await connect(gw.wsUrl);
    session = await conn.create();
    mod = await session.attach(AudioBridgePlugin);
  });
  after(async () => {
    await conn?.close().catch(() => {});
    await gw?.stop();
  });

  it('rooms and participants are named by strings, numbers are refused', async () => {
    assert.equal((await mod.create({ room: 'lobby', description: 'Lobby' })).room, 'lobby');
    const picked = await mod.create({});
    assert.equal(typeof picked.room, 'string');
    await rejectsWith(mod.create({ room: 'lobby' }), 486, 'Room lobby already exists');
    await rejectsWith(mod.exists({ room: 12 }), 484, 'Invalid element type (room should be a string)');
    assert.equal((await mod.exists({ room: 'lobby' })).exists, true);
    const guest = await session.attach(AudioBridgePlugin);
    const joined = await guest.join({ room: 'lobby', feed: 'ann', display: 'Ann' });
    assert.equal(joined.feed, 'ann');
    const second = await session.attach(AudioBridgePlugin);
    await rejectsWith(second.join({ room: 'lobby', feed: 'ann' }), 490, 'User ID ann already exists');
    await rejectsWith(second.join({ room: 'lobby', feed: 7 }), 484, 'Invalid element type (id should be a string)');
    const auto = await second.join({ room: 'lobby' });
    assert.equal(typeof auto.feed, 'string');
    assert.deepEqual((await mod.listParticipants({ room: 'lobby' })).participants.map((p) => p.feed).sort(), ['ann', auto.feed].sort());
    await mod.kick({ room: 'lobby', feed: 'ann' });
    assert.deepEqual((await mod.listParticipants({ room: 'lobby' })).participants.map((p) => p.feed), [auto.feed]);
    assert.equal((await mod.destroy({ room: 'lobby' })).room, 'lobby');
    assert.equal((await mod.exists({ room: 'lobby' })).exists, false);
  });
});
