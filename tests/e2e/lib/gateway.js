// Starts the server under test on free loopback ports and tells the tests where it listens.
//
// Mode 1 (default): the Bifrons binary (BIFRONS_BIN or <repo>/target/debug/bifrons), configured
// through BIFRONS_* environment variables.
// Mode 2 (E2E_TARGET=janus): Debian's Janus (/usr/bin/janus) with a generated config folder, so the
// same tests can be checked against the reference implementation.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Root of the repository (tests/e2e/lib → ../../..). */
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
/** Folder holding one log file per started server (kept after the run for debugging). */
export const LOG_DIR = path.resolve(here, '..', 'logs');

/** Which server the suite drives: 'bifrons' (default) or 'janus'. */
export const TARGET = (process.env.E2E_TARGET || 'bifrons').toLowerCase();

/** Admin secret every started server is configured with. */
export const ADMIN_SECRET = 'e2e-admin-secret';

const JANUS_BIN = process.env.JANUS_BIN || '/usr/bin/janus';
const JANUS_LIB = process.env.JANUS_LIB || '/usr/lib/x86_64-linux-gnu/janus';

// Servers still running when the test process exits (a crash before `after` ran) are killed by
// PID so they never outlive the run.
const running = new Set();
process.once('exit', () => {
  for (const child of running) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Asks the kernel for `count` distinct free TCP ports on 127.0.0.1. */
export async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = net.createServer();
      await new Promise((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', resolve);
      });
      servers.push(srv);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => { sock.destroy(); resolve(true); });
    sock.once('error', () => resolve(false));
  });
}

async function infoAnswers(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

export function janusConfig({ ports, sessionTimeout, apiSecret, adminSecret, dir }) {
  // Only the modules the suite needs are visible to Janus: symlink them into private folders.
  const folders = {};
  const wanted = {
    plugins: ['libjanus_echotest.so'],
    transports: ['libjanus_http.so', 'libjanus_websockets.so'],
    events: [],
    loggers: [],
  };
  for (const [kind, libs] of Object.entries(wanted)) {
    folders[kind] = path.join(dir, kind);
    fs.mkdirSync(folders[kind], { recursive: true });
    for (const lib of libs) fs.symlinkSync(path.join(JANUS_LIB, kind, lib), path.join(folders[kind], lib));
  }
  const conf = path.join(dir, 'conf');
  fs.mkdirSync(conf, { recursive: true });
  const general = [
    `configs_folder = "${conf}"`,
    `plugins_folder = "${folders.plugins}"`,
    `transports_folder = "${folders.transports}"`,
    `events_folder = "${folders.events}"`,
    `loggers_folder = "${folders.loggers}"`,
    'debug_level = 4',
    'debug_colors = false',
    `admin_secret = "${adminSecret}"`,
    `session_timeout = ${sessionTimeout ?? 60}`,
  ];
  if (apiSecret) general.push(`api_secret = "${apiSecret}"`);
  fs.writeFileSync(path.join(conf, 'janus.jcfg'), `general: {\n\t${general.join('\n\t')}\n}
certificates: {\n}
media: {\n\tipv6 = false\n}
nat: {\n\tice_ignore_list = ""\n}
plugins: {\n}\ntransports: {\n}\nloggers: {\n}\nevents: {\n}\n`);
  fs.writeFileSync(path.join(conf, 'janus.transport.http.jcfg'), `general: {
\tjson = "compact"\n\tbase_path = "/janus"\n\thttp = true\n\tport = ${ports.http}\n\tip = "127.0.0.1"\n\thttps = false\n}
admin: {\n\tadmin_base_path = "/admin"\n\tadmin_http = true\n\tadmin_port = ${ports.adminHttp}\n\tadmin_ip = "127.0.0.1"\n\tadmin_https = false\n}
cors: {\n}\n`);
  fs.writeFileSync(path.join(conf, 'janus.transport.websockets.jcfg'), `general: {
\tjson = "compact"\n\tws = true\n\tws_port = ${ports.ws}\n\tws_ip = "127.0.0.1"\n\twss = false\n}
admin: {\n\tadmin_ws = true\n\tadmin_ws_port = ${ports.adminWs}\n\tadmin_ws_ip = "127.0.0.1"\n\tadmin_wss = false\n}
cors: {\n}\n`);
  fs.writeFileSync(path.join(conf, 'janus.plugin.echotest.jcfg'), 'general: {\n}\n');
  return { cmd: JANUS_BIN, args: ['-F', conf, '-C', path.join(conf, 'janus.jcfg'), '-o'], env: { ...process.env } };
}

function bifronsConfig({ ports, sessionTimeout, apiSecret, adminSecret, dir, env }) {
  const bin = process.env.BIFRONS_BIN || path.join(REPO_ROOT, 'target', 'debug', 'bifrons');
  if (!fs.existsSync(bin)) {
    throw new Error(`Bifrons binary not found at ${bin} (build it with cargo build, or set BIFRONS_BIN)`);
  }
  const vars = {
    BIFRONS_HTTP_PORT: String(ports.http),
    BIFRONS_WEBSOCKET_PORT: String(ports.ws),
    BIFRONS_ADMIN_HTTP_PORT: String(ports.adminHttp),
    BIFRONS_ADMIN_WEBSOCKET_PORT: String(ports.adminWs),
    BIFRONS_HTTP_BIND: '127.0.0.1',
    BIFRONS_WEBSOCKET_BIND: '127.0.0.1',
    BIFRONS_ADMIN_BIND: '127.0.0.1',
    BIFRONS_ADMIN_SECRET: adminSecret,
    BIFRONS_DATABASE_URL: `sqlite://${path.join(dir, 'bifrons.db')}`,
  };
  if (sessionTimeout !== undefined) vars.BIFRONS_GENERAL_SESSION_TIMEOUT = String(sessionTimeout);
  if (apiSecret) vars.BIFRONS_GENERAL_API_SECRET = apiSecret;
  return { cmd: bin, args: [], env: { ...process.env, ...vars, ...env } };
}

/**
 * Starts a server and resolves once its HTTP, WebSocket and admin ports all answer.
 *
 * @param {object} [opts]
 * @param {string} [opts.name] label used in the log file name
 * @param {number} [opts.sessionTimeout] session timeout in seconds (server default otherwise)
 * @param {string} [opts.apiSecret] api_secret every Janus API request must carry
 * @param {object} [opts.env] extra environment variables (Bifrons mode only)
 * @returns {Promise<{target:string, httpUrl:string, wsUrl:string, adminHttpUrl:string,
 *   adminWsUrl:string, adminSecret:string, apiSecret?:string, ports:object, logFile:string,
 *   pid:number, stop:() => Promise<void>}>}
 */
export async function startGateway(opts = {}) {
  const { name = 'gateway', sessionTimeout, apiSecret, env = {} } = opts;
  const [http, ws, adminHttp, adminWs] = await freePorts(4);
  const ports = { http, ws, adminHttp, adminWs };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bifrons-e2e-${TARGET}-`));
  const cfg = TARGET === 'janus'
    ? janusConfig({ ports, sessionTimeout, apiSecret, adminSecret: ADMIN_SECRET, dir })
    : bifronsConfig({ ports, sessionTimeout, apiSecret, adminSecret: ADMIN_SECRET, dir, env });

  fs.mkdirSync(LOG_DIR, { recursive: true });
  const logFile = path.join(LOG_DIR, `${name}-${TARGET}-${process.pid}-${Date.now()}.log`);
  const logFd = fs.openSync(logFile, 'w');
  const child = spawn(cfg.cmd, cfg.args, { cwd: dir, env: cfg.env, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  running.add(child);
  let exited = null;
  const exitPromise = new Promise((resolve) => child.once('exit', (code, signal) => {
    exited = { code, signal };
    running.delete(child);
    resolve();
  }));
  child.once('error', (err) => { exited = { error: err }; });

  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const done = await Promise.race([exitPromise.then(() => true), sleep(5000).then(() => false)]);
      if (!done) {
        child.kill('SIGKILL');
        await exitPromise;
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  const base = `http://127.0.0.1:${http}`;
  const deadline = Date.now() + 20000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`${cfg.cmd} exited during start-up (${JSON.stringify(exited)}); log: ${logFile}\n`
        + tail(logFile));
    }
    if (await infoAnswers(`${base}/janus/info`)
      && await canConnect(ws) && await canConnect(adminHttp) && await canConnect(adminWs)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${cfg.cmd} did not answer GET /janus/info within 20 s; log: ${logFile}\n${tail(logFile)}`);
    }
    await sleep(100);
  }

  return {
    target: TARGET,
    httpUrl: `${base}/janus`,
    wsUrl: `ws://127.0.0.1:${ws}/`,
    adminHttpUrl: `http://127.0.0.1:${adminHttp}/admin`,
    adminWsUrl: `ws://127.0.0.1:${adminWs}/`,
    adminSecret: ADMIN_SECRET,
    apiSecret,
    ports,
    logFile,
    pid: child.pid,
    stop,
  };
}

function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
