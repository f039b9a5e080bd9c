//! The Admin API: status, sessions and handles, tokens, log level, plugin messages.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::error::{ApiError, ErrorCode};
use super::request::Fields;
use super::server_info::server_info;
use crate::auth::secrets_match;
use crate::core::Core;
use crate::ids::{HandleId, SessionId};
use crate::logging::{janus_level_filter, janus_level_of};
use crate::media::{Counters, DtlsState, PeerStats, StreamType};
use crate::plugins::registry::AdminReply;
use crate::session::{Handle, Session};

/// Handles one Admin API request; ids may come from the HTTP path.
pub async fn handle_admin(
    core: &Arc<Core>,
    body: Map<String, Value>,
    path_session: Option<u64>,
    path_handle: Option<u64>,
) -> Value {
    let fields = Fields::new(&body);
    let transaction = match fields.string("transaction") {
        Ok(t) => t,
        Err(e) => return e.to_reply(0, None),
    };
    let result = route(core, &fields, transaction, path_session, path_handle).await;
    match result {
        Ok(mut reply) => {
            reply["transaction"] = json!(transaction);
            reply
        }
        Err((session, e)) => e.to_reply(session, Some(transaction)),
    }
}

type AdminResult = Result<Value, (u64, ApiError)>;

async fn route(
    core: &Arc<Core>,
    fields: &Fields<'_>,
    transaction: &str,
    path_session: Option<u64>,
    path_handle: Option<u64>,
) -> AdminResult {
    let at0 = |e: ApiError| (0, e);
    let request = fields.string("janus").map_err(at0)?.to_ascii_lowercase();
    let session_id = fields
        .opt_u64("session_id")
        .map_err(at0)?
        .or(path_session)
        .unwrap_or(0);
    let handle_id = fields
        .opt_u64("handle_id")
        .map_err(at0)?
        .or(path_handle)
        .unwrap_or(0);

    if session_id == 0 && handle_id == 0 {
        match request.as_str() {
            "info" => return Ok(server_info(core, Some(transaction))),
            "ping" => return Ok(json!({ "janus": "pong" })),
            _ => {}
        }
    }
    check_secret(core, fields).map_err(at0)?;
    if session_id == 0 {
        return global(core, &request, fields).await.map_err(at0);
    }
    let session = core
        .sessions
        .get(SessionId(session_id))
        .ok_or_else(|| at0(ApiError::session_not_found(session_id)))?;
    let at = |e: ApiError| (session_id, e);
    if handle_id == 0 {
        return session_level(core, &session, &request, fields)
            .await
            .map_err(at);
    }
    let handle = session
        .handle(HandleId(handle_id))
        .ok_or_else(|| at(ApiError::handle_not_found(handle_id, session_id)))?;
    handle_level(core, &session, &handle, &request, fields)
        .await
        .map_err(at)
}

fn check_secret(core: &Core, fields: &Fields) -> Result<(), ApiError> {
    let expected = &core.config.admin.secret;
    if expected.is_empty() {
        return Ok(());
    }
    match fields.opt_string("admin_secret")? {
        Some(given) if secrets_match(given, expected) => Ok(()),
        _ => Err(ApiError::unauthorized()),
    }
}

fn success(extra: Value) -> Value {
    let mut reply = json!({ "janus": "success" });
    if let (Some(r), Value::Object(extra)) = (reply.as_object_mut(), extra) {
        r.extend(extra);
    }
    reply
}

fn token_store_disabled() -> ApiError {
    ApiError::new(
        ErrorCode::Unknown,
        "Stored-Token based authentication disabled",
    )
}

async fn global(core: &Arc<Core>, request: &str, fields: &Fields<'_>) -> Result<Value, ApiError> {
    let needs_tokens = || {
        if core.auth.token_auth_enabled() {
            Ok(())
        } else {
            Err(token_store_disabled())
        }
    };
    match request {
        "get_status" => Ok(success(json!({ "status": {
            "token_auth": core.auth.token_auth_enabled(),
            "session_timeout": core.sessions.timeout(),
            "reclaim_session_timeout": core.config.general.reclaim_session_timeout,
            "candidates_timeout": core.config.general.candidates_timeout,
            "log_level": janus_level_of(core.log.level()),
            "log_timestamps": true,
            "log_colors": false,
            "locking_debug": false,
            "refcount_debug": false,
            "no_media_timer": core.config.general.no_media_timer,
            "slowlink_threshold": core.config.general.slowlink_threshold,
            "min_nack_queue": core.media.min_nack_queue().ms(),
            "accepting_new_sessions": core.accepting_sessions(),
            "media_sessions": core.media.capacity().live(),
            "max_sessions": core.media.capacity().limit(),
            "refused_sessions": core.media.capacity().refused(),
        }}))),
        "set_session_timeout" => {
            let timeout = fields
                .opt_u64("timeout")?
                .ok_or_else(|| ApiError::missing("timeout"))?;
            core.sessions.set_timeout(timeout);
            Ok(success(json!({ "timeout": timeout })))
        }
        "set_log_level" => {
            let level = fields
                .opt_u64("level")?
                .ok_or_else(|| ApiError::missing("level"))?;
            if level > 7 {
                return Err(ApiError::new(
                    ErrorCode::InvalidElementType,
                    "Invalid element type (level should be between 0 and 7)",
                ));
            }
            core.log.set_level(janus_level_filter(level));
            Ok(success(json!({ "level": level })))
        }
        "set_min_nack_queue" => {
            let ms = fields
                .opt_u64("min_nack_queue")?
                .ok_or_else(|| ApiError::missing("min_nack_queue"))?;
            let set = core.media.min_nack_queue().set(ms);
            tracing::info!(min_nack_queue = set, "Admin API: min NACK queue changed");
            Ok(success(json!({ "min_nack_queue": set })))
        }
        "accept_new_sessions" => {
            let accept = fields
                .opt_bool("accept")?
                .ok_or_else(|| ApiError::missing("accept"))?;
            core.set_accepting_sessions(accept);
            Ok(success(json!({ "accept": accept })))
        }
        "list_sessions" => {
            let ids: Vec<u64> = core.sessions.ids().into_iter().map(|s| s.0).collect();
            Ok(success(json!({ "sessions": ids })))
        }
        "add_token" => {
            needs_tokens()?;
            let token = fields.string("token")?;
            let plugins = fields.opt_string_array("plugins")?.unwrap_or_default();
            let plugins = core.auth.add_token(token, plugins);
            Ok(success(json!({ "data": { "plugins": plugins } })))
        }
        "list_tokens" => {
            needs_tokens()?;
            let tokens: Vec<Value> = core
                .auth
                .list_tokens()
                .into_iter()
                .map(|(t, p)| json!({ "token": t, "allowed_plugins": p }))
                .collect();
            Ok(success(json!({ "data": { "tokens": tokens } })))
        }
        "allow_token" | "disallow_token" => {
            needs_tokens()?;
            let token = fields.string("token")?;
            let plugins = fields
                .opt_string_array("plugins")?
                .filter(|p| !p.is_empty());
            let plugins =
                plugins.ok_or_else(|| ApiError::invalid_type("plugins", "a non-empty array"))?;
            let result = core
                .auth
                .edit_token(token, &plugins, request == "allow_token");
            let plugins = result.ok_or_else(|| {
                ApiError::new(ErrorCode::TokenNotFound, format!("Token {token} not found"))
            })?;
            Ok(success(json!({ "data": { "plugins": plugins } })))
        }
        "remove_token" => {
            needs_tokens()?;
            let token = fields.string("token")?;
            if !core.auth.remove_token(token) {
                return Err(ApiError::new(
                    ErrorCode::TokenNotFound,
                    format!("Token {token} not found"),
                ));
            }
            Ok(success(json!({})))
        }
        "message_plugin" => {
            let package = fields.string("plugin")?;
            let request = fields.object("request")?;
            // Codes and texts as Janus' janus_admin_handle_request has them.
            match core
                .plugins
                .admin_message(package, Value::Object(request.clone()))
                .await
            {
                AdminReply::Response(response) => Ok(success(json!({ "response": response }))),
                AdminReply::NoSuchPlugin => {
                    Err(ApiError::new(ErrorCode::PluginNotFound, "Invalid plugin"))
                }
                AdminReply::Unsupported => Err(ApiError::new(
                    ErrorCode::Unknown,
                    "Plugin doesn't support Admin API messages",
                )),
            }
        }
        other => Err(ApiError::unhandled_at_path(other)),
    }
}

async fn session_level(
    core: &Arc<Core>,
    session: &Arc<Session>,
    request: &str,
    fields: &Fields<'_>,
) -> Result<Value, ApiError> {
    let id = session.id.0;
    match request {
        "list_handles" => {
            let ids: Vec<u64> = session.handle_ids().into_iter().map(|h| h.0).collect();
            Ok(success(json!({ "session_id": id, "handles": ids })))
        }
        "destroy_session" => {
            core.sessions.destroy(session).await;
            Ok(success(json!({ "session_id": id })))
        }
        "set_session_timeout" => {
            let timeout = fields
                .opt_i64("timeout")?
                .ok_or_else(|| ApiError::missing("timeout"))?;
            if timeout < -1 {
                return Err(ApiError::new(
                    ErrorCode::InvalidElementType,
                    "Invalid element type (timeout should be a positive integer or -1)",
                ));
            }
            session.set_timeout_override((timeout >= 0).then_some(timeout as u64));
            Ok(success(json!({ "session_id": id, "timeout": timeout })))
        }
        other => Err(ApiError::unhandled_at_path(other)),
    }
}

async fn handle_level(
    core: &Core,
    session: &Arc<Session>,
    handle: &Arc<Handle>,
    request: &str,
    fields: &Fields<'_>,
) -> Result<Value, ApiError> {
    let ids = json!({ "session_id": session.id.0, "handle_id": handle.id.0 });
    match request {
        "handle_info" => {
            let plugin_only = fields.opt_bool("plugin_only")?.unwrap_or(false);
            let mut reply = success(ids);
            reply["info"] = handle_info(core, session, handle, plugin_only).await;
            Ok(reply)
        }
        "detach_handle" => {
            if let Some(h) = session.remove_handle(handle.id) {
                h.detach().await;
            }
            Ok(success(ids))
        }
        "hangup_webrtc" => {
            handle.ctx.hangup("Admin API").await;
            Ok(success(ids))
        }
        other => Err(ApiError::unhandled_at_path(other)),
    }
}

/// Janus' `handle_info`: times are monotonic µs like Janus' (`created`,
/// `session_last_activity`, with `current_time` to compare them with), counted from the
/// gateway's start.
async fn handle_info(
    core: &Core,
    session: &Session,
    handle: &Arc<Handle>,
    plugin_only: bool,
) -> Value {
    let plugin_specific = handle.ctx.query();
    if plugin_only {
        return json!({ "plugin_specific": plugin_specific });
    }
    let monotonic = |t: tokio::time::Instant| {
        t.saturating_duration_since(core.monotonic_origin)
            .as_micros() as u64
    };
    let (has_peer, up) = handle.ctx.media_status();
    let mut info = json!({
        "session_id": session.id.0,
        "session_last_activity": monotonic(session.last_activity()),
        "session_timeout": session.timeout(core.sessions.timeout()),
        "session_transport": session.transport(),
        "handle_id": handle.id.0,
        "opaque_id": handle.opaque_id,
        "created": monotonic(handle.created),
        "current_time": monotonic(tokio::time::Instant::now()),
        "plugin": handle.plugin(),
        "plugin_specific": plugin_specific,
        "flags": { "negotiated": has_peer, "ready": up, "data-channels": has_peer },
    });
    if let Some(peer) = handle.ctx.peer() {
        let (ice, pc, signaling) = peer.state_summary();
        let (local, remote) = peer.sdps().await;
        info["sdps"] = json!({ "profile": "UDP/TLS/RTP/SAVPF", "local": local, "remote": remote });
        let mut webrtc = webrtc_summary(&ice, &peer.stats().await);
        // Not in Janus: W3C states of the PeerConnection, useful beside ICE's and DTLS'.
        webrtc["peer_connection"] = json!(pc);
        webrtc["signaling"] = json!(signaling);
        info["webrtc"] = webrtc;
    }
    info
}

/// `handle_info`'s `webrtc` object, shaped like Janus' `janus_admin_peerconnection_summary`
/// (`ice`, `dtls`, `media` keyed by mid, each with `stats.in`/`stats.out`). Where it differs:
/// candidates are listed as `addr:port [type,transport]` (the agent's view, peer-reflexive ones
/// included) rather than as SDP `candidate` lines; `dtls` has no `dtls-role`,
/// `srtp-profile` or handshake times, and `media` entries no `bytes_lastsec`, codecs or
/// direction, which webrtc-rs does not report; `rtcp.main` carries only `rtt` (ms) and
/// `lost-by-remote`, the figures receiver reports give.
fn webrtc_summary(ice_state: &str, stats: &PeerStats) -> Value {
    let mut ice = json!({
        "state": ice_state,
        "local-candidates": stats.local_candidates.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "remote-candidates": stats.remote_candidates.iter().map(ToString::to_string).collect::<Vec<_>>(),
    });
    if let Some(pair) = &stats.selected_pair {
        ice["selected-pair"] = json!(pair.to_string());
        if let Some(rtt) = pair.rtt_ms {
            ice["rtt"] = json!(rtt.round() as u64);
        }
    }
    let up = stats.dtls_state == DtlsState::Connected;
    let mut dtls = json!({
        "dtls-state": stats.dtls_state.janus_name(),
        "valid": up,
        "ready": up,
    });
    // Janus shows the fingerprint's value alone (its hash is always sha-256).
    if let Some(value) = stats
        .fingerprints
        .first()
        .and_then(|f| f.split_once(' ').map(|(_, v)| v))
    {
        dtls["fingerprint"] = json!(value);
    }
    let mut media = Map::new();
    for stream in &stats.streams {
        let mut m = json!({
            "type": stream.stream_type.as_str(),
            "mid": stream.mid.0,
        });
        let direction = |c: &Counters| {
            let mut d = json!({ "packets": c.packets, "bytes": c.bytes });
            if stream.stream_type != StreamType::Data {
                d["nacks"] = json!(c.nacks);
            }
            d
        };
        m["stats"] =
            json!({ "in": direction(&stream.inbound), "out": direction(&stream.outbound) });
        if stream.stream_type != StreamType::Data {
            let mut ssrc = Map::new();
            if let Some(s) = stream.ssrc {
                ssrc.insert("ssrc".into(), json!(s));
            }
            if let Some(s) = stream.ssrc_peer {
                ssrc.insert("ssrc-peer".into(), json!(s));
            }
            m["ssrc"] = Value::Object(ssrc);
            let mut main = Map::new();
            if let Some(rtt) = stream.rtt_ms {
                main.insert("rtt".into(), json!(rtt.round() as u64));
            }
            if let Some(lost) = stream.lost_by_remote {
                main.insert("lost-by-remote".into(), json!(lost));
            }
            if !main.is_empty() {
                m["rtcp"] = json!({ "main": main });
            }
        }
        media.insert(stream.mid.0.clone(), m);
    }
    json!({ "ice": ice, "dtls": dtls, "media": media })
}

/// The admin panel's view of the core's Janus sessions (the panel sits below the core and
/// reads them through this): per handle its plugin, ICE/DTLS/PeerConnection states and the
/// counters `handle_info` shows.
struct PanelSessions(Arc<Core>);

impl crate::web::panel::status::SessionSource for PanelSessions {
    fn sessions(
        &self,
    ) -> futures::future::BoxFuture<'_, Vec<crate::web::panel::status::LiveSession>> {
        use crate::web::panel::status::{LiveHandle, LiveMedia, LiveSession};
        Box::pin(async move {
            let mut out = Vec::new();
            let mut sessions = self.0.sessions.all();
            sessions.sort_by_key(|s| s.id.0);
            for session in sessions {
                let mut handles = Vec::new();
                let mut ids = session.handle_ids();
                ids.sort_by_key(|h| h.0);
                for id in ids {
                    let Some(handle) = session.handle(id) else {
                        continue;
                    };
                    let mut live = LiveHandle {
                        id: handle.id.0,
                        plugin: handle.plugin().to_owned(),
                        opaque_id: handle.opaque_id.clone(),
                        ice_state: None,
                        dtls_state: None,
                        peer_connection: None,
                        selected_pair: None,
                        media: Vec::new(),
                    };
                    if let Some(peer) = handle.ctx.peer() {
                        let (ice, pc, _) = peer.state_summary();
                        let stats = peer.stats().await;
                        live.ice_state = Some(ice);
                        live.peer_connection = Some(pc);
                        live.dtls_state = Some(stats.dtls_state.janus_name().to_owned());
                        live.selected_pair = stats.selected_pair.as_ref().map(ToString::to_string);
                        live.media = stats
                            .streams
                            .iter()
                            .map(|s| LiveMedia {
                                mid: s.mid.0.clone(),
                                kind: s.stream_type.as_str().to_owned(),
                                packets_in: s.inbound.packets,
                                packets_out: s.outbound.packets,
                                bytes_in: s.inbound.bytes,
                                bytes_out: s.outbound.bytes,
                                kbps_in: None,
                                kbps_out: None,
                            })
                            .collect();
                    }
                    handles.push(live);
                }
                out.push(LiveSession {
                    id: session.id.0,
                    transport: session.transport().to_owned(),
                    handles,
                });
            }
            out
        })
    }
}

/// The admin panel's routes (`/panel/...`) over this core, or an empty router when
/// `[panel] enabled = false`. SIP registrations and publishers come from the status board the
/// services feed ([`crate::services::Services::status`]).
pub fn panel_router(core: &Arc<Core>) -> axum::Router {
    use crate::web::panel::{router, PanelContext};
    if !core.config.panel.enabled {
        return axum::Router::new();
    }
    let mut config = core.config.panel.clone();
    if config.rtmp_url.is_empty() {
        let rtmp = &core.config.rtmp;
        config.rtmp_url = format!("rtmp://{{host}}:{}/{}", rtmp.port, rtmp.app);
    }
    if config.whip_url.is_empty() && core.config.whep.enabled {
        // WHIP shares the WHEP listener.
        config.whip_url = format!("http://{{host}}:{}/whip", core.config.whep.port);
    }
    router(PanelContext {
        storage: core.storage.clone(),
        recordings_dir: core.config.recordings.dir.clone(),
        config,
        sessions: Arc::new(PanelSessions(core.clone())),
        board: core.services.status.clone(),
        shutdown: core.shutdown.clone(),
        trunks: core.services.sip.trunks.clone(),
        egress: Some(core.services.egress.clone()
            as Arc<dyn crate::web::panel::egress_control::EgressControl>),
    })
}
