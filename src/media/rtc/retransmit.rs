//! [`Retransmitter`]: the interceptor that answers NACKs (RFC 4585 §6.2.1) from the packets
//! each outgoing stream sent lately, in place of `rtc`'s responder, whose buffer is a fixed ring
//! of packets per stream. A fixed ring keeps seconds of a low-bitrate stream (each kept packet
//! pins its receive buffer) and too little of a high-bitrate one; a time bound keeps what a
//! retransmission can still repair, whatever the bitrate.
//!
//! How long is Janus 1.x's rule: the stream's round trip time + 100 ms, at least `[media]
//! min_nack_queue` (200 ms by default) and at most 1 s. The round trip comes from the peer's
//! RTCP reception reports about the stream (RFC 3550 §6.4.1): the arrival time minus when our
//! sender report they echo left, minus the delay they give. The first report sets the round
//! trip + 100 ms, each later one moves it 1/8 of the way (an exponential moving average, so
//! one late report does not swing it); until the first, a stream keeps the minimum.
//!
//! The minimum is read on every packet, so the Admin API's `set_min_nack_queue` applies to
//! every stream at once. 0 keeps nothing, whatever the round trip.
//!
//! Retransmissions go out as the original packets, on the stream's own SSRC: RTX (RFC 4588)
//! is not negotiated by this engine.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rtc::interceptor::{
    Attribute, AttributedPacket, Interceptor, Packet, StreamInfo, TaggedPacket,
};
use rtc::rtcp::receiver_report::ReceiverReport;
use rtc::rtcp::reception_report::ReceptionReport;
use rtc::rtcp::sender_report::SenderReport;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;

use crate::config::MAX_NACK_QUEUE_MS;
use crate::media::MinNackQueue;

/// Most packets kept per stream whatever the bitrate and history: 1 s of ~10 Mbit/s in
/// 1,200-byte packets.
pub const MAX_PACKETS: usize = 1024;

/// Longest a stream keeps what it sent, whatever the round trip: Janus' ceiling (1 s).
const MAX_KEEP: Duration = Duration::from_millis(MAX_NACK_QUEUE_MS as u64);

/// Added to the round trip time: a NACK comes at best one round trip after the loss, plus the
/// receiver's wait before it declares a packet lost (Janus' margin, 100 ms).
const RTT_MARGIN: Duration = Duration::from_millis(100);

/// Sender reports remembered per stream, to match the one a reception report echoes (LSR):
/// reports go out about once a second, and a receiver echoes the newest it got.
const SENT_REPORTS: usize = 4;

/// The packets one outgoing stream sent lately, oldest first, and how long it keeps them.
#[derive(Default)]
struct History {
    sent: VecDeque<(Instant, rtc::rtp::Packet)>,
    /// The round trip + [`RTT_MARGIN`], averaged over the reports, at most [`MAX_KEEP`];
    /// `None` before the first. What is kept is this within the minimum: [`History::window`].
    keep: Option<Duration>,
    /// Our last sender reports: the middle 32 bits of their NTP timestamp (RFC 3550 §6.4.1
    /// LSR) and when they left, newest at `next - 1` (a ring).
    reports: [Option<(u32, Instant)>; SENT_REPORTS],
    next: usize,
}

impl History {
    /// How long a sent packet stays while the minimum is `min`: `keep` within `min` and
    /// [`MAX_KEEP`] (`min` before the first report), or nothing when `min` is zero.
    fn window(&self, min: Duration) -> Duration {
        if min.is_zero() {
            Duration::ZERO
        } else {
            self.keep.unwrap_or(Duration::ZERO).clamp(min, MAX_KEEP)
        }
    }

    fn add(&mut self, now: Instant, min: Duration, packet: rtc::rtp::Packet) {
        if min.is_zero() {
            self.sent.clear();
            return;
        }
        self.expire(now, min);
        if self.sent.len() == MAX_PACKETS {
            self.sent.pop_front();
        }
        self.sent.push_back((now, packet));
    }

    /// Forgets what was sent longer ago than the window allows at `now`.
    fn expire(&mut self, now: Instant, min: Duration) {
        let window = self.window(min);
        while self
            .sent
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > window)
        {
            self.sent.pop_front();
        }
    }

    /// Remembers that our sender report with NTP timestamp `ntp` (64-bit, RFC 3550 §4) left at
    /// `now`.
    fn sent_report(&mut self, now: Instant, ntp: u64) {
        self.reports[self.next] = Some(((ntp >> 16) as u32, now));
        self.next = (self.next + 1) % SENT_REPORTS;
    }

    /// The round trip a reception report about this stream gives when it arrives at `now`:
    /// `None` when it echoes no sender report we remember (LSR 0 means none yet).
    fn round_trip(&self, now: Instant, report: &ReceptionReport) -> Option<Duration> {
        if report.last_sender_report == 0 {
            return None;
        }
        let (_, sent) = self
            .reports
            .iter()
            .flatten()
            .find(|(lsr, _)| *lsr == report.last_sender_report)?;
        // DLSR is in units of 1/65,536 s.
        let held = Duration::from_micros(u64::from(report.delay) * 1_000_000 / 65_536);
        Some(now.saturating_duration_since(*sent).saturating_sub(held))
    }

    /// Sets `keep` to the round trip + [`RTT_MARGIN`] (at most [`MAX_KEEP`]) on the first
    /// report, then moves it 1/8 of the way there on each.
    fn follow(&mut self, rtt: Duration) {
        let target = (rtt + RTT_MARGIN).min(MAX_KEEP);
        self.keep = Some(self.keep.map_or(target, |keep| (keep * 7 + target) / 8));
    }

    /// The kept packet with sequence number `seq`. Packets are kept in sending order, which
    /// is sequence order but for a sender's own reordering: the position is computed from the
    /// oldest, then searched for.
    fn get(&self, seq: u16) -> Option<&rtc::rtp::Packet> {
        let first = self.sent.front()?.1.header.sequence_number;
        let guess = usize::from(seq.wrapping_sub(first));
        if let Some((_, p)) = self.sent.get(guess) {
            if p.header.sequence_number == seq {
                return Some(p);
            }
        }
        self.sent
            .iter()
            .rev()
            .map(|(_, p)| p)
            .find(|p| p.header.sequence_number == seq)
    }
}

/// See the module documentation.
pub struct Retransmitter {
    /// The shortest a stream keeps what it sent (`[media] min_nack_queue`, as the Admin API
    /// may change it). A NACK comes one round trip after the loss at best; one asked for later
    /// than the history would come after the receiver's jitter buffer gave up on the packet.
    /// Zero keeps nothing.
    min_keep: MinNackQueue,
    /// Outgoing streams that negotiated `nack`, by SSRC.
    streams: HashMap<u32, History>,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Retransmitter {
    /// A responder whose streams keep at least `min_keep` of packets (`[media]
    /// min_nack_queue`), more when their round trip asks for it.
    pub fn new(min_keep: MinNackQueue) -> Self {
        Self {
            min_keep,
            streams: HashMap::new(),
            read: VecDeque::new(),
            write: VecDeque::new(),
        }
    }

    /// Queues the packets `nack` asks for that are still kept.
    fn answer(&mut self, now: Instant, nack: &TransportLayerNack) {
        let Some(history) = self.streams.get_mut(&nack.media_ssrc) else {
            return;
        };
        history.expire(now, self.min_keep.get());
        for pair in &nack.nacks {
            // RFC 4585 §6.2.1: the packet id, then a bit per following packet.
            let lost = std::iter::once(pair.packet_id).chain(
                (0..16u16)
                    .filter(|bit| pair.lost_packets & (1 << bit) != 0)
                    .map(|bit| pair.packet_id.wrapping_add(bit + 1)),
            );
            for seq in lost {
                if let Some(packet) = history.get(seq) {
                    // Tagged so that what counts bytes on the wire downstream counts it as sent
                    // again.
                    self.write.push_back(TaggedPacket {
                        now,
                        transport: TransportContext::default(),
                        message: AttributedPacket::new(Packet::Rtp(packet.clone()))
                            .with(Attribute::Retransmission),
                    });
                }
            }
        }
    }

    /// Follows the round trip that each of `reports` about one of our streams gives.
    fn reception_reports(&mut self, now: Instant, reports: &[ReceptionReport]) {
        for report in reports {
            if let Some(history) = self.streams.get_mut(&report.ssrc) {
                if let Some(rtt) = history.round_trip(now, report) {
                    history.follow(rtt);
                    tracing::debug!(
                        ssrc = report.ssrc,
                        rtt_ms = rtt.as_secs_f64() * 1000.0,
                        keep_ms = history.window(self.min_keep.get()).as_millis() as u64,
                        "NACK history follows the round trip"
                    );
                }
            }
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for Retransmitter {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                let packet = packet.as_any();
                if let Some(nack) = packet.downcast_ref::<TransportLayerNack>() {
                    self.answer(msg.now, nack);
                } else if let Some(rr) = packet.downcast_ref::<ReceiverReport>() {
                    self.reception_reports(msg.now, &rr.reports);
                } else if let Some(sr) = packet.downcast_ref::<SenderReport>() {
                    self.reception_reports(msg.now, &sr.reports);
                }
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        match &msg.message.packet {
            Packet::Rtp(packet) => {
                if let Some(history) = self.streams.get_mut(&packet.header.ssrc) {
                    history.add(msg.now, self.min_keep.get(), packet.clone());
                }
            }
            Packet::Rtcp(packets) => {
                for sr in packets
                    .iter()
                    .filter_map(|p| p.as_any().downcast_ref::<SenderReport>())
                {
                    if let Some(history) = self.streams.get_mut(&sr.ssrc) {
                        history.sent_report(msg.now, sr.ntp_time);
                    }
                }
            }
            _ => {}
        }
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for Retransmitter {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        // Plain `nack` (not `nack pli`) is what says the receiver asks for packets again.
        if info
            .rtcp_feedback
            .iter()
            .any(|fb| fb.typ == "nack" && fb.parameter.is_empty())
        {
            self.streams.entry(info.ssrc).or_default();
        }
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.streams.remove(&info.ssrc);
    }

    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}

    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::interceptor::RTCPFeedback;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;

    const SSRC: u32 = 0x1234;

    fn stream(nack: bool) -> StreamInfo {
        StreamInfo {
            ssrc: SSRC,
            rtcp_feedback: if nack {
                vec![RTCPFeedback {
                    typ: "nack".into(),
                    parameter: String::new(),
                }]
            } else {
                vec![]
            },
            ..Default::default()
        }
    }

    fn responder(min_nack_queue_ms: u32) -> Retransmitter {
        Retransmitter::new(MinNackQueue::new(min_nack_queue_ms))
    }

    fn rtp(seq: u16) -> TaggedPacket {
        let mut packet = rtc::rtp::Packet::default();
        packet.header.ssrc = SSRC;
        packet.header.sequence_number = seq;
        TaggedPacket {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtp(packet)),
        }
    }

    fn send(r: &mut Retransmitter, at: Instant, seq: u16) {
        let mut msg = rtp(seq);
        msg.now = at;
        r.handle_write(msg).unwrap();
        let out = r.poll_write().expect("the packet itself goes on");
        assert!(out.message.attributes.is_empty());
    }

    /// Sends a NACK for `packet_id` (+ `bitmap`) at `at`; the sequence numbers sent again.
    fn nack(r: &mut Retransmitter, at: Instant, packet_id: u16, lost_packets: u16) -> Vec<u16> {
        let nack = TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: SSRC,
            nacks: vec![NackPair {
                packet_id,
                lost_packets,
            }],
        };
        r.handle_read(TaggedPacket {
            now: at,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(nack)])),
        })
        .unwrap();
        assert!(r.poll_read().is_some(), "the NACK itself goes on");
        std::iter::from_fn(|| r.poll_write())
            .map(|m| {
                assert!(m
                    .message
                    .attributes
                    .iter()
                    .any(|a| matches!(a, Attribute::Retransmission)));
                match m.message.packet {
                    Packet::Rtp(p) => p.header.sequence_number,
                    _ => panic!("not RTP"),
                }
            })
            .collect()
    }

    #[test]
    fn a_nack_is_answered_from_what_was_sent_in_the_last_second() {
        let mut r = responder(1000);
        r.bind_local_stream(&stream(true));
        let t0 = Instant::now();
        // 50 packets/s for 2 s, across the sequence number wrap.
        for i in 0..100u16 {
            send(
                &mut r,
                t0 + Duration::from_millis(20 * u64::from(i)),
                65_500u16.wrapping_add(i),
            );
        }
        let now = t0 + Duration::from_millis(1_980);
        // 65_500 + 60 = 24 (wrapped), sent at 1.2 s: kept; bits ask for 25 and 27.
        assert_eq!(nack(&mut r, now, 24, 0b101), vec![24, 25, 27]);
        // 65_500 + 40 = 4 (wrapped), sent at 0.8 s: older than 1 s, gone.
        assert_eq!(nack(&mut r, now, 4, 0), Vec::<u16>::new());
        // Never sent.
        assert_eq!(nack(&mut r, now, 1_000, 0), Vec::<u16>::new());
        assert!(r.streams[&SSRC].sent.len() <= 51);
    }

    #[test]
    fn a_reordered_send_is_still_found_and_the_count_is_bounded() {
        let mut r = responder(1000);
        r.bind_local_stream(&stream(true));
        let t0 = Instant::now();
        for seq in [1u16, 3, 2, 4] {
            send(&mut r, t0, seq);
        }
        assert_eq!(nack(&mut r, t0, 2, 0b11), vec![2, 3, 4]);
        for seq in 0..(MAX_PACKETS as u16 + 10) {
            send(&mut r, t0, 100 + seq);
        }
        assert_eq!(r.streams[&SSRC].sent.len(), MAX_PACKETS);
        assert_eq!(nack(&mut r, t0, 100, 0), Vec::<u16>::new());
        assert_eq!(nack(&mut r, t0, 110, 0), vec![110]);
    }

    #[test]
    fn a_stream_without_nack_keeps_nothing() {
        let mut r = responder(500);
        r.bind_local_stream(&stream(false));
        let t0 = Instant::now();
        send(&mut r, t0, 1);
        assert!(r.streams.is_empty());
        assert_eq!(nack(&mut r, t0, 1, 0), Vec::<u16>::new());
        r.bind_local_stream(&stream(true));
        send(&mut r, t0, 2);
        r.unbind_local_stream(&stream(true));
        assert!(r.streams.is_empty());
    }

    #[test]
    fn a_zero_history_keeps_nothing_and_answers_nothing() {
        let mut r = responder(0);
        r.bind_local_stream(&stream(true));
        let t0 = Instant::now();
        send(&mut r, t0, 1);
        assert!(r.streams[&SSRC].sent.is_empty());
        assert_eq!(nack(&mut r, t0, 1, 0), Vec::<u16>::new());
    }

    #[test]
    fn the_minimum_changes_at_run_time_for_streams_already_bound() {
        let min = MinNackQueue::new(0);
        let mut r = Retransmitter::new(min.clone());
        r.bind_local_stream(&stream(true));
        let t0 = Instant::now();
        send(&mut r, t0, 1);
        assert_eq!(nack(&mut r, t0, 1, 0), Vec::<u16>::new());
        // As the Admin API's set_min_nack_queue does.
        min.set(200);
        send(&mut r, t0, 2);
        assert_eq!(nack(&mut r, t0 + Duration::from_millis(150), 2, 0), vec![2]);
        min.set(100);
        assert_eq!(
            nack(&mut r, t0 + Duration::from_millis(150), 2, 0),
            Vec::<u16>::new()
        );
        min.set(500);
        send(&mut r, t0, 3);
        assert_eq!(nack(&mut r, t0 + Duration::from_millis(450), 3, 0), vec![3]);
        min.set(0);
        assert_eq!(
            nack(&mut r, t0 + Duration::from_millis(450), 3, 0),
            Vec::<u16>::new()
        );
        send(&mut r, t0, 4);
        assert!(r.streams[&SSRC].sent.is_empty());
    }

    #[test]
    fn with_no_report_a_stream_keeps_the_minimum() {
        let mut r = responder(500);
        r.bind_local_stream(&stream(true));
        let t0 = Instant::now();
        for i in 0..50u16 {
            send(&mut r, t0 + Duration::from_millis(20 * u64::from(i)), i);
        }
        let now = t0 + Duration::from_millis(980);
        // Sent at 0.48 s and 0.50 s: 500 ms and 480 ms before now, kept; 0.46 s is not.
        assert_eq!(nack(&mut r, now, 23, 0b11), vec![24, 25]);
        assert!(r.streams[&SSRC].sent.len() <= 26);
    }

    /// Our sender report for the stream, NTP timestamp `ntp`, written at `at`.
    fn send_report(r: &mut Retransmitter, at: Instant, ntp: u64) {
        let sr = SenderReport {
            ssrc: SSRC,
            ntp_time: ntp,
            ..Default::default()
        };
        r.handle_write(TaggedPacket {
            now: at,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtcp(vec![Box::new(sr)])),
        })
        .unwrap();
        assert!(r.poll_write().is_some(), "the report itself goes on");
    }

    /// The peer's receiver report about `ssrc`, arriving at `at`, echoing `lsr` after holding
    /// it `held` (in a sender report of its own when `in_sr`).
    fn receive_report(
        r: &mut Retransmitter,
        at: Instant,
        ssrc: u32,
        lsr: u32,
        held: Duration,
        in_sr: bool,
    ) {
        let reports = vec![ReceptionReport {
            ssrc,
            last_sender_report: lsr,
            delay: (held.as_micros() * 65_536 / 1_000_000) as u32,
            ..Default::default()
        }];
        let packet: Box<dyn rtc::rtcp::Packet> = if in_sr {
            Box::new(SenderReport {
                ssrc: 9,
                reports,
                ..Default::default()
            })
        } else {
            Box::new(ReceiverReport {
                ssrc: 9,
                reports,
                ..Default::default()
            })
        };
        r.handle_read(TaggedPacket {
            now: at,
            transport: TransportContext::default(),
            message: AttributedPacket::new(Packet::Rtcp(vec![packet])),
        })
        .unwrap();
        assert!(r.poll_read().is_some(), "the report itself goes on");
    }

    /// `reports` exchanges of a report each, the peer answering after `rtt` (half each way)
    /// and holding our report `held`, starting at `t`; returns the time after the last.
    fn exchange(r: &mut Retransmitter, mut t: Instant, reports: u32, rtt: Duration) -> Instant {
        // NTP timestamps never repeat, across calls too.
        static SECONDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0x1000);
        let held = Duration::from_millis(30);
        for i in 0..reports {
            let second = SECONDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let ntp = (second << 32) | 0x8000_0000;
            send_report(r, t, ntp);
            receive_report(
                r,
                t + rtt + held,
                SSRC,
                (ntp >> 16) as u32,
                held,
                i % 2 == 1,
            );
            t += Duration::from_secs(1);
        }
        t
    }

    /// How long the stream keeps what it sent now.
    fn keep(r: &Retransmitter) -> Duration {
        r.streams[&SSRC].window(r.min_keep.get())
    }

    #[test]
    fn the_history_follows_the_round_trip_plus_100_ms_within_its_bounds() {
        let min = MinNackQueue::new(200);
        let mut r = Retransmitter::new(min.clone());
        r.bind_local_stream(&stream(true));
        let ms = |r: &Retransmitter| keep(r).as_secs_f64() * 1000.0;
        assert_eq!(
            keep(&r),
            Duration::from_millis(200),
            "no report yet: the minimum"
        );
        // The first report sets it: a 400 ms round trip, 500 ms.
        let t = exchange(&mut r, Instant::now(), 1, Duration::from_millis(400));
        assert!((ms(&r) - 500.0).abs() < 0.1, "{} ms", ms(&r));
        // Then 1/8 of the way on each: towards 1 s for a 2 s round trip, never past it.
        let t = exchange(&mut r, t, 1, Duration::from_secs(2));
        assert!((ms(&r) - 562.5).abs() < 0.1, "{} ms", ms(&r));
        let t = exchange(&mut r, t, 80, Duration::from_secs(2));
        assert!(keep(&r) > Duration::from_millis(990) && keep(&r) <= MAX_KEEP);
        // Back on a fast link: down to the minimum, never below.
        exchange(&mut r, t, 80, Duration::from_micros(300));
        assert!((200.0..201.0).contains(&ms(&r)), "{} ms", ms(&r));
        // A lower minimum applies at once: the round trip's own 100.3 ms.
        min.set(50);
        assert!((100.0..101.0).contains(&ms(&r)), "{} ms", ms(&r));
    }

    #[test]
    fn a_nack_after_the_minimum_is_answered_once_the_round_trip_asks_for_it() {
        let mut r = responder(200);
        r.bind_local_stream(&stream(true));
        let t0 = Instant::now();
        send(&mut r, t0, 1);
        assert_eq!(
            nack(&mut r, t0 + Duration::from_millis(450), 1, 0),
            Vec::<u16>::new()
        );
        let t = exchange(&mut r, t0, 1, Duration::from_millis(400));
        send(&mut r, t, 2);
        assert_eq!(nack(&mut r, t + Duration::from_millis(450), 2, 0), vec![2]);
        assert_eq!(
            nack(&mut r, t + Duration::from_millis(520), 2, 0),
            Vec::<u16>::new()
        );
    }

    #[test]
    fn reports_that_echo_no_report_of_ours_or_another_stream_change_nothing() {
        let mut r = responder(50);
        r.bind_local_stream(&stream(true));
        let t0 = Instant::now();
        // A report of ours whose LSR (the middle 32 bits) is 0: "no sender report yet".
        send_report(&mut r, t0, 0xaaaa_0000_0000_bbbb);
        send_report(&mut r, t0, 0x1234_5678_9abc_def0);
        let lsr = 0x5678_9abc;
        let at = t0 + Duration::from_millis(900);
        receive_report(&mut r, at, SSRC, 0, Duration::ZERO, false);
        receive_report(&mut r, at, SSRC, lsr + 1, Duration::ZERO, false);
        receive_report(&mut r, at, SSRC + 1, lsr, Duration::ZERO, true);
        assert_eq!(keep(&r), Duration::from_millis(50));
        // A delay longer than the whole exchange (a bogus report): a round trip of zero, so the
        // margin alone.
        receive_report(&mut r, at, SSRC, lsr, Duration::from_secs(5), false);
        assert_eq!(keep(&r), Duration::from_millis(100));
        // 900 ms: 1/8 of the way from 100 to 1000.
        receive_report(&mut r, at, SSRC, lsr, Duration::ZERO, false);
        assert_eq!(keep(&r), Duration::from_micros(212_500));
    }
}
