//! Listen lines: a registry account bound to a streaming mountpoint answers its inbound calls
//! at once and plays the mountpoint's audio to the caller, for as long as the caller stays on
//! the line (a conference bridge's listen-only number, an audio stream on a plain phone).
//!
//! [`ListenTarget`] is the account's [`CallTarget`] (kind [`TargetKind::Mountpoint`]) in the
//! [`super::InboundRouter`]. For each call it takes the ring, answers with the first of PCMU/PCMA
//! in the caller's offer (RFC 3264 §6.1), and adds a sink to the mountpoint that
//! queues its Opus packets for a [`ListenJob`] on `services::workers`: Opus (48 kHz) decoded,
//! resampled to 8 kHz and encoded to G.711, sent from the call's own RTP endpoint (its own
//! SSRC, sequence numbers and 8 kHz timestamps). The call ends on the caller's BYE (the sink
//! and the job go with it) or when the mountpoint is destroyed (BYE from us).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bifrons_sip::rtp::{RtpEndpoint, RtpParams};
use bifrons_sip::sdp::Direction;
use bifrons_sip::{CallEvent, Codec, Sdp};
use bifrons_transcoding::g711::G711Law;
use bifrons_transcoding::pipeline::OpusToG711;
use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;

use super::ringing::RingingCall;
use super::routing::{CallTarget, InboundCall, TargetKind};
use crate::media::{MediaKind, RtpPacket};
use crate::services::streams::{MountpointHub, StreamSink};
use crate::services::workers::{
    input_queue, InputReceiver, InputSender, JobStatus, MediaJob, QueueStats, WorkerPool,
};

/// The ring-claim id of listen lines (browser handles claim with their handle id, which never
/// reaches this value).
const LISTEN_CLAIM: u64 = u64::MAX;

/// Opus packets queued for a listen job: 16 periods of 20 ms absorb a burst (a keyframe's
/// worth of late audio) without adding more than 320 ms of delay.
const LISTEN_QUEUE: usize = 16;

/// Lost Opus packets concealed in one gap (60 ms); a longer gap is skipped over.
const MAX_CONCEALED: u16 = 3;

/// Opus RTP timestamp ticks per 20 ms packet (48 kHz).
const OPUS_TICKS_PER_PACKET: u32 = 960;

/// How often a call checks that its mountpoint still exists.
const MOUNTPOINT_CHECK: Duration = Duration::from_millis(500);

/// The hub name of the streaming mountpoint with registry id `id` (as the streaming plugin
/// names them).
pub fn mountpoint_name(id: u64) -> String {
    format!("streaming/{id}")
}

/// Counters of the listen lines, for logs and the live view.
#[derive(Debug, Default)]
pub struct ListenStats {
    /// Calls on the line now.
    pub active: AtomicU64,
    /// Calls answered since start-up.
    pub answered: AtomicU64,
    /// G.711 packets sent to callers.
    pub packets_sent: AtomicU64,
}

/// Where a listen call gets its media resources.
#[derive(Clone)]
pub struct ListenMedia {
    /// The mountpoints.
    pub hub: Arc<MountpointHub>,
    /// The codec threads.
    pub workers: Arc<WorkerPool>,
    /// Address RTP binds to and the SDP answer advertises.
    pub rtp_ip: IpAddr,
    /// RTP port range (even RTP, odd RTCP).
    pub rtp_ports: RangeInclusive<u16>,
}

/// The call target of an account bound to mountpoint `mountpoint` (registry id).
pub struct ListenTarget {
    media: ListenMedia,
    mountpoint: u64,
    stats: Arc<ListenStats>,
}

impl ListenTarget {
    /// A target playing mountpoint `mountpoint` (registry id) with `media`.
    pub fn new(media: ListenMedia, mountpoint: u64, stats: Arc<ListenStats>) -> Self {
        Self {
            media,
            mountpoint,
            stats,
        }
    }
}

impl CallTarget for ListenTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Mountpoint
    }

    fn offer(&self, call: &InboundCall) {
        tracing::debug!(call_id = %call.call_id, "listen line offered a call without a SIP dialog: ignored");
    }

    fn ring(&self, _call: &InboundCall, ringing: &Arc<RingingCall>) {
        let (_, events) = ringing.subscribe();
        tokio::spawn(serve(
            ringing.clone(),
            events,
            self.media.clone(),
            self.mountpoint,
            self.stats.clone(),
        ));
    }
}

/// The G.711 law of a negotiated codec; `None` for the others.
pub fn law_of(codec: Codec) -> Option<G711Law> {
    match codec {
        Codec::Pcmu => Some(G711Law::Mu),
        Codec::Pcma => Some(G711Law::A),
        _ => None,
    }
}

/// One listen call: answer, play until either side ends it, clean up.
async fn serve(
    ringing: Arc<RingingCall>,
    mut events: tokio::sync::broadcast::Receiver<CallEvent>,
    media: ListenMedia,
    mountpoint_id: u64,
    stats: Arc<ListenStats>,
) {
    let name = mountpoint_name(mountpoint_id);
    let call_id = ringing.id().to_string();
    let Some(mountpoint) = media.hub.get(&name) else {
        tracing::info!(%call_id, mountpoint = mountpoint_id, "listen call refused: the mountpoint does not exist now");
        ringing.decline(480).await;
        return;
    };
    let Some(offer) = ringing.offer.clone() else {
        tracing::info!(%call_id, "listen call refused: an INVITE without SDP offer");
        ringing.decline(488).await;
        return;
    };
    let rtp = match RtpEndpoint::bind(media.rtp_ip, media.rtp_ports.clone()).await {
        Ok(rtp) => Arc::new(rtp),
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "listen call refused: no RTP port");
            ringing.decline(503).await;
            return;
        }
    };
    let local = match rtp.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "listen call refused: RTP socket");
            ringing.decline(503).await;
            return;
        }
    };
    let (answer, negotiated) = match answer_listen(&offer, local) {
        Ok(a) => a,
        Err(e) => {
            tracing::info!(%call_id, error = %e, "listen call refused: no PCMU/PCMA in the offer");
            ringing.decline(488).await;
            return;
        }
    };
    let Some(law) = law_of(negotiated.codec) else {
        ringing.decline(488).await;
        return;
    };
    if !ringing.claim(LISTEN_CLAIM) {
        return;
    }
    if let Err(e) = ringing.call.answer_with_sdp(answer).await {
        tracing::warn!(%call_id, error = %e, "listen call: answering failed");
        return;
    }
    rtp.configure(
        negotiated.remote,
        RtpParams {
            pt: negotiated.pt,
            dtmf_pt: negotiated.dtmf_pt,
            clock_rate: negotiated.codec.clock_rate(),
            ptime: negotiated.ptime,
        },
    );
    rtp.set_sending(negotiated.direction.flags().0);
    let (to_job, from_sink) = input_queue(LISTEN_QUEUE);
    let job = match ListenJob::new(law, from_sink, rtp.clone(), stats.clone())
        .map_err(|e| e.to_string())
        .and_then(|job| media.workers.submit(job).map_err(|e| e.to_string()))
    {
        Ok(job) => job,
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "listen call: no transcoding job, hanging up");
            let _ = ringing.call.hangup().await;
            return;
        }
    };
    let sink = Arc::new(ListenSink {
        queue: to_job,
        closed: AtomicBool::new(false),
    });
    let sink_id = mountpoint.add_stream_sink(sink.clone());
    stats.active.fetch_add(1, Ordering::Relaxed);
    stats.answered.fetch_add(1, Ordering::Relaxed);
    tracing::info!(%call_id, caller = %ringing.caller, mountpoint = mountpoint_id, codec = negotiated.codec.name(), "listen call answered");
    // The fan-out holds the sink once it handled the add; from then on, a sink held by
    // nobody else means the mountpoint let go of it (destroyed).
    let _ = mountpoint.sink_count().await;
    let mut check = tokio::time::interval(MOUNTPOINT_CHECK);
    // A BYE waits for the caller's ACK of our 200 (RFC 3261 §15).
    let mut acknowledged = false;
    let why = loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(CallEvent::Ended(reason)) => break format!("call ended ({reason:?})"),
                Ok(CallEvent::Answered) => acknowledged = true,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break "call gone".to_string(),
            },
            _ = check.tick(), if acknowledged => {
                if Arc::strong_count(&sink) == 1 || media.hub.get(&name).is_none() {
                    break match ringing.call.hangup().await {
                        Ok(()) => "mountpoint destroyed: BYE sent".to_string(),
                        Err(e) => format!("mountpoint destroyed: BYE failed ({e})"),
                    };
                }
            }
        }
    };
    sink.closed.store(true, Ordering::Relaxed);
    mountpoint.remove_sink(sink_id);
    job.stop();
    let sinks = mountpoint.sink_count().await;
    let active = stats.active.fetch_sub(1, Ordering::Relaxed) - 1;
    let sent = rtp.stats().sent.load(Ordering::Relaxed);
    tracing::info!(%call_id, mountpoint = mountpoint_id, %why, sent, sinks, active, "listen call over: sink removed");
}

/// The answer to a caller's `offer` with PCMU or PCMA (the caller's preference) from `local`,
/// `sendrecv` as offered: the caller's audio is received and ignored. (A `sendonly` answer
/// would be the exact description, but phones such as baresip then stop their player.)
///
/// Errors: the offer has no audio, or neither PCMU nor PCMA.
pub fn answer_listen(
    offer: &Sdp,
    local: SocketAddr,
) -> Result<(Sdp, bifrons_sip::sdp::Negotiated), bifrons_sip::sdp::SdpError> {
    Sdp::answer(
        offer,
        &[Codec::Pcmu, Codec::Pcma],
        local,
        Direction::SendRecv,
        rand::random::<u32>().into(),
    )
}

/// An Opus packet of the mountpoint on its way to the job.
struct OpusPacket {
    seq: u16,
    timestamp: u32,
    payload: Bytes,
}

/// The mountpoint sink of a listen call: audio packets into the job's queue, video ignored.
struct ListenSink {
    queue: InputSender<OpusPacket>,
    closed: AtomicBool,
}

impl StreamSink for ListenSink {
    fn deliver(&self, kind: MediaKind, packet: &RtpPacket) -> bool {
        if kind != MediaKind::Audio {
            return true;
        }
        self.queue
            .try_push(OpusPacket {
                seq: packet.sequence_number,
                timestamp: packet.timestamp,
                payload: packet.payload.clone(),
            })
            .is_ok()
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

/// What to do with a packet numbered `seq` when `expected` is the next number due (`None`
/// before the first packet): `None` when it is late or a duplicate (drop it), else how many
/// lost packets to conceal before it (at most [`MAX_CONCEALED`]).
pub fn gap_before(expected: Option<u16>, seq: u16) -> Option<u16> {
    let Some(expected) = expected else {
        return Some(0);
    };
    let gap = seq.wrapping_sub(expected);
    if gap >= 0x8000 {
        return None;
    }
    Some(gap.min(MAX_CONCEALED))
}

/// The transcoding job of one listen call: every 20 ms, the mountpoint's Opus packets
/// decoded, resampled 48 → 8 kHz and encoded to G.711 (`law`), sent on the call's endpoint.
pub struct ListenJob {
    input: InputReceiver<OpusPacket>,
    pipeline: OpusToG711,
    rtp: Arc<RtpEndpoint>,
    stats: Arc<ListenStats>,
    expected: Option<u16>,
}

impl ListenJob {
    fn new(
        law: G711Law,
        input: InputReceiver<OpusPacket>,
        rtp: Arc<RtpEndpoint>,
        stats: Arc<ListenStats>,
    ) -> bifrons_transcoding::Result<Self> {
        Ok(Self {
            input,
            pipeline: OpusToG711::new(law)?,
            rtp,
            stats,
            expected: None,
        })
    }

    fn send(&self, payload: &[u8]) {
        // One G.711 byte per 8 kHz sample.
        if self.rtp.send_audio(payload, payload.len() as u32).is_ok() {
            self.stats.packets_sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl MediaJob for ListenJob {
    fn tick(&mut self, _now: Duration) -> JobStatus {
        while let Some(packet) = self.input.try_recv() {
            let Some(lost) = gap_before(self.expected, packet.seq) else {
                continue;
            };
            for i in (1..=lost).rev() {
                let ts = packet
                    .timestamp
                    .wrapping_sub(OPUS_TICKS_PER_PACKET * u32::from(i));
                if let Ok(Some(p)) = self.pipeline.lost(ts) {
                    self.send(&p.payload);
                }
            }
            self.expected = Some(packet.seq.wrapping_add(1));
            match self.pipeline.push(&packet.payload, packet.timestamp) {
                Ok(Some(p)) => self.send(&p.payload),
                Ok(None) => {}
                Err(e) => tracing::debug!(error = %e, "listen line: undecodable Opus packet"),
            }
        }
        JobStatus::Continue
    }

    fn queues(&self) -> Vec<QueueStats> {
        vec![self.input.stats()]
    }

    fn name(&self) -> &str {
        "listen opus→g711"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bifrons_sip::rtp::RtpEvent;
    use bifrons_transcoding::frame::AudioFrame;
    use bifrons_transcoding::g711;
    use bifrons_transcoding::opus_codec::{OpusEncoder, OpusEncoderConfig};
    use proptest::prelude::*;

    #[test]
    fn gaps_are_concealed_up_to_three_and_late_packets_dropped() {
        assert_eq!(gap_before(None, 500), Some(0));
        assert_eq!(gap_before(Some(10), 10), Some(0));
        assert_eq!(gap_before(Some(10), 12), Some(2));
        assert_eq!(gap_before(Some(10), 40), Some(MAX_CONCEALED));
        assert_eq!(gap_before(Some(10), 9), None, "late");
        assert_eq!(gap_before(Some(65535), 1), Some(2), "across the wrap");
        assert_eq!(gap_before(Some(0), 65535), None);
    }

    proptest! {
        #[test]
        fn gap_is_bounded_and_in_order_is_never_dropped(expected: u16, ahead in 0u16..0x8000) {
            let seq = expected.wrapping_add(ahead);
            prop_assert_eq!(gap_before(Some(expected), seq), Some(ahead.min(MAX_CONCEALED)));
        }
    }

    fn offer(formats: &str) -> Sdp {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP {formats}\r\na=sendrecv\r\n"
        );
        Sdp::parse(sdp.as_bytes()).unwrap()
    }

    #[test]
    fn answers_with_the_callers_g711() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let (answer, n) = answer_listen(&offer("8 0"), local).unwrap();
        assert_eq!(n.codec, Codec::Pcma, "the caller's first choice");
        assert!(n.direction.flags().0, "we send");
        let text = String::from_utf8(answer.to_bytes()).unwrap();
        assert!(text.contains("m=audio 5000 RTP/AVP 8"), "{text}");
        assert_eq!(
            answer_listen(&offer("0"), local).unwrap().1.codec,
            Codec::Pcmu
        );
        assert!(answer_listen(&offer("9"), local).is_err(), "G.722 only");
        assert_eq!(law_of(Codec::Pcmu), Some(G711Law::Mu));
        assert_eq!(law_of(Codec::Opus), None);
    }

    /// Power of `x` at `freq` Hz (Goertzel).
    fn power_at(x: &[i16], rate: f32, freq: f32) -> f32 {
        let w = 2.0 * std::f32::consts::PI * freq / rate;
        let (mut s1, mut s2) = (0f32, 0f32);
        for &v in x {
            let s = f32::from(v) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2
    }

    #[tokio::test]
    async fn a_1khz_opus_tone_reaches_the_caller_as_1khz_pcmu() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let sender = Arc::new(RtpEndpoint::bind(ip, 42000..=42999).await.unwrap());
        let caller = RtpEndpoint::bind(ip, 43000..=43999).await.unwrap();
        let params = RtpParams {
            pt: 0,
            dtmf_pt: None,
            clock_rate: 8000,
            ptime: 20,
        };
        sender.configure(caller.local_addr().unwrap(), params);
        caller.configure(sender.local_addr().unwrap(), params);
        let (tx, rx) = input_queue(64);
        let stats = Arc::new(ListenStats::default());
        let mut job = ListenJob::new(G711Law::Mu, rx, sender.clone(), stats.clone()).unwrap();
        let mut encoder = OpusEncoder::new(OpusEncoderConfig::default()).unwrap();
        let sink = ListenSink {
            queue: tx,
            closed: AtomicBool::new(false),
        };
        for n in 0..50u32 {
            let pcm: Vec<i16> = (0..960)
                .map(|i| {
                    let t = (n * 960 + i) as f32 / 48_000.0;
                    (8000.0 * (2.0 * std::f32::consts::PI * 1000.0 * t).sin()) as i16
                })
                .collect();
            let frame = AudioFrame::new(pcm, 48_000, 1, n * 960).unwrap();
            let payload = Bytes::copy_from_slice(encoder.encode(&frame).unwrap());
            // Packet 20 is lost: concealed, not a hole.
            if n != 20 {
                let packet = RtpPacket {
                    payload_type: 111,
                    sequence_number: n as u16,
                    timestamp: n * 960,
                    ssrc: 1,
                    marker: false,
                    payload,
                };
                assert!(sink.deliver(MediaKind::Audio, &packet));
                assert!(sink.deliver(MediaKind::Video, &packet), "video ignored");
            }
            job.tick(Duration::from_millis(20 * u64::from(n)));
        }
        assert_eq!(stats.packets_sent.load(Ordering::Relaxed), 50);
        let mut pcm = Vec::new();
        while pcm.len() < 40 * 160 {
            match tokio::time::timeout(Duration::from_secs(5), caller.recv()).await {
                Ok(Some(RtpEvent::Audio { payload, .. })) => {
                    let mut samples = Vec::new();
                    g711::decode_into(G711Law::Mu, &payload, &mut samples);
                    pcm.extend(samples);
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        assert!(
            pcm.len() >= 40 * 160,
            "got {} samples; sent {} dropped {} received {} foreign {}",
            pcm.len(),
            sender.stats().sent.load(Ordering::Relaxed),
            sender.stats().dropped.load(Ordering::Relaxed),
            caller.stats().received.load(Ordering::Relaxed),
            caller.stats().foreign.load(Ordering::Relaxed)
        );
        let tail = &pcm[pcm.len() - 20 * 160..];
        let at_1k = power_at(tail, 8000.0, 1000.0);
        for other in [300.0, 600.0, 1500.0, 2500.0] {
            assert!(
                at_1k > 100.0 * power_at(tail, 8000.0, other),
                "1 kHz dominates {other} Hz"
            );
        }
        let rms =
            (tail.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / tail.len() as f64).sqrt();
        assert!(rms > 2000.0, "rms {rms}");
    }
}
