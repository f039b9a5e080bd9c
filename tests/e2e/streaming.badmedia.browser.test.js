// Broken RTMP publishes while a Chromium viewer watches another mountpoint: truncated FLV tags,
// AAC without its sequence header, H.264 without SPS/PPS, each sent by the rtmp crate's
// `bad_publisher` example (build it with `cargo build -p bifrons-rtmp --example
// bad_publisher`). Each publish is dropped by the gateway with a log line naming the fault,
// its mountpoint goes back to not live, and the viewer keeps decoding frames throughout.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './lib/gateway.js';
import {
  startStreamingGateway, addKey, publish, startViewerSite, launchChromium, openViewer, waitInPage,
  waitLive, adminStreaming, spawnProcess,
} from './lib/streaming.js';

const BAD_PUBLISHER = process.env.BAD_PUBLISHER_BIN
  || path.join(REPO_ROOT, 'target', 'debug', 'examples', 'bad_publisher');

const frames = (page) => page.evaluate(() => window.inboundStats()).then((s) => s.video?.framesDecoded ?? 0);

describe('broken RTMP media while a viewer watches', () => {
  let gw;
  let site;
  let browser;
  let page;
  const procs = [];

  before(async () => {
    assert.ok(fs.existsSync(BAD_PUBLISHER), `${BAD_PUBLISHER} missing: cargo build -p bifrons-rtmp --example bad_publisher`);
    gw = await startStreamingGateway('streaming-badmedia');
    site = await startViewerSite();
    browser = await launchChromium();
    const good = addKey(gw, 'good-cam');
    procs.push(publish(good.url));
    await waitLive(gw, good.mountpoint);
    page = await openViewer(browser, site, gw.wsUrl, good.mountpoint);
    await waitInPage(page, () => window.inboundStats(), (s) => s.video?.framesDecoded > 30, 'viewer decoding', 20000);
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await browser?.close();
    await site?.close();
    await gw?.stop();
  });

  const cases = [
    ['truncated-tags', 'malformed FLV tags'],
    ['aac-no-config', 'AAC without AudioSpecificConfig (no AAC sequence header)'],
    ['h264-no-sps', 'H.264 without SPS/PPS (no AVC sequence header)'],
  ];
  for (const [mode, why] of cases) {
    it(`${mode}: the publish is dropped with a log line, the viewer keeps decoding`, async () => {
      const key = addKey(gw, `bad-${mode}`);
      const before = await frames(page);
      const bad = spawnProcess(BAD_PUBLISHER, [key.url, mode, '--seconds', '30']);
      procs.push(bad);
      const { code } = await bad.exited;
      assert.equal(code, 0, `the gateway did not end the ${mode} publish (exit ${code}): ${bad.stderr()}`);
      const log = fs.readFileSync(gw.logFile, 'utf8');
      const line = log.split('\n').find((l) => l.includes('RTMP publisher dropped') && l.includes(why)
        && l.includes(`mountpoint=${key.mountpoint}`));
      assert.ok(line, `no drop line for ${mode} in ${gw.logFile}`);
      const deadline = Date.now() + 10000;
      for (;;) {
        const info = await adminStreaming(gw, { request: 'info', id: key.mountpoint });
        if (info.info && info.info.live === false) break;
        assert.ok(Date.now() < deadline, `mountpoint still live: ${JSON.stringify(info)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      await waitInPage(page, () => window.inboundStats(), (s) => s.video?.framesDecoded > before + 30,
        `viewer still decoding after ${mode}`, 20000);
      const st = await page.evaluate(() => window.e2e);
      assert.deepEqual(st.errors, []);
      assert.equal(st.hangup, null);
      console.log(`# ${mode}: ${line.replace(/^.*WARN/, 'WARN').slice(0, 200)}; frames ${before} -> ${await frames(page)}`);
    });
  }

  it('the gateway keeps serving: list answers and a second viewer plays', async () => {
    const list = await adminStreaming(gw, { request: 'list' });
    assert.equal(list.streaming, 'list');
    assert.equal(list.list.length, 4);
    const good = list.list.find((m) => m.description === 'good-cam');
    const second = await openViewer(browser, site, gw.wsUrl, good.id);
    await waitInPage(second, () => window.inboundStats(), (s) => s.video?.framesDecoded > 30, 'second viewer', 20000);
    await second.close();
  });
});
