//! [`FeedbackToApplication`]: the interceptor that lets the RTCP a plugin acts on through
//! `rtc`'s chain. Inbound RTCP ends at the chain's terminus unless an interceptor marks it
//! `DeliverToApplication`; this one marks compounds carrying a keyframe request (PLI, FIR,
//! RFC 4585 §6.3.1 / RFC 5104 §4.3.1), a REMB, or a report (the peer's losses of what we send,
//! for `slowlink`), and passes everything else as it came.

use std::collections::VecDeque;
use std::time::Instant;

use rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use rtc::rtcp::header::PacketType;
use rtc::sansio::Protocol;

/// Where it sits in the chain: application-most, after every interceptor that consumes RTCP.
pub const SLOT: usize = 13_500;

/// RTCP packet types a plugin hears about: SR/RR (200/201) and payload-specific feedback
/// (206: PLI, FIR, REMB).
fn wanted(packet_type: PacketType) -> bool {
    matches!(
        packet_type,
        PacketType::SenderReport | PacketType::ReceiverReport | PacketType::PayloadSpecificFeedback
    )
}

/// See the module documentation.
#[derive(Default)]
pub struct FeedbackToApplication {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for FeedbackToApplication {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            if packets.iter().any(|p| wanted(p.header().packet_type)) {
                msg.message.add(Attribute::DeliverToApplication);
            }
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.write.pop_front()
    }
}

impl Interceptor for FeedbackToApplication {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
