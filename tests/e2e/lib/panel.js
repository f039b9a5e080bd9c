// Helpers of the admin panel's end-to-end test: create a panel user with the CLI, and make a
// real recording by running the echo test with `record: true` from janus.js in Chromium.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './gateway.js';

const BIN = process.env.BIFRONS_BIN || path.join(REPO_ROOT, 'target', 'debug', 'bifrons');

/** `bifrons user add NAME --role ROLE` against `databaseUrl`, the password on stdin. */
export function addUser(databaseUrl, name, role, password) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['--database-url', databaseUrl, 'user', 'add', name, '--role', role], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`user add exited ${code}: ${out}`))));
    child.stdin.end(`${password}\n`);
  });
}

/**
 * In `page` (already on a page of the gateway's Janus HTTP origin, e.g. /demos/), starts the
 * echo test over HTTP long poll, audio only, with `record: true` to `filename`; resolves once
 * WebRTC is up (the fake microphone's tone is then being recorded). The call stays up for
 * [stopRecording] and [hangup].
 */
export async function startEchotestRecording(page, filename) {
  await page.addScriptTag({ url: '/demos/adapter.js' });
  return page.evaluate(async (filename) => {
    const { default: Janus } = await import('/demos/janus.js');
    await new Promise((resolve) => Janus.init({ debug: false, callback: resolve }));
    const state = { events: [] };
    window.__panelEcho = state;
    state.janus = await new Promise((resolve, reject) => {
      const j = new Janus({ server: '/janus', iceServers: [], success: () => resolve(j), error: (e) => reject(new Error(String(e))) });
    });
    let up;
    const upPromise = new Promise((r) => { up = r; });
    state.echo = await new Promise((resolve, reject) => {
      state.janus.attach({
        plugin: 'janus.plugin.echotest',
        success: resolve,
        error: (e) => reject(new Error(String(e))),
        webrtcState: (on) => { state.events.push(`webrtc ${on}`); if (on) up(); },
        onmessage: (msg, jsep) => {
          state.events.push(JSON.stringify(msg));
          if (jsep) state.echo.handleRemoteJsep({ jsep });
        },
      });
    });
    await new Promise((resolve, reject) => state.echo.createOffer({
      tracks: [{ type: 'audio', capture: true, recv: true }],
      success: (jsep) => {
        state.echo.send({ message: { audio: true, video: false, record: true, filename }, jsep });
        resolve();
      },
      error: (e) => reject(new Error(String(e))),
    }));
    await Promise.race([upPromise, new Promise((_, r) => setTimeout(() => r(new Error(`no webrtcup in 20 s: ${state.events.join(' | ')}`)), 20000))]);
    return { sessionId: state.janus.getSessionId(), handleId: state.echo.getId() };
  }, filename);
}

/** Sends `record: false` and waits for the answer: the recording is closed and registered. */
export async function stopRecording(page) {
  return page.evaluate(() => new Promise((resolve, reject) => {
    window.__panelEcho.echo.send({ message: { record: false }, success: resolve, error: (e) => reject(new Error(String(e))) });
  }));
}

/** Hangs up and destroys the Janus session. */
export async function hangup(page) {
  return page.evaluate(() => new Promise((resolve) => {
    window.__panelEcho.echo.hangup();
    window.__panelEcho.janus.destroy({ success: resolve, error: resolve });
  }));
}
