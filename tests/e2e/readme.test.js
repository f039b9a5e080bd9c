// The code examples of README.md, extracted at test time and run against a started gateway, so an
// example that no longer works (or never did) fails the suite.
//
// Every fenced block of README.md must say what happens to it:
//   ```js readme-browser   janus.js code, run as a module in Chromium on a page of the gateway's
//                          origin that loads /demos/adapter.js and maps 'janus-gateway' to
//                          /demos/janus.js; it must reach webrtcup and get its data echoed
//   ```js readme-node      janode code, run as an ES module in Node from tests/e2e; it must attach
//   ```sh readme-shell     shell commands (curl), run with bash; each must print JSON with `janus`
//   <!-- readme-skip: <reason> -->   on the line before the fence: not runnable here, and why
// A block with none of these fails the first test, so a new example cannot go untested.
// Addresses in the examples (gateway.example, localhost, 127.0.0.1 with the default ports 8088,
// 8188, 7088, 7188) and the admin secret placeholder are replaced by the started gateway's.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { launchChromium } from './lib/browser.js';
import { startGateway, REPO_ROOT, TARGET } from './lib/gateway.js';

const run = promisify(execFile);
const E2E_DIR = path.join(REPO_ROOT, 'tests', 'e2e');
const README = path.join(REPO_ROOT, 'README.md');
const JANUS_JS = path.join(E2E_DIR, 'node_modules/janus-gateway/npm/dist/janus.es.js');
const ADAPTER_JS = path.join(E2E_DIR, 'node_modules/webrtc-adapter/out/adapter.js');
const RUN_KINDS = ['readme-browser', 'readme-node', 'readme-shell'];

/**
 * The fenced blocks of a Markdown text: `{ line, info, code, kind, skip }`, where `kind` is the
 * run marker of the info string and `skip` the reason of a `<!-- readme-skip: ... -->` line
 * right before the fence (blank lines between are not allowed: the comment belongs to its block).
 */
export function fencedBlocks(markdown) {
  const lines = markdown.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(lines[i]);
    if (!open) continue;
    const fence = open[2];
    const info = open[3].trim();
    const start = i;
    const body = [];
    for (i++; i < lines.length && !lines[i].trim().startsWith(fence); i++) body.push(lines[i]);
    const words = info.split(/\s+/);
    const kind = RUN_KINDS.find((k) => words.includes(k)) ?? null;
    const prev = start > 0 ? lines[start - 1].trim() : '';
    const skip = /^<!--\s*readme-skip:\s*(.*?)\s*-->$/.exec(prev)?.[1] || null;
    blocks.push({ line: start + 1, info, code: body.join('\n'), kind, skip });
  }
  return blocks;
}

/** Rewrites an example's addresses, default ports and secret placeholder to the started gateway's. */
function localize(code, gw) {
  const ports = { 8088: gw.ports.http, 8188: gw.ports.ws, 7088: gw.ports.adminHttp, 7188: gw.ports.adminWs };
  return code
    .replace(/\b(gateway\.example|localhost|127\.0\.0\.1|0\.0\.0\.0):(8088|8188|7088|7188)\b/g,
      (_, _host, port) => `127.0.0.1:${ports[port]}`)
    .replace(/"admin_secret":"\.\.\."/g, `"admin_secret":"${gw.adminSecret}"`);
}

/** Splits output made of JSON values written one after another (curl adds no newline). */
function jsonValues(text) {
  const values = [];
  let depth = 0;
  let inString = false;
  let start = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
    } else if (c === '{' || c === '[') {
      if (depth++ === 0) start = i;
    } else if (c === '}' || c === ']') {
      if (--depth === 0) values.push(JSON.parse(text.slice(start, i + 1)));
    } else if (depth === 0 && !/\s/.test(c)) {
      throw new Error(`not JSON at offset ${i}: ${JSON.stringify(text.slice(i, i + 80))}`);
    }
  }
  return values;
}

const blocks = fencedBlocks(fs.readFileSync(README, 'utf8'));
const of = (kind) => blocks.filter((b) => b.kind === kind);

describe('README.md examples', () => {
  let gw;

  before(async () => {
    gw = await startGateway({
      name: 'readme',
      // The gateway runs from a temporary folder: give it absolute paths to the demo scripts.
      env: { BIFRONS_WEB_JANUS_JS: JANUS_JS, BIFRONS_WEB_ADAPTER_JS: ADAPTER_JS },
    });
  });
  after(async () => {
    await gw?.stop();
  });

  it('marks every fenced block as run or skipped with a reason', () => {
    const unmarked = blocks.filter((b) => !b.kind && !b.skip);
    assert.deepEqual(
      unmarked.map((b) => `README.md:${b.line} \`\`\`${b.info}`),
      [],
      'each code block needs an info string readme-browser/readme-node/readme-shell, '
        + 'or a "<!-- readme-skip: reason -->" line right before it',
    );
    const both = blocks.filter((b) => b.kind && b.skip);
    assert.deepEqual(both.map((b) => `README.md:${b.line}`), [], 'a block is either run or skipped');
    // The markers themselves must not vanish unnoticed.
    for (const kind of RUN_KINDS) assert.ok(of(kind).length > 0, `no ${kind} block left in README.md`);
  });

  for (const block of of('readme-shell')) {
    it(`runs the shell example at README.md:${block.line}`, async () => {
      const code = localize(block.code, gw);
      const { stdout } = await run('bash', ['-e', '-o', 'pipefail', '-c', code], { cwd: REPO_ROOT, timeout: 30000 });
      const values = jsonValues(stdout);
      assert.ok(values.length > 0, `no JSON printed by:\n${code}`);
      for (const v of values) {
        assert.equal(typeof v.janus, 'string', JSON.stringify(v));
        assert.notEqual(v.janus, 'error', JSON.stringify(v));
      }
    });
  }

  for (const block of of('readme-node')) {
    it(`runs the janode example at README.md:${block.line}`, async () => {
      // The example ends with `echo` attached; report it, then clean up so Node can exit.
      const code = `${localize(block.code, gw)}
console.log('README-ATTACHED ' + JSON.stringify({ session: session.id, handle: echo.id }));
await echo.detach();
await session.destroy();
await connection.close();
`;
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', code], {
        cwd: E2E_DIR,
        timeout: 30000,
        env: { ...process.env },
      });
      const line = stdout.split('\n').find((l) => l.startsWith('README-ATTACHED '));
      assert.ok(line, `the example did not attach; output:\n${stdout}`);
      const ids = JSON.parse(line.slice('README-ATTACHED '.length));
      assert.ok(Number.isSafeInteger(ids.session) && ids.session > 0, line);
      assert.ok(Number.isSafeInteger(ids.handle) && ids.handle > 0, line);
    });
  }

  for (const block of of('readme-browser')) {
    it(`runs the janus.js example at README.md:${block.line} in Chromium`, async () => {
      // A page handed over by page.route has no address of its own, so Chromium would treat it
      // as public and refuse its connections to 127.0.0.1 (Local Network Access).
      const browser = await launchChromium({ features: ['LocalNetworkAccessChecks'] });
      const consoleLines = [];
      try {
        const page = await browser.newPage();
        page.on('console', (m) => consoleLines.push(m.text()));
        page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
        const origin = `http://127.0.0.1:${gw.ports.http}`;
        // The page itself is handed to the browser on the gateway's origin; the scripts come from
        // the gateway (Janus has no /demos, so with E2E_TARGET=janus they come from node_modules).
        await page.route(`${origin}/readme-example.html`, (route) => route.fulfill({
          contentType: 'text/html',
          body: `<!doctype html><meta charset="utf-8">
<script src="/demos/adapter.js"></script>
<script type="importmap">{"imports":{"janus-gateway":"/demos/janus.js"}}</script>
<script type="module">
${localize(block.code, gw)}
</script>`,
        }));
        if (TARGET === 'janus') {
          await page.route(`${origin}/demos/*.js`, (route) => route.fulfill({
            contentType: 'text/javascript',
            body: fs.readFileSync(route.request().url().endsWith('/janus.js') ? JANUS_JS : ADAPTER_JS),
          }));
        }
        await page.goto(`${origin}/readme-example.html`);
        const deadline = Date.now() + 60000;
        const has = (re) => consoleLines.some((l) => re.test(l));
        while (!(has(/^webrtcup true$/) && has(/^echoed .*hello/)) && !has(/^pageerror|^webrtcup false/)) {
          if (Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 250));
        }
        assert.ok(!has(/^pageerror/), 'no uncaught error in the page');
        assert.ok(has(/^webrtcup true$/), 'webrtcState(true) reached');
        // Bifrons echoes the text verbatim; Janus answers "Janus EchoTest here! You wrote: hello".
        assert.ok(has(/^echoed (hello|Janus EchoTest here! You wrote: hello)$/), 'the data-channel text came back');
      } catch (err) {
        err.message += `\n--- browser console (last 40 lines) ---\n${consoleLines.slice(-40).join('\n')}`;
        throw err;
      } finally {
        await browser.close();
      }
    });
  }
});
