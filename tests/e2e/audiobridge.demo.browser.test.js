// The audio bridge demo page served by the gateway (/demos/audiobridge.html): two Chromium
// pages with the test tone join the same room (the first creates it), each lists both
// participants with media up, sees the other talking, and receives the mix; Leave empties the
// table. Screenshot to E2E_SCREENSHOT_DIR when set.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startGateway } from './lib/gateway.js';
import { launchChromium, waitInPage } from './lib/audiobridge.js';

const SHOTS = process.env.E2E_SCREENSHOT_DIR;

describe('audio bridge demo page', () => {
  let gw;
  let browser;

  before(async () => {
    gw = await startGateway({ name: 'audiobridge-demo', env: { BIFRONS_WEB_JANUS_JS: '', BIFRONS_WEB_ADAPTER_JS: '' } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
  });

  it('is linked from the index, and two pages talk in one room', async () => {
    const base = `http://127.0.0.1:${gw.ports.http}`;
    const index = await browser.newPage();
    await index.goto(`${base}/demos/`);
    const row = index.locator('#demos tr[data-plugin="janus.plugin.audiobridge"]');
    assert.equal(await row.locator('a').getAttribute('href'), '/demos/audiobridge.html');
    await waitInPage(index, () => window.demo.plugins, (p) => Array.isArray(p), 'plugins listed');
    assert.ok((await index.evaluate(() => window.demo.plugins)).includes('janus.plugin.audiobridge'));
    await index.close();

    const pages = [];
    for (const [name, transport] of [['ann', 'ws'], ['ben', 'http']]) {
      const page = await browser.newPage();
      await page.goto(`${base}/demos/audiobridge.html`);
      await waitInPage(page, () => window.demo.state, (s) => s === 'idle', `${name} page ready`);
      await page.fill('#room', '2024');
      await page.fill('#display', name);
      await page.check('#tone');
      await page.check(`#${transport}`);
      await page.click('#join');
      await waitInPage(page, () => window.demo.state, (s) => s === 'in-room', `${name} in the room`);
      pages.push(page);
    }
    for (const page of pages) {
      const st = await waitInPage(page, () => window.demo,
        (d) => Object.values(d.participants).filter((p) => p.setup).length === 2
          && Object.keys(d.talking).filter((id) => d.talking[id] && Number(id) !== d.me).length === 1,
        'both participants up, the other one talking');
      assert.equal(Object.keys(st.participants).length, 2);
      assert.equal(await page.locator('#participants tr').count(), 2);
      assert.equal(await page.locator('#participants tr.talking').count() >= 1, true);
      assert.equal(await page.locator('#error').isHidden(), true);
      const hasTrack = await page.evaluate(() => document.getElementById('mix').srcObject?.getAudioTracks().length);
      assert.equal(hasTrack, 1);
    }
    if (SHOTS) await pages[0].screenshot({ path: path.join(SHOTS, 'audiobridge-demo.png') });
    await pages[1].click('#leave');
    await waitInPage(pages[0], () => Object.keys(window.demo.participants).length, (n) => n === 1, 'ben left');
    for (const p of pages) await p.close();
  });
});
