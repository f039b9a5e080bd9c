// Minimal raw clients for requests janode and janus.js cannot express (malformed JSON, missing
// fields, wrong types) and for checking exact reply shapes on the wire.

import WebSocket from 'ws';
import crypto from 'node:crypto';

/** A fresh random transaction id. */
export function tx(prefix = 't') {
  return `${prefix}-${crypto.randomBytes(6).toString('hex')}`;
}

/** A WebSocket connection that buffers every inbound JSON message until a test takes it. */
export class WsClient {
  /**
   * Opens a socket with the given subprotocol and checks the server selected it.
   * @param {string} url
   * @param {string} [protocol]
   */
  static async open(url, protocol = 'janus-protocol') {
    const ws = new WebSocket(url, protocol);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    return new WsClient(ws);
  }

  constructor(ws) {
    this.ws = ws;
    this.inbox = [];
    this.waiters = [];
    this.closed = null;
    ws.on('message', (data, isBinary) => {
      let msg;
      try {
        msg = JSON.parse(data.toString());
      } catch (e) {
        msg = { unparsable: data.toString(), isBinary };
      }
      this.inbox.push(msg);
      this.#dispatch();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of this.waiters.splice(0)) w.reject(new Error(`socket closed (${code}) while waiting`));
    });
  }

  /** The subprotocol the server selected. */
  get protocol() {
    return this.ws.protocol;
  }

  #dispatch() {
    for (let i = 0; i < this.waiters.length; i++) {
      const w = this.waiters[i];
      const idx = this.inbox.findIndex(w.pred);
      if (idx >= 0) {
        const [msg] = this.inbox.splice(idx, 1);
        this.waiters.splice(i, 1);
        i--;
        clearTimeout(w.timer);
        w.resolve(msg);
      }
    }
  }

  /** Sends an object as JSON, or a string verbatim. */
  send(msg) {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /**
   * Resolves with (and removes) the first buffered or future message matching `pred`.
   * The timeout is only a hang guard.
   */
  next(pred = () => true, timeoutMs = 10000, what = 'message') {
    return new Promise((resolve, reject) => {
      const w = { pred, resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; unclaimed: ${JSON.stringify(this.inbox)}`));
      }, timeoutMs);
      this.waiters.push(w);
      if (this.closed) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        reject(new Error(`socket already closed (${this.closed.code})`));
        return;
      }
      this.#dispatch();
    });
  }

  /** Sends `msg` (a transaction is added when missing) and waits for the reply carrying that transaction. */
  async request(msg, { timeoutMs = 10000, skipAck = false } = {}) {
    const body = { ...msg };
    if (body.transaction === undefined) body.transaction = tx();
    this.send(body);
    return this.next(
      (m) => m.transaction === body.transaction && !(skipAck && m.janus === 'ack'),
      timeoutMs,
      `reply to ${JSON.stringify(body).slice(0, 200)}`,
    );
  }

  /** Sends a raw frame and waits for the next `error` message (for requests without a usable transaction). */
  async sendExpectError(raw, timeoutMs = 10000) {
    this.send(raw);
    return this.next((m) => m.janus === 'error', timeoutMs, `error reply to ${String(raw).slice(0, 200)}`);
  }

  close() {
    if (!this.closed) this.ws.close();
  }
}

/** POSTs a JSON body (or a raw string) and returns status, headers and parsed body. */
export async function httpPost(url, body, headers = { 'Content-Type': 'application/json' }) {
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(20000),
  });
  return readResponse(res);
}

/** GETs a URL; the timeout only guards against a hang (long polls are held by the server up to 30 s). */
export async function httpGet(url, { timeoutMs = 45000, headers = {} } = {}) {
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
  return readResponse(res);
}

async function readResponse(res) {
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}
