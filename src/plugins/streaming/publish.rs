//! Browser publishers of mountpoints, shared by WHIP ([`super::whip`]) and the `publish`
//! request: the stream-key check, the mountpoint a publish feeds (found, or created on the
//! first publish as an RTMP publish creates its own), the offer narrowed to the mountpoint's
//! codecs, and [`PublishFeed`], which hands every received RTP packet to the mountpoint's
//! fan-out as the RTMP ingest does, untouched (Opus, VP8 or H.264 as the browser sent them:
//! no codec work here). Viewers' keyframe requests reach the publisher as a PLI. H.264 video
//! also goes to the mountpoint's VP8 rendition while viewers without H.264 watch (the
//! transcoding runs on a codec worker, see [`super::vp8`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use subtle::ConstantTimeEq;

use super::mountpoints::{
    now_ms, MediaStream, MountpointEntry, Mountpoints, NewMountpoint, Source,
};
use super::publish_offer::{narrow, relayable, sections, OfferError};
use super::rtmp_ingest::plausible_key;
use super::vp8::Vp8Variant;
use crate::media::{Codec, MediaKind, MediaSender, Negotiated, Peer, RtpPacket, StreamInfo};
use crate::storage::{Storage, StreamKey, Timestamp};
use crate::web::panel::status::Publisher;

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishError {
    /// No token, an unknown or disabled key, or a key of another mountpoint (WHIP 401,
    /// streaming 457), with why (for the log line: never the key).
    Unauthorized(&'static str),
    /// No such mountpoint (WHIP 404, streaming 455).
    NotFound,
    /// The offer cannot be published (WHIP 400, streaming 461), with why.
    BadOffer(String),
    /// The mountpoint has a source already (WHIP 409, streaming 460), with why.
    Busy(String),
    /// Something on the gateway's side failed (WHIP 503, streaming 470), with why.
    Unavailable(String),
}

impl From<OfferError> for PublishError {
    fn from(e: OfferError) -> Self {
        PublishError::BadOffer(e.to_string())
    }
}

/// The enabled registry stream key `token`. The registry finds the row; the key is then
/// compared again in constant time. Nothing of the token is logged.
pub async fn stream_key(storage: &Storage, token: &str) -> Result<StreamKey, PublishError> {
    if !plausible_key(token) {
        return Err(PublishError::Unauthorized("malformed stream key"));
    }
    let key = match storage.stream_keys().get_by_key(token).await {
        Ok(k) => k,
        Err(crate::storage::StorageError::NotFound { .. }) => {
            return Err(PublishError::Unauthorized("unknown stream key"))
        }
        Err(e) => return Err(PublishError::Unavailable(format!("registry: {e}"))),
    };
    if !bool::from(key.key.expose().as_bytes().ct_eq(token.as_bytes())) {
        return Err(PublishError::Unauthorized("unknown stream key"));
    }
    if !key.enabled {
        return Err(PublishError::Unauthorized("disabled stream key"));
    }
    Ok(key)
}

/// Seconds between checks that a live publisher's stream key is still in the registry and
/// enabled: revoking or disabling a key drops its publisher (RTMP, WHIP) within this time.
pub const KEY_CHECK_SECONDS: u64 = 5;

/// Whether the stream key `token` of a live publish was revoked (gone from the registry) or
/// disabled. A registry error answers `false` (the publisher is kept, checked again later),
/// with a log line. Nothing of the token is logged.
pub async fn key_revoked(storage: &Storage, token: &str, mountpoint: u64) -> bool {
    match storage.stream_keys().get_by_key(token).await {
        Ok(k) => !k.enabled,
        Err(crate::storage::StorageError::NotFound { .. }) => true,
        Err(e) => {
            tracing::warn!(mountpoint, error = %e, "stream key check failed; publisher kept");
            false
        }
    }
}

/// The streams of a mountpoint a browser creates: per enabled offered kind, the first
/// relayable codec of the offer (`a` Opus, `v` VP8 or H.264 with the offered profile).
fn streams_of(offer: &[super::publish_offer::OfferedSection]) -> Vec<MediaStream> {
    let mut streams = Vec::new();
    for kind in MediaKind::ALL {
        let Some(format) = offer
            .iter()
            .filter(|s| s.kind == kind && !s.disabled)
            .find_map(|s| s.pick(None))
        else {
            continue;
        };
        let Some(codec) = format.codec.clone() else {
            continue;
        };
        streams.push(MediaStream {
            mid: if kind == MediaKind::Audio { "a" } else { "v" },
            kind,
            codec,
        });
    }
    streams
}

/// A mountpoint claimed by a publish, with the offer narrowed to its codecs.
pub struct Claimed {
    /// The mountpoint, now live.
    pub mountpoint: Arc<MountpointEntry>,
    /// The offer with one format per section (the mountpoint's codec).
    pub offer: String,
}

/// Claims mountpoint `id` for a publish of `offer`: created (source `webrtc`, named `name`)
/// when it does not exist, refused when an `rtp` mountpoint or already live (another
/// publisher). The offer must list the mountpoint's codec for each kind it carries; at least
/// one kind must match. Undo with [`release`] when the negotiation then fails.
pub fn claim(
    mountpoints: &Mountpoints,
    id: u64,
    name: &str,
    offer: &str,
) -> Result<Claimed, PublishError> {
    let offered = sections(offer)?;
    let mp = match mountpoints.get(id) {
        Some(mp) => mp,
        None => {
            let streams = streams_of(&offered);
            if streams.is_empty() {
                return Err(PublishError::BadOffer(
                    "the offer has no Opus, VP8 or H.264 (packetization-mode 1)".into(),
                ));
            }
            let new = NewMountpoint {
                id,
                name: name.to_string(),
                description: name.to_string(),
                metadata: None,
                secret: None,
                pin: None,
                is_private: false,
                source: Source::WebRtc,
                streams,
                config: None,
                data: false,
            };
            match mountpoints.add(new) {
                Ok(mp) => {
                    tracing::info!(mountpoint = id, "WebRTC mountpoint created on publish");
                    mp
                }
                Err(_) => mountpoints.get(id).ok_or(PublishError::NotFound)?,
            }
        }
    };
    if matches!(mp.source, Source::Rtp { .. }) {
        return Err(PublishError::Busy(format!(
            "mountpoint {id} is fed by RTP ports"
        )));
    }
    let streams = mp.streams();
    let mut keep: [Option<u8>; 2] = [None, None];
    for section in offered.iter().filter(|s| !s.disabled) {
        let Some(stream) = streams.iter().find(|s| s.kind == section.kind) else {
            continue;
        };
        if !relayable(&stream.codec) {
            continue;
        }
        let slot = &mut keep[section.kind.index()];
        if slot.is_none() {
            *slot = section.pick(Some(&stream.codec)).map(|f| f.pt);
        }
    }
    if keep.iter().all(Option::is_none) {
        let wanted: Vec<&str> = streams.iter().map(|s| s.codec.encoding_name()).collect();
        return Err(PublishError::BadOffer(format!(
            "mountpoint {id} carries {}: the offer has none of them",
            wanted.join(" + ")
        )));
    }
    if !mp.set_live(true) {
        return Err(PublishError::Busy(format!(
            "mountpoint {id} already has a publisher"
        )));
    }
    Ok(Claimed {
        offer: narrow(offer, |k| keep[k.index()]),
        mountpoint: mp,
    })
}

/// Gives back a mountpoint [`claim`]ed by a publish that did not start.
pub fn release(mountpoint: &MountpointEntry) {
    mountpoint.set_live(false);
}

/// One browser publish feeding a mountpoint: called per received RTP packet (from the media
/// engine's receive task), lock-free and allocation-free.
pub struct PublishFeed {
    /// The mountpoint fed.
    pub mountpoint: Arc<MountpointEntry>,
    /// Per kind: the payload type negotiated for the mountpoint's codec (`None`: not relayed).
    pt: [Option<u8>; 2],
    /// Packets relayed, per kind.
    pub packets: [AtomicU64; 2],
    /// RTP payload bytes relayed (both kinds), for the live view's bitrate.
    bytes: AtomicU64,
    /// Set once the publish ended: nothing more is relayed.
    ended: AtomicBool,
    /// Whether the video relayed is H.264 (a VP8 rendition may then be fed).
    h264: bool,
    /// The mountpoint's VP8 rendition as last read: read again from the mountpoint after each
    /// video frame (marker bit), as the RTMP ingest reads it once per frame. Locked only by
    /// the receive task of this publish (never by another handle).
    vp8: Mutex<Option<Arc<Vp8Variant>>>,
}

impl PublishFeed {
    /// A feed of `mountpoint` (claimed) with what the answer settled; `sender` is the
    /// publisher's PeerConnection, asked for keyframes (PLI) when viewers need one.
    pub fn start(
        mountpoint: Arc<MountpointEntry>,
        negotiated: &Negotiated,
        sender: MediaSender,
    ) -> Arc<Self> {
        let streams = mountpoint.streams();
        let mut pt = [None, None];
        for kind in MediaKind::ALL {
            let (Some(n), Some(s)) = (
                negotiated.first(kind).filter(|n| n.direction.receives()),
                streams.iter().find(|s| s.kind == kind),
            ) else {
                continue;
            };
            if n.codec.as_ref().is_some_and(|c| s.codec.accepts(c)) {
                pt[kind.index()] = Some(n.pt.0);
            }
        }
        mountpoint.set_publisher_keyframe(Some(sender));
        mountpoint.last_packet_ms.store(0, Ordering::Relaxed);
        mountpoint.notify_viewers(json!({ "status": "started", "id": mountpoint.id }));
        tracing::info!(
            mountpoint = mountpoint.id,
            audio_pt = ?pt[0],
            video_pt = ?pt[1],
            "WebRTC publisher feeds mountpoint"
        );
        let h264 = pt[MediaKind::Video.index()].is_some()
            && streams
                .iter()
                .any(|s| s.kind == MediaKind::Video && matches!(s.codec, Codec::H264 { .. }));
        Arc::new(Self {
            vp8: Mutex::new(mountpoint.vp8()),
            mountpoint,
            pt,
            packets: [AtomicU64::new(0), AtomicU64::new(0)],
            bytes: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            h264,
        })
    }

    /// Whether the feed relays `kind`.
    pub fn relays(&self, kind: MediaKind) -> bool {
        self.pt[kind.index()].is_some()
    }

    /// Relays one received packet to the mountpoint's fan-out (a packet of another payload
    /// type, e.g. a retransmission, is left out).
    pub fn feed(&self, stream: &StreamInfo, packet: RtpPacket) {
        let kind = stream.kind;
        if self.pt[kind.index()] != Some(packet.payload_type) || self.ended.load(Ordering::Relaxed)
        {
            return;
        }
        self.packets[kind.index()].fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(packet.payload.len() as u64, Ordering::Relaxed);
        self.mountpoint
            .last_packet_ms
            .store(now_ms(), Ordering::Relaxed);
        if kind == MediaKind::Video && self.h264 {
            let mut vp8 = self.vp8.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(v) = &*vp8 {
                v.push_rtp(packet.clone());
            }
            if packet.marker {
                *vp8 = self.mountpoint.vp8();
                if vp8
                    .as_ref()
                    .is_some_and(|v| v.take_source_keyframe_request())
                {
                    self.mountpoint.request_source_keyframe();
                }
            }
        }
        self.mountpoint.hub.publish(kind, packet);
    }

    /// Ends the publish (once): the mountpoint is no longer live, its keyframe cache is
    /// emptied and its viewers are told `stopped`. `true` the first time.
    pub fn end(&self, why: &str) -> bool {
        if self.ended.swap(true, Ordering::AcqRel) {
            return false;
        }
        let mp = &self.mountpoint;
        mp.set_publisher_keyframe(None);
        mp.hub.source_gone();
        if mp.set_live(false) {
            mp.notify_viewers(json!({ "status": "stopped", "id": mp.id }));
        }
        tracing::info!(
            mountpoint = mp.id,
            why,
            audio_packets = self.packets[0].load(Ordering::Relaxed),
            video_packets = self.packets[1].load(Ordering::Relaxed),
            "WebRTC publish ended"
        );
        true
    }
}

/// Shows publish `feed` in the admin panel's live view (when the mountpoints report there)
/// until it ends: `protocol` (`whip` or `publish`), the stream key's (or mountpoint's) `name`,
/// the remote address of the pair ICE selected on `peer`, the codecs relayed, the ingest
/// bitrate (RTP payload, kbit/s) and the viewer count, refreshed once a second.
pub fn report_live(
    mountpoints: &Mountpoints,
    feed: Arc<PublishFeed>,
    peer: Option<Arc<Peer>>,
    protocol: &'static str,
    name: String,
) {
    let Some(board) = mountpoints.status().cloned() else {
        return;
    };
    let mp = feed.mountpoint.clone();
    let codecs = mp
        .streams()
        .iter()
        .filter(|s| feed.relays(s.kind))
        .map(|s| s.codec.encoding_name().to_ascii_lowercase())
        .collect();
    let mut publisher = Publisher {
        protocol: protocol.into(),
        stream_key: name,
        mountpoint: mp.id.to_string(),
        remote: None,
        viewers: 0,
        kbps: None,
        since_ms: Timestamp::now().0,
        codecs,
    };
    board.set_publisher(publisher.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        let mut last = (tokio::time::Instant::now(), 0u64);
        loop {
            tick.tick().await;
            if feed.ended.load(Ordering::Acquire) {
                break;
            }
            if publisher.remote.is_none() {
                if let Some(peer) = &peer {
                    publisher.remote = peer
                        .stats()
                        .await
                        .selected_pair
                        .map(|p| format!("{}:{}", p.remote.address, p.remote.port));
                }
            }
            let now = (
                tokio::time::Instant::now(),
                feed.bytes.load(Ordering::Relaxed),
            );
            let seconds = now.0.saturating_duration_since(last.0).as_secs_f64();
            if seconds > 0.0 {
                let kbps = now.1.saturating_sub(last.1) as f64 * 8.0 / 1000.0 / seconds;
                publisher.kbps = Some((kbps * 10.0).round() / 10.0);
            }
            last = now;
            publisher.viewers = u32::try_from(mp.viewers().len()).unwrap_or(u32::MAX);
            board.set_publisher(publisher.clone());
        }
        board.remove_publisher(&publisher.mountpoint);
    });
}

/// The codec names of a mountpoint's streams, for events (`["opus","vp8"]`).
pub fn codec_names(mountpoint: &MountpointEntry) -> Vec<String> {
    mountpoint
        .streams()
        .iter()
        .map(|s| s.codec.encoding_name().to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Mid, Pt};
    use crate::media::Codec;
    use crate::services::streams::MountpointHub;
    use crate::services::workers::WorkerPool;
    use bytes::Bytes;

    const OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:1\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n";

    const ANSWER: &str = "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n";

    fn video(pt: u8, seq: u16) -> RtpPacket {
        RtpPacket {
            payload_type: pt,
            sequence_number: seq,
            timestamp: 3000,
            ssrc: 7,
            marker: true,
            // A VP8 keyframe start (RFC 7741 §4.2/§4.3: S=1, P=0).
            payload: Bytes::from_static(&[0x10, 0x00, 0x9d, 0x01, 0x2a, 0, 0, 0, 0, 0]),
        }
    }

    #[tokio::test]
    async fn a_publish_feeds_its_mountpoint_and_gets_keyframe_requests() {
        let mountpoints = Mountpoints::new(
            Arc::new(MountpointHub::new()),
            Arc::new(WorkerPool::start(1).unwrap()),
        );
        let claimed = claim(&mountpoints, 5, "cam", OFFER).unwrap();
        let mp = claimed.mountpoint.clone();
        assert_eq!(mp.source, Source::WebRtc);
        assert!(claimed.offer.contains("m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"));
        assert!(!claimed.offer.contains("rtx"));
        assert!(matches!(
            claim(&mountpoints, 5, "cam", OFFER),
            Err(PublishError::Busy(_))
        ));

        let (viewer, mut viewed) = MediaSender::detached(64);
        mp.attach_sink(
            Arc::new(super::super::viewer::ViewerSink::new(viewer, 111, 100)),
            false,
        )
        .unwrap();
        let negotiated = Negotiated::from_answer(ANSWER, true).unwrap();
        let (publisher, mut asked) = MediaSender::detached(8);
        let feed = PublishFeed::start(mp.clone(), &negotiated, publisher);
        assert!(feed.relays(MediaKind::Audio) && feed.relays(MediaKind::Video));
        let stream = StreamInfo {
            mid: Mid("1".into()),
            kind: MediaKind::Video,
            codec: Some(Codec::Vp8),
            pt: Pt(96),
            clock_rate: 90_000,
            audio_level_id: None,
            audio_level: None,
        };
        feed.feed(&stream, video(96, 1));
        feed.feed(&stream, video(97, 2));
        let mut got = Vec::new();
        for _ in 0..200 {
            got.extend(viewed.drain().0);
            if !got.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(got.len(), 1, "the retransmission payload type is left out");
        assert_eq!(got[0].1.payload_type, 100, "the viewer's own payload type");

        // Keyframe requests of many viewers: one PLI per gap.
        mp.request_source_keyframe();
        mp.request_source_keyframe();
        assert_eq!(asked.drain().1, 1);

        assert!(feed.end("test"));
        assert!(!feed.end("again"));
        assert!(!mp.is_live());
        mp.request_source_keyframe();
        assert_eq!(asked.drain().1, 0, "no publisher, no PLI");
        let again = claim(&mountpoints, 5, "cam", OFFER);
        assert!(again.is_ok(), "the mountpoint takes a new publisher");
    }

    #[tokio::test]
    async fn offers_without_the_mountpoints_codec_are_refused() {
        let mountpoints = Mountpoints::new(
            Arc::new(MountpointHub::new()),
            Arc::new(WorkerPool::start(1).unwrap()),
        );
        let claimed = claim(&mountpoints, 9, "cam", OFFER).unwrap();
        release(&claimed.mountpoint);
        let h264_only = OFFER
            .replace("a=rtpmap:111 opus/48000/2\r\n", "")
            .replace("VP8/90000", "H264/90000");
        assert!(matches!(
            claim(&mountpoints, 9, "cam", &h264_only),
            Err(PublishError::BadOffer(_))
        ));
        assert!(!claimed.mountpoint.is_live());
        assert!(matches!(
            claim(&mountpoints, 10, "x", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"),
            Err(PublishError::BadOffer(_))
        ));
    }
}
