// Real SIP peers for the SIP plugin tests: kamailio (registrar/proxy with digest auth) and
// baresip (a softphone that plays a tone and records what it hears), each on loopback in its
// own temp folder, started and stopped by PID.

import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOG_DIR } from './gateway.js';

/** Users kamailio knows, with their digest passwords. */
export const SIP_USERS = { alice: 'alicepw', bob: 'bobpw', carol: 'carolpw', dave: 'davepw', erin: 'erinpw' };

// Each peer runs in its own process group (kamailio forks workers), signalled as a group, so
// no worker outlives its test, also when the main process has to be killed.
const children = new Set();
function signalGroup(child, signal) {
  try { process.kill(-child.pid, signal); } catch { /* gone */ }
}
process.once('exit', () => {
  for (const c of children) signalGroup(c, 'SIGKILL');
});

/** An even port free for both UDP and TCP on 127.0.0.1 (best effort). */
export async function freeSipPort() {
  for (;;) {
    const port = 20000 + 2 * Math.floor(Math.random() * 10000);
    const ok = await new Promise((resolve) => {
      const u = dgram.createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => {
        const t = net.createServer();
        t.once('error', () => { u.close(); resolve(false); });
        t.listen(port, '127.0.0.1', () => { t.close(); u.close(); resolve(true); });
      });
    });
    if (ok) return port;
  }
}

function startChild(name, cmd, args, dir) {
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const logFile = path.join(dir, `${name}.log`);
  const fd = fs.openSync(logFile, 'w');
  const child = spawn(cmd, args, { cwd: dir, stdio: ['ignore', fd, fd], detached: true });
  fs.closeSync(fd);
  children.add(child);
  const exited = new Promise((resolve) => child.once('exit', () => { children.delete(child); resolve(); }));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      signalGroup(child, 'SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
      if (!done) { signalGroup(child, 'SIGKILL'); await exited; }
    }
    // Workers still in the group after their main process ended.
    signalGroup(child, 'SIGKILL');
    // Keep the peer's log beside the gateway's for diagnosis.
    try { fs.copyFileSync(logFile, path.join(LOG_DIR, `${name}-${process.pid}-${Date.now()}.log`)); } catch { /* none */ }
  };
  return { child, logFile, stop, log: () => { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } } };
}

/** Starts kamailio with digest auth (MD5) for SIP_USERS on a free port. */
export async function startKamailio() {
  const port = await freeSipPort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bifrons-e2e-kamailio-'));
  const pw = Object.entries(SIP_USERS)
    .map(([u, p]) => `    if ($var(u) == "${u}") { $var(pw) = "${p}"; }`).join('\n');
  const cfg = `#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:${port}
listen=tcp:127.0.0.1:${port}
alias="127.0.0.1:${port}"
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "auth.so"
loadmodule "corex.so"
modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 2)
modparam("registrar", "max_expires", 3600)
modparam("rr", "append_fromtag", 1)
request_route {
    xlog("L_INFO", "REQ $rm $ru from $fU at $si:$sp proto $pr ua [$ua] auth [$au]\\n");
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    # MESSAGE bodies are logged, so tests can see what was sent (in or out of dialog).
    if (is_method("MESSAGE")) { xlog("L_INFO", "MESSAGE-BODY from $fU to $tU call-id $ci: $rb\n"); }
    if (has_totag()) {
        # In-dialog offers are logged, so tests can see what a re-INVITE asked for (hold).
        if (is_method("INVITE")) { xlog("L_INFO", "REINVITE-SDP from $fU: $(rb{s.escape.common})\\n"); }
        if (loose_route()) { t_relay(); exit; }
        if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
        sl_send_reply("404", "Not here");
        exit;
    }
    if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
    # New offers are logged too, so tests can see which codecs a call offered.
    if (is_method("INVITE")) { xlog("L_INFO", "NEWINVITE-SDP from $fU x-bifrons-test=$hdr(X-Bifrons-Test): $rb\\n"); }
    if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
    t_check_trans();
    if (is_method("OPTIONS") && uri==myself && $rU==$null) { sl_send_reply("200", "Keepalive"); exit; }
    $var(u) = $au;
    $var(pw) = "";
${pw}
    if (is_method("REGISTER")) {
        if (!pv_www_authenticate("$td", "$var(pw)", "0")) { www_challenge("$td", "1"); exit; }
        consume_credentials();
        if (!save("location")) { sl_reply_error(); }
        exit;
    }
    if (is_method("INVITE")) { record_route(); }
    if (uri==myself) {
        if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
    }
    if (!t_relay()) { sl_reply_error(); }
    exit;
}
`;
  const cfgPath = path.join(dir, 'kamailio.cfg');
  fs.writeFileSync(cfgPath, cfg);
  const proc = startChild('kamailio', 'kamailio', ['-DD', '-E', '-m', '32', '-M', '4', '-Y', dir, '-f', cfgPath], dir);
  // Ready when it answers an OPTIONS.
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, '127.0.0.1', r));
  const deadline = Date.now() + 20000;
  let ready = false;
  while (!ready && Date.now() < deadline) {
    const n = Date.now();
    const probe = `OPTIONS sip:127.0.0.1:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${sock.address().port};branch=z9hG4bKprobe${n}\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1:${port}>\r\nCall-ID: probe${n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n`;
    ready = await new Promise((resolve) => {
      const t = setTimeout(() => { sock.removeAllListeners('message'); resolve(false); }, 300);
      sock.once('message', (m) => { clearTimeout(t); resolve(m.toString().startsWith('SIP/2.0 200')); });
      sock.send(probe, port, '127.0.0.1');
    });
  }
  sock.close();
  if (!ready) {
    await proc.stop();
    throw new Error(`kamailio did not start:\n${proc.log()}`);
  }
  return {
    port,
    registrar: `sip:127.0.0.1:${port}`,
    uri: (user) => `sip:${user}@127.0.0.1:${port}`,
    log: proc.log,
    stop: async () => { await proc.stop(); if (!process.env.E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

/** A 16-bit WAV of a `hz` sine at `rate` Hz for `seconds`, on `ch` identical channels. */
function toneWav(file, hz, seconds, rate, ch) {
  const n = rate * seconds;
  const bytes = 2 * ch * n;
  const buf = Buffer.alloc(44 + bytes);
  buf.write('RIFF', 0); buf.writeUInt32LE(36 + bytes, 4); buf.write('WAVE', 8);
  buf.write('fmt ', 12); buf.writeUInt32LE(16, 16); buf.writeUInt16LE(1, 20); buf.writeUInt16LE(ch, 22);
  buf.writeUInt32LE(rate, 24); buf.writeUInt32LE(rate * 2 * ch, 28); buf.writeUInt16LE(2 * ch, 32); buf.writeUInt16LE(16, 34);
  buf.write('data', 36); buf.writeUInt32LE(bytes, 40);
  for (let i = 0; i < n; i++) {
    const v = Math.round(0.3 * 32767 * Math.sin((2 * Math.PI * hz * i) / rate));
    for (let c = 0; c < ch; c++) buf.writeInt16LE(v, 44 + 2 * (ch * i + c));
  }
  fs.writeFileSync(file, buf);
}

/** Reads a 16-bit PCM WAV: { rate, channels, samples } (first channel). */
export function readWav(file) {
  const b = fs.readFileSync(file);
  let off = 12;
  let rate = 8000;
  let channels = 1;
  while (off + 8 <= b.length) {
    const id = b.toString('ascii', off, off + 4);
    const len = b.readUInt32LE(off + 4);
    if (id === 'fmt ') { channels = b.readUInt16LE(off + 10); rate = b.readUInt32LE(off + 12); }
    if (id === 'data') {
      const end = Math.min(b.length, off + 8 + len);
      const samples = [];
      for (let p = off + 8; p + 2 <= end; p += 2 * channels) samples.push(b.readInt16LE(p));
      return { rate, channels, samples };
    }
    off += 8 + len + (len % 2);
  }
  return { rate, channels, samples: [] };
}

/**
 * Peak, RMS and dominant frequency (Hann-windowed DFT, 150–4000 Hz in 5 Hz steps, over the 4096
 * loudest consecutive samples: the fake microphone beeps, with silence between beeps).
 */
export function analyze(samples, rate) {
  if (samples.length === 0) return { peak: 0, rms: 0, hz: 0 };
  let peak = 0;
  let sum = 0;
  for (const s of samples) { peak = Math.max(peak, Math.abs(s)); sum += s * s; }
  const rms = Math.sqrt(sum / samples.length);
  const n = Math.min(4096, samples.length);
  let start = 0;
  let energy = 0;
  for (let i = 0; i < n; i++) energy += samples[i] * samples[i];
  let best0 = energy;
  for (let i = n; i < samples.length; i++) {
    energy += samples[i] * samples[i] - samples[i - n] * samples[i - n];
    if (energy > best0) { best0 = energy; start = i - n + 1; }
  }
  let best = { hz: 0, mag: 0 };
  for (let hz = 150; hz <= Math.min(4000, rate / 2); hz += 5) {
    let re = 0;
    let im = 0;
    const w = (2 * Math.PI * hz) / rate;
    for (let i = 0; i < n; i++) {
      const x = samples[start + i] * (0.5 - 0.5 * Math.cos((2 * Math.PI * i) / n));
      re += x * Math.cos(w * i);
      im -= x * Math.sin(w * i);
    }
    const mag = re * re + im * im;
    if (mag > best.mag) best = { hz, mag };
  }
  return { peak, rms, hz: best.hz };
}

/**
 * Starts baresip registered at `kamailio` as `user`, playing a `toneHz` sine and recording what
 * it receives (sndfile). `mode`: 'auto' or 'manual' answering; `codecs`: 'PCMU' or 'opus'...
 * `contact`: a SIP URI made baresip's current contact (contact module), the peer its
 * `message TEXT` command sends a SIP MESSAGE to.
 * `mediaenc`: '' (plain RTP), or baresip's SDES-SRTP modes 'srtp' (optional), 'srtp-mand'
 * (RTP/SAVP required), 'srtp-mandf' (RTP/SAVPF).
 * `sourceWav`: a 16-bit WAV played once instead of the tone (in the audio format above: 8 kHz
 * mono for G.711, 48 kHz stereo for Opus); baresip logs `aufile: end of file` at its end.
 */
export async function startBaresip({ kamailio, user, toneHz = 440, mode = 'auto', codecs = 'PCMU', params = '', contact = null, mediaenc = '', sourceWav = null }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bifrons-e2e-baresip-${user}-`));
  const sipPort = await freeSipPort();
  const ctrlPort = await freeSipPort();
  // baresip's aufile wants the file in the audio format: 48 kHz stereo for Opus, 8 kHz mono
  // for G.711.
  const opus = /opus/i.test(codecs);
  const rate = opus ? 48000 : 8000;
  const ch = opus ? 2 : 1;
  if (sourceWav) fs.copyFileSync(sourceWav, path.join(dir, 'tone.wav'));
  else toneWav(path.join(dir, 'tone.wav'), toneHz, 60, rate, ch);
  if (contact) {
    fs.writeFileSync(path.join(dir, 'contacts'), `"peer" <${contact}>\n`);
    fs.writeFileSync(path.join(dir, 'current_contact'), contact);
  }
  const pass = SIP_USERS[user] || 'x';
  // baresip matches a bare "opus" as opus/8000/1, which it does not have, and falls back to
  // its other codecs: name Opus the way its module registers it.
  const audioCodecs = codecs.split(',').map((c) => (/^opus$/i.test(c) ? 'opus/48000/2' : c)).join(',');
  fs.writeFileSync(path.join(dir, 'accounts'),
    `<sip:${user}@127.0.0.1:${kamailio.port}>;auth_pass=${pass};regint=600;answermode=${mode};audio_codecs=${audioCodecs};mediaenc=${mediaenc};medianat=${params}\n`);
  fs.writeFileSync(path.join(dir, 'config'), [
    'poll_method epoll', 'net_interface 127.0.0.1', `sip_listen 127.0.0.1:${sipPort}`, 'sip_trans_def udp',
    'audio_player alsa,null', `audio_srate ${rate}`, `audio_channels ${ch}`, `audio_source aufile,${path.join(dir, 'tone.wav')}`, 'audio_alert alsa,null',
    'rtp_ports 40000-49999', 'module_path /usr/lib/baresip/modules',
    'module g711.so', 'module opus.so', 'module aufile.so', 'module alsa.so', 'module sndfile.so',
    ...(mediaenc ? ['module srtp.so'] : []),
    'module_app account.so', 'module_app menu.so', 'module_app ctrl_tcp.so', ...(contact ? ['module_app contact.so'] : []),
    `ctrl_tcp_listen 127.0.0.1:${ctrlPort}`, `snd_path ${dir}`, '',
  ].join('\n'));
  const proc = startChild(`baresip-${user}`, 'baresip', ['-f', dir, '-v'], dir);
  const waitLog = async (needle, ms = 20000) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const l = proc.log();
      if (typeof needle === 'string' ? l.includes(needle) : needle.test(l)) return l;
      await sleep(100);
    }
    return null;
  };
  if (!(await waitLog(/200 OK|registered successfully/))) {
    await proc.stop();
    throw new Error(`baresip ${user} did not register:\n${proc.log()}`);
  }
  /** Sends a ctrl_tcp command (netstring JSON) and returns the raw reply. */
  const command = (cmd, params = '') => new Promise((resolve) => {
    const s = net.connect(ctrlPort, '127.0.0.1');
    const json = JSON.stringify({ command: cmd, params, token: 't' });
    let out = '';
    const done = () => { s.destroy(); resolve(out); };
    s.setTimeout(5000, done);
    s.on('connect', () => s.write(`${Buffer.byteLength(json)}:${json},`));
    s.on('data', (d) => { out += d.toString(); if (out.includes('"response":true')) done(); });
    s.on('error', done);
  });
  return {
    user,
    sipPort,
    dir,
    directUri: `sip:${user}@127.0.0.1:${sipPort}`,
    log: proc.log,
    waitLog,
    command,
    /** What baresip heard: the decoded-direction WAV written by sndfile, if any. */
    received: () => {
      const f = fs.readdirSync(dir).filter((n) => n.endsWith('-dec.wav')).sort().pop();
      return f ? readWav(path.join(dir, f)) : null;
    },
    stop: async () => { await proc.stop(); if (!process.env.E2E_KEEP) fs.rmSync(dir, { recursive: true, force: true }); },
  };
}
