//! The transcoding leg of one call: a [`MediaJob`] on `services::workers` that decodes and
//! encodes Opus ⇄ PCMU/PCMA every 20 ms, fed by bounded queues (browser Opus from
//! `incoming_rtp`, PBX G.711 from the bridge's receive task) and writing to non-blocking
//! sinks (the PBX's RTP endpoint, the browser's `MediaSender`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bifrons_sip::rtp::RtpEndpoint;
use bifrons_transcoding::g711::G711Law;
use bifrons_transcoding::opus_codec::OpusEncoderConfig;
use bifrons_transcoding::pipeline::{G711ToOpus, OpusToG711};
use bytes::Bytes;

use super::media::{record, BridgeStats, Frame, PeerRecorder, LEG_QUEUE};
use crate::media::{MediaKind, MediaSender, RtpPacket};
use crate::services::workers::{InputReceiver, JobStatus, MediaJob, QueueStats};

/// The transcoding job of one call, on a worker thread: Opus from the browser to G.711 for
/// the PBX, G.711 from the PBX to Opus for the browser, every 20 ms.
pub struct TranscodeLeg {
    from_browser: InputReceiver<Frame>,
    from_sip: InputReceiver<Frame>,
    to_sip: OpusToG711,
    to_browser: G711ToOpus,
    rtp: Arc<RtpEndpoint>,
    sender: MediaSender,
    opus_pt: u8,
    ssrc: u32,
    seq: u16,
    next_browser_seq: Option<u16>,
    stats: Arc<BridgeStats>,
    batch: Vec<Frame>,
    recorder: PeerRecorder,
}

impl TranscodeLeg {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        law: G711Law,
        from_browser: InputReceiver<Frame>,
        from_sip: InputReceiver<Frame>,
        rtp: Arc<RtpEndpoint>,
        sender: MediaSender,
        opus_pt: u8,
        ssrc: u32,
        stats: Arc<BridgeStats>,
    ) -> Result<Self, String> {
        let opus = OpusEncoderConfig {
            complexity: 5,
            ..OpusEncoderConfig::default()
        };
        Ok(Self {
            from_browser,
            from_sip,
            to_sip: OpusToG711::new(law).map_err(|e| e.to_string())?,
            to_browser: G711ToOpus::new(law, opus).map_err(|e| e.to_string())?,
            rtp,
            sender,
            opus_pt,
            ssrc,
            seq: rand::random(),
            next_browser_seq: None,
            stats,
            batch: Vec::with_capacity(LEG_QUEUE),
            recorder: PeerRecorder::default(),
        })
    }

    pub(super) fn with_recorder(mut self, recorder: PeerRecorder) -> Self {
        self.recorder = recorder;
        self
    }

    fn send_sip(&self, payload: &[u8]) {
        if self.rtp.send_audio(payload, payload.len() as u32).is_ok() {
            self.stats.to_sip.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Browser → PBX: what arrived since the last tick, in sequence order; a gap of up to
    /// three packets is concealed (Opus PLC) so the PBX hears continuous audio.
    fn browser_to_sip(&mut self) {
        self.batch.clear();
        self.batch.extend(self.from_browser.drain());
        // Order by distance from the next expected number (before the first packet, from a
        // point safely before this batch), which survives the 16-bit wrap.
        let anchor = match (self.next_browser_seq, self.batch.first()) {
            (Some(next), _) => next,
            (None, Some(first)) => first.seq.wrapping_sub(LEG_QUEUE as u16 * 2),
            (None, None) => return,
        };
        self.batch
            .sort_by_key(|f| f.seq.wrapping_sub(anchor) as i16 as i32);
        let batch = std::mem::take(&mut self.batch);
        for frame in &batch {
            if let Some(expected) = self.next_browser_seq {
                let gap = frame.seq.wrapping_sub(expected);
                if gap >= 0x8000 {
                    continue; // late duplicate or reordered past its turn
                }
                for lost in 0..gap.min(3) {
                    let ts = frame.timestamp.wrapping_sub(960 * u32::from(gap - lost));
                    self.stats.concealed.fetch_add(1, Ordering::Relaxed);
                    if let Ok(Some(p)) = self.to_sip.lost(ts) {
                        self.send_sip(&p.payload);
                    }
                }
            }
            self.next_browser_seq = Some(frame.seq.wrapping_add(1));
            match self.to_sip.push(&frame.payload, frame.timestamp) {
                Ok(Some(p)) => self.send_sip(&p.payload),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "undecodable Opus packet"),
            }
        }
        self.batch = batch;
    }

    fn sip_to_browser(&mut self) {
        for _ in 0..self.from_sip.queued() {
            let Some(frame) = self.from_sip.try_recv() else {
                break;
            };
            let packets = match self.to_browser.push(&frame.payload, frame.timestamp) {
                Ok(p) => p,
                Err(e) => {
                    tracing::debug!(error = %e, "G.711 frame not transcoded");
                    continue;
                }
            };
            for p in packets {
                self.seq = self.seq.wrapping_add(1);
                let payload = Bytes::from(p.payload);
                record(&self.recorder, &payload, p.timestamp);
                let sent = self.sender.send_rtp(
                    MediaKind::Audio,
                    RtpPacket {
                        payload_type: self.opus_pt,
                        sequence_number: self.seq,
                        timestamp: p.timestamp,
                        ssrc: self.ssrc,
                        marker: false,
                        payload,
                    },
                );
                if sent {
                    self.stats.to_browser.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

impl MediaJob for TranscodeLeg {
    fn tick(&mut self, _now: Duration) -> JobStatus {
        self.browser_to_sip();
        self.sip_to_browser();
        if self.sender.is_closed() {
            return JobStatus::Done;
        }
        JobStatus::Continue
    }

    fn queues(&self) -> Vec<QueueStats> {
        vec![self.from_browser.stats(), self.from_sip.stats()]
    }

    fn name(&self) -> &str {
        "opus<->g711"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::workers::input_queue;
    use bifrons_sip::rtp::RtpParams;

    fn tone(rate: u32, n: usize, start: usize) -> Vec<i16> {
        (start..start + n)
            .map(|i| {
                ((i as f32 * 2.0 * std::f32::consts::PI * 400.0 / rate as f32).sin() * 8000.0)
                    as i16
            })
            .collect()
    }

    /// Reads RTP (seq, ts) pairs from `socket` until `n` arrived or a second passed.
    async fn rtp_from(socket: &tokio::net::UdpSocket, n: usize) -> Vec<(u8, u16, u32, usize)> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        while out.len() < n {
            let Ok(Ok(len)) =
                tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await
            else {
                break;
            };
            if len < 12 {
                continue;
            }
            let pt = buf[1] & 0x7f;
            let seq = u16::from_be_bytes([buf[2], buf[3]]);
            let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            out.push((pt, seq, ts, len - 12));
        }
        out
    }

    /// The transcoding leg, ticked by hand: PCMU from the PBX becomes 20 ms Opus packets for
    /// the browser with consecutive sequence numbers and 960-tick timestamps; Opus from the
    /// browser becomes PCMU with 160-sample steps, and a lost browser packet is concealed so
    /// the PBX still gets one packet per 20 ms.
    #[tokio::test]
    async fn transcoding_leg_keeps_both_clocks_and_conceals_a_loss() {
        let pbx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let rtp = Arc::new(
            RtpEndpoint::bind("127.0.0.1".parse().unwrap(), 41000..=41999)
                .await
                .unwrap(),
        );
        rtp.configure(
            pbx.local_addr().unwrap(),
            RtpParams {
                pt: 0,
                dtmf_pt: None,
                clock_rate: 8000,
                dtmf_rate: 8000,
                ptime: 20,
            },
        );
        let (sender, mut to_browser) = MediaSender::detached(64);
        let (browser_tx, from_browser) = input_queue(LEG_QUEUE);
        let (sip_tx, from_sip) = input_queue(LEG_QUEUE);
        let stats = Arc::new(BridgeStats::default());
        let mut leg = TranscodeLeg::new(
            G711Law::Mu,
            from_browser,
            from_sip,
            rtp.clone(),
            sender,
            111,
            42,
            stats.clone(),
        )
        .unwrap();

        // PBX → browser: five 20 ms PCMU frames.
        for i in 0..5u32 {
            let pcm = tone(8000, 160, (i * 160) as usize);
            let payload: Vec<u8> = pcm
                .iter()
                .map(|&s| bifrons_sip::g711::ulaw_encode(s))
                .collect();
            sip_tx
                .try_push(Frame {
                    payload: Bytes::from(payload),
                    timestamp: 1000 + i * 160,
                    seq: i as u16,
                })
                .unwrap();
        }
        leg.tick(Duration::ZERO);
        let (sent, _) = to_browser.drain();
        assert!(sent.len() >= 4, "Opus packets out: {}", sent.len());
        for pair in sent.windows(2) {
            let (a, b) = (&pair[0].1, &pair[1].1);
            assert_eq!(b.sequence_number, a.sequence_number.wrapping_add(1));
            assert_eq!(b.timestamp.wrapping_sub(a.timestamp), 960);
            assert_eq!((b.payload_type, b.ssrc), (111, 42));
        }

        // Browser → PBX: Opus packets 0, 1, 3 (2 lost) arrive in one tick, out of order.
        let mut enc =
            bifrons_transcoding::opus_codec::OpusEncoder::new(OpusEncoderConfig::default())
                .unwrap();
        let mut frames = Vec::new();
        for i in 0..4u32 {
            let frame = bifrons_transcoding::AudioFrame::new(
                tone(48_000, 960, (i * 960) as usize),
                48_000,
                1,
                i * 960,
            )
            .unwrap();
            frames.push(Frame {
                payload: Bytes::from(enc.encode(&frame).unwrap().to_vec()),
                timestamp: 5000 + i * 960,
                seq: 700 + i as u16,
            });
        }
        let lost = frames.remove(2);
        drop(lost);
        frames.swap(0, 1);
        for f in frames {
            browser_tx.try_push(f).unwrap();
        }
        leg.tick(Duration::from_millis(20));
        let got = rtp_from(&pbx, 4).await;
        assert_eq!(stats.concealed.load(Ordering::Relaxed), 1);
        assert_eq!(
            got.len(),
            4,
            "one PCMU packet per 20 ms, the lost one concealed: {got:?}"
        );
        for pair in got.windows(2) {
            assert_eq!(pair[1].1, pair[0].1.wrapping_add(1), "sequence {got:?}");
            assert_eq!(pair[1].2.wrapping_sub(pair[0].2), 160, "timestamps {got:?}");
        }
        assert!(
            got.iter().all(|p| p.0 == 0 && p.3 == 160),
            "PCMU, 160 bytes: {got:?}"
        );
    }
}
