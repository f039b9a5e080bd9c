//! The media engine: one webrtc-rs API object (codecs, interceptors, ICE settings) and one
//! DTLS certificate, shared by every PeerConnection of the process.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use webrtc::api::interceptor_registry::{configure_rtcp_reports, configure_twcc_receiver_only};
use webrtc::api::media_engine::MediaEngine as RtcMediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{APIBuilder, API};
use webrtc::dtls::crypto::Certificate as DtlsCertificate;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice::udp_mux::{UDPMuxDefault, UDPMuxParams};
use webrtc::ice::udp_network::{EphemeralUDP, UDPNetwork};
use webrtc::ice_transport::ice_candidate_type::RTCIceCandidateType;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::interceptor::nack::{generator::Generator, responder::Responder};
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::certificate::RTCCertificate;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RTPCodecType,
};
use webrtc::rtp_transceiver::RTCPFeedback;

use super::capacity::Capacity;
use super::error::MediaError;
use super::interfaces;
use super::nack_queue::MinNackQueue;
use super::peer::{Peer, PeerListener};
use super::plan::Codec;
use super::rtc::{LoopPool, PeerTemplate};
use super::webrtc_peer::{PeerSettings, WebrtcPeer};
use crate::config::{DtlsConfig, EngineKind, IceConfig, MediaConfig};

/// RFC 4733 `telephone-event` as registered: (clock rate in Hz, payload type). webrtc-rs
/// matches codec preferences on MIME type and fmtp only, so the payload type is what tells
/// the two clock rates apart.
pub(super) const DTMF_PAYLOAD_TYPES: [(u32, u8); 2] = [(48_000, 110), (8_000, 126)];

/// The payload type a codec preference names for `codec`: its static one (RFC 3551), the
/// registered one of telephone-event's clock, else 0 (the engine picks its own).
pub(super) fn preferred_pt(codec: &Codec) -> u8 {
    match codec {
        Codec::TelephoneEvent { clock_rate } => DTMF_PAYLOAD_TYPES
            .iter()
            .find(|(rate, _)| rate == clock_rate)
            .map_or(0, |(_, pt)| *pt),
        _ => codec.static_pt().unwrap_or(0),
    }
}

/// Packets each outgoing stream keeps for answering NACKs (RFC 4585 §6.2.1), as a power of
/// two: 2^8 = 256 packets is over 1 s of video up to ~3 Mbit/s in 1,200-byte packets and 5 s
/// of Opus. webrtc-rs keeps 8,192 by default: ~10 MB per 500 kbit/s video stream once full,
/// the bulk of a PeerConnection's memory.
const NACK_RESPONDER_LOG2_PACKETS: u8 = 8;

/// Creates PeerConnections configured from `[ice]`, `[dtls]` and `[media]`.
pub struct MediaEngine {
    backend: Backend,
    host_addresses: Vec<IpAddr>,
    capacity: Capacity,
    min_nack_queue: MinNackQueue,
}

/// What `[media] engine` chose.
enum Backend {
    /// webrtc-rs 0.17: one API object and certificate; tasks and sockets per PeerConnection.
    Webrtc {
        api: Box<API>,
        ice_servers: Vec<RTCIceServer>,
        certificate: Box<RTCCertificate>,
        settings: PeerSettings,
    },
    /// Event loops on webrtc-rs's sans-I/O core.
    Loop(LoopPool),
}

impl MediaEngine {
    /// Builds the engine: codecs (Opus, G.722, PCMU, PCMA, telephone-event, VP8, VP9, H.264,
    /// AV1), interceptors (NACK with a bounded retransmission buffer, RTCP reports, TWCC), ICE
    /// settings (one shared UDP port when `[media] udp_port` is set) and the DTLS certificate.
    /// `no_media_timer`: silence before a `media` receiving=false event; `slowlink_threshold`:
    /// lost packets per second that raise `slowlink` (0 = never). Must run inside the Tokio
    /// runtime (the single-port socket is registered with it).
    ///
    /// With `[media] engine = "loop"`, event loops (`media::rtc`) instead, on the first host
    /// address.
    ///
    /// Errors: a bad port range, a single port that cannot be bound, or a bad certificate, as
    /// [`MediaError`].
    pub fn new(
        ice: &IceConfig,
        dtls: &DtlsConfig,
        media_config: &MediaConfig,
        no_media_timer: Duration,
        slowlink_threshold: u64,
    ) -> Result<Self, MediaError> {
        if media_config.engine.resolve(ice) == EngineKind::Loop {
            return Self::with_loops(ice, dtls, media_config, no_media_timer, slowlink_threshold);
        }
        let mut media = RtcMediaEngine::default();
        media.register_default_codecs()?;
        // RFC 4733 DTMF beside the audio codecs, at both clocks browsers offer it with, so
        // that a SIP leg's telephone-event can be negotiated end to end.
        for (clock_rate, payload_type) in DTMF_PAYLOAD_TYPES {
            media.register_codec(
                RTCRtpCodecParameters {
                    capability: RTCRtpCodecCapability {
                        mime_type: "audio/telephone-event".into(),
                        clock_rate,
                        channels: 0,
                        sdp_fmtp_line: "0-16".into(),
                        rtcp_feedback: vec![],
                    },
                    payload_type,
                    ..Default::default()
                },
                RTPCodecType::Audio,
            )?;
        }
        // RFC 6464 client-to-mixer audio levels, answered when offered (Chromium offers it):
        // the audio bridge detects talking from them (`StreamInfo::audio_level`).
        media.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: super::negotiated::AUDIO_LEVEL_URI.to_owned(),
            },
            RTPCodecType::Audio,
            None,
        )?;
        // webrtc-rs' default set (NACK, RTCP reports, TWCC receiver) with a NACK responder
        // buffer bounded by NACK_RESPONDER_LOG2_PACKETS instead of 8,192 packets per stream,
        // and none when `[media] min_nack_queue` is 0.
        for parameter in ["", "pli"] {
            media.register_feedback(
                RTCPFeedback {
                    typ: "nack".to_owned(),
                    parameter: parameter.to_owned(),
                },
                RTPCodecType::Video,
            );
        }
        let mut registry = Registry::new();
        if media_config.min_nack_queue > 0 {
            registry.add(Box::new(
                Responder::builder().with_log2_size(NACK_RESPONDER_LOG2_PACKETS),
            ));
        }
        registry.add(Box::new(Generator::builder()));
        let registry = configure_rtcp_reports(registry);
        let registry = configure_twcc_receiver_only(registry, &mut media)?;

        let mut settings = SettingEngine::default();
        let addresses = interfaces::local_addresses();
        let loopback = interfaces::include_loopback(ice.loopback, &addresses);
        settings.set_include_loopback_candidate(loopback);
        settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
        if media_config.udp_port != 0 {
            // One socket for every PeerConnection: the mux answers STUN by ufrag and then
            // routes by remote address. Bound on IPv4's any address, so IPv4 only.
            settings.set_network_types(vec![NetworkType::Udp4]);
            settings.set_udp_network(UDPNetwork::Muxed(bind_single_port(media_config.udp_port)?));
        } else {
            settings.set_network_types(vec![NetworkType::Udp4, NetworkType::Udp6]);
        }
        if !ice.bind_addresses.is_empty() {
            let allowed = ice.bind_addresses.clone();
            settings.set_ip_filter(Box::new(move |ip| allowed.contains(&ip)));
        }
        if ice.port_min != 0 {
            let range = EphemeralUDP::new(ice.port_min, ice.port_max)
                .map_err(|e| MediaError::Rtc(e.to_string()))?;
            settings.set_udp_network(UDPNetwork::Ephemeral(range));
        }
        if !ice.nat_1_1_mapping.is_empty() {
            let ips = ice
                .nat_1_1_mapping
                .iter()
                .map(|ip| ip.to_string())
                .collect();
            settings.set_nat_1to1_ips(ips, RTCIceCandidateType::Host);
        }
        settings.set_lite(ice.ice_lite);
        let mut host_addresses =
            interfaces::gathered_addresses(&addresses, loopback, &ice.bind_addresses);
        if media_config.udp_port != 0 {
            host_addresses.retain(IpAddr::is_ipv4);
        }
        tracing::info!(
            loopback,
            addresses = ?host_addresses,
            udp_port = media_config.udp_port,
            "ICE host candidates"
        );

        let api = APIBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .build();

        let mut ice_servers: Vec<RTCIceServer> = ice
            .stun_servers
            .iter()
            .map(|url| RTCIceServer {
                urls: vec![url.clone()],
                ..Default::default()
            })
            .collect();
        ice_servers.extend(ice.turn_servers.iter().map(|t| RTCIceServer {
            urls: vec![t.url.clone()],
            username: t.username.clone(),
            credential: t.credential.clone(),
        }));

        Ok(Self {
            backend: Backend::Webrtc {
                api: Box::new(api),
                ice_servers,
                certificate: Box::new(load_certificate(dtls)?),
                settings: PeerSettings {
                    no_media_timer,
                    full_trickle: ice.full_trickle,
                    slowlink_threshold,
                },
            },
            host_addresses,
            capacity: Capacity::new(media_config.max_sessions),
            min_nack_queue: MinNackQueue::new(media_config.min_nack_queue),
        })
    }

    /// The loop engine: `[media] loops` event loops on the first host address (IPv4 first),
    /// sharing one DTLS certificate.
    fn with_loops(
        ice: &IceConfig,
        dtls: &DtlsConfig,
        media_config: &MediaConfig,
        no_media_timer: Duration,
        slowlink_threshold: u64,
    ) -> Result<Self, MediaError> {
        let addresses = interfaces::local_addresses();
        let loopback = interfaces::include_loopback(ice.loopback, &addresses);
        let gathered = interfaces::gathered_addresses(&addresses, loopback, &ice.bind_addresses);
        let ip = gathered
            .iter()
            .find(|ip| ip.is_ipv4())
            .or(gathered.first())
            .copied()
            .ok_or_else(|| MediaError::Rtc("no address to offer host candidates on".into()))?;
        let template = loop_template(ice, dtls, media_config, no_media_timer, slowlink_threshold)?;
        let min_nack_queue = template.min_nack_queue.clone();
        let pool = LoopPool::start(
            media_config.loops,
            ip,
            media_config.udp_port,
            ice.port_min,
            template,
        )?;
        tracing::info!(%ip, udp_port = media_config.udp_port, "ICE host candidates (loop engine)");
        Ok(Self {
            backend: Backend::Loop(pool),
            host_addresses: vec![ip],
            capacity: Capacity::new(media_config.max_sessions),
            min_nack_queue,
        })
    }

    /// How many PeerConnections are alive and how many may be: the `[media] max_sessions`
    /// guard the API checks on `create` and `attach`.
    pub fn capacity(&self) -> &Capacity {
        &self.capacity
    }

    /// `[media] min_nack_queue` as it is now: the Admin API's `get_status` shows it and
    /// `set_min_nack_queue` changes it, for every PeerConnection of the loop engine at once.
    /// The `webrtc` engine reads only whether it was 0 at start.
    pub fn min_nack_queue(&self) -> &MinNackQueue {
        &self.min_nack_queue
    }

    /// The local addresses host candidates are gathered on (before any `nat_1_1_mapping`),
    /// as read at start.
    pub fn host_addresses(&self) -> &[IpAddr] {
        &self.host_addresses
    }

    /// Whether IPv6 host candidates are offered: `server_info`'s `ipv6`, which Janus sets
    /// when it gathers on IPv6.
    pub fn offers_ipv6(&self) -> bool {
        self.host_addresses.iter().any(IpAddr::is_ipv6)
    }

    /// A new PeerConnection whose events go to `listener`.
    pub async fn create_peer(
        &self,
        listener: Arc<dyn PeerListener>,
    ) -> Result<Arc<Peer>, MediaError> {
        let slot = self.capacity.take().ok_or(MediaError::Overloaded)?;
        let peer = match &self.backend {
            Backend::Webrtc {
                api,
                ice_servers,
                certificate,
                settings,
            } => {
                let config = RTCConfiguration {
                    ice_servers: ice_servers.clone(),
                    certificates: vec![(**certificate).clone()],
                    ..Default::default()
                };
                let pc = api.new_peer_connection(config).await?;
                Peer::webrtc(WebrtcPeer::start(Arc::new(pc), listener, *settings), slot)
            }
            Backend::Loop(pool) => {
                Peer::on_loop(pool.create_peer(Arc::downgrade(&listener)).await?, slot)
            }
        };
        Ok(Arc::new(peer))
    }
}

/// Binds the single-port mode's socket on `0.0.0.0:port` and wraps it in webrtc-rs' UDP mux.
fn bind_single_port(port: u16) -> Result<Arc<UDPMuxDefault>, MediaError> {
    let err = |e: std::io::Error| MediaError::Rtc(format!("[media] udp_port {port}: {e}"));
    let socket = std::net::UdpSocket::bind((std::net::Ipv4Addr::UNSPECIFIED, port)).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    let socket = tokio::net::UdpSocket::from_std(socket).map_err(err)?;
    Ok(UDPMuxDefault::new(UDPMuxParams::new(socket)))
}

/// Loads the configured certificate, or makes a self-signed one valid for a year; one
/// certificate serves all PeerConnections, so no key is generated per call.
fn load_certificate(dtls: &DtlsConfig) -> Result<RTCCertificate, MediaError> {
    let err = |m: String| MediaError::Certificate(m);
    let certificate = if dtls.cert_pem.is_empty() {
        DtlsCertificate::generate_self_signed(vec!["bifrons".to_string()])
            .map_err(|e| err(e.to_string()))?
    } else {
        let read =
            |path: &str| std::fs::read_to_string(path).map_err(|e| err(format!("{path}: {e}")));
        let key =
            pem::parse(read(&dtls.key_pem)?).map_err(|e| err(format!("{}: {e}", dtls.key_pem)))?;
        if key.tag() != "PRIVATE KEY" {
            return Err(err(format!(
                "{}: expected a PKCS#8 'PRIVATE KEY', found '{}'",
                dtls.key_pem,
                key.tag()
            )));
        }
        let certs = pem::parse_many(read(&dtls.cert_pem)?)
            .map_err(|e| err(format!("{}: {e}", dtls.cert_pem)))?;
        let mut blocks = vec![pem::Pem::new("PRIVATE_KEY", key.contents().to_vec())];
        blocks.extend(certs.into_iter().filter(|c| c.tag() == "CERTIFICATE"));
        DtlsCertificate::from_pem(&pem::encode_many(&blocks)).map_err(|e| err(e.to_string()))?
    };
    let expires = SystemTime::now() + Duration::from_secs(365 * 24 * 3600);
    Ok(RTCCertificate::from_existing(certificate, expires))
}

/// The settings every PeerConnection of the loop engine starts from: the DTLS certificate
/// (`[dtls]`, or one generated for the process), `[ice]`'s trickle, ICE-lite and 1:1 NAT, the
/// `media` and `slowlink` event thresholds, and `[media] min_nack_queue`.
///
/// Errors: a certificate that cannot be read or generated, as [`MediaError`].
fn loop_template(
    ice: &IceConfig,
    dtls: &DtlsConfig,
    media_config: &MediaConfig,
    no_media_timer: Duration,
    slowlink_threshold: u64,
) -> Result<PeerTemplate, MediaError> {
    let mut template = if dtls.cert_pem.is_empty() {
        PeerTemplate::generate()?
    } else {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map_err(|e| MediaError::Certificate(format!("{path}: {e}")))
        };
        PeerTemplate::from_pem(&format!(
            "{}\n{}",
            read(&dtls.key_pem)?,
            read(&dtls.cert_pem)?
        ))?
    };
    template.full_trickle = ice.full_trickle;
    template.ice_lite = ice.ice_lite;
    template.nat_1_1 = ice.nat_1_1_mapping.clone();
    template.no_media_timer = no_media_timer;
    template.slowlink_threshold = slowlink_threshold;
    template.min_nack_queue = MinNackQueue::new(media_config.min_nack_queue);
    Ok(template)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_template_takes_the_configured_settings() {
        let ice = IceConfig {
            full_trickle: true,
            ice_lite: true,
            ..Default::default()
        };
        let template = |min_nack_queue| {
            let media = MediaConfig {
                min_nack_queue,
                ..Default::default()
            };
            loop_template(
                &ice,
                &DtlsConfig::default(),
                &media,
                Duration::from_secs(3),
                7,
            )
            .unwrap()
        };
        let configured = template(800);
        assert_eq!(configured.min_nack_queue.ms(), 800);
        assert!(configured.full_trickle && configured.ice_lite);
        assert_eq!(configured.no_media_timer, Duration::from_secs(3));
        assert_eq!(configured.slowlink_threshold, 7);
        assert_eq!(
            template(MediaConfig::default().min_nack_queue)
                .min_nack_queue
                .ms(),
            200
        );
        assert_eq!(template(0).min_nack_queue.ms(), 0);
    }
}
