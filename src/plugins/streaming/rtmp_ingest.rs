//! RTMP mountpoints: the gateway's RTMP server (`[rtmp]`), the stream-key check against the
//! registry, and one ingest task per publish that feeds the key's mountpoint: H.264
//! repacketized to RTP (RFC 6184, no transcoding), AAC handed to a codec worker for Opus.

use std::net::SocketAddr;
use std::sync::Arc;

use bifrons_rtmp::rtp::{flv_ms_to_rtp, slice, sps, H264Packetizer};
use bifrons_rtmp::server::{
    DuplicatePublisher, PublishRequest, RtmpServer, ServerConfig, ServerEvent, StreamEvent,
};
use bytes::Bytes;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::audio_job::{AacInput, AacToOpusJob};
use super::h264_profile::profile_level_id;
use super::ingest_guard::{IngestGuard, Verdict};
use super::mountpoints::{
    now_ms, MediaStream, MountpointEntry, Mountpoints, NewMountpoint, Source,
};
use super::publish::{key_revoked, KEY_CHECK_SECONDS};
use super::reencode::{Coded, Reencoder, DEFAULT_BITRATE, PROFILE_LEVEL_ID};
use super::vp8::{annex_b, AccessUnit};
use crate::config::RtmpConfig;
use crate::media::{Codec, MediaKind, RtpPacket};
use crate::services::workers::{input_queue, WorkerPool};
use crate::storage::{Storage, Timestamp};
use crate::web::panel::status::{Publisher, StatusBoard};

/// RTP payload budget of repacketized H.264 (fits a 1280-byte SRTP packet with headers).
const MAX_PAYLOAD: usize = 1200;
/// Payload type of H.264 inside the mountpoint (viewers' own is set by their sink).
const H264_PT: u8 = 96;
/// AAC frames queued for the worker (about 1.3 s at 48 kHz).
const AAC_QUEUE: usize = 64;

/// Whether `key` looks like a registry key: 32 to 128 hex digits. Anything else (a path, a
/// query, a traversal) is refused before the registry is asked.
pub fn plausible_key(key: &str) -> bool {
    (32..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The streams an RTMP mountpoint offers: Opus audio and H.264 video (profile from the SPS
/// once a publisher sent one; constrained baseline until then).
pub fn rtmp_streams() -> Vec<MediaStream> {
    vec![
        MediaStream {
            mid: "a",
            kind: MediaKind::Audio,
            codec: Codec::Opus,
        },
        MediaStream {
            mid: "v",
            kind: MediaKind::Video,
            codec: Codec::h264_baseline(),
        },
    ]
}

/// Decides on a publish: the app must be the configured one, the key a registry key that is
/// enabled, without query parameters, and its mountpoint (if it exists) an RTMP one.
async fn authorize(
    request: PublishRequest,
    app: String,
    storage: Storage,
    mountpoints: Arc<Mountpoints>,
) -> bool {
    if request.app != app {
        tracing::warn!(app = %request.app, peer = %request.peer, "RTMP publish to an unknown app refused");
        return false;
    }
    if !request.params.is_empty() || !request.app_params.is_empty() || !plausible_key(&request.key)
    {
        tracing::warn!(peer = %request.peer, "RTMP publish with a malformed stream key refused");
        return false;
    }
    let key = match storage.stream_keys().get_by_key(&request.key).await {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(peer = %request.peer, error = %e, "RTMP publish with an unknown stream key refused");
            return false;
        }
    };
    if !key.enabled {
        tracing::warn!(peer = %request.peer, key = %key.name, "RTMP publish with a disabled stream key refused");
        return false;
    }
    match mountpoints.get(key.mountpoint_id()) {
        Some(mp) if mp.source != Source::Rtmp => {
            tracing::warn!(key = %key.name, mountpoint = mp.id, "stream key bound to a non-RTMP mountpoint");
            false
        }
        Some(mp) if mp.has_webrtc_publisher() => {
            tracing::warn!(key = %key.name, mountpoint = mp.id, "RTMP publish refused: a WebRTC publisher feeds the mountpoint");
            false
        }
        _ => {
            let _ = storage
                .stream_keys()
                .touch(key.id, crate::storage::Timestamp::now())
                .await;
            true
        }
    }
}

/// Starts the RTMP server and the task that turns its publishes into mountpoint sources.
/// Returns the bound address.
pub async fn start(
    config: &RtmpConfig,
    storage: Storage,
    mountpoints: Arc<Mountpoints>,
    workers: Arc<WorkerPool>,
    status: StatusBoard,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    status.attach_publishers();
    let server_config = ServerConfig {
        listen: SocketAddr::new(config.bind, config.port),
        duplicate_publisher: if config.duplicate_publisher == "replace" {
            DuplicatePublisher::Replace
        } else {
            DuplicatePublisher::Refuse
        },
        ..ServerConfig::default()
    };
    let app = config.app.clone();
    let auth_storage = storage.clone();
    let auth_mountpoints = mountpoints.clone();
    let server = RtmpServer::bind(server_config, move |request: PublishRequest| {
        authorize(
            request,
            app.clone(),
            auth_storage.clone(),
            auth_mountpoints.clone(),
        )
    })
    .await?;
    let addr = server.local_addr();
    tracing::info!(%addr, app = %config.app, "RTMP ingest listening");
    let server = Arc::new(server);
    let mut events = server.events();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => break,
                e = events.recv() => e,
            };
            match event {
                Ok(ServerEvent::PublishStarted { app, key, peer }) => {
                    let feed = PublisherFeed {
                        status: status.clone(),
                        peer,
                    };
                    on_publish(&server, &storage, &mountpoints, &workers, feed, &app, &key).await;
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "RTMP server events missed");
                }
                Err(_) => break,
            }
        }
    });
    Ok(addr)
}

/// A publisher went live: find or create the key's mountpoint and feed it.
async fn on_publish(
    server: &Arc<RtmpServer>,
    storage: &Storage,
    mountpoints: &Arc<Mountpoints>,
    workers: &Arc<WorkerPool>,
    feed: PublisherFeed,
    app: &str,
    key: &str,
) {
    let peer = feed.peer;
    let stream_key = match storage.stream_keys().get_by_key(key).await {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "stream key gone before the publish started");
            return;
        }
    };
    let id = stream_key.mountpoint_id();
    let entry = match mountpoints.get(id) {
        Some(e) => e,
        None => {
            let new = NewMountpoint {
                id,
                name: stream_key.name.clone(),
                description: stream_key.name.clone(),
                metadata: None,
                secret: None,
                pin: None,
                is_private: false,
                source: Source::Rtmp,
                streams: rtmp_streams(),
                config: None,
                data: false,
            };
            match mountpoints.add(new) {
                Ok(e) => {
                    tracing::info!(mountpoint = id, key = %stream_key.name, "RTMP mountpoint created on publish");
                    e
                }
                Err(_) => match mountpoints.get(id) {
                    Some(e) => e,
                    None => return,
                },
            }
        }
    };
    if entry.source != Source::Rtmp {
        return;
    }
    let Some(subscription) = server.subscribe(app, key) else {
        tracing::warn!(%peer, mountpoint = id, "RTMP publisher left before its media was read");
        return;
    };
    tracing::info!(%peer, mountpoint = id, key = %stream_key.name, "RTMP publisher feeds mountpoint");
    let workers = workers.clone();
    let mut board = feed.start(&stream_key.name, &entry);
    let key_watch = KeyWatch {
        server: server.clone(),
        storage: storage.clone(),
        app: app.to_owned(),
        key: key.to_owned(),
    };
    tokio::spawn(async move {
        ingest(subscription, entry, workers, &mut board, &key_watch).await;
        board.end();
    });
}

/// A live publish's stream key, checked against the registry while it lasts.
struct KeyWatch {
    server: Arc<RtmpServer>,
    storage: Storage,
    app: String,
    key: String,
}

impl KeyWatch {
    /// Ends this publish (its publisher is disconnected) for `reason`.
    fn drop_publisher(&self, reason: &'static str) {
        self.server.drop_publisher(&self.app, &self.key, reason);
    }

    /// Drops the publisher when its key was revoked or disabled; a registry error keeps it
    /// (checked again next time).
    async fn check(&self, mountpoint: u64) {
        if key_revoked(&self.storage, &self.key, mountpoint).await {
            tracing::info!(
                mountpoint,
                "stream key revoked or disabled: publisher dropped"
            );
            self.server
                .drop_publisher(&self.app, &self.key, "stream key revoked");
        }
    }
}

/// Where a publish is reported for the admin panel's live view.
struct PublisherFeed {
    status: StatusBoard,
    peer: SocketAddr,
}

impl PublisherFeed {
    fn start(self, key_name: &str, mountpoint: &MountpointEntry) -> LivePublisher {
        let publisher = Publisher {
            protocol: "rtmp".into(),
            stream_key: key_name.to_owned(),
            mountpoint: mountpoint.id.to_string(),
            remote: Some(self.peer.to_string()),
            viewers: 0,
            kbps: None,
            since_ms: Timestamp::now().0,
            codecs: super::publish::codec_names(mountpoint),
        };
        self.status.set_publisher(publisher.clone());
        LivePublisher {
            status: self.status,
            publisher,
        }
    }
}

/// A live publish on the status board: refreshed once a second, removed when it ends.
struct LivePublisher {
    status: StatusBoard,
    publisher: Publisher,
}

impl LivePublisher {
    /// Updates the viewer count and the ingest bitrate (`bytes` over `seconds`).
    fn refresh(&mut self, viewers: usize, bytes: u64, seconds: f64) {
        let p = &mut self.publisher;
        p.viewers = u32::try_from(viewers).unwrap_or(u32::MAX);
        p.kbps = (seconds > 0.0).then(|| bytes as f64 * 8.0 / 1000.0 / seconds);
        self.status.set_publisher(p.clone());
    }

    fn end(&self) {
        self.status.remove_publisher(&self.publisher.mountpoint);
    }
}

/// Starts the re-encode of a publish with B-frames (see [`super::reencode`]); `None` (the
/// B-frames are then left out) when no worker takes it.
fn start_reencode(
    entry: &Arc<MountpointEntry>,
    workers: &WorkerPool,
    bitrate: u32,
    ts_base: u32,
) -> Option<Reencoder> {
    match Reencoder::start(entry.clone(), workers, bitrate, ts_base) {
        Ok(r) => {
            tracing::info!(
                mountpoint = entry.id,
                bitrate,
                "publisher sends B-frames: re-encoded to H.264 constrained baseline for WebRTC"
            );
            entry.set_h264_profile(PROFILE_LEVEL_ID);
            Some(r)
        }
        Err(e) => {
            tracing::warn!(mountpoint = entry.id, error = %e, "B-frame re-encode unavailable: B-frames left out");
            None
        }
    }
}

/// Reads one publish until it ends, feeding `entry`.
async fn ingest(
    mut subscription: bifrons_rtmp::server::StreamSubscription,
    entry: Arc<MountpointEntry>,
    workers: Arc<WorkerPool>,
    board: &mut LivePublisher,
    key_watch: &KeyWatch,
) {
    let mut ticks = 0u64;
    // Bytes of media since the last refresh of the live view.
    let mut bytes = 0u64;
    let mut refresh = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut last_refresh = tokio::time::Instant::now();
    let video_ssrc: u32 = rand::random();
    let audio_ssrc: u32 = rand::random::<u32>() ^ 0x5a5a_5a5a;
    let mut packetizer = H264Packetizer::new(MAX_PAYLOAD, rand::random());
    let mut packets = Vec::with_capacity(64);
    // RTP timestamps of this publish start at a random point (RFC 3550 §5.1).
    let ts_base: u32 = rand::random();
    let mut audio: Option<(crate::services::workers::JobHandle, _)> = None;
    if entry.set_live(true) {
        entry.notify_viewers(json!({ "status": "started", "id": entry.id }));
    }
    let cancel = entry.cancel.clone();
    let mut frames = 0u64;
    let mut b_frames = 0u64;
    // The re-encode of a publish with B-frames, and whether one starts at the next keyframe.
    let mut reencoder: Option<Reencoder> = None;
    let mut switch_to_reencode = false;
    let mut bitrate = DEFAULT_BITRATE;
    let mut params: (Vec<Bytes>, Vec<Bytes>) = (Vec::new(), Vec::new());
    // The SPS as the publisher sent it, for the re-encode's decoder (the relay's says no
    // reordering).
    let mut decoder_sps: Vec<Bytes> = Vec::new();
    let mut guard = IngestGuard::default();
    // Leaves out a tag the guard refuses; ends the publish when it says so.
    let judge = |verdict: Verdict, detail: Option<&str>| match verdict {
        Verdict::Relay => true,
        Verdict::Discard { why, first } => {
            if first {
                tracing::warn!(
                    mountpoint = entry.id,
                    ?detail,
                    "RTMP publisher sends {why}: not relayed"
                );
            }
            false
        }
        Verdict::Drop(why) => {
            tracing::warn!(
                mountpoint = entry.id,
                ?detail,
                "RTMP publisher dropped: it keeps sending {why}"
            );
            key_watch.drop_publisher(why);
            false
        }
    };
    loop {
        let event = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = refresh.tick() => {
                let now = tokio::time::Instant::now();
                board.refresh(entry.viewers().len(), bytes, (now - last_refresh).as_secs_f64());
                (bytes, last_refresh) = (0, now);
                ticks += 1;
                if ticks % KEY_CHECK_SECONDS == 0 {
                    key_watch.check(entry.id).await;
                }
                continue;
            }
            e = subscription.next() => e,
        };
        let Some(event) = event else { break };
        match event {
            StreamEvent::VideoConfig(mut config) => {
                guard.video_config();
                // An SPS announcing reordering means B-frames: re-encoded (see `reencode`).
                let reorder = config
                    .sps
                    .first()
                    .and_then(|s| sps::max_num_reorder_frames(s))
                    .unwrap_or(0);
                decoder_sps = config.sps.clone();
                // A WebRTC decoder must output every picture at once: an SPS that does not
                // bound reordering is rewritten to announce none.
                for sps in config.sps.iter_mut() {
                    if let Some(rewritten) = sps::without_reordering(sps) {
                        tracing::info!(
                            mountpoint = entry.id,
                            "SPS reordering bound set to 0 for WebRTC"
                        );
                        *sps = rewritten;
                    }
                }
                if reorder > 0 && reencoder.is_none() {
                    reencoder = start_reencode(&entry, &workers, bitrate, ts_base);
                }
                if reencoder.is_none() {
                    let plid = profile_level_id(&config);
                    tracing::info!(mountpoint = entry.id, profile_level_id = %plid, "H.264 configuration");
                    entry.set_h264_profile(&plid);
                }
                packetizer.set_config(&config);
                params = (config.sps.clone(), config.pps.clone());
            }
            StreamEvent::Video(mut frame) => {
                if !judge(guard.video_frame(), None) {
                    continue;
                }
                frames += 1;
                bytes += frame.nalus.iter().map(|n| n.len() as u64).sum::<u64>();
                let is_b = frame.nalus.iter().any(|n| slice::is_b_slice(n));
                b_frames += u64::from(is_b);
                // B-frames from an SPS that did not announce them: re-encoded from the next
                // keyframe on, left out until then.
                if is_b && reencoder.is_none() && !switch_to_reencode {
                    tracing::warn!(mountpoint = entry.id, "publisher sends B-frames its SPS did not announce: re-encoded from the next keyframe");
                    switch_to_reencode = true;
                }
                if switch_to_reencode && frame.keyframe {
                    switch_to_reencode = false;
                    reencoder = start_reencode(&entry, &workers, bitrate, ts_base);
                }
                if let Some(re) = &mut reencoder {
                    re.push(Coded {
                        annex_b: annex_b(&frame.nalus, frame.keyframe, &decoder_sps, &params.1),
                        pts_ms: frame.pts_ms(),
                        keyframe: frame.keyframe,
                    });
                    entry
                        .last_packet_ms
                        .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
                if is_b {
                    continue;
                }
                for nalu in frame.nalus.iter_mut() {
                    if nalu.first().is_some_and(|h| h & 0x1f == 7) {
                        if let Some(rewritten) = sps::without_reordering(nalu) {
                            *nalu = rewritten;
                        }
                    }
                }
                packets.clear();
                // Without B-frames decode and presentation order are one; the decode time
                // keeps the RTP timestamps rising whatever the composition offsets.
                packetizer.packetize_decode_order(&frame, &mut packets);
                if let Some(vp8) = entry.vp8() {
                    vp8.push(AccessUnit {
                        annex_b: annex_b(&frame.nalus, frame.keyframe, &params.0, &params.1),
                        timestamp: flv_ms_to_rtp(frame.dts_ms).wrapping_add(ts_base),
                    });
                }
                entry
                    .last_packet_ms
                    .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
                for p in packets.drain(..) {
                    entry.hub.publish(
                        MediaKind::Video,
                        RtpPacket {
                            payload_type: H264_PT,
                            sequence_number: p.seq,
                            timestamp: p.timestamp.wrapping_add(ts_base),
                            ssrc: video_ssrc,
                            marker: p.marker,
                            payload: p.payload,
                        },
                    );
                }
            }
            StreamEvent::AudioConfig(config) => {
                guard.audio_config();
                if audio.is_none() {
                    let (tx, rx) = input_queue(AAC_QUEUE);
                    match workers.submit(AacToOpusJob::new(rx, entry.hub.clone(), audio_ssrc)) {
                        Ok(handle) => audio = Some((handle, tx)),
                        Err(e) => {
                            tracing::warn!(error = %e, "no codec worker for the AAC audio");
                            continue;
                        }
                    }
                }
                if let Some((_, tx)) = &audio {
                    let _ = tx.try_push(AacInput::Config {
                        asc: Bytes::clone(&config.raw),
                        sample_rate: config.sample_rate,
                        channels: config.channels,
                    });
                }
            }
            StreamEvent::Audio(frame) => {
                if !judge(guard.audio_frame(), None) {
                    continue;
                }
                bytes += frame.data.len() as u64;
                entry
                    .last_packet_ms
                    .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
                if let Some((_, tx)) = &audio {
                    let _ = tx.try_push(AacInput::Frame {
                        data: frame.data,
                        timestamp_ms: frame.timestamp_ms,
                    });
                }
            }
            // A video info/command frame carries no picture and is no fault.
            StreamEvent::Skipped(why) if why == "video command frame" => {}
            StreamEvent::Skipped(why) => {
                judge(guard.malformed(), Some(&why));
            }
            StreamEvent::Lagged(n) => {
                tracing::warn!(mountpoint = entry.id, lost = n, "RTMP ingest fell behind");
            }
            StreamEvent::Metadata(meta) => {
                if let Some(kbps) = meta
                    .video_bitrate_kbps
                    .filter(|k| (100..=20_000).contains(k))
                {
                    bitrate = kbps * 1000;
                }
            }
            StreamEvent::VideoEndOfSequence => {}
        }
    }
    if let Some((handle, _)) = audio.take() {
        handle.stop();
    }
    drop(reencoder);
    entry.hub.source_gone();
    tracing::info!(
        mountpoint = entry.id,
        frames,
        b_frames,
        "RTMP publish ended"
    );
    if entry.set_live(false) {
        entry.notify_viewers(json!({ "status": "stopped", "id": entry.id }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hex_keys_of_sane_length_reach_the_registry() {
        assert!(plausible_key(&"ab".repeat(32)));
        assert!(!plausible_key("../../etc/passwd"));
        assert!(!plausible_key(&format!("{}?x=1", "ab".repeat(32))));
        assert!(!plausible_key(&format!("../{}", "ab".repeat(32))));
        assert!(!plausible_key("abc"));
        assert!(!plausible_key(&"a".repeat(200)));
    }
}
