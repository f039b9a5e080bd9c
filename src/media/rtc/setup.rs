//! What a loop PeerConnection is built from: the process-wide [`PeerTemplate`] (certificate and
//! settings), the codecs and interceptors of each PeerConnection, the loop socket's host
//! candidate and datagrams as `rtc` reads them, and the conversions between the media
//! contract's types and `rtc`'s.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::interceptor::Registry;
use rtc::interceptor::{NackGeneratorBuilder, Slot};
use rtc::peer_connection::certificate::RTCCertificate;
use rtc::peer_connection::configuration::interceptor_registry::{
    configure_rtcp_reports, configure_twcc_receiver_only,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, CandidateServerReflexiveConfig, RTCIceCandidate,
    RTCIceCandidateInit,
};
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use crate::config::DEFAULT_MIN_NACK_QUEUE_MS;
use crate::media::engine::{preferred_pt, DTMF_PAYLOAD_TYPES};
use crate::media::negotiated::AUDIO_LEVEL_URI;
use crate::media::plan::{Codec, Direction};
use crate::media::MinNackQueue;
use crate::media::{MediaError, MediaKind};

/// What every PeerConnection of the process shares: one DTLS certificate (no key generation
/// per PeerConnection) and the `[ice]`/`[general]` settings.
#[derive(Clone)]
pub struct PeerTemplate {
    /// The DTLS certificate of every PeerConnection.
    pub certificate: Arc<RTCCertificate>,
    /// Trickle our candidate as an event too (`[ice] full_trickle`).
    pub full_trickle: bool,
    /// Answer as an ICE-lite agent (RFC 8445 §2.5, `[ice] ice_lite`).
    pub ice_lite: bool,
    /// Public addresses the loops' sockets are reached at (`[ice] nat_1_1_mapping`); empty:
    /// none, the host candidate is offered. See [`local_candidates`].
    pub nat_1_1: Vec<IpAddr>,
    /// Silence before a `media` receiving=false event.
    pub no_media_timer: Duration,
    /// Lost packets per second that raise `slowlink`; 0 = never.
    pub slowlink_threshold: u64,
    /// The shortest each outgoing stream keeps what it sent for NACKs (`[media]
    /// min_nack_queue`); a stream keeps its round trip + 100 ms when that is longer, at most
    /// 1 s ([`super::retransmit`]). Zero keeps nothing.
    pub min_nack_queue: MinNackQueue,
}

impl PeerTemplate {
    /// The template with `certificate` and the defaults: half trickle, full ICE, `media`
    /// after 1 s of silence, no slow-link events.
    pub fn new(certificate: RTCCertificate) -> Self {
        Self {
            certificate: Arc::new(certificate),
            full_trickle: false,
            ice_lite: false,
            nat_1_1: Vec::new(),
            no_media_timer: Duration::from_secs(1),
            slowlink_threshold: 0,
            min_nack_queue: MinNackQueue::new(DEFAULT_MIN_NACK_QUEUE_MS),
        }
    }

    /// A template with the process' self-signed ECDSA P-256 certificate, generated once.
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
        Ok(Self::new(certificate))
    }

    /// A template with the certificate and PKCS#8 key of `pem` (both blocks in one text).
    ///
    /// Errors: a PEM `rtc` cannot read, as [`MediaError::Certificate`].
    pub fn from_pem(pem: &str) -> Result<Self, MediaError> {
        let err = |e: String| MediaError::Certificate(e);
        let provider = rtc::crypto::default_provider().map_err(|e| err(e.to_string()))?;
        let certificate =
            RTCCertificate::from_pem(pem, provider.crypto()).map_err(|e| err(e.to_string()))?;
        Ok(Self::new(certificate))
    }
}

/// The codecs, header extensions and interceptors of one PeerConnection: `rtc`'s defaults
/// (Opus, G.722, PCMU, PCMA, VP8, VP9, H.264, AV1; NACK both ways with `nack`/`nack pli` on
/// video, TWCC receiver, RTCP reports) plus RFC 4733 telephone-event at 48 and 8 kHz and RFC
/// 6464 audio levels, with NACKs answered from what each stream sent in the last
/// `min_nack_queue` or more ([`super::retransmit`]).
///
/// `dtmf_clock` (Hz) is the telephone-event registered first: `rtc` finds a codec preference
/// by MIME type and fmtp, not by clock rate, so a preference for telephone-event resolves to
/// whichever of the two comes first.
pub(super) fn media_setup(
    dtmf_clock: u32,
    min_nack_queue: MinNackQueue,
) -> Result<(MediaEngine, Registry), rtc::shared::error::Error> {
    let mut media = MediaEngine::default();
    media.register_default_codecs()?;
    let mut dtmf = DTMF_PAYLOAD_TYPES;
    dtmf.sort_by_key(|&(clock_rate, _)| clock_rate != dtmf_clock);
    for (clock_rate, payload_type) in dtmf {
        media.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: "audio/telephone-event".into(),
                    clock_rate,
                    channels: 0,
                    sdp_fmtp_line: "0-16".into(),
                    rtcp_feedback: vec![],
                },
                payload_type,
            },
            RtpCodecKind::Audio,
        )?;
    }
    media.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: AUDIO_LEVEL_URI.to_owned(),
        },
        RtpCodecKind::Audio,
        None,
    )?;
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
            super::retransmit::Retransmitter::new(min_nack_queue),
        )
        .with(Slot::NackGenerator, NackGeneratorBuilder::new().build())
        .with(
            Slot::from(super::feedback::SLOT),
            super::feedback::FeedbackToApplication::default(),
        );
    let registry = configure_twcc_receiver_only(registry, &mut media)?;
    Ok((media, configure_rtcp_reports(registry)))
}

pub(super) fn rtc_err(e: rtc::shared::error::Error) -> MediaError {
    MediaError::Rtc(e.to_string())
}

pub(super) fn codec_kind(kind: MediaKind) -> RtpCodecKind {
    match kind {
        MediaKind::Audio => RtpCodecKind::Audio,
        MediaKind::Video => RtpCodecKind::Video,
    }
}

pub(super) fn transceiver_direction(direction: Direction) -> RTCRtpTransceiverDirection {
    match direction {
        Direction::SendRecv => RTCRtpTransceiverDirection::Sendrecv,
        Direction::SendOnly => RTCRtpTransceiverDirection::Sendonly,
        Direction::RecvOnly => RTCRtpTransceiverDirection::Recvonly,
        Direction::Inactive => RTCRtpTransceiverDirection::Inactive,
    }
}

/// Codec preferences for a transceiver, in `codecs`' order; payload type 0 lets `rtc` take
/// its own (telephone-event gets the registered one of its clock).
pub(super) fn codec_parameters(codecs: &[Codec]) -> Vec<RTCRtpCodecParameters> {
    codecs
        .iter()
        .map(|c| RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: c.mime_type(),
                clock_rate: c.clock_rate(),
                channels: c.channels(),
                sdp_fmtp_line: c.fmtp(),
                rtcp_feedback: vec![],
            },
            payload_type: preferred_pt(c),
        })
        .collect()
}

/// The `a=ice-ufrag` of `sdp` (the first; BUNDLE shares one).
pub(super) fn sdp_ufrag(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .map(str::trim)
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
/// `add_local_candidate` (RFC 8445 §5.1.1.1).
///
/// Errors: [`MediaError::Rtc`] when `rtc` refuses the address.
pub fn host_candidate(addr: SocketAddr) -> Result<RTCIceCandidateInit, MediaError> {
    let candidate = CandidateHostConfig {
        base_config: candidate_config(addr.ip(), addr.port()),
        ..Default::default()
    }
    .new_candidate_host()
    .map_err(rtc_err)?;
    RTCIceCandidate::from(&candidate).to_json().map_err(rtc_err)
}

/// The candidates a loop's socket at `addr` is offered with: its host candidate, or with
/// `[ice] nat_1_1_mapping`, one candidate per mapped address of `addr`'s family instead (as
/// Janus replaces the host address): typed `srflx` with `raddr`/`rport` = `addr` (RFC 8445
/// §5.1.1.2, the address a NAT maps the socket to), which is also how `rtc`'s agent finds
/// the socket a check arrives on.
///
/// Errors: [`MediaError::Rtc`] when `rtc` refuses an address.
pub fn local_candidates(
    addr: SocketAddr,
    nat_1_1: &[IpAddr],
) -> Result<Vec<RTCIceCandidateInit>, MediaError> {
    let mapped: Vec<IpAddr> = nat_1_1
        .iter()
        .filter(|ip| ip.is_ipv4() == addr.is_ipv4())
        .copied()
        .collect();
    if mapped.is_empty() {
        return Ok(vec![host_candidate(addr)?]);
    }
    mapped
        .into_iter()
        .map(|ip| {
            let candidate = CandidateServerReflexiveConfig {
                base_config: candidate_config(ip, addr.port()),
                rel_addr: addr.ip().to_string(),
                rel_port: addr.port(),
                url: None,
            }
            .new_candidate_server_reflexive()
            .map_err(rtc_err)?;
            RTCIceCandidate::from(&candidate).to_json().map_err(rtc_err)
        })
        .collect()
}

/// UDP, component 1 (RTP and RTCP muxed, RFC 5761), at `ip:port`.
fn candidate_config(ip: IpAddr, port: u16) -> CandidateConfig {
    CandidateConfig {
        network: "udp".to_owned(),
        address: ip.to_string(),
        port,
        component: 1,
        ..Default::default()
    }
}
