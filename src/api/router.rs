//! The Janus API: one entry point for every transport, following Janus' processing order
//! so clients see the same error for the same mistake.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};
use tokio::time::Instant;
use tracing::Instrument;

use super::error::{ApiError, ErrorCode};
use super::request::Fields;
use super::server_info::server_info;
use crate::auth::Credential;
use crate::core::Core;
use crate::ids::{HandleId, SessionId};
use crate::media::{validate_sdp, Jsep, JsepType, MediaError, RemoteCandidate};
use crate::plugins::{HandleCtx, HandleOwner, PluginMessage, PluginResult};
use crate::session::{Handle, Session, Sink};

/// Which transport a request came on, and what it knows about the request.
#[derive(Clone)]
pub struct RequestContext {
    /// Where events of sessions created or claimed by this request go.
    pub sink: Sink,
    /// The transport's package name ([`super::HTTP_TRANSPORT`] or
    /// [`super::WEBSOCKET_TRANSPORT`]), recorded on sessions it creates or claims.
    pub transport: &'static str,
    /// Session id from the HTTP path (`/janus/{session}`), if any: used when the body has no
    /// `session_id`; when both are present and differ, the request fails with 457
    /// (`Conflicting session ID`), as in Janus.
    pub path_session: Option<u64>,
    /// Handle id from the HTTP path (`/janus/{session}/{handle}`), with the same rule
    /// against the body's `handle_id`.
    pub path_handle: Option<u64>,
}

/// The reply to send, then work to start once it is sent (so async events follow their ack).
pub struct Outcome {
    /// The Janus JSON reply to the request (`success`, `ack`, `error`, `server_info`...),
    /// echoing its `transaction`.
    pub reply: Value,
    /// Work the transport spawns after handing `reply` over (a plugin's handling of `message`,
    /// a handle's `detach`, a session's `destroy`), so that its events reach the client after
    /// the reply; `None` when there is nothing left to do.
    pub after: Option<BoxFuture<'static, ()>>,
}

impl Outcome {
    fn reply(reply: Value) -> Self {
        Self { reply, after: None }
    }

    fn then(reply: Value, after: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        Self {
            reply,
            after: Some(Box::pin(after)),
        }
    }
}

struct Envelope<'a> {
    request: String,
    transaction: &'a str,
    fields: Fields<'a>,
}

/// Handles one request object and produces its reply.
pub async fn handle_request(
    core: &Arc<Core>,
    body: Map<String, Value>,
    ctx: &RequestContext,
) -> Outcome {
    let fields = Fields::new(&body);
    let transaction = match fields.string("transaction") {
        Ok(t) => t,
        Err(e) => return Outcome::reply(e.to_reply(0, None)),
    };
    let request = match fields.string("janus") {
        Ok(r) => r.to_ascii_lowercase(),
        Err(e) => return Outcome::reply(e.to_reply(0, Some(transaction))),
    };
    let envelope = Envelope {
        request,
        transaction,
        fields,
    };
    let span = tracing::debug_span!(
        "request",
        janus = %envelope.request,
        session_id = ctx.path_session,
        handle_id = ctx.path_handle,
    );
    match route(core, &envelope, ctx).instrument(span).await {
        Ok(outcome) => outcome,
        Err((session, error)) => {
            tracing::debug!(request = %envelope.request, code = error.code as u16, reason = %error.reason, "request refused");
            Outcome::reply(error.to_reply(session, Some(transaction)))
        }
    }
}

type Routed = Result<Outcome, (u64, ApiError)>;

/// An id field as Janus reads it: a negative id names no session or handle (Janus reads it as
/// unsigned), and an integer beyond 64 bits is a JSON error (its parser refuses it).
fn body_id(fields: &Fields, name: &str) -> Result<Option<u64>, ApiError> {
    match fields.get(name) {
        Some(serde_json::Value::Number(n)) if n.is_i64() && !n.is_u64() => Ok(Some(u64::MAX)),
        Some(serde_json::Value::Number(n))
            if n.is_f64() && n.as_f64().is_some_and(|f| f.fract() == 0.0) =>
        {
            Err(ApiError::new(
                ErrorCode::InvalidJson,
                format!("JSON error: {name}: integer overflow"),
            ))
        }
        _ => fields.opt_u64(name),
    }
}

/// Reads an id from the body or the path; both present and different is a conflict.
fn id_from(
    fields: &Fields,
    name: &str,
    path: Option<u64>,
    what: &str,
) -> Result<Option<u64>, ApiError> {
    let body = body_id(fields, name)?;
    match (body, path) {
        (Some(b), Some(p)) if b != p => Err(ApiError::new(
            ErrorCode::InvalidRequestPath,
            format!("Conflicting {what} ID (payload and path)"),
        )),
        (b, p) => Ok(b.or(p)),
    }
}

async fn route(core: &Arc<Core>, env: &Envelope<'_>, ctx: &RequestContext) -> Routed {
    let at0 = |e: ApiError| (0, e);
    let session_id = id_from(&env.fields, "session_id", ctx.path_session, "session")
        .map_err(at0)?
        .unwrap_or(0);
    let handle_id = id_from(&env.fields, "handle_id", ctx.path_handle, "handle").map_err(at0)?;
    let t = env.transaction;

    if session_id == 0 && handle_id.is_none() {
        return match env.request.as_str() {
            "info" => Ok(Outcome::reply(server_info(core, Some(t)))),
            "ping" => Ok(Outcome::reply(json!({ "janus": "pong", "transaction": t }))),
            "create" => create(core, env, ctx).map_err(at0),
            other => Err(at0(ApiError::unhandled_at_path(other))),
        };
    }
    if session_id == 0 {
        return Err(at0(ApiError::new(
            ErrorCode::SessionNotFound,
            "Unhandled request (missing session)",
        )));
    }
    if handle_id == Some(0) {
        return Err((
            session_id,
            ApiError::new(
                ErrorCode::HandleNotFound,
                "Unhandled request (invalid handle)",
            ),
        ));
    }
    let credential = authenticate(core, &env.fields).map_err(|e| (session_id, e))?;
    let session = core
        .sessions
        .get(SessionId(session_id))
        .ok_or_else(|| at0(ApiError::session_not_found(session_id)))?;
    session.touch(Instant::now());
    let at = |e: ApiError| (session_id, e);

    let Some(handle_id) = handle_id else {
        return match env.request.as_str() {
            "keepalive" => Ok(Outcome::reply(ack(session_id, t))),
            "attach" => attach(core, &session, env, &credential).map_err(at),
            "destroy" => {
                // Gone for every later request before the success goes out, as in Janus; the
                // handles' teardown follows it.
                core.sessions.remove(session.id);
                let core = core.clone();
                Ok(Outcome::then(success(session_id, t), async move {
                    core.sessions.destroy(&session).await
                }))
            }
            "claim" => {
                session.rebind(ctx.sink.clone(), ctx.transport);
                Ok(Outcome::reply(success(session_id, t)))
            }
            "message" | "trickle" | "detach" | "hangup" => {
                Err(at(ApiError::unhandled_at_path(&env.request)))
            }
            other => Err(at(ApiError::new(
                ErrorCode::UnknownRequest,
                format!("Unknown request '{other}'"),
            ))),
        };
    };

    let handle = session
        .handle(HandleId(handle_id))
        .ok_or_else(|| at(ApiError::handle_not_found(handle_id, session_id)))?;
    match env.request.as_str() {
        "keepalive" => Ok(Outcome::reply(ack(session_id, t))),
        "message" => message(&handle, env, session_id).await.map_err(at),
        "trickle" => trickle(&handle, env, session_id).await.map_err(at),
        "detach" => {
            session.remove_handle(handle.id);
            Ok(Outcome::then(success(session_id, t), async move {
                handle.detach().await
            }))
        }
        "hangup" => {
            let ctx = handle.ctx.clone();
            Ok(Outcome::then(success(session_id, t), async move {
                ctx.hangup("Janus API").await;
            }))
        }
        "attach" | "destroy" | "claim" => Err(at(ApiError::unhandled_at_path(&env.request))),
        other => Err(at(ApiError::new(
            ErrorCode::UnknownRequest,
            format!("Unknown request '{other}'"),
        ))),
    }
}

fn success(session_id: u64, transaction: &str) -> Value {
    json!({ "janus": "success", "session_id": session_id, "transaction": transaction })
}

fn ack(session_id: u64, transaction: &str) -> Value {
    json!({ "janus": "ack", "session_id": session_id, "transaction": transaction })
}

fn authenticate(core: &Core, fields: &Fields) -> Result<Credential, ApiError> {
    let secret = fields.opt_string("apisecret")?;
    let token = fields.opt_string("token")?;
    core.auth
        .check(secret, token)
        .ok_or_else(ApiError::unauthorized)
}

fn create(core: &Arc<Core>, env: &Envelope<'_>, ctx: &RequestContext) -> Result<Outcome, ApiError> {
    let requested = env
        .fields
        .opt_u64("id")?
        .filter(|id| *id != 0)
        .map(SessionId);
    if !core.accepting_sessions() {
        return Err(ApiError::new(
            ErrorCode::NotAcceptingSessions,
            "Not accepting new sessions",
        ));
    }
    authenticate(core, &env.fields)?;
    if !core.media.capacity().admit() {
        return Err(at_capacity());
    }
    let session = core
        .sessions
        .create(requested, ctx.sink.clone(), ctx.transport, Instant::now())
        .map_err(|_| ApiError::new(ErrorCode::SessionConflict, "Session ID already in use"))?;
    tracing::info!(session_id = %session.id, transport = ctx.transport, "session created");
    // No session_id in this reply: janode would route it to a session it does not know yet.
    Ok(Outcome::reply(
        json!({ "janus": "success", "transaction": env.transaction, "data": { "id": session.id.0 } }),
    ))
}

/// `[media] max_sessions` PeerConnections are alive: Janus 490, the new session is refused and
/// the live ones keep their resources.
fn at_capacity() -> ApiError {
    ApiError::new(
        ErrorCode::Unknown,
        "Media engine at capacity (max_sessions reached)",
    )
}

fn attach(
    core: &Arc<Core>,
    session: &Arc<Session>,
    env: &Envelope<'_>,
    credential: &Credential,
) -> Result<Outcome, ApiError> {
    let package = env.fields.string("plugin")?;
    let opaque_id = env.fields.opt_string("opaque_id")?.map(str::to_string);
    if !core.auth.plugin_allowed(credential, package) {
        return Err(ApiError::new(
            ErrorCode::UnauthorizedPlugin,
            format!("Provided token can't access plugin '{package}'"),
        ));
    }
    let plugin = core.plugins.get(package).ok_or_else(|| {
        ApiError::new(
            ErrorCode::PluginNotFound,
            format!("No such plugin '{package}'"),
        )
    })?;
    if !core.media.capacity().admit() {
        return Err(at_capacity());
    }
    let id = loop {
        let id = HandleId::random();
        if session.handle(id).is_none() {
            break id;
        }
    };
    let owner: Arc<dyn HandleOwner> = session.clone();
    let ctx = HandleCtx::new(
        id,
        session.id,
        plugin.descriptor().package,
        Arc::downgrade(&owner),
        core.media.clone(),
        Duration::from_secs(core.config.general.candidates_timeout),
    );
    let bound = plugin.bind(&ctx).map_err(|e| {
        ApiError::new(
            ErrorCode::PluginAttach,
            format!("Couldn't attach to plugin: error '{e}'"),
        )
    })?;
    ctx.bind(bound);
    session.add_handle(Arc::new(Handle {
        id,
        opaque_id,
        created: Instant::now(),
        ctx,
    }));
    tracing::info!(session_id = %session.id, handle_id = %id, plugin = package, "handle attached");
    Ok(Outcome::reply(json!({
        "janus": "success", "session_id": session.id.0, "transaction": env.transaction, "data": { "id": id.0 }
    })))
}

/// Validates a `jsep` object: type and SDP present, type known, SDP parseable.
fn parse_jsep(value: &Value) -> Result<Jsep, ApiError> {
    let Value::Object(map) = value else {
        return Err(ApiError::new(
            ErrorCode::InvalidJsonObject,
            "Invalid jsep object",
        ));
    };
    let fields = Fields::with_context(map, "JSEP error: ");
    let kind = fields.string("type")?;
    let sdp = fields.string("sdp")?;
    let trickle = fields.opt_bool("trickle")?.unwrap_or(true);
    let kind = match kind.to_ascii_lowercase().as_str() {
        "offer" => JsepType::Offer,
        "answer" => JsepType::Answer,
        other => {
            return Err(ApiError::new(
                ErrorCode::JsepUnknownType,
                format!("JSEP error: unknown message type '{other}'"),
            ))
        }
    };
    validate_sdp(sdp).map_err(|e| {
        ApiError::new(
            ErrorCode::JsepInvalidSdp,
            format!("JSEP error: invalid SDP ({e})"),
        )
    })?;
    Ok(Jsep {
        kind,
        sdp: sdp.to_string(),
        trickle,
    })
}

async fn message(
    handle: &Arc<Handle>,
    env: &Envelope<'_>,
    session_id: u64,
) -> Result<Outcome, ApiError> {
    let body = Value::Object(env.fields.object("body")?.clone());
    let jsep = env.fields.get("jsep").map(parse_jsep).transpose()?;
    if let Some(answer) = jsep.as_ref().filter(|j| j.kind == JsepType::Answer) {
        handle
            .ctx
            .accept_answer(answer)
            .await
            .map_err(|e| match e {
                MediaError::UnexpectedAnswer | MediaError::NoPeer => ApiError::new(
                    ErrorCode::UnexpectedAnswer,
                    "Unexpected ANSWER (did we offer?)",
                ),
                MediaError::InvalidSdp(m) => ApiError::new(
                    ErrorCode::JsepInvalidSdp,
                    format!("JSEP error: invalid SDP ({m})"),
                ),
                other => ApiError::new(ErrorCode::WebrtcState, other.to_string()),
            })?;
    }
    let message = PluginMessage {
        transaction: env.transaction.to_string(),
        body,
        jsep,
    };
    let t = env.transaction;
    match handle.ctx.dispatch(message).await {
        PluginResult::Ok(data) => Ok(Outcome::reply(json!({
            "janus": "success", "session_id": session_id, "transaction": t, "sender": handle.id.0,
            "plugindata": { "plugin": handle.plugin(), "data": data },
        }))),
        PluginResult::Async { hint, work } => {
            let mut reply = ack(session_id, t);
            if let Some(hint) = hint {
                reply["hint"] = json!(hint);
            }
            Ok(Outcome {
                reply,
                after: Some(work),
            })
        }
        PluginResult::Error(reason) => Err(ApiError::new(ErrorCode::PluginMessage, reason)),
    }
}

/// One trickled candidate object; `None` for end-of-candidates or another m-line (BUNDLE).
fn parse_candidate(value: &Value) -> Result<Option<RemoteCandidate>, ApiError> {
    let Value::Object(map) = value else {
        return Ok(None);
    };
    if map
        .get("completed")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Ok(None);
    }
    let fields = Fields::new(map);
    let mid = fields.opt_string("sdpMid")?;
    let index = fields.opt_u64("sdpMLineIndex")?;
    if mid.is_none() && index.is_none() {
        return Err(ApiError::missing("sdpMid|sdpMLineIndex"));
    }
    let candidate = fields.string("candidate")?;
    if index.unwrap_or(0) > 0 {
        return Ok(None);
    }
    Ok(Some(RemoteCandidate {
        candidate: candidate.to_string(),
        sdp_mid: mid.map(str::to_string),
        sdp_mline_index: index.map(|i| i as u16),
    }))
}

async fn trickle(
    handle: &Arc<Handle>,
    env: &Envelope<'_>,
    session_id: u64,
) -> Result<Outcome, ApiError> {
    let single = env.fields.get("candidate");
    let many = env.fields.get("candidates");
    let candidates: Vec<RemoteCandidate> = match (single, many) {
        (None, None) => return Err(ApiError::missing("candidate|candidates")),
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidJson,
                "Can't have both candidate and candidates",
            ))
        }
        (Some(one), None) => parse_candidate(one)?.into_iter().collect(),
        (None, Some(Value::Array(list))) => list
            .iter()
            .filter_map(|c| parse_candidate(c).ok().flatten())
            .collect(),
        (None, Some(_)) => return Err(ApiError::invalid_type("candidates", "an array")),
    };
    for candidate in candidates {
        // A candidate the ICE agent cannot use (e.g. TCP) is logged, not fatal: the others may work.
        if let Err(e) = handle.ctx.add_remote_candidate(candidate).await {
            tracing::debug!(handle_id = %handle.id, error = %e, "remote candidate ignored");
        }
    }
    Ok(Outcome::reply(ack(session_id, env.transaction)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_parsing_follows_janus_rules() {
        assert_eq!(parse_candidate(&json!({"completed": true})).unwrap(), None);
        assert_eq!(parse_candidate(&Value::Null).unwrap(), None);
        assert_eq!(
            parse_candidate(&json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}))
                .unwrap_err()
                .code,
            ErrorCode::MissingMandatoryElement
        );
        assert_eq!(
            parse_candidate(&json!({"sdpMid": "0"})).unwrap_err().reason,
            "Missing mandatory element (candidate)"
        );
        assert_eq!(
            parse_candidate(&json!({"sdpMid": 0, "candidate": "x"}))
                .unwrap_err()
                .code,
            ErrorCode::InvalidElementType
        );
        assert_eq!(
            parse_candidate(&json!({"sdpMLineIndex": 1, "candidate": "x"})).unwrap(),
            None
        );
        let c = parse_candidate(
            &json!({"sdpMid": "0", "sdpMLineIndex": 0, "candidate": "candidate:x"}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.sdp_mid.as_deref(), Some("0"));
    }

    #[test]
    fn jsep_validation_codes() {
        assert_eq!(
            parse_jsep(&json!("x")).unwrap_err().code,
            ErrorCode::InvalidJsonObject
        );
        assert_eq!(
            parse_jsep(&json!({"type":"offer"})).unwrap_err().code,
            ErrorCode::MissingMandatoryElement
        );
        assert_eq!(
            parse_jsep(&json!({"type":"pranswer","sdp":"v=0"}))
                .unwrap_err()
                .code,
            ErrorCode::JsepUnknownType
        );
        assert_eq!(
            parse_jsep(&json!({"type":"offer","sdp":"not an sdp"}))
                .unwrap_err()
                .code,
            ErrorCode::JsepInvalidSdp
        );
    }
}
