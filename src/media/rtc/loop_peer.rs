//! One PeerConnection inside an event loop: the sans-I/O `rtc` state machine, what it
//! negotiated, and the [`PeerHandler`] its inbound media goes to.
//!
//! Nothing here does I/O or reads the clock: the loop hands in datagrams and instants and
//! sends what [`LoopPeer::drain`] gives back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc::data_channel::RTCDataChannelMessage;
use rtc::interceptor::Registry;
use rtc::interceptor::{NackGeneratorBuilder, NackResponderBuilder, Slot};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::certificate::RTCCertificate;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RTCPFeedback;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use rtc::data_channel::RTCDataChannelId;

use crate::media::{DataMessage, MediaError, MediaKind, RtpPacket};

/// What the loop tells the owner of a PeerConnection; called on the loop's thread, so it must
/// not block. `out` sends on the same PeerConnection at once (an echo answers in place).
pub trait PeerHandler: Send {
    /// ICE and DTLS are connected.
    fn on_connected(&mut self) {}
    /// An RTP packet of the remote stream of `kind`.
    fn on_rtp(&mut self, kind: MediaKind, packet: RtpPacket, out: &mut Outbox<'_>);
    /// A message on the data channel `label` (RFC 8831); `out` can answer on it at once.
    fn on_data(&mut self, _label: &str, _message: DataMessage, _out: &mut Outbox<'_>) {}
    /// The connection failed or closed; the loop forgets the PeerConnection after this.
    fn on_closed(&mut self) {}
}

/// Sending side of one PeerConnection, handed to [`PeerHandler`] callbacks.
pub struct Outbox<'a> {
    pc: &'a mut RTCPeerConnection,
    sending: &'a [Option<Sending>; 2],
    receivers: &'a [Option<(RTCRtpReceiverId, u32)>; 2],
    channels: &'a HashMap<String, RTCDataChannelId>,
    now: Instant,
}

impl Outbox<'_> {
    /// Sends `packet` on our outgoing stream of `kind`, with that stream's SSRC and payload
    /// type. `false` when we negotiated no outgoing stream of that kind or `rtc` refused it.
    pub fn send_rtp(&mut self, kind: MediaKind, packet: &RtpPacket) -> bool {
        let Some(sending) = self.sending[kind.index()] else {
            return false;
        };
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
}

/// Our outgoing stream of one kind, as negotiated.
#[derive(Debug, Clone, Copy)]
struct Sending {
    sender: RTCRtpSenderId,
    ssrc: u32,
    payload_type: u8,
}

/// A PeerConnection driven by a loop.
pub struct LoopPeer {
    pc: RTCPeerConnection,
    handler: Box<dyn PeerHandler>,
    local_addr: SocketAddr,
    sending: [Option<Sending>; 2],
    /// Remote stream per kind: its receiver and SSRC, learnt from its first packet.
    receivers: [Option<(RTCRtpReceiverId, u32)>; 2],
    /// Kind of each remote track, from its `OnOpen` event.
    tracks: HashMap<String, (MediaKind, RTCRtpReceiverId)>,
    /// Open data channels by label (SCTP runs only once an `m=application` is negotiated).
    channels: HashMap<String, RTCDataChannelId>,
    ufrag: String,
    closed: bool,
}

/// What every PeerConnection of the process shares: one DTLS certificate (no key generation
/// per PeerConnection).
#[derive(Clone)]
pub struct PeerTemplate {
    /// The DTLS certificate of every PeerConnection.
    pub certificate: Arc<RTCCertificate>,
}

impl PeerTemplate {
    /// Generates the process' self-signed ECDSA P-256 certificate once.
    ///
    /// Errors: no crypto provider or key generation failed, as [`MediaError::Certificate`].
    pub fn generate() -> Result<Self, MediaError> {
        let err = |e: String| MediaError::Certificate(e);
        let provider = rtc::crypto::default_provider().map_err(|e| err(e.to_string()))?;
        let params =
            rtc::peer_connection::certificate::CertificateParams::new(vec!["bifrons".into()])
                .map_err(|e| err(e.to_string()))?;
        let certificate = RTCCertificate::generate(
            provider.crypto(),
            rtc::crypto::SignatureScheme::EcdsaP256Sha256,
            params,
        )
        .map_err(|e| err(e.to_string()))?;
        Ok(Self {
            certificate: Arc::new(certificate),
        })
    }
}

/// Opus as offered by browsers (RFC 7587): 48 kHz, 2 channels.
fn opus() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

/// VP8 (RFC 7741) at 90 kHz.
fn vp8() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_VP8.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![],
    }
}

/// Packets each outgoing stream keeps for answering NACKs (RFC 4585 §6.2.1): 256 is over 1 s
/// of video up to ~3 Mbit/s in 1,200-byte packets and 5 s of Opus. `rtc` keeps 1,024 by
/// default: ~1.2 MB per video stream once full, most of a loaded PeerConnection's memory.
const NACK_RESPONDER_PACKETS: u16 = 256;

/// `rtc`'s default interceptors (NACK both ways with `nack`/`nack pli` feedback on video, TWCC
/// receiver, RTCP sender and receiver reports) with the NACK buffer bounded by
/// [`NACK_RESPONDER_PACKETS`].
fn interceptors(media: &mut MediaEngine) -> Result<Registry, rtc::shared::error::Error> {
    for parameter in ["", "pli"] {
        media.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RtpCodecKind::Video,
        );
    }
    let registry = Registry::new()
        .with(
            Slot::NackResponder,
            NackResponderBuilder::new()
                .with_size(NACK_RESPONDER_PACKETS)
                .build(),
        )
        .with(Slot::NackGenerator, NackGeneratorBuilder::new().build());
    let registry = configure_twcc_receiver_only(registry, media)?;
    Ok(configure_rtcp_reports(registry))
}

/// Whether `sdp` has an `m=` section of `kind`.
fn has_section(sdp: &str, kind: MediaKind) -> bool {
    let prefix = match kind {
        MediaKind::Audio => "m=audio ",
        MediaKind::Video => "m=video ",
    };
    sdp.lines().any(|l| l.starts_with(prefix))
}

impl LoopPeer {
    /// Answers `offer` with Opus and/or VP8 sendrecv, the host candidate `local_addr` (the
    /// loop's socket) and the ICE credentials `ufrag`/`pwd` the loop demultiplexes on.
    /// Returns the PeerConnection and our answer SDP (candidates inside: half trickle).
    ///
    /// Errors: an offer `rtc` cannot apply or answer, as [`MediaError::InvalidSdp`] or
    /// [`MediaError::Rtc`].
    pub fn answer(
        now: Instant,
        template: &PeerTemplate,
        local_addr: SocketAddr,
        ufrag: String,
        pwd: String,
        offer: &str,
        handler: Box<dyn PeerHandler>,
    ) -> Result<(Self, String), MediaError> {
        let rtc_err = |e: rtc::shared::error::Error| MediaError::Rtc(e.to_string());
        let mut media = MediaEngine::default();
        media.register_default_codecs().map_err(rtc_err)?;
        let registry = interceptors(&mut media).map_err(rtc_err)?;
        let settings = SettingEngineBuilder::new()
            .with_ice_credentials(ufrag.clone(), pwd)
            .with_include_loopback_candidate(true)
            .build();
        let config = RTCConfigurationBuilder::new()
            .with_certificates(vec![(*template.certificate).clone()])
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(config)
            .with_setting_engine(settings)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(rtc_err)?;

        let mut sending = [None, None];
        let mut pending = Vec::new();
        for kind in MediaKind::ALL {
            if !has_section(offer, kind) {
                continue;
            }
            let (codec, codec_kind) = match kind {
                MediaKind::Audio => (opus(), RtpCodecKind::Audio),
                MediaKind::Video => (vp8(), RtpCodecKind::Video),
            };
            let ssrc = rand::random::<u32>();
            let track = MediaStreamTrack::new(
                format!("bifrons-{}", kind.as_str()),
                format!("bifrons-{}-track", kind.as_str()),
                format!("bifrons-{}", kind.as_str()),
                codec_kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            );
            let sender = pc.add_track(track).map_err(rtc_err)?;
            pending.push((kind, sender, ssrc));
        }

        let description = RTCSessionDescription::offer(offer.to_owned())
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        pc.set_remote_description(now, description)
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        pc.add_local_candidate(host_candidate(local_addr)?)
            .map_err(rtc_err)?;
        let answer = pc.create_answer(None).map_err(rtc_err)?;
        pc.set_local_description(now, answer).map_err(rtc_err)?;
        let sdp = pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or(MediaError::NoPeer)?;

        // The negotiated payload type of each outgoing stream: the first the sender kept.
        for (kind, sender_id, ssrc) in pending {
            let Some(mut sender) = pc.rtp_sender(sender_id) else {
                continue;
            };
            let payload_type = sender
                .get_parameters()
                .rtp_parameters
                .codecs
                .first()
                .map(|c| c.payload_type);
            if let Some(payload_type) = payload_type {
                sending[kind.index()] = Some(Sending {
                    sender: sender_id,
                    ssrc,
                    payload_type,
                });
            }
        }
        let peer = Self {
            pc,
            handler,
            local_addr,
            sending,
            receivers: [None, None],
            tracks: HashMap::new(),
            channels: HashMap::new(),
            ufrag,
            closed: false,
        };
        Ok((peer, sdp))
    }

    /// Our ICE ufrag, the key the loop routes STUN requests on.
    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    /// Whether the PeerConnection failed or closed: the loop drops it.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Feeds one datagram from `from`. A datagram `rtc` rejects is dropped (logged at debug):
    /// one bad packet never ends the PeerConnection.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let message = udp_datagram(now, self.local_addr, from, datagram);
        if let Err(e) = self.pc.handle_read(message) {
            tracing::debug!(error = %e, %from, "datagram refused");
        }
    }

    /// Reports that the deadline of [`LoopPeer::poll_timeout`] passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Err(e) = self.pc.handle_timeout(now) {
            tracing::debug!(error = %e, "timeout handling failed");
        }
    }

    /// When the PeerConnection next needs [`LoopPeer::handle_timeout`].
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        self.pc.poll_timeout()
    }

    /// Closes the PeerConnection (DTLS close_notify goes out on the next drain).
    pub fn close(&mut self) {
        if !self.closed {
            let _ = self.pc.close();
            self.closed = true;
            self.handler.on_closed();
        }
    }

    /// The handler and the sending side it may use, borrowed together.
    fn split(&mut self, now: Instant) -> (&mut dyn PeerHandler, Outbox<'_>) {
        let out = Outbox {
            pc: &mut self.pc,
            sending: &self.sending,
            receivers: &self.receivers,
            channels: &self.channels,
            now,
        };
        (self.handler.as_mut(), out)
    }

    /// Hands a data-channel message to the handler, text as UTF-8 (invalid bytes replaced).
    fn deliver_data(&mut self, now: Instant, id: RTCDataChannelId, message: RTCDataChannelMessage) {
        let Some(label) = self.pc.data_channel(id).map(|c| c.label().to_owned()) else {
            return;
        };
        self.channels.entry(label.clone()).or_insert(id);
        let message = if message.is_string {
            DataMessage::Text(String::from_utf8_lossy(&message.data).into_owned())
        } else {
            DataMessage::Binary(message.data.freeze())
        };
        let (handler, mut out) = self.split(now);
        handler.on_data(&label, message, &mut out);
    }

    /// Runs events and inbound messages through the handler, then hands every datagram to
    /// send to `send` (destination, bytes).
    pub fn drain(&mut self, now: Instant, mut send: impl FnMut(SocketAddr, &[u8])) {
        while let Some(event) = self.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => match state {
                    RTCPeerConnectionState::Connected => self.handler.on_connected(),
                    RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                        self.closed = true;
                        self.handler.on_closed();
                    }
                    _ => {}
                },
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let kind = self
                        .pc
                        .rtp_receiver(init.receiver_id)
                        .map(|r| r.track().kind());
                    let kind = match kind {
                        Some(RtpCodecKind::Audio) => MediaKind::Audio,
                        Some(RtpCodecKind::Video) => MediaKind::Video,
                        _ => continue,
                    };
                    self.tracks.insert(init.track_id, (kind, init.receiver_id));
                }
                RTCPeerConnectionEvent::OnDataChannel(RTCDataChannelEvent::OnOpen(id)) => {
                    if let Some(channel) = self.pc.data_channel(id) {
                        self.channels.insert(channel.label().to_owned(), id);
                    }
                }
                _ => {}
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            let (track_id, packet) = match message {
                RTCMessage::RtpPacket(track_id, packet) => (track_id, packet),
                RTCMessage::DataChannelMessage(id, message) => {
                    self.deliver_data(now, id, message);
                    continue;
                }
                _ => continue,
            };
            let Some(&(kind, receiver)) = self.tracks.get(&track_id) else {
                continue;
            };
            self.receivers[kind.index()] = Some((receiver, packet.header.ssrc));
            let packet = RtpPacket {
                payload_type: packet.header.payload_type,
                sequence_number: packet.header.sequence_number,
                timestamp: packet.header.timestamp,
                ssrc: packet.header.ssrc,
                marker: packet.header.marker,
                payload: packet.payload,
            };
            let (handler, mut out) = self.split(now);
            handler.on_rtp(kind, packet, &mut out);
        }
        while let Some(datagram) = self.pc.poll_write() {
            send(datagram.transport.peer_addr, &datagram.message);
        }
    }
}

/// `datagram`, received at `now` on the UDP socket at `local` from `from`, as `rtc`'s
/// `handle_read` takes it (a copy: `rtc` owns what it reads).
pub fn udp_datagram(
    now: Instant,
    local: SocketAddr,
    from: SocketAddr,
    datagram: &[u8],
) -> TaggedBytesMut {
    TaggedBytesMut {
        now,
        transport: TransportContext {
            local_addr: local,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message: BytesMut::from(datagram),
    }
}

/// The host candidate of a loop's socket at `addr` (UDP, component 1), as `rtc` takes it in
/// `add_local_candidate`: the only candidate a loop gathers (RFC 8445 §5.1.1.1).
///
/// Errors: [`MediaError::Rtc`] when `rtc` refuses the address.
pub fn host_candidate(addr: SocketAddr) -> Result<RTCIceCandidateInit, MediaError> {
    let candidate = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .map_err(|e| MediaError::Rtc(e.to_string()))?;
    RTCIceCandidate::from(&candidate)
        .to_json()
        .map_err(|e| MediaError::Rtc(e.to_string()))
}
