//! One PeerConnection of the `webrtc` engine (webrtc-rs 0.17): negotiation, the receive loops that turn webrtc-rs callbacks into
//! [`PeerListener`] calls, and one writer task that serialises everything we send.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use webrtc::data_channel::data_channel_message::DataChannelMessage;
use webrtc::data_channel::RTCDataChannel;
use webrtc::ice_transport::ice_candidate::{RTCIceCandidate, RTCIceCandidateInit};
use webrtc::peer_connection::offer_answer_options::RTCOfferOptions;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::sdp_type::RTCSdpType;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::signaling_state::RTCSignalingState;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::rtp_transceiver::rtp_sender::RTCRtpSender;
use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
use webrtc::rtp_transceiver::RTCRtpTransceiverInit;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};
use webrtc::track::track_remote::TrackRemote;

use super::codec_choice::{choose_codec, has_section, OfferedCodec};
use super::engine::preferred_pt;
use super::error::MediaError;
use super::mirror::mirror_offer;
use super::negotiated::{Negotiated, StreamInfo};
use super::peer::{PeerListener, DATA_CHANNEL_LABEL};
use super::plan::{offer_streams, AnswerPlan, Codec, Direction, OfferPlan, StreamPlan};
use super::sender::{MediaSender, Outbound, OUTBOUND_QUEUE};
use super::stats::PeerStats;
use super::types::*;
use crate::ids::{Mid, Pt};
use crate::rtp::LossWindow;

/// Per-kind receive activity, for the `media` receiving/stopped events.
#[derive(Default)]
struct Activity {
    last_packet_ms: AtomicU64,
    receiving: AtomicBool,
    mid: Mutex<Mid>,
}

/// Settings every PeerConnection of the engine shares.
#[derive(Debug, Clone, Copy)]
pub(super) struct PeerSettings {
    /// Time without packets on a kind before a `media` event says receiving=false
    /// (`no_media_timer` of `[general]`, at least 1 s).
    pub no_media_timer: Duration,
    /// Trickle local candidates as events instead of waiting for gathering to end
    /// (`[ice] full_trickle`).
    pub full_trickle: bool,
    /// Lost packets per second that raise `slowlink`; 0 = never.
    pub slowlink_threshold: u64,
}

struct Shared {
    tracks: [RwLock<Option<Arc<TrackLocalStaticRTP>>>; 2],
    remote_ssrc: [AtomicU32; 2],
    channels: Mutex<HashMap<String, Arc<RTCDataChannel>>>,
    activity: [Activity; 2],
    loss: [Mutex<LossWindow>; 2],
    slowlink_threshold: u64,
    started: Instant,
    closed: AtomicBool,
}

impl Shared {
    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// A PeerConnection of the `webrtc` engine.
pub(super) struct WebrtcPeer {
    pc: Arc<RTCPeerConnection>,
    shared: Arc<Shared>,
    outbound: MediaSender,
    listener: Weak<dyn PeerListener>,
    full_trickle: bool,
}

impl WebrtcPeer {
    /// Wires callbacks and starts the writer and activity tasks.
    pub(super) fn start(
        pc: Arc<RTCPeerConnection>,
        listener: Arc<dyn PeerListener>,
        settings: PeerSettings,
    ) -> Self {
        let shared = Arc::new(Shared {
            tracks: Default::default(),
            remote_ssrc: Default::default(),
            channels: Mutex::new(HashMap::new()),
            activity: Default::default(),
            loss: Default::default(),
            slowlink_threshold: settings.slowlink_threshold,
            started: Instant::now(),
            closed: AtomicBool::new(false),
        });
        let listener_weak = Arc::downgrade(&listener);
        let (outbound, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let peer = Self {
            pc: pc.clone(),
            shared: shared.clone(),
            outbound: MediaSender::new(outbound),
            listener: listener_weak,
            full_trickle: settings.full_trickle,
        };
        peer.watch_state();
        peer.watch_tracks();
        peer.watch_data_channels();
        if settings.full_trickle {
            peer.watch_candidates();
        }
        tokio::spawn(write_loop(pc, shared.clone(), rx));
        tokio::spawn(activity_loop(
            shared,
            peer.listener.clone(),
            settings.no_media_timer,
        ));
        peer
    }

    fn watch_state(&self) {
        let listener = self.listener.clone();
        let shared = self.shared.clone();
        self.pc
            .on_peer_connection_state_change(Box::new(move |state| {
                let listener = listener.clone();
                let shared = shared.clone();
                Box::pin(async move {
                    tracing::debug!(?state, "PeerConnection state");
                    if shared.closed.load(Ordering::Acquire) {
                        return;
                    }
                    let Some(l) = listener.upgrade() else { return };
                    match state {
                        RTCPeerConnectionState::Connected => l.on_connected(),
                        RTCPeerConnectionState::Failed => l.on_failed("ICE failed"),
                        _ => {}
                    }
                })
            }));
    }

    fn watch_tracks(&self) {
        let listener = self.listener.clone();
        let shared = self.shared.clone();
        let pc = Arc::downgrade(&self.pc);
        self.pc
            .on_track(Box::new(move |track, _receiver, transceiver| {
                let listener = listener.clone();
                let shared = shared.clone();
                let pc = pc.clone();
                Box::pin(async move {
                    let kind = match track.kind() {
                        RTPCodecType::Audio => MediaKind::Audio,
                        RTPCodecType::Video => MediaKind::Video,
                        _ => return,
                    };
                    let mid = Mid(transceiver.mid().map(|m| m.to_string()).unwrap_or_default());
                    *shared.activity[kind.index()]
                        .mid
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = mid.clone();
                    shared.remote_ssrc[kind.index()].store(track.ssrc(), Ordering::Relaxed);
                    // The track's own codec is not filled in yet when it is announced: the
                    // answer says what the peer sends on this mid (its first format).
                    let settled = match pc.upgrade() {
                        Some(pc) => negotiated_now(&pc).await,
                        None => None,
                    };
                    let stream = settled
                        .and_then(|n| n.streams.into_iter().find(|s| s.mid == mid))
                        .map(|s| StreamInfo {
                            mid: mid.clone(),
                            kind,
                            codec: s.codec,
                            pt: s.pt,
                            clock_rate: s.clock_rate,
                            audio_level_id: s.audio_level_id.filter(|_| kind == MediaKind::Audio),
                            audio_level: None,
                        })
                        .unwrap_or(StreamInfo {
                            mid,
                            kind,
                            codec: None,
                            pt: Pt(track.payload_type()),
                            clock_rate: 0,
                            audio_level_id: None,
                            audio_level: None,
                        });
                    tokio::spawn(read_rtp_loop(track, stream, shared, listener));
                })
            }));
    }

    fn watch_data_channels(&self) {
        let listener = self.listener.clone();
        let shared = self.shared.clone();
        self.pc
            .on_data_channel(Box::new(move |channel: Arc<RTCDataChannel>| {
                let listener = listener.clone();
                let shared = shared.clone();
                Box::pin(async move { register_channel(&shared, listener, channel) })
            }));
    }

    fn watch_candidates(&self) {
        let listener = self.listener.clone();
        self.pc
            .on_ice_candidate(Box::new(move |candidate: Option<RTCIceCandidate>| {
                let listener = listener.clone();
                Box::pin(async move {
                    let Some(l) = listener.upgrade() else { return };
                    let local = match candidate.map(|c| c.to_json()) {
                        Some(Ok(init)) => Some(RemoteCandidate {
                            candidate: init.candidate,
                            sdp_mid: init.sdp_mid,
                            sdp_mline_index: init.sdp_mline_index,
                        }),
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "cannot serialise local candidate");
                            return;
                        }
                        None => None,
                    };
                    l.on_local_candidate(local);
                })
            }));
    }

    /// Applies a remote offer and returns our answer (with our candidates unless
    /// full-trickle) and what it settled.
    ///
    /// Errors: [`MediaError::InvalidSdp`] when the offer cannot be applied,
    /// [`MediaError::NoCommonCodec`] when a sending stream's plan names codecs and the offer
    /// has a section of that kind with none of them.
    pub async fn answer(
        &self,
        offer: &Jsep,
        plan: &AnswerPlan,
    ) -> Result<(Jsep, Negotiated), MediaError> {
        // Outgoing tracks go in before the offer is applied: webrtc-rs then pairs each offered
        // m-line with our transceiver of the same kind, and the answer comes out sendrecv.
        for kind in MediaKind::ALL {
            let Some(stream) = plan.stream(kind).filter(|p| p.direction.sends()) else {
                continue;
            };
            if !has_section(&offer.sdp, kind) {
                continue;
            }
            let Some(codec) = choose_codec(&offer.sdp, kind, &stream.codecs) else {
                if stream.codecs.is_empty() {
                    continue;
                }
                return Err(MediaError::NoCommonCodec(kind.as_str()));
            };
            self.add_outgoing_track(kind, codec, stream).await?;
        }
        let description = RTCSessionDescription::offer(offer.sdp.clone())
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        self.pc
            .set_remote_description(description)
            .await
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        let answer = self.pc.create_answer(None).await?;
        let sdp = mirror_offer(&offer.sdp, &self.apply_local(answer).await?);
        let negotiated = Negotiated::from_answer(&sdp, true).map_err(MediaError::InvalidSdp)?;
        Ok((Jsep::answer(sdp), negotiated))
    }

    /// Makes a gateway offer (with our candidates unless full-trickle); the client answers it
    /// and [`WebrtcPeer::accept_answer`] tells what was settled. `ice_restart` asks for new ICE
    /// credentials (RFC 8445 §9), for a client whose network changed.
    pub async fn offer(&self, plan: &OfferPlan, ice_restart: bool) -> Result<Jsep, MediaError> {
        for (kind, direction, codecs, first) in offer_streams(plan) {
            let offered = OfferedCodec::of(&first);
            let stream = StreamPlan::new(direction, codecs);
            if stream.direction.sends() {
                self.add_outgoing_track(kind, offered, &stream).await?;
            } else if self.shared.tracks[kind.index()]
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .is_none()
            {
                let init = RTCRtpTransceiverInit {
                    direction: transceiver_direction(stream.direction),
                    send_encodings: vec![],
                };
                let transceiver = self
                    .pc
                    .add_transceiver_from_kind(codec_type(kind), Some(init))
                    .await?;
                transceiver
                    .set_codec_preferences(codec_parameters(&stream.codecs))
                    .await?;
            }
        }
        let has_channel = self
            .shared
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(DATA_CHANNEL_LABEL);
        if plan.data && !has_channel {
            let channel = self
                .pc
                .create_data_channel(DATA_CHANNEL_LABEL, None)
                .await?;
            register_channel(&self.shared, self.listener.clone(), channel);
        }
        let options = RTCOfferOptions {
            ice_restart,
            ..Default::default()
        };
        let offer = self.pc.create_offer(Some(options)).await?;
        Ok(Jsep::offer(self.apply_local(offer).await?))
    }

    /// Sets our description and returns its SDP: once gathering is over (half trickle, our
    /// candidates inside), or at once with full trickle (candidates follow as events).
    async fn apply_local(&self, description: RTCSessionDescription) -> Result<String, MediaError> {
        let mut gathered = self.pc.gathering_complete_promise().await;
        self.pc.set_local_description(description).await?;
        if !self.full_trickle {
            let _ = gathered.recv().await;
        }
        let local = self
            .pc
            .local_description()
            .await
            .ok_or(MediaError::NoPeer)?;
        tracing::debug!(sdp = %local.sdp, "local description");
        Ok(local.sdp)
    }

    /// Applies the client's answer to an offer we made, and returns what it settled.
    pub async fn accept_answer(&self, answer: &Jsep) -> Result<Negotiated, MediaError> {
        if self.pc.signaling_state() != RTCSignalingState::HaveLocalOffer {
            return Err(MediaError::UnexpectedAnswer);
        }
        let mut description = RTCSessionDescription::default();
        description.sdp_type = RTCSdpType::Answer;
        description.sdp = answer.sdp.clone();
        self.pc
            .set_remote_description(description)
            .await
            .map_err(|e| MediaError::InvalidSdp(e.to_string()))?;
        Negotiated::from_answer(&answer.sdp, false).map_err(MediaError::InvalidSdp)
    }

    /// Whether a remote description is set, i.e. remote candidates can be applied.
    pub async fn has_remote_description(&self) -> bool {
        self.pc.remote_description().await.is_some()
    }

    /// Adds a trickled remote candidate.
    pub async fn add_remote_candidate(&self, candidate: RemoteCandidate) -> Result<(), MediaError> {
        let init = RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_mline_index,
            username_fragment: None,
        };
        self.pc
            .add_ice_candidate(init)
            .await
            .map_err(MediaError::from)
    }

    /// Adds the outgoing track of `kind` in `codec` (once per kind), with `plan`'s direction
    /// and, when the plan names codecs, its order as the transceiver's codec preferences.
    async fn add_outgoing_track(
        &self,
        kind: MediaKind,
        codec: OfferedCodec,
        plan: &StreamPlan,
    ) -> Result<(), MediaError> {
        if self.shared.tracks[kind.index()]
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
        {
            return Ok(());
        }
        let chosen = codec.codec();
        let capability = RTCRtpCodecCapability {
            mime_type: codec.mime_type,
            clock_rate: codec.clock_rate,
            channels: codec.channels,
            sdp_fmtp_line: codec.fmtp,
            rtcp_feedback: vec![],
        };
        let track = Arc::new(TrackLocalStaticRTP::new(
            capability,
            kind.as_str().to_string(),
            "bifrons".to_string(),
        ));
        let init = RTCRtpTransceiverInit {
            direction: transceiver_direction(plan.direction),
            send_encodings: vec![],
        };
        let transceiver = self
            .pc
            .add_transceiver_from_track(
                track.clone() as Arc<dyn TrackLocal + Send + Sync>,
                Some(init),
            )
            .await?;
        if !plan.codecs.is_empty() {
            // The chosen codec first, so that it is the one the answer or offer leads with.
            let mut order: Vec<Codec> = chosen.into_iter().collect();
            for codec in &plan.codecs {
                if !order.contains(codec) {
                    order.push(codec.clone());
                }
            }
            transceiver
                .set_codec_preferences(codec_parameters(&order))
                .await?;
        }
        let sender = transceiver.sender().await;
        *self.shared.tracks[kind.index()]
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(track);
        tokio::spawn(read_rtcp_loop(
            sender,
            kind,
            self.shared.clone(),
            self.listener.clone(),
        ));
        Ok(())
    }

    /// The sending side of this PeerConnection, for any thread.
    pub fn sender(&self) -> MediaSender {
        self.outbound.clone()
    }

    /// Whether the first packet of `kind` has arrived and media is still flowing.
    pub fn receiving(&self, kind: MediaKind) -> bool {
        self.shared.activity[kind.index()]
            .receiving
            .load(Ordering::Relaxed)
    }

    /// Current ICE/DTLS/PeerConnection state names, for the Admin API.
    pub fn state_summary(&self) -> (String, String, String) {
        (
            self.pc.ice_connection_state().to_string(),
            self.pc.connection_state().to_string(),
            self.pc.signaling_state().to_string(),
        )
    }

    /// Local and remote SDPs, for the Admin API.
    pub async fn sdps(&self) -> (Option<String>, Option<String>) {
        (
            self.pc.local_description().await.map(|d| d.sdp),
            self.pc.remote_description().await.map(|d| d.sdp),
        )
    }

    /// A snapshot of the transport (DTLS state, selected pair, candidates) and of every
    /// stream's counters, for the Admin API's `handle_info`.
    pub async fn stats(&self) -> PeerStats {
        let data_mid = match self.pc.local_description().await {
            Some(d) => super::stats::data_mid(&d.sdp),
            None => None,
        };
        super::stats::collect(&self.pc, data_mid).await
    }

    /// Closes the PeerConnection; no listener call follows.
    pub async fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        if let Err(e) = self.pc.close().await {
            tracing::debug!(error = %e, "closing PeerConnection");
        }
    }
}

/// Keeps a data channel (opened by either side) for sending, and reports its messages.
fn register_channel(
    shared: &Shared,
    listener: Weak<dyn PeerListener>,
    channel: Arc<RTCDataChannel>,
) {
    let label = channel.label().to_string();
    shared
        .channels
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(label.clone(), channel.clone());
    channel.on_message(Box::new(move |message: DataChannelMessage| {
        let listener = listener.clone();
        let label = label.clone();
        Box::pin(async move {
            let Some(l) = listener.upgrade() else { return };
            let message = if message.is_string {
                DataMessage::Text(String::from_utf8_lossy(&message.data).into_owned())
            } else {
                DataMessage::Binary(message.data)
            };
            l.on_data(&label, message);
        })
    }));
}

/// What the current offer/answer settled, read from whichever side wrote the answer.
async fn negotiated_now(pc: &RTCPeerConnection) -> Option<Negotiated> {
    let local = pc.current_local_description().await;
    let (sdp, ours) = match local {
        Some(d) if d.sdp_type == RTCSdpType::Answer => (d.sdp, true),
        _ => (pc.current_remote_description().await?.sdp, false),
    };
    Negotiated::from_answer(&sdp, ours).ok()
}

fn transceiver_direction(direction: Direction) -> RTCRtpTransceiverDirection {
    match direction {
        Direction::SendRecv => RTCRtpTransceiverDirection::Sendrecv,
        Direction::SendOnly => RTCRtpTransceiverDirection::Sendonly,
        Direction::RecvOnly => RTCRtpTransceiverDirection::Recvonly,
        Direction::Inactive => RTCRtpTransceiverDirection::Inactive,
    }
}

fn codec_type(kind: MediaKind) -> RTPCodecType {
    match kind {
        MediaKind::Audio => RTPCodecType::Audio,
        MediaKind::Video => RTPCodecType::Video,
    }
}

/// Codec preferences for a transceiver; payload type 0 lets webrtc-rs take the engine's own.
fn codec_parameters(codecs: &[Codec]) -> Vec<RTCRtpCodecParameters> {
    codecs
        .iter()
        .map(|c| RTCRtpCodecParameters {
            capability: RTCRtpCodecCapability {
                mime_type: c.mime_type(),
                clock_rate: c.clock_rate(),
                channels: c.channels(),
                sdp_fmtp_line: c.fmtp(),
                rtcp_feedback: vec![],
            },
            payload_type: preferred_pt(c),
            ..Default::default()
        })
        .collect()
}

async fn read_rtp_loop(
    track: Arc<TrackRemote>,
    mut stream: StreamInfo,
    shared: Arc<Shared>,
    listener: Weak<dyn PeerListener>,
) {
    let kind = stream.kind;
    let activity = &shared.activity[kind.index()];
    while let Ok((packet, _)) = track.read_rtp().await {
        if shared.closed.load(Ordering::Acquire) {
            break;
        }
        let Some(l) = listener.upgrade() else { break };
        if shared.slowlink_threshold > 0 {
            shared.loss[kind.index()]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .on_packet(packet.header.sequence_number);
        }
        activity
            .last_packet_ms
            .store(shared.elapsed_ms(), Ordering::Relaxed);
        if !activity.receiving.swap(true, Ordering::AcqRel) {
            l.on_media(kind, &stream.mid, true);
        }
        if let Some(id) = stream.audio_level_id {
            // The extension's payload is a slice of the packet (no copy, no allocation).
            stream.audio_level = packet
                .header
                .get_extension(id)
                .and_then(|data| AudioLevel::parse(&data));
        }
        l.on_rtp(
            &stream,
            RtpPacket {
                payload_type: packet.header.payload_type,
                sequence_number: packet.header.sequence_number,
                timestamp: packet.header.timestamp,
                ssrc: packet.header.ssrc,
                marker: packet.header.marker,
                payload: packet.payload,
            },
        );
    }
}

async fn read_rtcp_loop(
    sender: Arc<RTCRtpSender>,
    kind: MediaKind,
    shared: Arc<Shared>,
    listener: Weak<dyn PeerListener>,
) {
    // Cumulative loss the peer last reported for what we send it.
    let mut reported_lost: Option<u32> = None;
    while let Ok((packets, _)) = sender.read_rtcp().await {
        let Some(l) = listener.upgrade() else { break };
        for packet in packets {
            let any = packet.as_any();
            if let Some(rr) = any.downcast_ref::<rtcp::receiver_report::ReceiverReport>() {
                if let (Some(report), true) = (rr.reports.first(), shared.slowlink_threshold > 0) {
                    let lost = u64::from(
                        report
                            .total_lost
                            .saturating_sub(reported_lost.unwrap_or(report.total_lost)),
                    );
                    reported_lost = Some(report.total_lost);
                    if lost >= shared.slowlink_threshold {
                        let mid = shared.activity[kind.index()]
                            .mid
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .clone();
                        l.on_slowlink(kind, &mid, true, lost);
                    }
                }
                continue;
            }
            if any.is::<rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication>()
                || any.is::<rtcp::payload_feedbacks::full_intra_request::FullIntraRequest>()
            {
                l.on_rtcp(kind, RtcpFeedback::KeyframeRequest);
            } else if let Some(remb) =
                any.downcast_ref::<rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate>()
            {
                l.on_rtcp(kind, RtcpFeedback::Remb(remb.bitrate as u64));
            }
        }
    }
}

async fn write_loop(
    pc: Arc<RTCPeerConnection>,
    shared: Arc<Shared>,
    mut rx: mpsc::Receiver<Outbound>,
) {
    while let Some(item) = rx.recv().await {
        if shared.closed.load(Ordering::Acquire) {
            break;
        }
        match item {
            Outbound::Rtp(kind, p) => {
                let track = shared.tracks[kind.index()]
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let Some(track) = track else { continue };
                let packet = webrtc::rtp::packet::Packet {
                    header: webrtc::rtp::header::Header {
                        version: 2,
                        marker: p.marker,
                        payload_type: p.payload_type,
                        sequence_number: p.sequence_number,
                        timestamp: p.timestamp,
                        ssrc: p.ssrc,
                        ..Default::default()
                    },
                    payload: p.payload,
                };
                if let Err(e) = track.write_rtp(&packet).await {
                    tracing::debug!(error = %e, "RTP write");
                }
            }
            Outbound::KeyframeRequest => {
                let ssrc = shared.remote_ssrc[MediaKind::Video.index()].load(Ordering::Relaxed);
                if ssrc != 0 {
                    let pli =
                        rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication {
                            sender_ssrc: 0,
                            media_ssrc: ssrc,
                        };
                    let _ = pc.write_rtcp(&[Box::new(pli)]).await;
                }
            }
            Outbound::Remb(bitrate) => {
                let ssrcs: Vec<u32> = shared
                    .remote_ssrc
                    .iter()
                    .map(|s| s.load(Ordering::Relaxed))
                    .filter(|s| *s != 0)
                    .collect();
                if !ssrcs.is_empty() {
                    let remb = rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate {
                        sender_ssrc: 0,
                        bitrate: bitrate as f32,
                        ssrcs,
                    };
                    let _ = pc.write_rtcp(&[Box::new(remb)]).await;
                }
            }
            Outbound::Data(label, message) => {
                let channel = shared
                    .channels
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&label)
                    .cloned();
                let Some(channel) = channel else { continue };
                let result = match message {
                    DataMessage::Text(text) => channel.send_text(text).await,
                    DataMessage::Binary(data) => channel.send(&data).await,
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, label, "data channel send");
                }
            }
        }
    }
}

/// Declares media stopped after `no_media_timer` without packets, and started again on the
/// next packet (the receive loop flips it back).
async fn activity_loop(
    shared: Arc<Shared>,
    listener: Weak<dyn PeerListener>,
    no_media_timer: Duration,
) {
    const TICK: Duration = Duration::from_millis(250);
    const TICKS_PER_SECOND: u64 = 4;
    let mut tick = tokio::time::interval(TICK);
    let limit = no_media_timer.as_millis() as u64;
    for n in 1u64.. {
        tick.tick().await;
        if shared.closed.load(Ordering::Acquire) {
            break;
        }
        let Some(l) = listener.upgrade() else { break };
        let now = shared.elapsed_ms();
        for kind in MediaKind::ALL {
            let activity = &shared.activity[kind.index()];
            let silent =
                now.saturating_sub(activity.last_packet_ms.load(Ordering::Relaxed)) > limit;
            if silent && activity.receiving.swap(false, Ordering::AcqRel) {
                let mid = activity
                    .mid
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                l.on_media(kind, &mid, false);
            }
            if shared.slowlink_threshold > 0 && n % TICKS_PER_SECOND == 0 {
                let lost = shared.loss[kind.index()]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take_lost();
                if lost >= shared.slowlink_threshold {
                    let mid = activity
                        .mid
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone();
                    l.on_slowlink(kind, &mid, false, lost);
                }
            }
        }
    }
}
