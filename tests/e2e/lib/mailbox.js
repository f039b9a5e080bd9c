// Helpers of the SIP mailbox tests (voicemail.mwi / voicemail.extension): a registry with
// mailboxes made with the CLI, a voicemail PIN set through the panel API, a desk phone's
// message-waiting subscription (RFC 3842), and how long a tone is heard in a recording.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT, LOG_DIR } from './gateway.js';
import { addUser } from './panel.js';
import { analyze } from './sip.js';

const BIN = process.env.BIFRONS_BIN || path.join(REPO_ROOT, 'target', 'debug', 'bifrons');

/** Runs the CLI on `dbUrl`; fails the test when it fails. */
export function cli(dbUrl, args, input = '') {
  const r = spawnSync(BIN, args, { input, env: { ...process.env, BIFRONS_DATABASE_URL: dbUrl }, encoding: 'utf8' });
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** Waits (hang guard only) until `fn()` returns something truthy. */
export async function until(fn, what, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** Sets account `id`'s voicemail PIN through the panel API, as an admin made for it. */
export async function setPin(gw, dbUrl, id, pin) {
  await addUser(dbUrl, 'vmadmin', 'admin', 'vmadmin-password-1');
  const api = `http://127.0.0.1:${gw.ports.adminHttp}/panel/api/v1`;
  const login = await fetch(`${api}/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ username: 'vmadmin', password: 'vmadmin-password-1' }),
  });
  assert.equal(login.status, 200);
  const cookie = login.headers.get('set-cookie').split(';')[0];
  const { csrf_token: csrf } = await login.json();
  const res = await fetch(`${api}/accounts/${id}/voicemail-pin`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', Cookie: cookie, 'X-CSRF-Token': csrf },
    body: JSON.stringify({ pin }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** Seconds of `samples` (at `rate`) whose 100 ms windows are dominated by `hz` (± 15 Hz) with energy. */
export function secondsOf(samples, rate, hz) {
  const win = Math.round(rate / 10);
  let windows = 0;
  for (let i = 0; i + win <= samples.length; i += win) {
    const a = analyze(samples.slice(i, i + win), rate);
    if (a.rms > 300 && Math.abs(a.hz - hz) <= 15) windows++;
  }
  return windows / 10;
}

/**
 * A desk phone's message-waiting side on a UDP socket: SUBSCRIBE `Event: message-summary` to
 * `sip:USER@kamailio` through kamailio (which forks it to every contact registered for the
 * user), 200 to every NOTIFY, the bodies read. (baresip 1.0.0's mwi module cannot serve here:
 * once subscribed it walks the subscription list it appends to and re-subscribes forever.)
 */
export async function startMwiPhone({ kamailio, user }) {
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  const port = sock.address().port;
  const aor = `sip:${user}@127.0.0.1:${kamailio.port}`;
  const callId = `mwi-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const state = { responses: [], notifies: [], toTag: null, target: null, cseq: 0 };
  const header = (msg, name) => {
    const m = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'im').exec(msg);
    return m ? m[1].trim() : null;
  };
  sock.on('message', (buf, rinfo) => {
    const msg = buf.toString();
    const [head, body = ''] = msg.split('\r\n\r\n');
    if (msg.startsWith('SIP/2.0')) {
      const code = Number(msg.slice(8, 11));
      const tag = /;tag=([^;\s>]+)/.exec(header(head, 'To') || '');
      if (code >= 200 && code < 300 && tag && !state.toTag) {
        state.toTag = tag[1];
        const contact = /<(sip:[^>]+)>/.exec(header(head, 'Contact') || '');
        if (contact) state.target = contact[1];
      }
      state.responses.push({ code, expires: header(head, 'Expires'), allowEvents: header(head, 'Allow-Events'), cseq: header(head, 'CSeq') });
      return;
    }
    if (!msg.startsWith('NOTIFY')) return;
    const vias = head.split('\r\n').filter((l) => /^via\s*:/i.test(l));
    const keep = ['From', 'To', 'Call-ID', 'CSeq'].map((h) => `${h}: ${header(head, h)}`);
    sock.send(`SIP/2.0 200 OK\r\n${vias.join('\r\n')}\r\n${keep.join('\r\n')}\r\nContent-Length: 0\r\n\r\n`, rinfo.port, rinfo.address);
    const waiting = /Messages-Waiting:\s*(yes|no)/i.exec(body);
    const voice = /Voice-Message:\s*(\d+)\/(\d+)/i.exec(body);
    state.notifies.push({
      substate: header(head, 'Subscription-State'),
      event: header(head, 'Event'),
      waiting: waiting ? waiting[1].toLowerCase() === 'yes' : null,
      new: voice ? Number(voice[1]) : null,
      old: voice ? Number(voice[2]) : null,
    });
  });
  /**
   * A SUBSCRIBE: the first (or, `inDialog` false, one of a new dialog) goes to the AOR through
   * kamailio; a refresh or unsubscribe goes in the dialog, to the notifier's Contact.
   */
  const subscribe = (event = 'message-summary', expires = 600, inDialog = true) => {
    state.cseq += 1;
    const dialog = inDialog && state.toTag;
    const toTag = dialog ? `;tag=${state.toTag}` : '';
    const cid = inDialog ? callId : `${callId}-${state.cseq}`;
    const ruri = dialog ? state.target : aor;
    const [, host, dport] = dialog ? /@?([\d.]+):(\d+)/.exec(state.target) : [null, '127.0.0.1', kamailio.port];
    const req = `SUBSCRIBE ${ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};rport;branch=z9hG4bK${cid}-${state.cseq}\r\n`
      + `Max-Forwards: 70\r\nFrom: <${aor}>;tag=phone1\r\nTo: <${aor}>${toTag}\r\nCall-ID: ${cid}\r\nCSeq: ${state.cseq} SUBSCRIBE\r\n`
      + `Contact: <sip:${user}@127.0.0.1:${port}>\r\nEvent: ${event}\r\nAccept: application/simple-message-summary\r\nExpires: ${expires}\r\nContent-Length: 0\r\n\r\n`;
    sock.send(req, Number(dport), host);
  };
  return {
    state,
    subscribe,
    /** The message-summary NOTIFYs received, in order. */
    bodies: () => state.notifies.filter((n) => n.waiting !== null),
    close: () => sock.close(),
  };
}

/**
 * Seconds of `samples` (at `rate` Hz) that hold speech: 20 ms windows whose RMS is within 26 dB
 * of the loudest window's (and above 150, about -47 dBFS), summed.
 */
export function voicedSeconds(samples, rate) {
  const win = Math.round(rate / 50);
  const rms = [];
  for (let i = 0; i + win <= samples.length; i += win) {
    let sum = 0;
    for (let j = i; j < i + win; j++) sum += samples[j] * samples[j];
    rms.push(Math.sqrt(sum / win));
  }
  const floor = Math.max(150, Math.max(0, ...rms) / 20);
  return rms.filter((r) => r > floor).length / 50;
}

/**
 * Runs SIPp once (`-m 1`) with scenario `tests/e2e/sipp/<scenario>` on 127.0.0.1:`port`, as
 * `service` (the user part of its URIs), towards `remote` (host:port; none for a UAS run),
 * with `extra` arguments. Its messages are traced to a file read by `messages()`.
 * `exited` resolves to SIPp's exit code: 0 when every message and regexp check passed.
 * `stop()` ends it (by its PID) if it still runs, and keeps its logs beside the gateway's.
 */
export function runSipp({ name, scenario, port, service = 'dave', remote = null, extra = [], timeoutS = 150 }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bifrons-e2e-sipp-${name}-`));
  const messageFile = path.join(dir, 'messages.log');
  const errorFile = path.join(dir, 'errors.log');
  const args = ['-sf', path.join(REPO_ROOT, 'tests', 'e2e', 'sipp', scenario), '-m', '1', '-nostdin',
    '-i', '127.0.0.1', '-p', String(port), '-s', service, '-timeout', `${timeoutS}s`, '-timeout_error',
    '-trace_msg', '-message_file', messageFile, '-trace_err', '-error_file', errorFile, ...extra,
    ...(remote ? [remote] : [])];
  const out = fs.openSync(path.join(dir, 'stdout.log'), 'w');
  const child = spawn('sipp', args, { cwd: dir, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const read = (f) => { try { return fs.readFileSync(f, 'utf8'); } catch { return ''; } };
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  return {
    exited,
    messages: () => read(messageFile),
    errors: () => read(errorFile),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      fs.mkdirSync(LOG_DIR, { recursive: true });
      for (const f of ['messages.log', 'errors.log', 'stdout.log']) {
        try { fs.copyFileSync(path.join(dir, f), path.join(LOG_DIR, `sipp-${name}-${f.replace('.log', '')}-${process.pid}.log`)); } catch { /* none */ }
      }
      if (!process.env.E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
