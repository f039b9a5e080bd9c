//! The `janus.plugin.sip` request bodies: typed requests, and every refusal as Janus' SIP
//! plugin words it (error codes 440–455 and 499, `plugins/janus_sip.c`).

use serde_json::{Map, Value};

/// No message body.
pub const ERROR_NO_MESSAGE: u16 = 440;
/// The body is not a JSON object.
pub const ERROR_INVALID_JSON: u16 = 441;
/// Unknown `request`.
pub const ERROR_INVALID_REQUEST: u16 = 442;
/// A mandatory key is missing.
pub const ERROR_MISSING_ELEMENT: u16 = 443;
/// A key has the wrong type or value.
pub const ERROR_INVALID_ELEMENT: u16 = 444;
/// `register` while a registration is already under way or done.
pub const ERROR_ALREADY_REGISTERED: u16 = 445;
/// A SIP URI (username, proxy, call target) does not parse.
pub const ERROR_INVALID_ADDRESS: u16 = 446;
/// The request does not fit the handle's state (no call to hang up, no call to accept...).
pub const ERROR_WRONG_STATE: u16 = 447;
/// `call`/`accept` without a usable JSEP (missing, wrong type, no audio).
pub const ERROR_MISSING_SDP: u16 = 448;
/// The SIP stack failed (Janus: "libsofia error").
pub const ERROR_SIP_STACK: u16 = 449;
/// Sockets or ports could not be allocated.
pub const ERROR_IO_ERROR: u16 = 450;
/// `transfer` with `replace`: no call with that Call-ID.
pub const ERROR_NO_SUCH_CALLID: u16 = 454;
/// `accept` with `srtp: "sdes_mandatory"` for a caller that offered no SDES-SRTP (Janus:
/// "too strict").
pub const ERROR_TOO_STRICT: u16 = 452;
/// Anything else (e.g. the registry could not be read).
pub const ERROR_UNKNOWN: u16 = 499;

/// A refused request: the plugin error code and Janus' text for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipError {
    /// One of the `ERROR_*` codes.
    pub code: u16,
    /// What was wrong.
    pub message: String,
}

impl SipError {
    /// A refusal with `code` and `message`.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    fn missing(key: &str) -> Self {
        Self::new(
            ERROR_MISSING_ELEMENT,
            format!("Missing mandatory element ({key})"),
        )
    }

    fn invalid_type(key: &str, want: &str) -> Self {
        Self::new(
            ERROR_INVALID_ELEMENT,
            format!("Invalid element type ({key} should be {want})"),
        )
    }

    /// `Wrong state (…)`, as Janus says it.
    pub fn wrong_state(what: &str) -> Self {
        Self::new(ERROR_WRONG_STATE, format!("Wrong state ({what})"))
    }
}

/// How a `register` authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterKind {
    /// `type: guest`: no REGISTER is sent; calls go straight to their URI.
    Guest,
    /// Janus' normal registration: `username` + `secret` (or `ha1_secret`) at `proxy`.
    Credentials {
        /// `secret` (the digest password) or `ha1_secret` (MD5(user:realm:password) in hex).
        secret: bifrons_sip::DigestSecret,
    },
    /// `type: account`: a registry account; `secret` is the account's web secret.
    Account {
        /// The account's extension (`account`).
        account: String,
        /// Its web secret.
        secret: String,
    },
}

/// A `register` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    /// How to authenticate.
    pub kind: RegisterKind,
    /// `username`: the SIP URI to register as (absent for `account`, optional for guests).
    pub username: Option<SipUri>,
    /// `authuser`: digest user name when it differs from the URI's user part.
    pub authuser: Option<String>,
    /// `display_name`.
    pub display_name: Option<String>,
    /// `proxy`: the registrar (defaults to the username's host).
    pub proxy: Option<SipUri>,
    /// `outbound_proxy`: where the handle's requests are sent instead of the registrar.
    pub outbound_proxy: Option<SipUri>,
    /// `user_agent`: the `User-Agent` header of this handle's requests (else `[sip]
    /// user_agent`).
    pub user_agent: Option<String>,
    /// `force_tcp` / `force_udp`: the transport of the requests this handle sends (UDP when
    /// neither is set; both at once are refused).
    pub transport: Option<bifrons_sip::Transport>,
    /// `register_ttl`, seconds.
    pub register_ttl: Option<u32>,
}

/// A `call` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    /// `uri`: whom to call.
    pub uri: SipUri,
    /// `headers`: extra headers for the INVITE (name → value), checked by [`custom_headers`].
    pub headers: Vec<(String, String)>,
    /// `autoaccept_reinvites` (default true): the gateway answers the PBX's re-INVITEs alone;
    /// false also offers the browser the change (`updatingcall`).
    pub autoaccept_reinvites: bool,
    /// `srtp`: SDES-SRTP towards the PBX (`sdes_optional`, `sdes_mandatory`), see [`srtp`].
    pub srtp: Option<bifrons_sip::srtp::SrtpMode>,
    /// `srtp_profile`: the one suite to offer (`AES_CM_128_HMAC_SHA1_80` or `_32`); both
    /// when absent.
    pub srtp_profile: Option<bifrons_sip::srtp::CryptoSuite>,
}

/// Longest `content` of a `message` or `info`, bytes (a SIP request over UDP must stay
/// well under the path MTU; RFC 3428 §8 asks for short MESSAGEs).
pub const MAX_CONTENT_LEN: usize = 8 * 1024;

/// A `message` request (RFC 3428 MESSAGE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRequest {
    /// `content`: the body.
    pub content: String,
    /// `content_type` (default `text/plain`).
    pub content_type: String,
    /// `uri`: out of dialog to this address; in the current call's dialog when absent.
    pub uri: Option<SipUri>,
    /// `headers`, checked by [`custom_headers`].
    pub headers: Vec<(String, String)>,
    /// `call_id`: the Call-ID of an out-of-dialog MESSAGE (a fresh one when absent), as
    /// Janus takes it: RFC 3261 `word` characters, at most 128.
    pub call_id: Option<String>,
}

/// Headers the dialog owns: a client may not set them through `headers`.
const RESERVED_HEADERS: &[&str] = &[
    "via",
    "from",
    "to",
    "call-id",
    "cseq",
    "contact",
    "max-forwards",
    "route",
    "record-route",
    "content-type",
    "content-length",
    "refer-to",
    "event",
    "subscription-state",
    "authorization",
    "proxy-authorization",
];

/// The `headers` object of a request: names of RFC 3261 token characters (not one the dialog
/// owns), string values without CR, LF or NUL (no header injection), at most 16.
pub fn custom_headers(value: Option<&Value>) -> Result<Vec<(String, String)>, SipError> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(map) = value.as_object() else {
        return Err(SipError::invalid_type("headers", "an object"));
    };
    if map.len() > 16 {
        return Err(SipError::new(
            ERROR_INVALID_ELEMENT,
            "Invalid element (headers: at most 16)",
        ));
    }
    let token = |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
    map.iter()
        .map(|(name, v)| {
            let Some(text) = v.as_str() else {
                return Err(SipError::invalid_type("headers", "an object of strings"));
            };
            if name.is_empty()
                || !name.chars().all(token)
                || RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str())
            {
                return Err(SipError::new(
                    ERROR_INVALID_ELEMENT,
                    format!("Invalid element (header name {name:?})"),
                ));
            }
            if text.len() > 512 || text.chars().any(|c| matches!(c, '\r' | '\n' | '\0')) {
                return Err(SipError::new(
                    ERROR_INVALID_ELEMENT,
                    format!("Invalid element (value of header {name})"),
                ));
            }
            Ok((name.clone(), text.to_string()))
        })
        .collect()
}

/// `hold` direction, as Janus takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldDirection {
    /// We send, they do not (the default).
    SendOnly,
    /// We receive only.
    RecvOnly,
    /// Nobody sends.
    Inactive,
}

/// Every request this plugin answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipRequest {
    /// `register`.
    Register(Register),
    /// `unregister`.
    Unregister,
    /// `call` (needs a JSEP offer).
    Call(CallRequest),
    /// `accept` (needs a JSEP answer to the gateway's `incomingcall` offer).
    Accept {
        /// `autoaccept_reinvites` (default true), as for `call`.
        autoaccept_reinvites: bool,
        /// `srtp`: `sdes_mandatory` refuses (452) a caller without SDES-SRTP; an offered
        /// SRTP is answered in any case, as Janus does.
        srtp: Option<bifrons_sip::srtp::SrtpMode>,
    },
    /// `decline`, with the SIP status to reject with (default 486).
    Decline {
        /// SIP status code (400–699).
        code: u16,
    },
    /// `hangup`.
    Hangup,
    /// `hold`.
    Hold(HoldDirection),
    /// `unhold`.
    Unhold,
    /// `recording`: start or stop recording the call's audio (Ogg/Opus files).
    Recording {
        /// `action`: `start` (true) or `stop` (false).
        start: bool,
        /// `audio`: the browser's audio.
        audio: bool,
        /// `peer_audio`: the SIP peer's audio.
        peer_audio: bool,
    },
    /// `message`: a SIP MESSAGE in the call's dialog, or to `uri` out of dialog.
    Message(MessageRequest),
    /// `info`: a SIP INFO in the call's dialog.
    Info {
        /// `type`: the Content-Type.
        content_type: String,
        /// `content`: the body.
        content: String,
        /// `headers`, checked by [`custom_headers`].
        headers: Vec<(String, String)>,
    },
    /// `transfer`: a blind transfer (REFER) of the peer to `uri`.
    Transfer {
        /// `uri`: where the peer should call.
        uri: SipUri,
    },
    /// `update`: a JSEP offer (the browser renegotiates, e.g. an ICE restart) or the answer
    /// to an `updatingcall` offer.
    Update,
    /// `dtmf_info`: one digit sent as SIP INFO `application/dtmf-relay`.
    DtmfInfo {
        /// The digit (`0-9`, `*`, `#`, `A-D`).
        digit: char,
        /// Duration, ms (default 160).
        duration_ms: u32,
    },
}

pub use crate::services::sip::SipUri;

/// Requests of Janus' SIP plugin this one does not offer yet: refused by name, so a client
/// learns why rather than reading "unknown".
const NOT_IMPLEMENTED: &[&str] = &[
    "progress",
    "send_ringing",
    "subscribe",
    "unsubscribe",
    "keyframe",
    "rtp_forward",
    "stop_rtp_forward",
    "listforwarders",
    "reset",
];

fn string<'a>(map: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, SipError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(SipError::invalid_type(key, "a string")),
    }
}

/// The `srtp` field of `call` and `accept` (Janus' names); anything else is 444.
fn srtp(map: &Map<String, Value>) -> Result<Option<bifrons_sip::srtp::SrtpMode>, SipError> {
    match string(map, "srtp")? {
        None => Ok(None),
        Some(name) => bifrons_sip::srtp::SrtpMode::from_janus(name)
            .map(Some)
            .ok_or_else(|| {
                SipError::new(
                    ERROR_INVALID_ELEMENT,
                    "Invalid element (srtp can only be sdes_optional or sdes_mandatory)",
                )
            }),
    }
}

fn required<'a>(map: &'a Map<String, Value>, key: &str) -> Result<&'a str, SipError> {
    string(map, key)?.ok_or_else(|| SipError::missing(key))
}

fn uint(map: &Map<String, Value>, key: &str) -> Result<Option<u64>, SipError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| SipError::invalid_type(key, "a positive integer")),
    }
}

fn flag(map: &Map<String, Value>, key: &str, default: bool) -> Result<bool, SipError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(SipError::invalid_type(key, "a boolean")),
    }
}

/// A media type for a Content-Type header: `type/subtype` of RFC 3261 token characters, with
/// optional `;param=value` parts, no CR, LF or other control character, at most 128 bytes.
fn media_type(map: &Map<String, Value>, key: &str) -> Result<Option<String>, SipError> {
    let Some(text) = string(map, key)? else {
        return Ok(None);
    };
    let token = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c))
    };
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let ok = text.len() <= 128
        && !text.chars().any(|c| c.is_control())
        && essence
            .split_once('/')
            .is_some_and(|(t, s)| token(t) && token(s))
        && parts.all(|p| {
            p.split_once('=')
                .is_some_and(|(k, v)| token(k.trim()) && !v.trim().is_empty())
        });
    if !ok {
        return Err(SipError::new(
            ERROR_INVALID_ELEMENT,
            format!("Invalid element ({key}: not a media type)"),
        ));
    }
    Ok(Some(text.to_string()))
}

/// The `content` of a `message` or `info`: a string of at most [`MAX_CONTENT_LEN`] bytes.
fn content(map: &Map<String, Value>) -> Result<String, SipError> {
    let text = required(map, "content")?;
    if text.len() > MAX_CONTENT_LEN {
        return Err(SipError::new(
            ERROR_INVALID_ELEMENT,
            format!("Invalid element (content: at most {MAX_CONTENT_LEN} bytes)"),
        ));
    }
    Ok(text.to_string())
}

fn uri(map: &Map<String, Value>, key: &str, what: &str) -> Result<Option<SipUri>, SipError> {
    match string(map, key)? {
        None => Ok(None),
        Some(text) => SipUri::parse(text)
            .map(Some)
            .ok_or_else(|| SipError::new(ERROR_INVALID_ADDRESS, format!("Invalid {what} {text}"))),
    }
}

impl SipRequest {
    /// Parses a message body.
    pub fn parse(body: &Value) -> Result<Self, SipError> {
        let map = match body {
            Value::Null => return Err(SipError::new(ERROR_NO_MESSAGE, "No message??")),
            Value::Object(m) => m,
            _ => {
                return Err(SipError::new(
                    ERROR_INVALID_JSON,
                    "JSON error: not an object",
                ))
            }
        };
        let request = required(map, "request")?;
        match request.to_ascii_lowercase().as_str() {
            "register" => parse_register(map).map(SipRequest::Register),
            "unregister" => Ok(SipRequest::Unregister),
            "call" => {
                let uri =
                    uri(map, "uri", "user address")?.ok_or_else(|| SipError::missing("uri"))?;
                let autoaccept_reinvites = flag(map, "autoaccept_reinvites", true)?;
                let headers = custom_headers(map.get("headers"))?;
                let srtp = srtp(map)?;
                let srtp_profile = match string(map, "srtp_profile")? {
                    None => None,
                    Some(name) => Some(bifrons_sip::srtp::CryptoSuite::from_name(name).ok_or_else(
                        || {
                            SipError::new(
                                ERROR_INVALID_ELEMENT,
                                "Invalid element (srtp_profile can only be AES_CM_128_HMAC_SHA1_80 or AES_CM_128_HMAC_SHA1_32)",
                            )
                        },
                    )?),
                };
                Ok(SipRequest::Call(CallRequest {
                    uri,
                    headers,
                    autoaccept_reinvites,
                    srtp,
                    srtp_profile,
                }))
            }
            "accept" => Ok(SipRequest::Accept {
                autoaccept_reinvites: flag(map, "autoaccept_reinvites", true)?,
                srtp: srtp(map)?,
            }),
            "message" => {
                let content = content(map)?;
                let content_type =
                    media_type(map, "content_type")?.unwrap_or_else(|| "text/plain".into());
                let uri = uri(map, "uri", "user address")?;
                let headers = custom_headers(map.get("headers"))?;
                let call_id = string(map, "call_id")?.map(str::to_string);
                let word =
                    |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~()<>:\\/[]?{}@".contains(c);
                if call_id
                    .as_ref()
                    .is_some_and(|id| id.is_empty() || id.len() > 128 || !id.chars().all(word))
                {
                    return Err(SipError::new(
                        ERROR_INVALID_ELEMENT,
                        "Invalid element (call_id: not a SIP Call-ID)",
                    ));
                }
                Ok(SipRequest::Message(MessageRequest {
                    content,
                    content_type,
                    uri,
                    headers,
                    call_id,
                }))
            }
            "info" => {
                let content_type =
                    media_type(map, "type")?.ok_or_else(|| SipError::missing("type"))?;
                let content = content(map)?;
                let headers = custom_headers(map.get("headers"))?;
                Ok(SipRequest::Info {
                    content_type,
                    content,
                    headers,
                })
            }
            "transfer" => {
                let uri =
                    uri(map, "uri", "user address")?.ok_or_else(|| SipError::missing("uri"))?;
                if string(map, "replace")?.is_some() {
                    return Err(SipError::new(
                        ERROR_INVALID_ELEMENT,
                        "Invalid element (replace: attended transfer is not supported, only blind)",
                    ));
                }
                Ok(SipRequest::Transfer { uri })
            }
            "update" => Ok(SipRequest::Update),
            "decline" => {
                let code = uint(map, "code")?.unwrap_or(486);
                if !(400..700).contains(&code) {
                    return Err(SipError::new(
                        ERROR_INVALID_ELEMENT,
                        format!("Invalid SIP response code specified ({code})"),
                    ));
                }
                Ok(SipRequest::Decline { code: code as u16 })
            }
            "hangup" => Ok(SipRequest::Hangup),
            "hold" => {
                let direction = match string(map, "direction")? {
                    None | Some("sendonly") => HoldDirection::SendOnly,
                    Some("recvonly") => HoldDirection::RecvOnly,
                    Some("inactive") => HoldDirection::Inactive,
                    Some(_) => {
                        return Err(SipError::new(
                            ERROR_INVALID_ELEMENT,
                            "Invalid direction (can only be sendonly, recvonly or inactive)",
                        ))
                    }
                };
                Ok(SipRequest::Hold(direction))
            }
            "unhold" => Ok(SipRequest::Unhold),
            "recording" => {
                let start = match required(map, "action")? {
                    "start" => true,
                    "stop" => false,
                    _ => {
                        return Err(SipError::new(
                            ERROR_INVALID_ELEMENT,
                            "Invalid action (should be start|stop)",
                        ))
                    }
                };
                let flag = |key: &str| match map.get(key) {
                    None | Some(Value::Null) => Ok(false),
                    Some(Value::Bool(b)) => Ok(*b),
                    Some(_) => Err(SipError::invalid_type(key, "a boolean")),
                };
                let (audio, peer_audio) = (flag("audio")?, flag("peer_audio")?);
                if map.contains_key("video") || map.contains_key("peer_video") {
                    return Err(SipError::new(
                        ERROR_INVALID_ELEMENT,
                        "Invalid element (video: audio-only calls)",
                    ));
                }
                if start && !audio && !peer_audio {
                    return Err(SipError::new(
                        ERROR_INVALID_ELEMENT,
                        "Invalid element (nothing to record: set audio and/or peer_audio)",
                    ));
                }
                Ok(SipRequest::Recording {
                    start,
                    audio,
                    peer_audio,
                })
            }
            "dtmf_info" => {
                let digit = required(map, "digit")?;
                let mut chars = digit.chars();
                let (Some(d), None) = (chars.next(), chars.next()) else {
                    return Err(SipError::new(
                        ERROR_INVALID_ELEMENT,
                        "Invalid element (digit should be one character)",
                    ));
                };
                if bifrons_sip::dtmf::digit_to_event(d).is_none() {
                    return Err(SipError::new(
                        ERROR_INVALID_ELEMENT,
                        format!("Invalid element (digit {d:?} is not a DTMF digit)"),
                    ));
                }
                let duration_ms = uint(map, "duration")?.unwrap_or(160).clamp(40, 5000) as u32;
                Ok(SipRequest::DtmfInfo {
                    digit: d,
                    duration_ms,
                })
            }
            known if NOT_IMPLEMENTED.contains(&known) => Err(SipError::new(
                ERROR_INVALID_REQUEST,
                format!("Request ({request}) is not implemented yet"),
            )),
            _ => Err(SipError::new(
                ERROR_INVALID_REQUEST,
                format!("Unknown request ({request})"),
            )),
        }
    }
}

fn parse_register(map: &Map<String, Value>) -> Result<Register, SipError> {
    let kind = string(map, "type")?;
    let username = uri(map, "username", "user address")?;
    let proxy = uri(map, "proxy", "proxy address")?;
    let register_ttl = uint(map, "register_ttl")?.map(|t| t.clamp(1, 86_400) as u32);
    let display_name = string(map, "display_name")?.map(str::to_string);
    let authuser = string(map, "authuser")?.map(str::to_string);
    let outbound_proxy = uri(map, "outbound_proxy", "outbound proxy address")?;
    let user_agent = match string(map, "user_agent")? {
        Some(ua) if ua.is_empty() || ua.len() > 256 || ua.chars().any(|c| c.is_control()) => {
            return Err(SipError::new(
                ERROR_INVALID_ELEMENT,
                "Invalid element (user_agent: 1 to 256 characters, no control character)",
            ))
        }
        other => other.map(str::to_string),
    };
    let transport = match (
        flag(map, "force_udp", false)?,
        flag(map, "force_tcp", false)?,
    ) {
        (true, true) => {
            return Err(SipError::new(
                ERROR_INVALID_ELEMENT,
                "Invalid element (force_udp and force_tcp are exclusive)",
            ))
        }
        (false, true) => Some(bifrons_sip::Transport::Tcp),
        (true, false) => Some(bifrons_sip::Transport::Udp),
        (false, false) => None,
    };
    let kind = match kind {
        Some("guest") => RegisterKind::Guest,
        Some("account") => {
            let account = required(map, "account")?.to_string();
            let secret = required(map, "secret")?.to_string();
            RegisterKind::Account { account, secret }
        }
        None => {
            if username.is_none() {
                return Err(SipError::missing("username"));
            }
            let secret = match (string(map, "secret")?, string(map, "ha1_secret")?) {
                (Some(secret), _) => bifrons_sip::DigestSecret::Password(secret.to_string()),
                (None, Some(ha1))
                    if ha1.len() == 32 && ha1.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    bifrons_sip::DigestSecret::Ha1(ha1.to_string())
                }
                (None, Some(_)) => {
                    return Err(SipError::new(
                        ERROR_INVALID_ELEMENT,
                        "Invalid element (ha1_secret: 32 hex digits, MD5(user:realm:password))",
                    ))
                }
                (None, None) => {
                    return Err(SipError::new(
                        ERROR_MISSING_ELEMENT,
                        "Missing element (secret or ha1_secret)",
                    ))
                }
            };
            RegisterKind::Credentials { secret }
        }
        Some(other) => {
            return Err(SipError::new(
                ERROR_INVALID_ELEMENT,
                format!("Invalid element (type {other:?}: can be guest or account)"),
            ))
        }
    };
    Ok(Register {
        kind,
        username,
        authuser,
        display_name,
        proxy,
        outbound_proxy,
        user_agent,
        transport,
        register_ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(body: Value) -> u16 {
        SipRequest::parse(&body).unwrap_err().code
    }

    #[test]
    fn refusals_carry_janus_codes() {
        assert_eq!(code(Value::Null), ERROR_NO_MESSAGE);
        assert_eq!(code(json!([1])), ERROR_INVALID_JSON);
        assert_eq!(code(json!({})), ERROR_MISSING_ELEMENT);
        assert_eq!(code(json!({"request": 3})), ERROR_INVALID_ELEMENT);
        assert_eq!(code(json!({"request": "dance"})), ERROR_INVALID_REQUEST);
        let refused = SipRequest::parse(&json!({"request": "subscribe"})).unwrap_err();
        assert_eq!(refused.code, ERROR_INVALID_REQUEST);
        assert!(
            refused.message.contains("not implemented"),
            "{}",
            refused.message
        );
        assert_eq!(code(json!({"request": "call"})), ERROR_MISSING_ELEMENT);
        assert_eq!(
            code(json!({"request": "call", "uri": 5})),
            ERROR_INVALID_ELEMENT
        );
        assert_eq!(
            code(json!({"request": "call", "uri": "bob"})),
            ERROR_INVALID_ADDRESS
        );
        assert_eq!(code(json!({"request": "register"})), ERROR_MISSING_ELEMENT);
        assert_eq!(
            code(json!({"request": "register", "username": "sip:a@b"})),
            ERROR_MISSING_ELEMENT
        );
        assert_eq!(
            code(json!({"request": "register", "type": "account", "account": "100"})),
            ERROR_MISSING_ELEMENT
        );
        assert_eq!(
            code(json!({"request": "register", "type": "x"})),
            ERROR_INVALID_ELEMENT
        );
        assert_eq!(
            code(json!({"request": "decline", "code": 200})),
            ERROR_INVALID_ELEMENT
        );
        assert_eq!(
            code(json!({"request": "dtmf_info", "digit": "12"})),
            ERROR_INVALID_ELEMENT
        );
        assert_eq!(
            code(json!({"request": "dtmf_info", "digit": "x"})),
            ERROR_INVALID_ELEMENT
        );
        assert_eq!(
            code(json!({"request": "hold", "direction": "up"})),
            ERROR_INVALID_ELEMENT
        );
        let call =
            |headers: Value| code(json!({"request": "call", "uri": "sip:a@b", "headers": headers}));
        assert_eq!(call(json!("x")), ERROR_INVALID_ELEMENT);
        assert_eq!(call(json!({"X-A": 1})), ERROR_INVALID_ELEMENT);
        assert_eq!(call(json!({"Via": "x"})), ERROR_INVALID_ELEMENT);
        assert_eq!(call(json!({"X A": "x"})), ERROR_INVALID_ELEMENT);
        assert_eq!(call(json!({"X-A": "x\r\nBYE: y"})), ERROR_INVALID_ELEMENT);
        let SipRequest::Call(ok) = SipRequest::parse(
            &json!({"request": "call", "uri": "sip:a@b", "headers": {"X-Campaign": "42"}}),
        )
        .unwrap() else {
            panic!("call")
        };
        assert_eq!(
            ok.headers,
            vec![("X-Campaign".to_string(), "42".to_string())]
        );
    }

    #[test]
    fn message_info_transfer_and_update_refusals() {
        assert_eq!(code(json!({"request": "message"})), ERROR_MISSING_ELEMENT);
        assert_eq!(
            code(json!({"request": "message", "content": 1})),
            ERROR_INVALID_ELEMENT
        );
        assert_eq!(
            code(json!({"request": "message", "content": "x", "uri": "nobody"})),
            ERROR_INVALID_ADDRESS
        );
        for bad in [
            "text",
            "text/",
            "text/plain\r\nX: y",
            "a b/c",
            "text/plain;charset",
        ] {
            assert_eq!(
                code(json!({"request": "message", "content": "x", "content_type": bad})),
                ERROR_INVALID_ELEMENT,
                "{bad:?}"
            );
        }
        assert_eq!(
            code(json!({"request": "message", "content": "x".repeat(MAX_CONTENT_LEN + 1)})),
            ERROR_INVALID_ELEMENT
        );
        assert_eq!(
            code(json!({"request": "message", "content": "x", "headers": {"X-A": "1\r\nBYE: x"}})),
            ERROR_INVALID_ELEMENT
        );
        for bad in [json!(""), json!("a b"), json!("x\r\nY: z"), json!(7)] {
            assert_eq!(
                code(
                    json!({"request": "message", "content": "x", "uri": "sip:a@b", "call_id": bad})
                ),
                ERROR_INVALID_ELEMENT
            );
        }
        assert_eq!(
            code(json!({"request": "info", "content": "x"})),
            ERROR_MISSING_ELEMENT
        );
        assert_eq!(
            code(json!({"request": "info", "type": "a/b"})),
            ERROR_MISSING_ELEMENT
        );
        assert_eq!(
            code(json!({"request": "info", "type": 3, "content": "x"})),
            ERROR_INVALID_ELEMENT
        );
        assert_eq!(code(json!({"request": "transfer"})), ERROR_MISSING_ELEMENT);
        assert_eq!(
            code(json!({"request": "transfer", "uri": "x"})),
            ERROR_INVALID_ADDRESS
        );
        assert_eq!(
            code(json!({"request": "transfer", "uri": "sip:a@b", "replace": "c1"})),
            ERROR_INVALID_ELEMENT
        );
        assert_eq!(
            code(json!({"request": "accept", "autoaccept_reinvites": 1})),
            ERROR_INVALID_ELEMENT
        );
        let SipRequest::Message(m) =
            SipRequest::parse(&json!({"request": "message", "content": "hi"})).unwrap()
        else {
            panic!("message")
        };
        assert_eq!((m.content_type.as_str(), m.uri), ("text/plain", None));
        let SipRequest::Call(c) =
            SipRequest::parse(&json!({"request": "call", "uri": "sip:a@b"})).unwrap()
        else {
            panic!("call")
        };
        assert!(c.autoaccept_reinvites, "default true, as Janus");
        assert_eq!(
            SipRequest::parse(
                &json!({"request": "info", "type": "application/x-a; v=1", "content": "c"})
            )
            .unwrap(),
            SipRequest::Info {
                content_type: "application/x-a; v=1".into(),
                content: "c".into(),
                headers: vec![]
            }
        );
    }

    #[test]
    fn srtp_field_of_call_and_accept() {
        use bifrons_sip::srtp::SrtpMode;
        for bad in [
            json!("sdes"),
            json!("SDES_MANDATORY"),
            json!(true),
            json!(1),
        ] {
            assert_eq!(
                code(json!({"request": "call", "uri": "sip:a@b", "srtp": bad})),
                ERROR_INVALID_ELEMENT
            );
            assert_eq!(
                code(json!({"request": "accept", "srtp": bad})),
                ERROR_INVALID_ELEMENT
            );
        }
        let SipRequest::Call(c) = SipRequest::parse(
            &json!({"request": "call", "uri": "sip:a@b", "srtp": "sdes_mandatory"}),
        )
        .unwrap() else {
            panic!("call")
        };
        assert_eq!(c.srtp, Some(SrtpMode::Mandatory));
        assert_eq!(c.srtp_profile, None);
        let SipRequest::Call(c) = SipRequest::parse(
            &json!({"request": "call", "uri": "sip:a@b", "srtp": "sdes_optional", "srtp_profile": "AES_CM_128_HMAC_SHA1_32"}),
        )
        .unwrap() else {
            panic!("call")
        };
        assert_eq!(
            c.srtp_profile,
            Some(bifrons_sip::srtp::CryptoSuite::AesCm128HmacSha1_32)
        );
        for bad in [json!("AEAD_AES_256_GCM"), json!("x"), json!(80)] {
            assert_eq!(
                code(json!({"request": "call", "uri": "sip:a@b", "srtp_profile": bad})),
                ERROR_INVALID_ELEMENT
            );
        }
        assert_eq!(
            SipRequest::parse(&json!({"request": "accept", "srtp": "sdes_optional"})).unwrap(),
            SipRequest::Accept {
                autoaccept_reinvites: true,
                srtp: Some(SrtpMode::Optional)
            }
        );
        assert_eq!(
            SipRequest::parse(&json!({"request": "accept"})).unwrap(),
            SipRequest::Accept {
                autoaccept_reinvites: true,
                srtp: None
            }
        );
    }

    #[test]
    fn parses_requests() {
        assert_eq!(
            SipRequest::parse(&json!({"request": "decline"})).unwrap(),
            SipRequest::Decline { code: 486 }
        );
        let SipRequest::Call(c) =
            SipRequest::parse(&json!({"request": "call", "uri": "sip:bob@127.0.0.1:5070"}))
                .unwrap()
        else {
            panic!("call");
        };
        assert_eq!(c.uri.user.as_deref(), Some("bob"));
        assert_eq!(c.uri.hostport, "127.0.0.1:5070");
        let SipRequest::Register(r) =
            SipRequest::parse(&json!({"request": "register", "type": "guest"})).unwrap()
        else {
            panic!("register");
        };
        assert_eq!(r.kind, RegisterKind::Guest);
    }

    #[test]
    fn uri_parser_accepts_and_refuses() {
        for ok in [
            "sip:bob@example.com",
            "sips:bob@example.com:5061",
            "sip:127.0.0.1:5060",
            "sip:alice@[::1]:5070;transport=tcp",
        ] {
            assert!(SipUri::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "bob",
            "sip:",
            "sip:@host",
            "sip:bob@",
            "sip:bob@host:99999",
            "sip:bob@ho st",
            "http://x",
            "sip:bob@<x>",
            "sip:bob@[zz]:5",
        ] {
            assert!(SipUri::parse(bad).is_none(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn message_info_transfer_parsers_never_panic(s in ".{0,64}", t in ".{0,40}") {
            for body in [
                json!({"request": "message", "content": s, "content_type": t, "uri": t}),
                json!({"request": "message", "content": s, "headers": {t.clone(): s.clone()}}),
                json!({"request": "info", "type": t, "content": s}),
                json!({"request": "transfer", "uri": s}),
            ] {
                if let Ok(SipRequest::Message(m)) = SipRequest::parse(&body) {
                    proptest::prop_assert!(!m.content_type.contains(['\r', '\n']));
                }
            }
        }

        #[test]
        fn uri_parser_never_panics(s in ".{0,64}") {
            let _ = SipUri::parse(&s);
            let _ = SipRequest::parse(&json!({"request": "call", "uri": s}));
        }
    }
}
