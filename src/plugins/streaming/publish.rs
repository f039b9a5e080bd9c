//! Browser publishers of mountpoints, shared by WHIP ([`super::whip`]) and the `publish`
//! request: the stream-key check, the mountpoint a publish feeds (found, or created on the
//! first publish as an RTMP publish creates its own), the offer narrowed to the mountpoint's
//! codecs, and [`PublishFeed`], which hands every received RTP packet to the mountpoint's
//! fan-out as the RTMP ingest does, untouched (Opus, VP8 or H.264 as the browser sent them:
//! no codec work). Viewers' keyframe requests reach the publisher as a PLI.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::json;
use subtle::ConstantTimeEq;

use super::mountpoints::{now_ms, MediaStream, MountpointEntry, Mountpoints, NewMountpoint, Source};
use super::publish_offer::{narrow, relayable, sections, OfferError};
use super::rtmp_ingest::plausible_key;
use crate::media::{MediaKind, MediaSender, Negotiated, RtpPacket, StreamInfo};
use crate::storage::{Storage, StreamKey};

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
    /// Set once the publish ended: nothing more is relayed.
    ended: AtomicBool,
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
        Arc::new(Self {
            mountpoint,
            pt,
            packets: [AtomicU64::new(0), AtomicU64::new(0)],
            ended: AtomicBool::new(false),
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
        self.mountpoint
            .last_packet_ms
            .store(now_ms(), Ordering::Relaxed);
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

/// The codec names of a mountpoint's streams, for events (`["opus","vp8"]`).
pub fn codec_names(mountpoint: &MountpointEntry) -> Vec<String> {
    mountpoint
        .streams()
        .iter()
        .map(|s| s.codec.encoding_name().to_ascii_lowercase())
        .collect()
}

