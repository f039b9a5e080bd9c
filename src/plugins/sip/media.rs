//! The media bridge of one call: the browser's WebRTC audio on one side, the PBX's plain RTP
//! ([`RtpEndpoint`]) on the other.
//!
//! - **Passthrough** when the PBX answered Opus: packets are relayed without decoding, with
//!   this leg's own sequence numbers and a timestamp offset towards the browser.
//! - **Transcoding** otherwise: a `TranscodeLeg` job (`leg.rs`) on `services::workers` decodes and
//!   encodes Opus ⇄ PCMU/PCMA every 20 ms. `incoming_rtp` and the SIP receive task only push
//!   payloads into its bounded queues; nothing codec-related runs on the async runtime.
//!
//! SDES-SRTP: with the keys the SIP offer/answer settled, the PBX leg's endpoint protects
//! and unprotects every RTP/RTCP packet ([`RtpEndpoint::set_srtp`]); the bridge turns it on
//! before the first packet flows, and `handle_info` shows the suite and packet counts.
//!
//! DTMF: RFC 4733 events from the browser are re-sent to the PBX as RFC 4733 (or as SIP INFO
//! by the caller's choice); events from the PBX are handed to `on_dtmf`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bifrons_sip::dtmf::{event_to_digit, TelephoneEvent};
use bifrons_sip::rtp::{RtpEndpoint, RtpEvent};
use bifrons_sip::srtp::SrtpKeys;
use bifrons_transcoding::g711::G711Law;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use crate::media::{MediaKind, MediaSender, RtpPacket};
use crate::services::workers::{input_queue, InputSender, JobHandle, WorkerPool};

/// Frames queued per direction before the leg drops (10 × 20 ms = 200 ms behind).
pub(super) const LEG_QUEUE: usize = 10;

/// How a call's audio crosses the gateway, decided by the PBX's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegPlan {
    /// The PBX speaks Opus: relay packets.
    Passthrough,
    /// The PBX speaks G.711 with this law: transcode on a worker.
    Transcode(G711Law),
}

impl LegPlan {
    /// The plan for the codec the PBX settled on; `None` for a codec we cannot bridge.
    pub fn for_codec(codec: bifrons_sip::Codec) -> Option<Self> {
        match codec {
            bifrons_sip::Codec::Opus => Some(LegPlan::Passthrough),
            bifrons_sip::Codec::Pcmu => Some(LegPlan::Transcode(G711Law::Mu)),
            bifrons_sip::Codec::Pcma => Some(LegPlan::Transcode(G711Law::A)),
            bifrons_sip::Codec::G722 => None,
        }
    }

    /// Short name for `handle_info` and logs.
    pub fn name(self) -> &'static str {
        match self {
            LegPlan::Passthrough => "passthrough",
            LegPlan::Transcode(G711Law::Mu) => "opus<->pcmu",
            LegPlan::Transcode(G711Law::A) => "opus<->pcma",
        }
    }
}

/// Packet counters of one bridge (read with `Relaxed`).
#[derive(Debug, Default)]
pub struct BridgeStats {
    /// Audio packets from the browser.
    pub from_browser: AtomicU64,
    /// Audio packets from the PBX.
    pub from_sip: AtomicU64,
    /// Packets sent to the browser.
    pub to_browser: AtomicU64,
    /// Packets sent to the PBX.
    pub to_sip: AtomicU64,
    /// Browser packets concealed (lost before the transcoder).
    pub concealed: AtomicU64,
}

/// One encoded audio frame crossing into a transcoding leg.
pub(super) struct Frame {
    /// The codec payload.
    pub payload: Bytes,
    /// RTP timestamp in the codec's clock.
    pub timestamp: u32,
    /// RTP sequence number.
    pub seq: u16,
}

/// What the browser side of a call negotiated.
#[derive(Debug, Clone, Copy)]
pub struct BrowserAudio {
    /// Payload type of Opus in the browser's SDP.
    pub opus_pt: u8,
    /// Payload type of telephone-event/48000, if negotiated.
    pub dtmf_pt: Option<u8>,
}

/// Where the peer's audio is recorded (Opus as sent to the browser), shared by the bridge's
/// receive task and its transcoding leg; `None` while not recording.
pub type PeerRecorder = Arc<std::sync::RwLock<Option<crate::services::recording::RecorderSink>>>;

pub(super) fn record(recorder: &PeerRecorder, payload: &Bytes, timestamp: u32) {
    if let Some(sink) = &*recorder.read().unwrap_or_else(|e| e.into_inner()) {
        sink.push(payload.clone(), timestamp);
    }
}

/// The running bridge of one call. Dropping it stops its tasks and its worker job.
pub struct Bridge {
    /// Records the peer's audio while set.
    pub peer_recorder: PeerRecorder,
    plan: LegPlan,
    rtp: Arc<RtpEndpoint>,
    browser: BrowserAudio,
    to_leg: Option<InputSender<Frame>>,
    _job: Option<JobHandle>,
    stop: CancellationToken,
    stats: Arc<BridgeStats>,
    /// Passthrough: the last browser timestamp, to count samples per packet.
    last_ts: AtomicU32,
    have_ts: AtomicBool,
    /// Browser DTMF goes out as SIP INFO in this call's dialog (a trunk in `info` mode)
    /// instead of RFC 4733 on the RTP endpoint.
    info: Option<Arc<bifrons_sip::Call>>,
    /// Timestamp of the last browser DTMF event already relayed (an event's end packet comes
    /// three times).
    last_dtmf: Mutex<Option<u32>>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Bridge {
    /// Starts the bridge: turns SDES-SRTP on with `srtp` (plain RTP with `None`), configures
    /// `rtp` towards the PBX's `negotiated` address and codec, submits the transcoding job
    /// when needed, and spawns the task that reads the PBX's RTP.
    /// `on_dtmf` gets each RFC 4733 digit from the PBX; with `info`, the browser's digits go
    /// to the PBX as SIP INFO in that call's dialog instead of RFC 4733.
    ///
    /// Errors: a codec the bridge cannot handle, SRTP keys the endpoint refuses, or a worker
    /// pool that is shut down.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        rtp: Arc<RtpEndpoint>,
        negotiated: &bifrons_sip::sdp::Negotiated,
        srtp: Option<&SrtpKeys>,
        sender: MediaSender,
        browser: BrowserAudio,
        info: Option<Arc<bifrons_sip::Call>>,
        workers: &WorkerPool,
        on_dtmf: impl Fn(char) + Send + Sync + 'static,
    ) -> Result<Arc<Self>, String> {
        let plan = LegPlan::for_codec(negotiated.codec)
            .ok_or_else(|| format!("cannot bridge {}", negotiated.codec.name()))?;
        secure(&rtp, srtp)?;
        rtp.apply(negotiated);
        let stats = Arc::new(BridgeStats::default());
        let peer_recorder = PeerRecorder::default();
        let stop = CancellationToken::new();
        let ssrc: u32 = rand::random();
        let (to_leg, job, from_sip) = match plan {
            LegPlan::Passthrough => (None, None, None),
            LegPlan::Transcode(law) => {
                let (to_leg, from_browser) = input_queue(LEG_QUEUE);
                let (from_sip_tx, from_sip) = input_queue(LEG_QUEUE);
                let leg = super::leg::TranscodeLeg::new(
                    law,
                    from_browser,
                    from_sip,
                    rtp.clone(),
                    sender.clone(),
                    browser.opus_pt,
                    ssrc,
                    stats.clone(),
                )?
                .with_recorder(peer_recorder.clone());
                let job = workers.submit(leg).map_err(|e| e.to_string())?;
                (Some(to_leg), Some(job), Some(from_sip_tx))
            }
        };
        tokio::spawn(receive_sip(
            rtp.clone(),
            stop.clone(),
            from_sip,
            sender,
            browser.opus_pt,
            ssrc,
            stats.clone(),
            peer_recorder.clone(),
            on_dtmf,
        ));
        Ok(Arc::new(Self {
            peer_recorder,
            plan,
            rtp,
            browser,
            to_leg,
            _job: job,
            stop,
            stats,
            last_ts: AtomicU32::new(0),
            have_ts: AtomicBool::new(false),
            info,
            last_dtmf: Mutex::new(None),
        }))
    }

    /// The payload type of Opus from the browser.
    pub fn browser_opus_pt(&self) -> u8 {
        self.browser.opus_pt
    }

    /// Passthrough or which transcoding.
    pub fn plan(&self) -> LegPlan {
        self.plan
    }

    /// The packet counters.
    pub fn stats(&self) -> &BridgeStats {
        &self.stats
    }

    /// The SIP-side RTP endpoint.
    pub fn rtp(&self) -> &Arc<RtpEndpoint> {
        &self.rtp
    }

    /// SDES-SRTP of the PBX leg for `handle_info`: `{"suite", "protected", "refused",
    /// "rtcp_received", "rtcp_refused"}` (RTP packets protected and sent; RTP packets refused
    /// for a bad tag or a replay; SRTCP packets unprotected, and refused), or `null` for
    /// plain RTP.
    pub fn srtp_info(&self) -> serde_json::Value {
        let stats = self.rtp.stats();
        match self.rtp.srtp_suite() {
            None => serde_json::Value::Null,
            Some(suite) => serde_json::json!({
                "suite": suite.name(),
                "protected": stats.srtp_sent.load(Ordering::Relaxed),
                "refused": stats.srtp_refused.load(Ordering::Relaxed),
                "rtcp_received": stats.rtcp_received.load(Ordering::Relaxed),
                "rtcp_refused": stats.srtcp_refused.load(Ordering::Relaxed),
            }),
        }
    }

    /// A packet from the browser (called from `incoming_rtp`: never blocks, no codec work).
    pub fn from_browser(&self, packet: RtpPacket) {
        if Some(packet.payload_type) == self.browser.dtmf_pt {
            self.browser_dtmf(&packet);
            return;
        }
        if packet.payload_type != self.browser.opus_pt {
            return;
        }
        self.stats.from_browser.fetch_add(1, Ordering::Relaxed);
        match &self.to_leg {
            Some(queue) => {
                let _ = queue.try_push(Frame {
                    payload: packet.payload,
                    timestamp: packet.timestamp,
                    seq: packet.sequence_number,
                });
            }
            None => {
                let previous = self.last_ts.swap(packet.timestamp, Ordering::Relaxed);
                let samples = if self.have_ts.swap(true, Ordering::Relaxed) {
                    let delta = packet.timestamp.wrapping_sub(previous);
                    if (1..=5760).contains(&delta) {
                        delta
                    } else {
                        960
                    }
                } else {
                    960
                };
                if self.rtp.send_audio(&packet.payload, samples).is_ok() {
                    self.stats.to_sip.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Relays a browser RFC 4733 event to the PBX once, at its end (RFC 4733 §2.5.1.4).
    fn browser_dtmf(&self, packet: &RtpPacket) {
        let Some(event) = TelephoneEvent::parse(&packet.payload) else {
            return;
        };
        if !event.end {
            return;
        }
        {
            let mut last = self.last_dtmf.lock().unwrap_or_else(|e| e.into_inner());
            if *last == Some(packet.timestamp) {
                return;
            }
            *last = Some(packet.timestamp);
        }
        let Some(digit) = event_to_digit(event.event) else {
            return;
        };
        let duration_ms = (u32::from(event.duration) / 48).clamp(40, 2000);
        if let Some(call) = self.info.clone() {
            tracing::info!(%digit, duration_ms, "browser DTMF relayed to the PBX as SIP INFO");
            let body = bifrons_sip::dtmf::dtmf_relay_body(digit, duration_ms).into_bytes();
            tokio::spawn(async move {
                if let Err(e) = call.send_info("application/dtmf-relay", body).await {
                    tracing::warn!(error = %e, "DTMF INFO not sent");
                }
            });
            return;
        }
        let rtp = self.rtp.clone();
        tracing::info!(%digit, duration_ms, "browser DTMF relayed to the PBX");
        tokio::spawn(async move {
            if let Err(e) = rtp.send_dtmf(digit, duration_ms).await {
                tracing::warn!(error = %e, "DTMF not relayed");
            }
        });
    }
}

/// Turns SDES-SRTP on the PBX leg on (or off with `None`) with the keys a SIP offer/answer
/// settled; a later description with the same keys keeps the running contexts.
///
/// Errors: keys the SRTP layer refuses (not for the suites we offer or accept).
pub(super) fn secure(rtp: &RtpEndpoint, srtp: Option<&SrtpKeys>) -> Result<(), String> {
    rtp.set_srtp(srtp).map_err(|e| e.to_string())?;
    if let Some(keys) = srtp {
        tracing::debug!(suite = keys.suite.name(), "sip leg uses SDES-SRTP");
    }
    Ok(())
}

/// Reads the PBX's RTP: in passthrough sends it on to the browser, else queues it for the
/// transcoding leg; reports DTMF.
#[allow(clippy::too_many_arguments)]
async fn receive_sip(
    rtp: Arc<RtpEndpoint>,
    stop: CancellationToken,
    to_leg: Option<InputSender<Frame>>,
    sender: MediaSender,
    opus_pt: u8,
    ssrc: u32,
    stats: Arc<BridgeStats>,
    recorder: PeerRecorder,
    on_dtmf: impl Fn(char) + Send + Sync + 'static,
) {
    let mut rewrite = Rewriter::default();
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = rtp.recv() => e,
        };
        match event {
            None => return,
            Some(RtpEvent::Dtmf(digit)) => on_dtmf(digit),
            Some(RtpEvent::Audio {
                payload,
                timestamp,
                seq,
                ..
            }) => {
                stats.from_sip.fetch_add(1, Ordering::Relaxed);
                match &to_leg {
                    Some(queue) => {
                        let _ = queue.try_push(Frame {
                            payload: Bytes::from(payload),
                            timestamp,
                            seq,
                        });
                    }
                    None => {
                        let (sequence_number, timestamp) = rewrite.next(timestamp);
                        let payload = Bytes::from(payload);
                        record(&recorder, &payload, timestamp);
                        let sent = sender.send_rtp(
                            MediaKind::Audio,
                            RtpPacket {
                                payload_type: opus_pt,
                                sequence_number,
                                timestamp,
                                ssrc,
                                marker: false,
                                payload,
                            },
                        );
                        if sent {
                            stats.to_browser.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
    }
}

/// Sequence numbers of our own and timestamps shifted by a random offset, so a PBX that
/// restarts its stream (new SSRC after a re-INVITE) never looks like a rewind to the browser.
#[derive(Debug)]
pub struct Rewriter {
    seq: u16,
    offset: u32,
    last_in: Option<u32>,
    last_out: u32,
}

impl Default for Rewriter {
    fn default() -> Self {
        Self {
            seq: rand::random(),
            offset: rand::random(),
            last_in: None,
            last_out: 0,
        }
    }
}

impl Rewriter {
    /// The sequence number and timestamp to send for an input packet with `timestamp`.
    /// A jump of more than 10 s in the input (a new source) continues 20 ms after the last
    /// output instead.
    pub fn next(&mut self, timestamp: u32) -> (u16, u32) {
        self.seq = self.seq.wrapping_add(1);
        if let Some(last) = self.last_in {
            let delta = timestamp.wrapping_sub(last) as i32;
            if delta.unsigned_abs() > 480_000 {
                self.offset = self.last_out.wrapping_add(960).wrapping_sub(timestamp);
            }
        }
        self.last_in = Some(timestamp);
        self.last_out = timestamp.wrapping_add(self.offset);
        (self.seq, self.last_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewriter_keeps_media_time_and_survives_a_new_source() {
        let mut r = Rewriter::default();
        let (s0, t0) = r.next(1000);
        let (s1, t1) = r.next(1960);
        assert_eq!(s1, s0.wrapping_add(1));
        assert_eq!(t1.wrapping_sub(t0), 960);
        // The PBX restarts its stream with a far-away timestamp: output continues 20 ms on.
        let (_, t2) = r.next(3_000_000_000);
        assert_eq!(t2.wrapping_sub(t1), 960);
        let (_, t3) = r.next(3_000_000_960);
        assert_eq!(t3.wrapping_sub(t2), 960);
    }

    #[test]
    fn plan_follows_the_pbx_codec() {
        assert_eq!(
            LegPlan::for_codec(bifrons_sip::Codec::Opus),
            Some(LegPlan::Passthrough)
        );
        assert_eq!(
            LegPlan::for_codec(bifrons_sip::Codec::Pcma),
            Some(LegPlan::Transcode(G711Law::A))
        );
        assert_eq!(LegPlan::for_codec(bifrons_sip::Codec::G722), None);
    }
}
