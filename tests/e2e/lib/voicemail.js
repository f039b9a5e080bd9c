// Helpers of the voicemail end-to-end tests: the registry's voicemail rows (sqlite3), ffprobe,
// and janus.js voicemail handles driven inside a Chromium page of the gateway's /demos/.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

/** Rows of `recordings` as objects (sqlite3 in JSON mode). */
export function rows(db, where = "kind = 'voicemail'") {
  const out = spawnSync('sqlite3', ['-json', db,
    `SELECT id, kind, owner, caller, file_path, codec, duration_ms, size_bytes, heard FROM recordings WHERE ${where}`],
  { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return out.stdout.trim() ? JSON.parse(out.stdout) : [];
}

/** ffprobe's duration (s) and codec of `file`. */
export function probe(file) {
  const out = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name',
    '-of', 'json', file], { encoding: 'utf8' });
  const info = JSON.parse(out.stdout || '{}');
  return { duration: Number(info.format?.duration), codec: info.streams?.[0]?.codec_name, stderr: out.stderr };
}

/**
 * In the page: a janus.js session over HTTP long poll and a voicemail handle. Every event,
 * JSEP and webrtc state goes to `window.vm[name]`; `send(name, body, withOffer)` sends a
 * request, with a fresh audio-only offer when asked.
 */
export async function openHandle(page, name) {
  return page.evaluate(async (name) => {
    if (!window.Janus) {
      const { default: Janus } = await import('/demos/janus.js');
      await new Promise((resolve) => Janus.init({ debug: false, callback: resolve }));
      window.Janus = Janus;
      window.vm = {};
      window.send = (n, message, withOffer) => new Promise((resolve, reject) => {
        const h = window.vm[n].handle;
        if (!withOffer) {
          h.send({ message, success: resolve, error: (e) => reject(new Error(String(e))) });
          return;
        }
        h.createOffer({
          tracks: [{ type: 'audio', capture: true, recv: false }],
          success: (jsep) => h.send({ message, jsep, success: resolve, error: (e) => reject(new Error(String(e))) }),
          error: (e) => reject(new Error(String(e))),
        });
      });
    }
    const janus = await new Promise((resolve, reject) => {
      const j = new window.Janus({ server: '/janus', iceServers: [], success: () => resolve(j), error: (e) => reject(new Error(String(e))) });
    });
    const st = { events: [], answers: 0, webrtcup: false, detached: false, janus };
    window.vm[name] = st;
    st.handle = await new Promise((resolve, reject) => {
      janus.attach({
        plugin: 'janus.plugin.voicemail',
        success: resolve,
        error: (e) => reject(new Error(String(e))),
        webrtcState: (on) => { if (on) st.webrtcup = true; },
        ondetached: () => { st.detached = true; },
        onmessage: (msg, jsep) => {
          st.events.push(msg);
          if (jsep) {
            st.answers++;
            st.handle.handleRemoteJsep({ jsep });
          }
        },
      });
    });
    return st.handle.getId();
  }, name);
}

export const eventsOf = (page, name) => page.evaluate((n) => window.vm[n].events, name);

/** Waits (hang guard only) until an event of handle `name` satisfies `pred`. */
export async function waitEvent(page, name, pred, what, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await eventsOf(page, name);
    const found = events.find(pred);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms: ${JSON.stringify(events)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Waits until the gateway has recorded audio of the page's handle `name`: the Admin API's
 * `handle_info` (`plugin_specific.bytes`, the voicemail's query) is past 0. What the browser
 * counts as sent says nothing of what reached the gateway: Chromium's first packets can be
 * counted before the gateway's side of DTLS is up.
 */
export async function waitRecorded(gw, page, name, timeout = 30000) {
  const [session, handle] = await page.evaluate((n) => [window.vm[n].janus.getSessionId(), window.vm[n].handle.getId()], name);
  const deadline = Date.now() + timeout;
  for (;;) {
    const res = await fetch(`${gw.adminHttpUrl}/${session}/${handle}`, {
      method: 'POST',
      body: JSON.stringify({ janus: 'handle_info', transaction: 'rec', admin_secret: gw.adminSecret }),
    });
    const reply = await res.json();
    const bytes = reply.info?.plugin_specific?.bytes ?? 0;
    if (bytes > 0) return bytes;
    assert.ok(Date.now() < deadline, `nothing recorded within ${timeout} ms: ${JSON.stringify(reply)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the page's janus.js handle `name` has sent more than `count` audio packets. */
export async function waitSent(page, name, count, timeout = 30000) {
  await page.waitForFunction(async ([n, c]) => {
    const stats = await window.vm[n].handle.webrtcStuff.pc.getStats();
    let sent = 0;
    stats.forEach((r) => { if (r.type === 'outbound-rtp' && r.kind === 'audio') sent = r.packetsSent; });
    return sent > c;
  }, [name, count], { timeout, polling: 200 });
}

