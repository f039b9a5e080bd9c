// Permanent audio bridge rooms: `create`/`edit` with `permanent: true` (janode's audiobridge
// plugin and the Admin API) are kept in the registry (secret and PIN as argon2 hashes only) and
// come back after the gateway restarts with their edited description, secret, PIN and
// sampling rate; a room that is not permanent does not; `destroy` with `permanent: true`
// forgets it.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import AudioBridgePlugin from 'janode/plugins/audiobridge';
import { connect } from './lib/janode.js';
import { startGateway } from './lib/gateway.js';

/** An audiobridge request through the Admin API's message_plugin: the plugin's answer. */
async function admin(gw, request) {
  const res = await fetch(gw.adminHttpUrl, {
    method: 'POST',
    body: JSON.stringify({
      janus: 'message_plugin', transaction: `t${Date.now()}${Math.random()}`, admin_secret: gw.adminSecret,
      plugin: 'janus.plugin.audiobridge', request,
    }),
  });
  return (await res.json()).response;
}

describe('permanent audio bridge rooms survive a restart', () => {
  let gw;
  let conn;
  let mod;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-ab-perm-'));
  const db = path.join(dir, 'registry.db');

  async function start() {
    gw = await startGateway({ name: 'audiobridge-permanent', env: { BIFRONS_DATABASE_URL: `sqlite://${db}` } });
    conn = await connect(gw.wsUrl);
    mod = await (await conn.create()).attach(AudioBridgePlugin);
  }
  async function restart() {
    await conn.close().catch(() => {});
    await gw.stop();
    await start();
  }

  before(start);
  after(async () => {
    await conn?.close().catch(() => {});
    await gw?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('create, edit, restart, destroy permanently, restart', async () => {
    const created = await mod.create({ room: 9100, description: 'Q&A', secret: 'adm1n', pin: '2468', sampling_rate: 48000, permanent: true });
    assert.equal(created.permanent, true);
    const temp = await admin(gw, { request: 'create', room: 9101, description: 'temporary' });
    assert.equal(temp.permanent, false);
    const edited = await admin(gw, { request: 'edit', room: 9100, secret: 'adm1n', new_description: 'Q&A line', permanent: true });
    assert.equal(edited.permanent, true, JSON.stringify(edited));
    // The room's mix as a mountpoint, added later and saved with the room.
    const restreamed = await admin(gw, { request: 'mountpoint', room: 9100, secret: 'adm1n', enable: true, mountpoint_id: 9150, permanent: true });
    assert.deepEqual([restreamed.mountpoint, restreamed.permanent], [9150, true], JSON.stringify(restreamed));

    const stored = spawnSync('sqlite3', ['-json', db, 'SELECT id, config, secret_hash, pin_hash FROM audiobridge_rooms'], { encoding: 'utf8' });
    assert.equal(stored.status, 0, stored.stderr);
    const rows = JSON.parse(stored.stdout);
    console.log(`# stored rows: ${rows.map((r) => `${r.id} ${r.config}`).join('; ')}`);
    assert.deepEqual(rows.map((r) => r.id), ['9100']);
    assert.match(rows[0].secret_hash, /^\$argon2id\$/);
    assert.match(rows[0].pin_hash, /^\$argon2id\$/);
    assert.ok(!rows[0].config.includes('adm1n') && !rows[0].config.includes('2468'), 'no secret in clear');

    await restart();
    assert.equal((await admin(gw, { request: 'exists', room: 9100 })).exists, true);
    assert.equal((await admin(gw, { request: 'exists', room: 9101 })).exists, false, 'not permanent: gone');
    const room = (await admin(gw, { request: 'list' })).list.find((r) => r.room === 9100);
    assert.deepEqual(
      [room.description, room.sampling_rate, room.pin_required, room.mountpoint],
      ['Q&A line', 48000, true, 9150],
    );
    const wrong = await admin(gw, { request: 'destroy', room: 9100, secret: 'nope', permanent: true });
    assert.equal(wrong.error_code, 489, 'the secret came back');

    const destroyed = await admin(gw, { request: 'destroy', room: 9100, secret: 'adm1n', permanent: true });
    assert.equal(destroyed.permanent, true, JSON.stringify(destroyed));
    await restart();
    assert.equal((await admin(gw, { request: 'exists', room: 9100 })).exists, false, 'forgotten');
  });
});
