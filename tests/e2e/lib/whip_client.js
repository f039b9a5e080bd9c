// A WHIP client (RFC 9725) that is not a browser: werift (a WebRTC stack in TypeScript, from
// the npm registry) sends what OBS sends, Opus + H.264 constrained baseline (packetization-mode
// 1), encoded by ffmpeg to RTP on loopback UDP ports and forwarded by werift (werift's documented
// ffmpeg -> MediaStreamTrack.writeRtp pattern). The client does the HTTP side itself: the bearer
// token on POST, the Location and ETag of the answer, and DELETE to end the publish.

import dgram from 'node:dgram';
import { RTCPeerConnection, RTCRtpCodecParameters, MediaStreamTrack } from 'werift';
import { spawnProcess } from './streaming.js';

/** Binds a UDP socket on 127.0.0.1 whose datagrams (RTP from ffmpeg) are written to `track`. */
async function rtpInput(track) {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (packet) => track.writeRtp(packet));
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return socket;
}

/**
 * Publishes to `url` (`http://.../whip/<mountpoint or key>`) with bearer `token`. Resolves once
 * the offer is answered (or refused) with `{ status, location, etag, answer, pc, ffmpeg,
 * connected, stop() }`; `connected` resolves when ICE + DTLS are up. `stop()` sends DELETE to the
 * Location and resolves with its status, then closes werift and ffmpeg. ffmpeg starts only after
 * a 201: testsrc2 640x360 at 30 fps (keyframe every 2 s, no B-frames) and a 440 Hz sine.
 */
export async function whipPublish(url, token, { size = '640x360' } = {}) {
  const audio = new MediaStreamTrack({ kind: 'audio' });
  const video = new MediaStreamTrack({ kind: 'video' });
  const pc = new RTCPeerConnection({
    codecs: {
      audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2 })],
      video: [new RTCRtpCodecParameters({
        mimeType: 'video/H264',
        clockRate: 90000,
        rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
        parameters: 'profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1',
      })],
    },
    // The tests run with loopback only, which werift leaves out of its host candidates.
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceUseIpv6: false,
    // One ICE transport for both m-lines from the start, as OBS does: with the default policy
    // werift gathers a transport per m-line and never closes the one BUNDLE leaves unused, whose
    // socket then keeps the test process alive.
    bundlePolicy: 'max-bundle',
  });
  pc.addTransceiver(audio, { direction: 'sendonly' });
  pc.addTransceiver(video, { direction: 'sendonly' });
  const connected = new Promise((resolve, reject) => {
    pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected') resolve();
      if (state === 'failed') reject(new Error('werift: connection failed'));
    });
  });
  connected.catch(() => {});
  await pc.setLocalDescription(await pc.createOffer());
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  const answer = await res.text();
  const out = {
    status: res.status, location: res.headers.get('location'), etag: res.headers.get('etag'), answer, pc, connected,
  };
  if (res.status !== 201) {
    await pc.close();
    return { ...out, stop: async () => null };
  }
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  const sockets = [await rtpInput(audio), await rtpInput(video)];
  const [audioPort, videoPort] = sockets.map((s) => s.address().port);
  const ffmpeg = spawnProcess('ffmpeg', [
    '-hide_banner', '-loglevel', 'warning', '-re',
    '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=30`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-map', '0:v', '-c:v', 'libx264', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p', '-tune', 'zerolatency',
    '-g', '60', '-bf', '0', '-b:v', '1000k',
    '-f', 'rtp', '-payload_type', '102', `rtp://127.0.0.1:${videoPort}?pkt_size=1200`,
    '-map', '1:a', '-c:a', 'libopus', '-ar', '48000', '-ac', '2', '-b:a', '64k',
    '-f', 'rtp', '-payload_type', '111', `rtp://127.0.0.1:${audioPort}?pkt_size=1200`,
  ]);
  let stopped = null;
  return {
    ...out,
    ffmpeg,
    stop: () => {
      stopped ??= (async () => {
        const del = await fetch(new URL(out.location, url), { method: 'DELETE' });
        await ffmpeg.stop();
        for (const s of sockets) s.close();
        await pc.close();
        return del.status;
      })();
      return stopped;
    },
  };
}
