//! Listen lines: a registry account bound to a streaming mountpoint answers its inbound calls
//! at once and plays the mountpoint's audio to the caller, for as long as the caller stays on
//! the line (a conference bridge's listen-only number, an audio stream on a plain phone).
//!
//! [`ListenTarget`] is the account's [`CallTarget`] (kind [`TargetKind::Mountpoint`]) in the
//! [`super::InboundRouter`]. For each call it takes the ring, answers with the first of PCMU/PCMA
//! in the caller's offer (RFC 3264 §6.1), and adds a sink to the mountpoint that queues its
//! audio packets for a [`ListenJob`] on `services::workers`: Opus (48 kHz) decoded, resampled
//! to 8 kHz and encoded to the caller's G.711; PCMU/PCMA (an RTP mountpoint fed with G.711)
//! re-encoded to the caller's law and cut into 20 ms packets. Either is sent from the call's
//! own RTP endpoint (its own SSRC, sequence numbers and 8 kHz timestamps). A mountpoint with
//! other audio (G.722) refuses the call with 488. The call ends on the caller's BYE (the sink
//! and the job go with it) or when the mountpoint is destroyed (BYE from us).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bifrons_sip::rtp::RtpEndpoint;
use bifrons_sip::sdp::Direction;
use bifrons_sip::{CallEvent, Codec, Sdp};
use bifrons_transcoding::g711::{self, G711Law};
use bifrons_transcoding::pipeline::OpusToG711;
use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;

use super::ringing::RingingCall;
use super::routing::{CallTarget, InboundCall, TargetKind};
use crate::media::{Codec as MediaCodec, MediaKind, RtpPacket};
use crate::services::streams::{MountpointHub, StreamSink};
use crate::services::workers::{
    input_queue, InputReceiver, InputSender, JobStatus, MediaJob, QueueStats, WorkerPool,
};

/// The ring-claim id of listen lines (browser handles claim with their handle id, which never
/// reaches this value).
const LISTEN_CLAIM: u64 = u64::MAX;

/// Samples of one 20 ms G.711 packet (8 kHz).
const G711_SAMPLES_PER_PACKET: usize = 160;

/// Audio packets queued for a listen job: 16 periods of 20 ms absorb a burst (a keyframe's
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

/// The mountpoint audio a listen job can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenSource {
    /// Opus, 48 kHz RTP clock (RTMP mountpoints, Opus RTP mountpoints).
    Opus,
    /// G.711 of this law, 8 kHz (PCMU/PCMA RTP mountpoints).
    G711(G711Law),
}

impl ListenSource {
    /// The source for a mountpoint whose audio codec is `codec` (`None`, not recorded: Opus,
    /// what RTMP mountpoints carry); `None` for audio a listen line cannot decode (G.722).
    pub fn of(codec: Option<&MediaCodec>) -> Option<Self> {
        match codec {
            None | Some(MediaCodec::Opus) => Some(Self::Opus),
            Some(MediaCodec::Pcmu) => Some(Self::G711(G711Law::Mu)),
            Some(MediaCodec::Pcma) => Some(Self::G711(G711Law::A)),
            Some(_) => None,
        }
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
    let audio = mountpoint.audio_codec();
    let Some(source) = ListenSource::of(audio.as_ref()) else {
        tracing::info!(%call_id, mountpoint = mountpoint_id, codec = ?audio, "listen call refused: the mountpoint's audio cannot be transcoded to G.711");
        ringing.decline(488).await;
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
    rtp.apply(&negotiated);
    let (to_job, from_sink) = input_queue(LISTEN_QUEUE);
    let job = match ListenJob::new(source, law, from_sink, rtp.clone(), stats.clone())
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
    tracing::info!(%call_id, caller = %ringing.caller, mountpoint = mountpoint_id, codec = negotiated.codec.name(), ?source, "listen call answered");
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

/// An audio packet of the mountpoint (Opus or G.711) on its way to the job.
struct AudioPacket {
    seq: u16,
    timestamp: u32,
    payload: Bytes,
}

/// The mountpoint sink of a listen call: audio packets into the job's queue, video ignored.
struct ListenSink {
    queue: InputSender<AudioPacket>,
    closed: AtomicBool,
}

impl StreamSink for ListenSink {
    fn deliver(&self, kind: MediaKind, packet: &RtpPacket) -> bool {
        if kind != MediaKind::Audio {
            return true;
        }
        self.queue
            .try_push(AudioPacket {
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

/// How a listen job turns the mountpoint's audio into the caller's G.711.
enum Transcode {
    /// Opus decoded, resampled 48 → 8 kHz, encoded (one 20 ms packet in, one out).
    Opus(Box<OpusToG711>),
    /// G.711 decoded and encoded in the caller's law, re-cut into 20 ms packets.
    G711 {
        from: G711Law,
        /// Decoded samples not sent yet (less than a packet between ticks).
        pending: Vec<i16>,
        /// The packet being encoded (reused).
        encoded: Vec<u8>,
        /// The packet being decoded (reused).
        decoded: Vec<i16>,
    },
}

/// The transcoding job of one listen call: every 20 ms, the mountpoint's audio packets
/// decoded and encoded to G.711 (`law`), sent on the call's endpoint.
pub struct ListenJob {
    input: InputReceiver<AudioPacket>,
    transcode: Transcode,
    law: G711Law,
    rtp: Arc<RtpEndpoint>,
    stats: Arc<ListenStats>,
    expected: Option<u16>,
}

impl ListenJob {
    fn new(
        source: ListenSource,
        law: G711Law,
        input: InputReceiver<AudioPacket>,
        rtp: Arc<RtpEndpoint>,
        stats: Arc<ListenStats>,
    ) -> bifrons_transcoding::Result<Self> {
        let transcode = match source {
            ListenSource::Opus => Transcode::Opus(Box::new(OpusToG711::new(law)?)),
            ListenSource::G711(from) => Transcode::G711 {
                from,
                pending: Vec::with_capacity(8 * G711_SAMPLES_PER_PACKET),
                encoded: Vec::with_capacity(G711_SAMPLES_PER_PACKET),
                decoded: Vec::with_capacity(8 * G711_SAMPLES_PER_PACKET),
            },
        };
        Ok(Self {
            input,
            transcode,
            law,
            rtp,
            stats,
            expected: None,
        })
    }

    /// Sends one G.711 payload (one byte per 8 kHz sample).
    fn send(rtp: &RtpEndpoint, stats: &ListenStats, payload: &[u8]) {
        if rtp.send_audio(payload, payload.len() as u32).is_ok() {
            stats.packets_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Opus in: concealment for up to [`MAX_CONCEALED`] lost packets, then the packet.
    fn opus(&mut self, packet: &AudioPacket, lost: u16) {
        let Transcode::Opus(pipeline) = &mut self.transcode else {
            return;
        };
        for i in (1..=lost).rev() {
            let ts = packet
                .timestamp
                .wrapping_sub(OPUS_TICKS_PER_PACKET * u32::from(i));
            if let Ok(Some(p)) = pipeline.lost(ts) {
                Self::send(&self.rtp, &self.stats, &p.payload);
            }
        }
        match pipeline.push(&packet.payload, packet.timestamp) {
            Ok(Some(p)) => Self::send(&self.rtp, &self.stats, &p.payload),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "listen line: undecodable Opus packet"),
        }
    }

    /// G.711 in: decoded, then every full 20 ms encoded in the caller's law and sent (a lost
    /// packet leaves no hole: the caller's timestamps just run on).
    fn g711(&mut self, packet: &AudioPacket) {
        let Transcode::G711 {
            from,
            pending,
            encoded,
            decoded,
        } = &mut self.transcode
        else {
            return;
        };
        g711::decode_into(*from, &packet.payload, decoded);
        pending.extend_from_slice(decoded);
        while pending.len() >= G711_SAMPLES_PER_PACKET {
            g711::encode_into(self.law, &pending[..G711_SAMPLES_PER_PACKET], encoded);
            pending.drain(..G711_SAMPLES_PER_PACKET);
            Self::send(&self.rtp, &self.stats, encoded);
        }
    }
}

impl MediaJob for ListenJob {
    fn tick(&mut self, _now: Duration) -> JobStatus {
        for _ in 0..self.input.queued() {
            let Some(packet) = self.input.try_recv() else {
                break;
            };
            let Some(lost) = gap_before(self.expected, packet.seq) else {
                continue;
            };
            self.expected = Some(packet.seq.wrapping_add(1));
            match self.transcode {
                Transcode::Opus(_) => self.opus(&packet, lost),
                Transcode::G711 { .. } => self.g711(&packet),
            }
        }
        JobStatus::Continue
    }

    fn queues(&self) -> Vec<QueueStats> {
        vec![self.input.stats()]
    }

    fn name(&self) -> &str {
        match self.transcode {
            Transcode::Opus(_) => "listen opus→g711",
            Transcode::G711 { .. } => "listen g711→g711",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bifrons_sip::rtp::{RtpEvent, RtpParams};
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

    /// The gateway's endpoint and the caller's, sending to each other with `law`.
    async fn endpoints(law: G711Law) -> (Arc<RtpEndpoint>, RtpEndpoint) {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let sender = Arc::new(RtpEndpoint::bind(ip, 42000..=42999).await.unwrap());
        let caller = RtpEndpoint::bind(ip, 43000..=43999).await.unwrap();
        let params = RtpParams {
            pt: law.payload_type(),
            dtmf_pt: None,
            clock_rate: 8000,
            dtmf_rate: 8000,
            ptime: 20,
        };
        sender.configure(caller.local_addr().unwrap(), params);
        caller.configure(sender.local_addr().unwrap(), params);
        (sender, caller)
    }

    /// Decodes what `caller` receives (`law`) until `want` samples or 5 s of silence; also
    /// returns the payload sizes.
    async fn heard(caller: &RtpEndpoint, law: G711Law, want: usize) -> (Vec<i16>, Vec<usize>) {
        let (mut pcm, mut sizes) = (Vec::new(), Vec::new());
        while pcm.len() < want {
            match tokio::time::timeout(Duration::from_secs(5), caller.recv()).await {
                Ok(Some(RtpEvent::Audio { payload, .. })) => {
                    let mut samples = Vec::new();
                    g711::decode_into(law, &payload, &mut samples);
                    sizes.push(payload.len());
                    pcm.extend(samples);
                }
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        (pcm, sizes)
    }

    /// Asserts that `pcm` is a loud tone at `hz` (8 kHz samples).
    fn assert_tone(pcm: &[i16], hz: f32) {
        let at = power_at(pcm, 8000.0, hz);
        for other in [300.0, 600.0, 1500.0, 2500.0] {
            if (other - hz).abs() > 100.0 {
                assert!(
                    at > 100.0 * power_at(pcm, 8000.0, other),
                    "{hz} Hz dominates {other} Hz"
                );
            }
        }
        let rms =
            (pcm.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / pcm.len() as f64).sqrt();
        assert!(rms > 2000.0, "rms {rms}");
    }

    #[tokio::test]
    async fn a_g711_mountpoint_reaches_the_caller_in_its_law_in_20_ms_packets() {
        let (sender, caller) = endpoints(G711Law::Mu).await;
        let (tx, rx) = input_queue(64);
        let stats = Arc::new(ListenStats::default());
        let mut job = ListenJob::new(
            ListenSource::G711(G711Law::A),
            G711Law::Mu,
            rx,
            sender,
            stats.clone(),
        )
        .unwrap();
        let sink = ListenSink {
            queue: tx,
            closed: AtomicBool::new(false),
        };
        // ffmpeg's RTP muxer sends G.711 in packets of any size: 400 samples (50 ms) here.
        let tone: Vec<i16> = (0..400 * 20)
            .map(|i| {
                (8000.0 * (2.0 * std::f32::consts::PI * 800.0 * i as f32 / 8000.0).sin()) as i16
            })
            .collect();
        for (n, chunk) in tone.chunks(400).enumerate() {
            let mut payload = Vec::new();
            g711::encode_into(G711Law::A, chunk, &mut payload);
            let packet = RtpPacket {
                payload_type: 8,
                sequence_number: n as u16,
                timestamp: n as u32 * 400,
                ssrc: 1,
                marker: false,
                payload: payload.into(),
            };
            assert!(sink.deliver(MediaKind::Audio, &packet));
            job.tick(Duration::from_millis(50 * n as u64));
        }
        assert_eq!(stats.packets_sent.load(Ordering::Relaxed), 50);
        let (pcm, sizes) = heard(&caller, G711Law::Mu, 50 * 160).await;
        assert!(sizes.iter().all(|&s| s == 160), "{sizes:?}");
        assert_eq!(pcm.len(), 50 * 160);
        assert_tone(&pcm[160..], 800.0);
        assert_eq!(job.name(), "listen g711→g711");
    }

    #[test]
    fn g722_mountpoints_cannot_be_heard() {
        assert_eq!(ListenSource::of(None), Some(ListenSource::Opus));
        assert_eq!(
            ListenSource::of(Some(&MediaCodec::Opus)),
            Some(ListenSource::Opus)
        );
        assert_eq!(
            ListenSource::of(Some(&MediaCodec::Pcma)),
            Some(ListenSource::G711(G711Law::A))
        );
        assert_eq!(ListenSource::of(Some(&MediaCodec::G722)), None);
    }

    #[tokio::test]
    async fn a_1khz_opus_tone_reaches_the_caller_as_1khz_pcmu() {
        let (sender, caller) = endpoints(G711Law::Mu).await;
        let (tx, rx) = input_queue(64);
        let stats = Arc::new(ListenStats::default());
        let mut job = ListenJob::new(
            ListenSource::Opus,
            G711Law::Mu,
            rx,
            sender.clone(),
            stats.clone(),
        )
        .unwrap();
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
        let (pcm, _) = heard(&caller, G711Law::Mu, 40 * 160).await;
        assert!(pcm.len() >= 40 * 160, "got {} samples", pcm.len());
        assert_tone(&pcm[pcm.len() - 20 * 160..], 1000.0);
    }
}
