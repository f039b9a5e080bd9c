//! [`Retransmitter`]: the interceptor that answers NACKs (RFC 4585 §6.2.1) from the packets
//! each outgoing stream sent in the last `[media] min_nack_queue` ms (500 by default),
//! in place of `rtc`'s responder, whose buffer is a fixed ring of packets per stream. A fixed
//! ring keeps seconds of a low-bitrate stream (each kept packet pins its receive buffer) and
//! too little of a high-bitrate one; a time bound keeps what a retransmission can still
//! repair, whatever the bitrate.
//!
//! Retransmissions go out as the original packets, on the stream's own SSRC: RTX (RFC 4588)
//! is not negotiated by this engine.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use rtc::interceptor::{
    Attribute, AttributedPacket, Interceptor, Packet, StreamInfo, TaggedPacket,
};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;

/// Most packets kept per stream whatever the bitrate and history: 1 s of ~10 Mbit/s in
/// 1,200-byte packets.
pub const MAX_PACKETS: usize = 1024;

/// The packets one outgoing stream sent in the last `keep`, oldest first.
#[derive(Default)]
struct History {
    sent: VecDeque<(Instant, rtc::rtp::Packet)>,
}

impl History {
    fn add(&mut self, now: Instant, keep: Duration, packet: rtc::rtp::Packet) {
        self.expire(now, keep);
        if self.sent.len() == MAX_PACKETS {
            self.sent.pop_front();
        }
        self.sent.push_back((now, packet));
    }

    /// Forgets what was sent more than `keep` before `now`.
    fn expire(&mut self, now: Instant, keep: Duration) {
        while self
            .sent
            .front()
            .is_some_and(|(at, _)| now.saturating_duration_since(*at) > keep)
        {
            self.sent.pop_front();
        }
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
    /// How long a sent packet can be asked for again. A NACK comes one round trip after the
    /// loss at best; one asked for later than this would come after the receiver's jitter
    /// buffer gave up on the packet. Zero keeps nothing.
    keep: Duration,
    /// Outgoing streams that negotiated `nack`, by SSRC (none when `keep` is zero).
    streams: HashMap<u32, History>,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Retransmitter {
    /// A responder that keeps each stream's last `keep` of packets (`[media] min_nack_queue`).
    pub fn new(keep: Duration) -> Self {
        Self {
            keep,
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
        history.expire(now, self.keep);
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
                if let Some(nack) = packet.as_any().downcast_ref::<TransportLayerNack>() {
                    self.answer(msg.now, nack);
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
        if let Packet::Rtp(packet) = &msg.message.packet {
            if let Some(history) = self.streams.get_mut(&packet.header.ssrc) {
                history.add(msg.now, self.keep, packet.clone());
            }
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
        if !self.keep.is_zero()
            && info
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
        let mut r = Retransmitter::new(Duration::from_secs(1));
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
        let mut r = Retransmitter::new(Duration::from_secs(1));
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
        let mut r = Retransmitter::new(Duration::from_millis(500));
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
        let mut r = Retransmitter::new(Duration::ZERO);
        r.bind_local_stream(&stream(true));
        let t0 = Instant::now();
        send(&mut r, t0, 1);
        assert!(r.streams.is_empty());
        assert_eq!(nack(&mut r, t0, 1, 0), Vec::<u16>::new());
    }

    #[test]
    fn the_history_is_the_configured_time() {
        let mut r = Retransmitter::new(Duration::from_millis(500));
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
}
