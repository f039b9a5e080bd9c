// Debian's headless Chromium with the flags every browser test needs: fake camera and
// microphone (no permission prompt), ICE on loopback with plain IP candidates (no mDNS names),
// no background connections to the closed network, autoplay without a gesture, and audio not
// muted (tests measure what is heard).

import { chromium } from 'playwright-core';

/** The Chromium binary: Debian's package, or CHROMIUM_BIN. Never a downloaded browser. */
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/**
 * Launches Chromium in its own process.
 * @param {{features?: string[]}} [opts] extra features to disable (`--disable-features`).
 * @returns {Promise<import('playwright-core').Browser>}
 */
export function launchChromium({ features = [] } = {}) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--allow-loopback-in-peer-connection',
      '--disable-background-networking',
      `--disable-features=${['WebRtcHideLocalIpsWithMdns', ...features].join(',')}`,
      '--disable-gpu',
      '--autoplay-policy=no-user-gesture-required',
    ],
    ignoreDefaultArgs: ['--mute-audio'],
  });
}
