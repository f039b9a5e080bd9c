//! [`Outbox`]: the sending side of one loop PeerConnection, used on the loop thread by its
//! handler (an echo answers in place) and by the drain of its `MediaSender` queue.

use std::collections::HashMap;
use std::time::Instant;

use bytes::BytesMut;
use rtc::data_channel::RTCDataChannelId;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};

use crate::media::{DataMessage, MediaKind, RtpPacket};

/// Our outgoing stream of one kind, as negotiated.
#[derive(Debug, Clone, Copy)]
pub struct Sending {
    pub sender: RTCRtpSenderId,
    /// SSRC we send with (RFC 3550 §8).
    pub ssrc: u32,
    /// Payload type of the negotiated codec; 0 until an offer/answer settled it.
    pub payload_type: u8,
}

/// Sending side of one PeerConnection, handed to handler callbacks.
pub struct Outbox<'a> {
    pc: &'a mut RTCPeerConnection,
    sending: &'a [Option<Sending>; 2],
    receivers: &'a [Option<(RTCRtpReceiverId, u32)>; 2],
    channels: &'a HashMap<String, RTCDataChannelId>,
    now: Instant,
}

impl<'a> Outbox<'a> {
    pub(super) fn new(
        pc: &'a mut RTCPeerConnection,
        sending: &'a [Option<Sending>; 2],
        receivers: &'a [Option<(RTCRtpReceiverId, u32)>; 2],
        channels: &'a HashMap<String, RTCDataChannelId>,
        now: Instant,
    ) -> Self {
        Self {
            pc,
            sending,
            receivers,
            channels,
            now,
        }
    }

    /// Sends `packet` on our outgoing stream of `kind`, with that stream's SSRC and payload
    /// type (as webrtc-rs' tracks do); sequence number, timestamp and marker as given. `false`
    /// when we negotiated no outgoing stream of that kind or `rtc` refused it.
    pub fn send_rtp(&mut self, kind: MediaKind, packet: &RtpPacket) -> bool {
        let Some(sending) = self.sending[kind.index()] else {
            return false;
        };
        if sending.payload_type == 0 && kind == MediaKind::Video {
            return false;
        }
        let Some(mut sender) = self.pc.rtp_sender(sending.sender) else {
            return false;
        };
        let mut out = rtc::rtp::Packet {
            header: Default::default(),
            payload: packet.payload.clone(),
        };
        out.header.version = 2;
        out.header.marker = packet.marker;
        out.header.payload_type = sending.payload_type;
        out.header.sequence_number = packet.sequence_number;
        out.header.timestamp = packet.timestamp;
        out.header.ssrc = sending.ssrc;
        sender.write_rtp(self.now, out).is_ok()
    }

    /// Sends `message` on the open data channel `label`. `false` when no channel of that label
    /// is open or SCTP refused it (e.g. over its buffer).
    pub fn send_data(&mut self, label: &str, message: &DataMessage) -> bool {
        let Some(&id) = self.channels.get(label) else {
            return false;
        };
        let Some(mut channel) = self.pc.data_channel(id) else {
            return false;
        };
        match message {
            DataMessage::Text(text) => channel.send_text(self.now, text.as_str()).is_ok(),
            DataMessage::Binary(bytes) => {
                channel.send(self.now, BytesMut::from(&bytes[..])).is_ok()
            }
        }
    }

    /// Asks the remote video sender for a keyframe with a PLI (RFC 4585 §6.3.1). `false`
    /// before any remote video arrived.
    pub fn request_keyframe(&mut self) -> bool {
        let Some((receiver, media_ssrc)) = self.receivers[MediaKind::Video.index()] else {
            return false;
        };
        let Some(mut receiver) = self.pc.rtp_receiver(receiver) else {
            return false;
        };
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc,
        };
        receiver.write_rtcp(self.now, vec![Box::new(pli)]).is_ok()
    }

    /// Caps the remote senders' bitrate with REMB (draft-alvestrand-rmcat-remb), bit/s.
    /// `false` before any remote media arrived.
    pub fn send_remb(&mut self, bitrate: u64) -> bool {
        let ssrcs: Vec<u32> = self.receivers.iter().flatten().map(|(_, s)| *s).collect();
        let Some(&(receiver, _)) = self.receivers.iter().flatten().next() else {
            return false;
        };
        let Some(mut receiver) = self.pc.rtp_receiver(receiver) else {
            return false;
        };
        let remb = ReceiverEstimatedMaximumBitrate {
            sender_ssrc: 0,
            bitrate: bitrate as f32,
            ssrcs,
        };
        receiver.write_rtcp(self.now, vec![Box::new(remb)]).is_ok()
    }
}
