//! `create`: a mountpoint of type `rtp` (UDP ports, Janus' media description, both the
//! `media` array and the older `audio`/`video` fields) or `rtmp` (fed by a stream key).

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::errors::{self, boolean, string, validate, Kind, Result, StreamingError};
use super::mountpoints::{MediaStream, MountpointEntry, Mountpoints, NewMountpoint, Source};
use super::rtcp_source::RtcpLink;
use super::rtmp_ingest::rtmp_streams;
use super::rtp_ports::{self, PortSpec};
use super::{data_source, rtp_source};
use crate::auth::HashedSecret;
use crate::media::{Codec, MediaKind};

/// One RTP stream asked for.
struct RtpStream {
    kind: MediaKind,
    /// The RTP port, its interface and multicast group.
    spec: PortSpec,
    pt: Option<u8>,
    codec: Codec,
    /// The RTCP port (sender reports in, PLIs out), on the same interface.
    rtcp_port: Option<u16>,
}

/// The data port asked for (`data`).
struct DataPort {
    spec: PortSpec,
    /// `datatype: "binary"` (else text).
    binary: bool,
}

/// A port field: 0 to 65535.
fn port_value(body: &Map<String, Value>, field: &str) -> Result<Option<u16>> {
    body.get(field)
        .and_then(Value::as_u64)
        .map(|p| {
            u16::try_from(p).map_err(|_| invalid(format!("Invalid element ({field} out of range)")))
        })
        .transpose()
}

/// The interface and multicast group of a port (`iface`, `mcast` fields, or their legacy
/// `audioiface`/`videomcast`... names), as Janus refuses them: 456.
fn port_spec(body: &Map<String, Value>, port: u16, iface: &str, mcast: &str) -> Result<PortSpec> {
    let iface = match string(body, iface) {
        None => None,
        Some(name) => Some(rtp_ports::resolve_iface(&name).ok_or_else(|| {
            cant_create(format!(
                "Invalid network interface configuration for stream ({name})"
            ))
        })?),
    };
    let mcast = match string(body, mcast) {
        None => None,
        Some(group) => Some(rtp_ports::parse_mcast(&group).ok_or_else(|| {
            cant_create(format!("Invalid multicast address for stream ({group})"))
        })?),
    };
    if mcast.is_some() && port == 0 {
        return Err(cant_create("A multicast stream needs a port"));
    }
    Ok(PortSpec { port, iface, mcast })
}

/// A codec from Janus' `codec` name or `rtpmap` (`opus/48000/2`, `VP8/90000`...).
fn codec_of(kind: MediaKind, name: &str) -> Option<Codec> {
    let mut parts = name.split('/');
    let encoding = parts.next()?.trim();
    let rate = parts.next().and_then(|r| r.parse().ok());
    let default_rate = match encoding.to_ascii_lowercase().as_str() {
        "opus" => 48_000,
        "pcmu" | "pcma" | "g722" => 8_000,
        _ => 90_000,
    };
    let codec = Codec::from_sdp(encoding, rate.unwrap_or(default_rate), "")?;
    let codec = match codec {
        Codec::H264 { .. } => Codec::h264_baseline(),
        c => c,
    };
    (codec.kind() == kind && !matches!(codec, Codec::TelephoneEvent { .. })).then_some(codec)
}

fn invalid(message: impl Into<String>) -> StreamingError {
    StreamingError::new(errors::INVALID_ELEMENT, message)
}

fn cant_create(message: impl Into<String>) -> StreamingError {
    StreamingError::new(errors::CANT_CREATE, message)
}

/// Reads one stream of the legacy fields (`audioport`, `audiopt`, `audiortpmap`...).
fn legacy_stream(body: &Map<String, Value>, kind: MediaKind) -> Result<Option<RtpStream>> {
    let prefix = kind.as_str();
    if !boolean(body, prefix).unwrap_or(false) {
        return Ok(None);
    }
    let port = format!("{prefix}port");
    let pt = format!("{prefix}pt");
    let rtpmap = format!("{prefix}rtpmap");
    let rtcpport = format!("{prefix}rtcpport");
    let iface = format!("{prefix}iface");
    let mcast = format!("{prefix}mcast");
    validate(
        body,
        &[
            (port.as_str(), Kind::PositiveInteger, true),
            (pt.as_str(), Kind::PositiveInteger, false),
            (rtpmap.as_str(), Kind::String, kind == MediaKind::Video),
            (rtcpport.as_str(), Kind::PositiveInteger, false),
            (iface.as_str(), Kind::String, false),
            (mcast.as_str(), Kind::String, false),
        ],
    )?;
    let rtp_port = port_value(body, &port)?.unwrap_or(0);
    let pt_value = body
        .get(&pt)
        .and_then(Value::as_u64)
        .map(|p| {
            u8::try_from(p)
                .ok()
                .filter(|p| *p < 128)
                .ok_or_else(|| invalid(format!("Invalid element ({pt} out of range)")))
        })
        .transpose()?;
    let name = string(body, &rtpmap).unwrap_or_else(|| "opus/48000/2".into());
    let codec = codec_of(kind, &name)
        .ok_or_else(|| cant_create(format!("Unsupported {prefix} codec '{name}'")))?;
    Ok(Some(RtpStream {
        kind,
        spec: port_spec(body, rtp_port, &iface, &mcast)?,
        pt: pt_value,
        codec,
        rtcp_port: port_value(body, &rtcpport)?,
    }))
}

/// Reads the legacy data port (`data: true`, `dataport`, `dataiface`, `datamcast`,
/// `datatype`).
fn legacy_data(body: &Map<String, Value>) -> Result<Option<DataPort>> {
    if !boolean(body, "data").unwrap_or(false) {
        return Ok(None);
    }
    validate(
        body,
        &[
            ("dataport", Kind::PositiveInteger, true),
            ("dataiface", Kind::String, false),
            ("datamcast", Kind::String, false),
            ("datatype", Kind::String, false),
        ],
    )?;
    let port = port_value(body, "dataport")?.unwrap_or(0);
    Ok(Some(DataPort {
        spec: port_spec(body, port, "dataiface", "datamcast")?,
        binary: data_binary(body)?,
    }))
}

/// `datatype`: `text` (default) or `binary`.
fn data_binary(body: &Map<String, Value>) -> Result<bool> {
    match string(body, "datatype").as_deref() {
        None | Some("text") => Ok(false),
        Some("binary") => Ok(true),
        Some(other) => Err(invalid(format!("Invalid element (datatype '{other}')"))),
    }
}

/// Reads the `media` array: the RTP streams and the data port.
fn media_streams(media: &[Value]) -> Result<(Vec<RtpStream>, Option<DataPort>)> {
    let mut out: Vec<RtpStream> = Vec::new();
    let mut data = None;
    for m in media {
        let Some(m) = m.as_object() else {
            return Err(invalid("Invalid element (media items must be objects)"));
        };
        validate(
            m,
            &[
                ("type", Kind::String, true),
                ("port", Kind::PositiveInteger, true),
                ("pt", Kind::PositiveInteger, false),
                ("codec", Kind::String, false),
                ("rtpmap", Kind::String, false),
                ("rtcpport", Kind::PositiveInteger, false),
                ("iface", Kind::String, false),
                ("mcast", Kind::String, false),
                ("datatype", Kind::String, false),
            ],
        )?;
        let kind = match m.get("type").and_then(Value::as_str) {
            Some("audio") => MediaKind::Audio,
            Some("video") => MediaKind::Video,
            Some("data") => {
                if data.is_some() {
                    return Err(cant_create(
                        "Only one data stream per mountpoint is supported",
                    ));
                }
                let port = port_value(m, "port")?.unwrap_or(0);
                data = Some(DataPort {
                    spec: port_spec(m, port, "iface", "mcast")?,
                    binary: data_binary(m)?,
                });
                continue;
            }
            _ => return Err(cant_create("Unsupported media type in media stream")),
        };
        if out.iter().any(|s| s.kind == kind) {
            return Err(cant_create(format!(
                "Only one {} stream per mountpoint is supported",
                kind.as_str()
            )));
        }
        let name = string(m, "rtpmap")
            .or_else(|| string(m, "codec"))
            .ok_or_else(|| {
                StreamingError::new(errors::MISSING_ELEMENT, "Missing element (codec)")
            })?;
        let codec = codec_of(kind, &name)
            .ok_or_else(|| cant_create(format!("Unsupported {} codec '{name}'", kind.as_str())))?;
        let port = u16::try_from(m.get("port").and_then(Value::as_u64).unwrap_or(0))
            .map_err(|_| invalid("Invalid element (port out of range)"))?;
        let pt = match m.get("pt").and_then(Value::as_u64) {
            None => None,
            Some(p) if p < 128 => Some(p as u8),
            Some(_) => return Err(invalid("Invalid element (pt out of range)")),
        };
        out.push(RtpStream {
            kind,
            spec: port_spec(m, port, "iface", "mcast")?,
            pt,
            codec,
            rtcp_port: port_value(m, "rtcpport")?,
        });
    }
    Ok((out, data))
}

/// Secret and PIN already hashed: a permanent mountpoint recreated at start-up from the
/// registry, whose stored request carries neither in clear.
#[derive(Default)]
pub struct Hashed {
    /// The secret's hash.
    pub secret: Option<HashedSecret>,
    /// The PIN's hash.
    pub pin: Option<HashedSecret>,
}

/// The fields of a `create` request that are never stored: secrets in clear, and the flags of
/// the request itself.
const NOT_STORED: [&str; 4] = ["secret", "pin", "permanent", "admin_key"];

/// Handles `create`; the reply's plugin data and the new mountpoint, or the error. `hashed`:
/// secret and PIN from the registry instead of the request's fields.
pub async fn create(
    body: &Map<String, Value>,
    mountpoints: &Arc<Mountpoints>,
    iface: IpAddr,
    hashed: Option<Hashed>,
) -> Result<(Value, Arc<MountpointEntry>)> {
    validate(
        body,
        &[
            ("name", Kind::String, false),
            ("description", Kind::String, false),
            ("metadata", Kind::String, false),
            ("is_private", Kind::Boolean, false),
            ("type", Kind::String, true),
            ("secret", Kind::String, false),
            ("pin", Kind::String, false),
            ("media", Kind::Array, false),
            ("permanent", Kind::Boolean, false),
            ("audio", Kind::Boolean, false),
            ("video", Kind::Boolean, false),
            ("data", Kind::Boolean, false),
            ("id", Kind::PositiveInteger, false),
        ],
    )?;
    let permanent = boolean(body, "permanent").unwrap_or(false);
    let id = match body.get("id").and_then(Value::as_u64) {
        Some(0) | None => mountpoints.free_id(),
        Some(id) => id,
    };
    if mountpoints.get(id).is_some() {
        return Err(cant_create("A stream with the provided ID already exists"));
    }
    let kind = string(body, "type").unwrap_or_default();
    let (source_streams, rtp, data) = match kind.as_str() {
        "rtmp" => {
            let audio = boolean(body, "audio").unwrap_or(true);
            let video = boolean(body, "video").unwrap_or(true);
            let streams: Vec<MediaStream> = rtmp_streams()
                .into_iter()
                .filter(|s| match s.kind {
                    MediaKind::Audio => audio,
                    MediaKind::Video => video,
                })
                .collect();
            if streams.is_empty() {
                return Err(cant_create(
                    "Can't add 'rtmp' stream, no audio or video have to be streamed...",
                ));
            }
            (streams, Vec::new(), None)
        }
        "rtp" => {
            let (rtp, data) = match body.get("media").and_then(Value::as_array) {
                Some(media) => media_streams(media)?,
                None => {
                    let mut v = Vec::new();
                    v.extend(legacy_stream(body, MediaKind::Audio)?);
                    v.extend(legacy_stream(body, MediaKind::Video)?);
                    (v, legacy_data(body)?)
                }
            };
            if rtp.is_empty() && data.is_none() {
                return Err(cant_create(
                    "Can't add 'rtp' stream, no audio or video have to be streamed...",
                ));
            }
            let streams = rtp
                .iter()
                .map(|s| MediaStream {
                    mid: if s.kind == MediaKind::Audio { "a" } else { "v" },
                    kind: s.kind,
                    codec: s.codec.clone(),
                })
                .collect();
            (streams, rtp, data)
        }
        other => return Err(invalid(format!("Unknown stream type '{other}'..."))),
    };
    // Bind the ports before anything is registered, so a port in use fails cleanly.
    let mut sockets = Vec::new();
    for s in &rtp {
        let refused = |what: &str, e: std::io::Error| {
            tracing::warn!(port = s.spec.port, error = %e, "{what} port not bound");
            cant_create(format!(
                "Can't add 'rtp' stream, error creating {} {what} source stream",
                s.kind.as_str()
            ))
        };
        let sock = rtp_ports::bind(&s.spec, iface)
            .await
            .map_err(|e| refused("RTP", e))?;
        let rtcp = match s.rtcp_port {
            None => None,
            Some(port) => {
                let spec = PortSpec {
                    port,
                    iface: s.spec.iface,
                    mcast: None,
                };
                let sock = rtp_ports::bind(&spec, iface)
                    .await
                    .map_err(|e| refused("RTCP", e))?;
                Some(RtcpLink::new(sock))
            }
        };
        sockets.push((sock, s.kind, s.pt, rtcp));
    }
    let data_socket = match &data {
        None => None,
        Some(d) => Some(rtp_ports::bind(&d.spec, iface).await.map_err(|e| {
            tracing::warn!(port = d.spec.port, error = %e, "data port not bound");
            cant_create("Can't add 'rtp' stream, error creating data source stream")
        })?),
    };
    let port_of = |k: MediaKind| {
        sockets
            .iter()
            .find(|(_, kind, _, _)| *kind == k)
            .and_then(|(s, _, _, _)| s.local_addr().ok())
            .map(|a| a.port())
    };
    let source = if kind == "rtmp" {
        Source::Rtmp
    } else {
        Source::Rtp {
            audio_port: port_of(MediaKind::Audio),
            video_port: port_of(MediaKind::Video),
            data_port: data_socket
                .as_ref()
                .and_then(|s| s.local_addr().ok())
                .map(|a| a.port()),
        }
    };
    let hash = |field: &str| {
        let value = string(body, field);
        async move {
            match value {
                Some(v) if !v.is_empty() => {
                    HashedSecret::new(&v).await.map(Some).ok_or_else(|| {
                        StreamingError::new(errors::UNKNOWN_ERROR, "Error hashing the secret")
                    })
                }
                _ => Ok(None),
            }
        }
    };
    let (secret, pin) = match hashed {
        Some(h) => (h.secret, h.pin),
        None => (hash("secret").await?, hash("pin").await?),
    };
    let mut config = body.clone();
    for field in NOT_STORED {
        config.remove(field);
    }
    config.insert("id".into(), json!(id));
    let name = string(body, "name").unwrap_or_else(|| id.to_string());
    let description = string(body, "description").unwrap_or_else(|| name.clone());
    let is_private = boolean(body, "is_private").unwrap_or(false);
    let entry = mountpoints
        .add(NewMountpoint {
            id,
            name: name.clone(),
            description: description.clone(),
            metadata: string(body, "metadata"),
            secret,
            pin,
            is_private,
            source: source.clone(),
            streams: source_streams,
            config: Some(config),
            data: data.is_some(),
        })
        .map_err(|_| cant_create("A stream with the provided ID already exists"))?;
    let mut ports = Vec::new();
    for (socket, kind, pt, rtcp) in sockets {
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let mut p = json!({
            "type": kind.as_str(),
            "mid": if kind == MediaKind::Audio { "a" } else { "v" },
            "port": port,
        });
        if let Some(link) = rtcp {
            p["rtcp_port"] = json!(link.port());
            entry.set_rtcp(kind, link.clone());
            tokio::spawn(link.run(id, entry.cancel.clone()));
        }
        ports.push(p);
        tokio::spawn(rtp_source::run(socket, kind, pt, entry.clone()));
    }
    if let (Some(socket), Some(d)) = (data_socket, &data) {
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        ports.push(json!({ "type": "data", "mid": "d", "port": port }));
        tokio::spawn(data_source::run(socket, d.binary, entry.clone()));
    }
    tracing::info!(
        mountpoint = id,
        source = source.name(),
        "mountpoint created"
    );
    let mut stream = json!({
        "id": id,
        "type": "live",
        "description": description,
        "is_private": is_private,
    });
    if kind == "rtp" {
        for p in &ports {
            let field = format!("{}_port", p["type"].as_str().unwrap_or_default());
            stream[field] = p["port"].clone();
        }
        stream["ports"] = json!(ports);
    }
    Ok((
        json!({
            "streaming": "created",
            "created": name,
            "permanent": permanent,
            "stream": stream,
        }),
        entry,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_from_janus_names() {
        assert_eq!(
            codec_of(MediaKind::Audio, "opus/48000/2"),
            Some(Codec::Opus)
        );
        assert_eq!(codec_of(MediaKind::Audio, "opus"), Some(Codec::Opus));
        assert_eq!(codec_of(MediaKind::Video, "VP8/90000"), Some(Codec::Vp8));
        assert_eq!(
            codec_of(MediaKind::Video, "h264"),
            Some(Codec::h264_baseline())
        );
        assert_eq!(codec_of(MediaKind::Video, "opus/48000/2"), None);
        assert_eq!(codec_of(MediaKind::Audio, "mp3"), None);
    }

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn legacy_rtcp_multicast_interface_and_data_fields() {
        let b = body(json!({
            "video": true, "videoport": 5004, "videortcpport": 5005, "videopt": 100,
            "videortpmap": "VP8/90000", "videomcast": "239.1.1.1", "videoiface": "127.0.0.1",
            "data": true, "dataport": 5006, "datatype": "binary",
        }));
        let v = legacy_stream(&b, MediaKind::Video).unwrap().unwrap();
        assert_eq!(v.spec.port, 5004);
        assert_eq!(v.rtcp_port, Some(5005));
        assert_eq!(v.spec.mcast, Some(std::net::Ipv4Addr::new(239, 1, 1, 1)));
        assert_eq!(v.spec.iface, Some(IpAddr::from([127, 0, 0, 1])));
        let d = legacy_data(&b).unwrap().unwrap();
        assert_eq!((d.spec.port, d.binary), (5006, true));
        let bad = body(
            json!({"video": true, "videoport": 1, "videortpmap": "VP8/90000", "videomcast": "1.2.3.4"}),
        );
        assert_eq!(
            legacy_stream(&bad, MediaKind::Video).err().map(|e| e.code),
            Some(errors::CANT_CREATE)
        );
        let bad_type = body(json!({"data": true, "dataport": 1, "datatype": "xml"}));
        assert_eq!(
            legacy_data(&bad_type).err().map(|e| e.code),
            Some(errors::INVALID_ELEMENT)
        );
        let (streams, data) = media_streams(&[json!({"type": "data", "port": 7})]).unwrap();
        assert!(streams.is_empty());
        assert_eq!(data.map(|d| d.spec.port), Some(7));
    }
}
