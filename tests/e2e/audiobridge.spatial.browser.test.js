// Spatial audio: a 48 kHz room created with `spatial_audio: true`; a janus.js participant sends
// a 440 Hz tone from `spatial_position` 0, a second one (whose offer asks for stereo Opus, as
// janus.js' demo munges it) listens: its decoded audio, split into left and right with a Web
// Audio ChannelSplitter, is louder on the left; after `configure` moves the speaker to 100,
// louder on the right. A spatial room at another rate is refused.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway } from './lib/gateway.js';
import {
  startPageServer, launchChromium, waitInPage, joinPage, adminBridge,
} from './lib/audiobridge.js';

const ROOM = 5350;

describe('audio bridge spatial audio', () => {
  let gw;
  let site;
  const browsers = [];

  before(async () => {
    gw = await startGateway({ name: 'audiobridge-spatial' });
    site = await startPageServer();
    for (let i = 0; i < 2; i++) browsers.push(await launchChromium());
  });
  after(async () => {
    for (const b of browsers) await b?.close();
    await site?.close();
    await gw?.stop();
  });

  it('pans each voice for a stereo listener by its spatial_position', async (t) => {
    const refused = await adminBridge(gw, { request: 'create', room: ROOM + 1, sampling_rate: 16000, spatial_audio: true });
    assert.equal(refused.error_code, 484, JSON.stringify(refused));
    const created = await adminBridge(gw, { request: 'create', room: ROOM, sampling_rate: 48000, spatial_audio: true });
    assert.equal(created.audiobridge, 'created', JSON.stringify(created));
    assert.equal((await adminBridge(gw, { request: 'list' })).list.find((r) => r.room === ROOM).spatial_audio, true);

    const speaker = await joinPage(browsers[0], site.url, gw.wsUrl, ROOM, 'speaker', 440, undefined, { join: { spatial_position: 0 } });
    const listener = await joinPage(browsers[1], site.url, gw.wsUrl, ROOM, 'listener', 3000, undefined, { stereo: true });
    for (const p of [speaker, listener]) {
      await waitInPage(p.page, () => window.e2e, (s) => s.webrtcup || s.errors.length > 0, `${p.display} webrtcup`);
      assert.deepEqual((await p.page.evaluate(() => window.e2e)).errors, [], p.display);
    }

    const left = await waitInPage(listener.page, () => window.channels(), (c) => c !== null && c.left > 0.02 && c.left > 4 * c.right,
      'the speaker at 0 is on the left');
    t.diagnostic(`spatial_position 0: left rms ${left.left.toFixed(4)}, right ${left.right.toFixed(4)}`);
    const positions = async () => Object.fromEntries((await adminBridge(gw, { request: 'listparticipants', room: ROOM }))
      .participants.map((p) => [p.display, p.spatial_position]));
    assert.deepEqual(await positions(), { speaker: 0, listener: 50 }, 'positions listed (centre by default)');

    await speaker.page.evaluate(() => window.request({ request: 'configure', spatial_position: 100 }));
    const right = await waitInPage(listener.page, () => window.channels(), (c) => c !== null && c.right > 0.02 && c.right > 4 * c.left,
      'the speaker at 100 is on the right');
    t.diagnostic(`spatial_position 100: left rms ${right.left.toFixed(4)}, right ${right.right.toFixed(4)}`);
    assert.deepEqual(await positions(), { speaker: 100, listener: 50 }, 'the configured position is listed');

    await adminBridge(gw, { request: 'destroy', room: ROOM });
    for (const p of [speaker, listener]) await p.page.close();
  });
});
