//! One PeerConnection inside an event loop: the sans-I/O `rtc` state machine, its offer/answer
//! against the media contract's plans, and the [`PeerHandler`] its events go to.
//!
//! Nothing here does I/O or reads the clock: the loop hands in datagrams and instants and
//! sends what [`LoopPeer::drain`] gives back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rtc::data_channel::{RTCDataChannelId, RTCDataChannelMessage};
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::event::{RTCDataChannelEvent, RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::{RTCSdpType, RTCSessionDescription};
use rtc::peer_connection::state::{RTCIceConnectionState, RTCPeerConnectionState};
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{
    RTCRtpReceiverId, RTCRtpTransceiverDirection, RTCRtpTransceiverId, RTCRtpTransceiverInit,
};
use rtc::sansio::Protocol;

use super::activity::{Activity, Finding};
use super::event_loop::Queue;
use super::outbox::{Outbox, Sending};
use super::setup::{
    codec_kind, codec_parameters, local_candidates, media_setup, rtc_err, sdp_ufrag,
    transceiver_direction, udp_datagram, PeerTemplate,
};
use super::stun;
use crate::ids::Mid;
use crate::media::codec_choice::{choose_codec, has_section, offered_formats, OfferedCodec};
use crate::media::mirror::mirror_offer;
use crate::media::plan::{offer_streams, AnswerPlan, Codec, Direction, OfferPlan};
use crate::media::sender::Outbound;
use crate::media::{
    AudioLevel, DataMessage, LocalCandidate, MediaError, MediaKind, Negotiated, RemoteCandidate,
    RtcpFeedback, RtpPacket, StreamInfo, DATA_CHANNEL_LABEL,
};

/// What the loop tells the owner of a PeerConnection; called on the loop's thread, so it must
/// not block. `out` sends on the same PeerConnection at once (an echo answers in place).
pub trait PeerHandler: Send {
    /// ICE and DTLS are connected.
    fn on_connected(&mut self) {}
    /// An RTP packet of the remote stream `stream`.
    fn on_rtp(&mut self, stream: &StreamInfo, packet: RtpPacket, out: &mut Outbox<'_>);
    /// RTCP feedback about our outgoing stream of `kind`.
    fn on_rtcp(&mut self, _kind: MediaKind, _feedback: RtcpFeedback) {}
    /// A message on the data channel `label` (RFC 8831); `out` can answer on it at once.
    fn on_data(&mut self, _label: &str, _message: DataMessage, _out: &mut Outbox<'_>) {}
    /// Media of `kind` started or stopped arriving on `mid`.
    fn on_media(&mut self, _kind: MediaKind, _mid: &Mid, _receiving: bool) {}
    /// A local candidate to trickle (full-trickle mode); `None` once there are no more.
    fn on_local_candidate(&mut self, _candidate: LocalCandidate) {}
    /// Packet loss past the threshold: `uplink` when the peer loses what we send.
    fn on_slowlink(&mut self, _kind: MediaKind, _mid: &Mid, _uplink: bool, _lost: u64) {}
    /// The connection failed (`reason`, a Janus hangup reason); the loop forgets the
    /// PeerConnection after this. Not called after a [`LoopPeer::close`].
    fn on_failed(&mut self, _reason: &'static str) {}
}

/// State names the handle reads without a loop round trip, for the Admin API.
#[derive(Debug, Clone, Default)]
pub struct StateNames {
    /// ICE connection state (`new`, `checking`, `connected`...).
    pub ice: String,
    /// PeerConnection state.
    pub connection: String,
    /// Signaling state (`stable`, `have-local-offer`...).
    pub signaling: String,
}

/// What the loop thread and the PeerConnection's handle both read.
#[derive(Default)]
pub struct PeerShared {
    /// Per kind: media is arriving ([`MediaKind::index`]).
    pub receiving: Arc<[AtomicBool; 2]>,
    /// The latest state names.
    pub states: Mutex<StateNames>,
}

/// A remote stream: its kind, receiver and what it carries. Keyed by SSRC, not by track id:
/// a peer may give every track the same `a=msid` track id (werift does), while each stream's
/// SSRC is its own (RFC 3550 §8).
struct Inbound {
    kind: MediaKind,
    track_id: String,
    receiver: RTCRtpReceiverId,
    info: Option<StreamInfo>,
}

/// A PeerConnection driven by a loop.
pub struct LoopPeer {
    pc: RTCPeerConnection,
    handler: Box<dyn PeerHandler>,
    template: PeerTemplate,
    local_addr: SocketAddr,
    /// Our outgoing stream per kind, once negotiated.
    sending: [Option<Sending>; 2],
    /// Transceiver carrying each kind, once added or offered.
    transceivers: [Option<RTCRtpTransceiverId>; 2],
    /// The plan's codecs per kind, the chosen one first; empty: the offer's order.
    preferred: [Vec<Codec>; 2],
    /// Remote streams by SSRC (see [`Inbound`]).
    inbound: HashMap<u32, Inbound>,
    /// Remote stream per kind: its receiver and SSRC, learnt from its first packet.
    receivers: [Option<(RTCRtpReceiverId, u32)>; 2],
    /// Open data channels by label (SCTP runs only once an `m=application` is negotiated).
    channels: HashMap<String, RTCDataChannelId>,
    /// What the last offer/answer settled.
    negotiated: Option<Negotiated>,
    /// Cumulative loss the peer last reported per kind of what we send (RTCP RR).
    reported_lost: [Option<u32>; 2],
    activity: Activity,
    shared: Arc<PeerShared>,
    /// What plugins queued through the handle's `MediaSender`.
    outbound: Option<Queue>,
    ufrag: String,
    candidate_added: bool,
    /// Where the last datagram came from: the selected remote address once ICE is up.
    remote_addr: Option<SocketAddr>,
    /// ICE is connected or completed (from `rtc`'s state events).
    ice_connected: bool,
    /// A nomination (Binding request with USE-CANDIDATE) that came while ICE was not yet
    /// connected, and its source: fed again after each check that succeeds until ICE connects
    /// (see [`LoopPeer::handle_datagram`]).
    early_nomination: Option<(SocketAddr, Vec<u8>)>,
    closed: bool,
}

impl LoopPeer {
    /// A PeerConnection with no description yet, on the loop socket `local_addr`, reporting to
    /// `handler`; `outbound` is the queue of its handle's `MediaSender`, if it has one.
    ///
    /// Errors: `rtc` refused the configuration, as [`MediaError::Rtc`].
    pub fn new(
        now: Instant,
        template: &PeerTemplate,
        local_addr: SocketAddr,
        handler: Box<dyn PeerHandler>,
        outbound: Option<Queue>,
        shared: Arc<PeerShared>,
    ) -> Result<Self, MediaError> {
        let pc = build_pc(now, template, DTMF_CLOCK)?;
        let activity = Activity::new(
            now,
            template.no_media_timer,
            template.slowlink_threshold,
            shared.receiving.clone(),
        );
        Ok(Self {
            pc,
            handler,
            template: template.clone(),
            local_addr,
            sending: [None, None],
            transceivers: [None, None],
            preferred: Default::default(),
            inbound: HashMap::new(),
            receivers: [None, None],
            channels: HashMap::new(),
            negotiated: None,
            reported_lost: [None, None],
            activity,
            shared,
            outbound,
            ufrag: String::new(),
            candidate_added: false,
            remote_addr: None,
            ice_connected: false,
            early_nomination: None,
            closed: false,
        })
    }

    /// Applies a remote offer and answers it as `plan` says: for each kind the plan sends, the
    /// first of its codecs the offer has (or the offer's own first), sent with the plan's
    /// direction. Returns our answer SDP (our host candidate inside) and what it settled.
    ///
    /// Errors: [`MediaError::NoCommonCodec`] when a sending stream's plan names codecs and the
    /// offer has none of them, [`MediaError::InvalidSdp`] when `rtc` cannot apply the offer.
    pub fn answer(
        &mut self,
        now: Instant,
        offer: &str,
        plan: &AnswerPlan,
    ) -> Result<(String, Negotiated), MediaError> {
        // Outgoing tracks go in before the offer is applied: `rtc` then pairs each offered
        // m-line with our transceiver of the same kind, and the answer comes out sendrecv.
        for kind in MediaKind::ALL {
            let Some(stream) = plan.stream(kind).filter(|p| p.direction.sends()) else {
                continue;
            };
            if !has_section(offer, kind) {
                continue;
            }
            let Some(codec) = choose_codec(offer, kind, &stream.codecs) else {
                if stream.codecs.is_empty() {
                    continue;
                }
                return Err(MediaError::NoCommonCodec(kind.as_str()));
            };
            self.add_sending(kind, codec, stream.direction, &stream.codecs)?;
        }
        let description = RTCSessionDescription::offer(offer.to_owned())
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        self.pc
            .set_remote_description(now, description)
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        self.prefer_plan_codecs(offer)?;
        self.add_local_candidates()?;
        let answer = self.pc.create_answer(None).map_err(rtc_err)?;
        let sdp = self.apply_local(now, answer)?;
        let sdp = mirror_offer(offer, &sdp);
        let negotiated = Negotiated::from_answer(&sdp, true).map_err(MediaError::InvalidSdp)?;
        self.settle(negotiated.clone());
        Ok((sdp, negotiated))
    }

    /// Makes a gateway offer as `plan` says (its codecs, or Opus/VP8, in order), with a data
    /// channel when it asks for one; `ice_restart` offers new ICE credentials (RFC 8445 §9).
    ///
    /// Errors: `rtc` refused a transceiver or the offer, as [`MediaError::Rtc`].
    pub fn offer(
        &mut self,
        now: Instant,
        plan: &OfferPlan,
        ice_restart: bool,
    ) -> Result<String, MediaError> {
        // A first offer whose plan names telephone-event at another clock (8 kHz beside G.711)
        // needs that one registered first (see `media_setup`); nothing has used the
        // PeerConnection yet, so it is built again.
        let dtmf_clock = plan.audio.as_ref().and_then(|a| {
            a.codecs.iter().find_map(|c| match c {
                Codec::TelephoneEvent { clock_rate } => Some(*clock_rate),
                _ => None,
            })
        });
        if let Some(clock) = dtmf_clock.filter(|&c| c != DTMF_CLOCK) {
            if self.pc.local_description().is_none() && self.pc.remote_description().is_none() {
                self.pc = build_pc(now, &self.template, clock)?;
            }
        }
        for (kind, direction, codecs, first) in offer_streams(plan) {
            if self.transceivers[kind.index()].is_some() {
                continue;
            }
            if direction.sends() {
                let offered = OfferedCodec::of(&first);
                self.add_sending(kind, offered, direction, &codecs)?;
            } else {
                let init = RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    streams: vec![],
                    send_encodings: vec![],
                };
                let id = self
                    .pc
                    .add_transceiver_from_kind(codec_kind(kind), Some(init))
                    .map_err(rtc_err)?;
                if let Some(mut transceiver) = self.pc.rtp_transceiver(id) {
                    transceiver
                        .set_codec_preferences(codec_parameters(&codecs))
                        .map_err(rtc_err)?;
                }
                self.transceivers[kind.index()] = Some(id);
            }
        }
        if plan.data && !self.channels.contains_key(DATA_CHANNEL_LABEL) {
            let id = self
                .pc
                .create_data_channel(DATA_CHANNEL_LABEL, None)
                .map_err(rtc_err)?
                .id();
            self.channels.insert(DATA_CHANNEL_LABEL.to_owned(), id);
        }
        if ice_restart {
            self.pc.restart_ice();
        }
        self.add_local_candidates()?;
        let offer = self.pc.create_offer(None).map_err(rtc_err)?;
        self.apply_local(now, offer)
    }

    /// Applies the client's answer to our pending offer and returns what it settled.
    ///
    /// Errors: [`MediaError::UnexpectedAnswer`] without a pending offer of ours,
    /// [`MediaError::InvalidSdp`] when `rtc` cannot apply it.
    pub fn accept_answer(&mut self, now: Instant, answer: &str) -> Result<Negotiated, MediaError> {
        let pending = self
            .pc
            .pending_local_description()
            .is_some_and(|d| d.sdp_type == RTCSdpType::Offer);
        if !pending {
            return Err(MediaError::UnexpectedAnswer);
        }
        let description = RTCSessionDescription::answer(answer.to_owned())
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        self.pc
            .set_remote_description(now, description)
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        let negotiated = Negotiated::from_answer(answer, false).map_err(MediaError::InvalidSdp)?;
        self.settle(negotiated.clone());
        Ok(negotiated)
    }

    /// Adds a trickled remote candidate (RFC 8838).
    ///
    /// Errors: a candidate the ICE agent refuses, as [`MediaError::Rtc`].
    pub fn add_remote_candidate(&mut self, candidate: RemoteCandidate) -> Result<(), MediaError> {
        self.pc
            .add_remote_candidate(RTCIceCandidateInit {
                candidate: candidate.candidate,
                sdp_mid: candidate.sdp_mid,
                sdp_mline_index: candidate.sdp_mline_index,
                username_fragment: None,
                ..Default::default()
            })
            .map_err(rtc_err)
    }

    /// Whether a remote description is set.
    pub fn has_remote_description(&self) -> bool {
        self.pc.remote_description().is_some()
    }

    /// Local and remote SDPs.
    pub fn sdps(&self) -> (Option<String>, Option<String>) {
        (
            self.pc.local_description().map(|d| d.sdp),
            self.pc.remote_description().map(|d| d.sdp.clone()),
        )
    }

    /// The loop socket's address: our host candidate.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where the last datagram came from.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The `rtc` PeerConnection, for statistics.
    pub(super) fn pc_mut(&mut self) -> &mut RTCPeerConnection {
        &mut self.pc
    }

    /// Adds the outgoing stream of `kind` (once per kind) in `codec`, with `direction`, and
    /// `codecs` (when not empty) after it as the transceiver's codec preferences.
    fn add_sending(
        &mut self,
        kind: MediaKind,
        codec: OfferedCodec,
        direction: Direction,
        codecs: &[Codec],
    ) -> Result<(), MediaError> {
        if self.transceivers[kind.index()].is_some() {
            return Ok(());
        }
        let chosen = codec.codec();
        let ssrc = rand::random::<u32>();
        let track = MediaStreamTrack::new(
            format!("bifrons-{}", kind.as_str()),
            format!("bifrons-{}-{ssrc:08x}", kind.as_str()),
            "bifrons".to_owned(),
            codec_kind(kind),
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec: RTCRtpCodec {
                    mime_type: codec.mime_type,
                    clock_rate: codec.clock_rate,
                    channels: codec.channels,
                    sdp_fmtp_line: codec.fmtp,
                    rtcp_feedback: vec![],
                },
                ..Default::default()
            }],
        );
        let init = RTCRtpTransceiverInit {
            direction: transceiver_direction(direction),
            streams: vec![],
            send_encodings: vec![],
        };
        let id = self
            .pc
            .add_transceiver_from_track(track, Some(init))
            .map_err(rtc_err)?;
        let mut order = Vec::new();
        if !codecs.is_empty() {
            // The chosen codec first, so that it is the one the answer or offer leads with.
            order.extend(chosen);
            for codec in codecs {
                if !order.contains(codec) {
                    order.push(codec.clone());
                }
            }
        }
        let sender = self.pc.rtp_transceiver(id).and_then(|mut t| {
            if !order.is_empty() {
                if let Err(e) = t.set_codec_preferences(codec_parameters(&order)) {
                    tracing::debug!(error = %e, "codec preferences");
                }
            }
            t.sender()
        });
        self.preferred[kind.index()] = order;
        self.transceivers[kind.index()] = Some(id);
        if let Some(sender) = sender {
            self.sending[kind.index()] = Some(Sending {
                sender,
                ssrc,
                payload_type: 0,
            });
        }
        Ok(())
    }

    /// Puts the plan's codecs first in each sending transceiver's preferences, under the
    /// offer's payload types and feedback: applying an offer makes `rtc` adopt the offer's
    /// order, so without this an answer could lead with a codec the plugin does not send.
    fn prefer_plan_codecs(&mut self, offer: &str) -> Result<(), MediaError> {
        for kind in MediaKind::ALL {
            let (Some(id), order) = (
                self.transceivers[kind.index()],
                &self.preferred[kind.index()],
            ) else {
                continue;
            };
            if order.is_empty() {
                continue;
            }
            let offered = offered_formats(offer, kind);
            let mut preferences: Vec<RTCRtpCodecParameters> = Vec::new();
            for wanted in order {
                for format in &offered {
                    let accepted = format.codec.codec().is_some_and(|c| wanted.accepts(&c));
                    if accepted && !preferences.iter().any(|p| p.payload_type == format.pt) {
                        preferences.push(RTCRtpCodecParameters {
                            rtp_codec: RTCRtpCodec {
                                mime_type: format.codec.mime_type.clone(),
                                clock_rate: format.codec.clock_rate,
                                channels: format.codec.channels,
                                sdp_fmtp_line: format.codec.fmtp.clone(),
                                rtcp_feedback: format
                                    .feedback
                                    .iter()
                                    .map(|f| {
                                        let (typ, parameter) =
                                            f.split_once(' ').unwrap_or((f.as_str(), ""));
                                        RTCPFeedback {
                                            typ: typ.to_owned(),
                                            parameter: parameter.to_owned(),
                                        }
                                    })
                                    .collect(),
                            },
                            payload_type: format.pt,
                        });
                    }
                }
            }
            if preferences.is_empty() {
                continue;
            }
            if let Some(mut transceiver) = self.pc.rtp_transceiver(id) {
                transceiver
                    .set_codec_preferences(preferences)
                    .map_err(rtc_err)?;
            }
        }
        Ok(())
    }

    /// Our candidates (the loop's socket, [`local_candidates`]), once.
    fn add_local_candidates(&mut self) -> Result<(), MediaError> {
        if !self.candidate_added {
            for candidate in local_candidates(self.local_addr, &self.template.nat_1_1)? {
                self.pc.add_local_candidate(candidate).map_err(rtc_err)?;
            }
            self.candidate_added = true;
        }
        Ok(())
    }

    /// Sets our description; returns its SDP and notes its ICE ufrag (an ICE restart changes
    /// it, and the loop routes STUN on it). In full-trickle mode the candidate is also
    /// trickled, followed by end-of-candidates.
    fn apply_local(
        &mut self,
        now: Instant,
        description: RTCSessionDescription,
    ) -> Result<String, MediaError> {
        self.pc
            .set_local_description(now, description)
            .map_err(rtc_err)?;
        let sdp = self
            .pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or(MediaError::NoPeer)?;
        if let Some(ufrag) = sdp_ufrag(&sdp) {
            self.ufrag = ufrag.to_owned();
        }
        if self.template.full_trickle {
            for candidate in local_candidates(self.local_addr, &self.template.nat_1_1)? {
                self.handler.on_local_candidate(Some(RemoteCandidate {
                    candidate: candidate.candidate,
                    sdp_mid: candidate.sdp_mid.or_else(|| Some("0".to_owned())),
                    sdp_mline_index: candidate.sdp_mline_index.or(Some(0)),
                }));
            }
            self.handler.on_local_candidate(None);
        }
        tracing::debug!(%sdp, "local description");
        Ok(sdp)
    }

    /// Keeps what an offer/answer settled, and the payload type each outgoing stream sends
    /// with (the first its sender kept).
    fn settle(&mut self, negotiated: Negotiated) {
        for kind in MediaKind::ALL {
            let Some(sending) = self.sending[kind.index()].as_mut() else {
                continue;
            };
            if let Some(mut sender) = self.pc.rtp_sender(sending.sender) {
                if let Some(codec) = sender.get_parameters().rtp_parameters.codecs.first() {
                    sending.payload_type = codec.payload_type;
                }
            }
        }
        for inbound in self.inbound.values_mut() {
            inbound.info = None;
        }
        self.negotiated = Some(negotiated);
    }

    /// Our current ICE ufrag, the key the loop routes STUN requests on; empty before our
    /// first description.
    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    /// Whether the PeerConnection failed or closed: the loop drops it.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Feeds one datagram from `from`. A datagram `rtc` rejects is dropped (logged at debug):
    /// one bad packet never ends the PeerConnection.
    ///
    /// A nomination that arrives before our own check of its pair has succeeded is kept and
    /// fed again once a check succeeds: `rtc`'s controlled ICE agent neither answers nor
    /// remembers it then (RFC 8445 §7.3.1.5 says the pair is nominated once its check
    /// succeeds), so the controlling peer would wait for its retransmission, 500 ms or more.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        self.remote_addr = Some(from);
        if !self.ice_connected && stun::is_nomination(datagram) {
            self.early_nomination = Some((from, datagram.to_vec()));
        }
        self.read(now, from, datagram);
        if !self.ice_connected && stun::is_binding_success(datagram) {
            if let Some((from, nomination)) = self.early_nomination.take() {
                self.read(now, from, &nomination);
                self.early_nomination = Some((from, nomination));
            }
        }
    }

    fn read(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
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
        let Self {
            activity,
            handler,
            negotiated,
            ..
        } = self;
        activity.check(now, |finding| {
            let (kind, stopped_or_lost) = match finding {
                Finding::Stopped(kind) => (kind, None),
                Finding::Slowlink(kind, lost) => (kind, Some(lost)),
            };
            let mid = negotiated
                .as_ref()
                .and_then(|n| n.first(kind))
                .map(|s| s.mid.clone())
                .unwrap_or_default();
            match stopped_or_lost {
                None => handler.on_media(kind, &mid, false),
                Some(lost) => handler.on_slowlink(kind, &mid, false, lost),
            }
        });
    }

    /// When the PeerConnection next needs [`LoopPeer::handle_timeout`].
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let next_check = self.activity.next_check();
        Some(
            self.pc
                .poll_timeout()
                .map_or(next_check, |at| at.min(next_check)),
        )
    }

    /// Closes the PeerConnection (DTLS close_notify goes out on the next drain); the handler
    /// hears nothing more.
    pub fn close(&mut self) {
        if !self.closed {
            let _ = self.pc.close();
            self.closed = true;
        }
    }

    /// Sends what the handle's `MediaSender` queued.
    pub fn flush(&mut self, now: Instant) {
        let Some(mut queue) = self.outbound.take() else {
            return;
        };
        queue.scheduled.store(false, Ordering::Release);
        {
            let mut out = self.outbox(now);
            while let Ok(item) = queue.rx.try_recv() {
                match item {
                    Outbound::Rtp(kind, packet) => {
                        out.send_rtp(kind, &packet);
                    }
                    Outbound::KeyframeRequest => {
                        out.request_keyframe();
                    }
                    Outbound::Remb(bitrate) => {
                        out.send_remb(bitrate);
                    }
                    Outbound::Data(label, message) => {
                        out.send_data(&label, &message);
                    }
                }
            }
        }
        self.outbound = Some(queue);
    }

    fn outbox(&mut self, now: Instant) -> Outbox<'_> {
        Outbox::new(
            &mut self.pc,
            &self.sending,
            &self.receivers,
            &self.channels,
            now,
        )
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
        let mut handler = std::mem::replace(&mut self.handler, Box::new(Detached));
        handler.on_data(&label, message, &mut self.outbox(now));
        self.handler = handler;
    }

    /// What the remote stream `ssrc` carries, from the last offer/answer, taken out of its
    /// entry (no copy per packet); [`LoopPeer::drain`] puts it back after the handler ran.
    fn take_stream_info(&mut self, ssrc: u32) -> Option<(MediaKind, StreamInfo)> {
        let inbound = self.inbound.get_mut(&ssrc)?;
        if inbound.info.is_none() {
            let kind = inbound.kind;
            let mid = self
                .pc
                .get_transceivers()
                .collect::<Vec<_>>()
                .into_iter()
                .find_map(|id| {
                    let t = self.pc.rtp_transceiver(id)?;
                    (t.receiver() == Some(inbound.receiver))
                        .then(|| t.mid().clone())
                        .flatten()
                })
                .map(Mid);
            let settled = self.negotiated.as_ref().and_then(|n| {
                n.streams
                    .iter()
                    .find(|s| Some(&s.mid) == mid.as_ref())
                    .or_else(|| n.first(kind))
            });
            inbound.info = Some(StreamInfo {
                mid: mid
                    .or_else(|| settled.map(|s| s.mid.clone()))
                    .unwrap_or_default(),
                kind,
                codec: settled.and_then(|s| s.codec.clone()),
                pt: settled.map_or(crate::ids::Pt(0), |s| s.pt),
                clock_rate: settled.map_or(0, |s| s.clock_rate),
                audio_level_id: settled
                    .and_then(|s| s.audio_level_id)
                    .filter(|_| kind == MediaKind::Audio),
                audio_level: None,
            });
        }
        Some((inbound.kind, inbound.info.take()?))
    }

    /// Runs events and inbound messages through the handler, then hands every datagram to
    /// send to `send` (destination, bytes).
    pub fn drain(&mut self, now: Instant, mut send: impl FnMut(SocketAddr, &[u8])) {
        let mut just_connected = false;
        while let Some(event) = self.pc.poll_event() {
            match event {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    self.shared
                        .states
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .connection = state.to_string();
                    match state {
                        RTCPeerConnectionState::Connected if !self.closed => {
                            self.handler.on_connected()
                        }
                        RTCPeerConnectionState::Failed if !self.closed => {
                            self.closed = true;
                            self.handler.on_failed("ICE failed");
                        }
                        RTCPeerConnectionState::Closed => self.closed = true,
                        _ => {}
                    }
                }
                RTCPeerConnectionEvent::OnIceConnectionStateChangeEvent(state) => {
                    let connected = matches!(
                        state,
                        RTCIceConnectionState::Connected | RTCIceConnectionState::Completed
                    );
                    just_connected |= connected && !self.ice_connected;
                    self.ice_connected = connected;
                    if connected {
                        self.early_nomination = None;
                    }
                    self.shared
                        .states
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .ice = state.to_string();
                }
                RTCPeerConnectionEvent::OnSignalingStateChangeEvent(state) => {
                    self.shared
                        .states
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .signaling = state.to_string();
                }
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
                    self.inbound.insert(
                        init.ssrc,
                        Inbound {
                            kind,
                            track_id: init.track_id,
                            receiver: init.receiver_id,
                            info: None,
                        },
                    );
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
            match message {
                RTCMessage::RtpPacket(track_id, packet) => {
                    if self.closed {
                        continue;
                    }
                    let ssrc = packet.header.ssrc;
                    let Some((kind, mut info)) = self.take_stream_info(ssrc) else {
                        tracing::debug!(track_id, ssrc, "RTP of no known track");
                        continue;
                    };
                    let receiver = self.inbound[&ssrc].receiver;
                    self.receivers[kind.index()] = Some((receiver, ssrc));
                    if self
                        .activity
                        .on_packet(now, kind, packet.header.sequence_number)
                    {
                        self.handler.on_media(kind, &info.mid, true);
                    }
                    if let Some(id) = info.audio_level_id {
                        info.audio_level = packet
                            .header
                            .get_extension(id)
                            .and_then(|data| AudioLevel::parse(&data));
                    }
                    let packet = RtpPacket {
                        payload_type: packet.header.payload_type,
                        sequence_number: packet.header.sequence_number,
                        timestamp: packet.header.timestamp,
                        ssrc: packet.header.ssrc,
                        marker: packet.header.marker,
                        payload: packet.payload,
                    };
                    let mut handler = std::mem::replace(&mut self.handler, Box::new(Detached));
                    handler.on_rtp(&info, packet, &mut self.outbox(now));
                    self.handler = handler;
                    if let Some(inbound) = self.inbound.get_mut(&ssrc) {
                        inbound.info = Some(info);
                    }
                }
                RTCMessage::RtcpPacket(track_id, packets) if !self.closed => {
                    self.deliver_rtcp(&track_id, packets);
                }
                RTCMessage::DataChannelMessage(id, message) if !self.closed => {
                    self.deliver_data(now, id, message);
                }
                _ => {}
            }
        }
        while let Some(datagram) = self.pc.poll_write() {
            send(datagram.transport.peer_addr, &datagram.message);
        }
        if just_connected {
            // ICE selecting a pair starts the DTLS handshake when we are the client, but `rtc`
            // moves the ClientHello to its write queue only on its next timeout, which can be
            // hundreds of milliseconds away (its ICE check interval). Run that now, after the
            // STUN answer that completed ICE went out (a peer drops DTLS before its ICE is up),
            // so that the first flight leaves with this drain.
            if let Err(e) = self.pc.handle_timeout(now) {
                tracing::debug!(error = %e, "timeout handling failed");
            }
            while let Some(datagram) = self.pc.poll_write() {
                send(datagram.transport.peer_addr, &datagram.message);
            }
        }
    }

    /// Reports keyframe requests, REMB and the peer's losses of what we send.
    fn deliver_rtcp(&mut self, track_id: &str, packets: Vec<Box<dyn rtc::rtcp::Packet>>) {
        use rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
        use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
        use rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
        use rtc::rtcp::receiver_report::ReceiverReport;
        use rtc::rtcp::sender_report::SenderReport;
        let track_kind = self
            .inbound
            .values()
            .find(|i| i.track_id == track_id)
            .map(|i| i.kind);
        for packet in packets {
            let any = packet.as_any();
            if any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>() {
                self.handler
                    .on_rtcp(MediaKind::Video, RtcpFeedback::KeyframeRequest);
            } else if let Some(remb) = any.downcast_ref::<ReceiverEstimatedMaximumBitrate>() {
                self.handler
                    .on_rtcp(MediaKind::Video, RtcpFeedback::Remb(remb.bitrate as u64));
            } else {
                let reports = if let Some(rr) = any.downcast_ref::<ReceiverReport>() {
                    &rr.reports
                } else if let Some(sr) = any.downcast_ref::<SenderReport>() {
                    &sr.reports
                } else {
                    continue;
                };
                if self.template.slowlink_threshold == 0 {
                    continue;
                }
                for report in reports {
                    let kind = MediaKind::ALL
                        .into_iter()
                        .find(|k| self.sending[k.index()].is_some_and(|s| s.ssrc == report.ssrc))
                        .or(track_kind);
                    let Some(kind) = kind else { continue };
                    let previous = self.reported_lost[kind.index()].replace(report.total_lost);
                    let lost = u64::from(
                        report
                            .total_lost
                            .saturating_sub(previous.unwrap_or(report.total_lost)),
                    );
                    if lost >= self.template.slowlink_threshold {
                        let mid = self
                            .negotiated
                            .as_ref()
                            .and_then(|n| n.first(kind))
                            .map(|s| s.mid.clone())
                            .unwrap_or_default();
                        self.handler.on_slowlink(kind, &mid, true, lost);
                    }
                }
            }
        }
    }
}

/// The telephone-event clock a PeerConnection registers first (Hz): Opus' (RFC 4733 §2.1
/// lets it follow the audio codec's clock).
const DTMF_CLOCK: u32 = 48_000;

/// A PeerConnection with the template's certificate and settings, and `dtmf_clock`'s
/// telephone-event registered first.
fn build_pc(
    now: Instant,
    template: &PeerTemplate,
    dtmf_clock: u32,
) -> Result<RTCPeerConnection, MediaError> {
    let (media, registry) =
        media_setup(dtmf_clock, template.min_nack_queue.clone()).map_err(rtc_err)?;
    // ICE credentials are `rtc`'s own (random, new on each ICE restart, RFC 8445 §5.3): the
    // loop learns the ufrag from each local description.
    let settings = SettingEngineBuilder::new()
        .with_include_loopback_candidate(true)
        .with_lite(template.ice_lite)
        .build();
    let config = RTCConfigurationBuilder::new()
        .with_certificates(vec![(*template.certificate).clone()])
        .build();
    RTCPeerConnectionBuilder::new()
        .with_configuration(config)
        .with_setting_engine(settings)
        .with_media_engine(media)
        .with_interceptor_registry(registry)
        .build(now)
        .map_err(rtc_err)
}

/// Stands in for the handler while it runs with the PeerConnection borrowed.
struct Detached;

impl PeerHandler for Detached {
    fn on_rtp(&mut self, _: &StreamInfo, _: RtpPacket, _: &mut Outbox<'_>) {}
}
