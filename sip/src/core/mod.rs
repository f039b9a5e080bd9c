//! The protocol task: owns the transport, the transaction tables, the registration and the
//! dialogs. Everything runs on one task so no state is shared or locked; the public handles in
//! `ua` talk to it through commands.

mod notifier;
mod register;
mod responses;
mod uac;
mod uas;

use crate::body::{self, BodyError};
use crate::digest::{self, Challenge};
use crate::dtmf::parse_dtmf_relay;
use crate::error::{AuthFailure, SipError};
use crate::message::{self as m, header, header_value, header_values, param, parse_cseq, to_bytes};
use crate::rtp::{RtpEndpoint, RtpParams};
use crate::sdp::{negotiate, Direction, Negotiated, Sdp};
use crate::transaction::{
    ClientAction, ClientKind, ClientTransaction, Reliability, ServerAction, ServerKind,
    ServerTransaction,
};
use crate::transport::{Incoming, Transport, TransportLayer};
use crate::ua::{
    Account, Call, CallEvent, DtmfVia, EndReason, RegistrationEvent, UaConfig, UaEvent,
};
use rsip::{Headers, Method, SipMessage};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

type Reply<T> = oneshot::Sender<Result<T, SipError>>;

/// Requests from the API handles.
pub(crate) enum Command {
    Register {
        account: Account,
        reply: Reply<u32>,
    },
    Unregister {
        reply: Reply<()>,
    },
    Call {
        uri: String,
        sdp: Option<Sdp>,
        headers: Vec<(String, String)>,
        reply: Reply<Call>,
    },
    OutOfDialog {
        method: Method,
        uri: String,
        content_type: Option<String>,
        body: Vec<u8>,
        call_id: Option<String>,
        headers: Vec<(String, String)>,
        reply: Reply<(u16, String)>,
    },
    Answer {
        call_id: String,
        sdp: Option<Sdp>,
        reply: Reply<()>,
    },
    Reject {
        call_id: String,
        code: u16,
        reply: Reply<()>,
    },
    Hangup {
        call_id: String,
        reply: Reply<()>,
    },
    Hold {
        call_id: String,
        hold: bool,
        reply: Reply<()>,
    },
    InDialog {
        call_id: String,
        method: Method,
        content_type: Option<String>,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
        reply: Reply<(u16, String)>,
    },
    Reoffer {
        call_id: String,
        sdp: Option<Sdp>,
        reply: Reply<Option<Sdp>>,
    },
    SetEventState {
        package: String,
        content_type: String,
        body: Vec<u8>,
        reply: Reply<usize>,
    },
}

/// Who waits for a client transaction's outcome.
enum Owner {
    Register,
    Invite {
        call_id: String,
    },
    ReInvite {
        call_id: String,
        hold: bool,
        reply: Option<Reply<()>>,
    },
    /// A re-INVITE with an application's (or the current) offer.
    Reoffer {
        call_id: String,
        reply: Option<Reply<Option<Sdp>>>,
    },
    Cancel,
    Status {
        reply: Option<Reply<(u16, String)>>,
        call_id: Option<String>,
        bye: bool,
    },
    Keepalive,
}

struct ClientEntry {
    sm: ClientTransaction,
    request: rsip::Request,
    bytes: Vec<u8>,
    dest: SocketAddr,
    transport: Transport,
    owner: Owner,
    auth_tries: u8,
}

struct ServerEntry {
    sm: ServerTransaction,
    last_response: Option<Vec<u8>>,
    source: SocketAddr,
    transport: Transport,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Uac,
    Uas,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialogState {
    /// INVITE sent/received, no final answer.
    Early,
    Confirmed,
}

struct Retransmit {
    bytes: Vec<u8>,
    dest: SocketAddr,
    transport: Transport,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

struct CallState {
    role: Role,
    state: DialogState,
    local_tag: String,
    remote_tag: Option<String>,
    local_uri: String,
    remote_uri: String,
    remote_target: String,
    route_set: Vec<String>,
    local_cseq: u32,
    remote_cseq: Option<u32>,
    transport: Transport,
    events: mpsc::Sender<CallEvent>,
    rtp: Option<Arc<RtpEndpoint>>,
    local_sdp: Option<Sdp>,
    negotiated: Option<Negotiated>,
    /// UAC: the INVITE in progress (CANCEL and ACK are built from it).
    invite: Option<rsip::Request>,
    invite_dest: Option<SocketAddr>,
    got_provisional: bool,
    cancel_pending: bool,
    cancelled: bool,
    redirects: u8,
    /// UAS: the INVITE being answered and where it came from.
    uas_invite: Option<(rsip::Request, SocketAddr, Transport)>,
    ok_retx: Option<Retransmit>,
    last_ack: Option<(Vec<u8>, SocketAddr)>,
    local_hold: bool,
    remote_hold: bool,
    /// UAC: headers of the application's own added to the INVITE (and its retries).
    extra_headers: Vec<(String, String)>,
}

struct Registration {
    account: Account,
    registrar_uri: String,
    aor: String,
    dest: SocketAddr,
    call_id: String,
    tag: String,
    cseq: u32,
    expires: u32,
    registered: bool,
    refresh_at: Option<Instant>,
    first_reply: Option<Reply<u32>>,
    unregister_reply: Option<Reply<()>>,
    unregistering: bool,
}

pub(crate) struct Core {
    cfg: UaConfig,
    transport: TransportLayer,
    local: SocketAddr,
    /// Contact address as seen by the registrar (received/rport of our REGISTER).
    public: SocketAddr,
    cmd: mpsc::WeakSender<Command>,
    events: mpsc::Sender<UaEvent>,
    clients: HashMap<(String, String), ClientEntry>,
    servers: HashMap<(String, String), ServerEntry>,
    calls: HashMap<String, CallState>,
    reg: Option<Registration>,
    account: Option<Account>,
    last_keepalive: Instant,
    /// Subscriptions we serve, by (Call-ID, Event value).
    subscriptions: HashMap<(String, String), notifier::Subscription>,
    /// Published state documents, by event package.
    event_states: HashMap<String, notifier::EventState>,
}

fn rand_token(n: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut r = rand::thread_rng();
    (0..n)
        .map(|_| CHARS[r.gen_range(0..CHARS.len())] as char)
        .collect()
}

fn branch() -> String {
    format!("z9hG4bK{}", rand_token(16))
}

/// `host[:port]` of a SIP URI, with the default port.
pub(crate) fn uri_hostport(uri: &str) -> Option<(String, u16)> {
    let u = m::addr_uri(uri);
    let rest = u.strip_prefix("sip:").or_else(|| u.strip_prefix("sips:"))?;
    let rest = rest.split([';', '?']).next()?;
    let hp = rest.rsplit('@').next()?;
    if let Some(v6) = hp.strip_prefix('[') {
        let (h, tail) = v6.split_once(']')?;
        let port = tail
            .strip_prefix(':')
            .map(|p| p.parse().ok())
            .unwrap_or(Some(5060))?;
        return Some((h.to_string(), port));
    }
    let (h, p) = match hp.split_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hp, 5060),
    };
    (!h.is_empty()).then(|| (h.to_string(), p))
}

async fn resolve(uri: &str) -> Result<SocketAddr, SipError> {
    let (h, p) = uri_hostport(uri).ok_or_else(|| SipError::InvalidUri(uri.into()))?;
    if let Ok(ip) = h.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, p));
    }
    let found = tokio::net::lookup_host((h.as_str(), p)).await?.next();
    found.ok_or_else(|| SipError::InvalidUri(uri.into()))
}

/// Splits comma-separated header lists (Record-Route, Route) outside `<...>` and quotes.
/// Replaces a body that carries SDP among other parts (RFC 5621 multipart) by the SDP part
/// alone, with `Content-Type: application/sdp`, so that every offer/answer path reads plain
/// SDP. An SDP or empty body is left as it is.
///
/// Errors: see [`body::sdp_of`]; headers and body are then unchanged.
fn session_body(headers: &mut Headers, body: &mut Vec<u8>) -> Result<(), BodyError> {
    let ct = header_value(headers, "content-type");
    let sdp = match body::sdp_of(ct.as_deref(), body)? {
        Some(sdp) if sdp.len() != body.len() => sdp.into_owned(),
        _ => return Ok(()),
    };
    *body = sdp;
    headers.retain(|h| m::name_value(h).0 != "content-type");
    headers.push(header("Content-Type", body::SDP));
    Ok(())
}

fn split_list(values: &[String]) -> Vec<String> {
    values.iter().flat_map(|v| m::split_commas(v)).collect()
}

fn reason_of(resp: &rsip::Response) -> String {
    // rsip keeps the phrase only for codes it does not know; fall back to the RFC phrase.
    match &resp.status_code {
        rsip::StatusCode::Other(_, r) => r.clone(),
        other => m::reason_phrase(other.code()).to_string(),
    }
}

impl Core {
    pub(crate) fn new(
        cfg: UaConfig,
        transport: TransportLayer,
        cmd: mpsc::WeakSender<Command>,
        events: mpsc::Sender<UaEvent>,
    ) -> Self {
        let local = transport.local_addr();
        Self {
            cfg,
            transport,
            local,
            public: local,
            cmd,
            events,
            clients: HashMap::new(),
            servers: HashMap::new(),
            calls: HashMap::new(),
            reg: None,
            account: None,
            last_keepalive: Instant::now(),
            subscriptions: HashMap::new(),
            event_states: HashMap::new(),
        }
    }

    pub(crate) async fn run(
        mut self,
        mut incoming: mpsc::Receiver<Incoming>,
        mut commands: mpsc::Receiver<Command>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(msg) = incoming.recv() => self.on_incoming(msg).await,
                cmd = commands.recv() => match cmd {
                    Some(c) => self.on_command(c).await,
                    None => break,
                },
                _ = tick.tick() => self.on_tick(Instant::now()).await,
            }
        }
        tracing::debug!("user agent stopped");
    }

    fn reliability(t: Transport) -> Reliability {
        match t {
            Transport::Udp => Reliability::Unreliable,
            Transport::Tcp => Reliability::Reliable,
        }
    }

    fn contact(&self, user: &str) -> String {
        let tp = match self.cfg.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
        };
        format!("<sip:{user}@{}{tp}>", self.public)
    }

    fn user(&self) -> String {
        self.account
            .as_ref()
            .map(|a| a.user.clone())
            .or_else(|| self.cfg.identity.as_ref().map(|(user, _)| user.clone()))
            .unwrap_or_else(|| "bifrons".into())
    }

    fn domain(&self) -> String {
        match &self.account {
            Some(a) => a
                .domain
                .clone()
                .or_else(|| uri_hostport(&a.registrar).map(|(h, _)| h))
                .unwrap_or_default(),
            None => match &self.cfg.identity {
                Some((_, domain)) => domain.clone(),
                None => self.local.ip().to_string(),
            },
        }
    }

    fn via(&self, transport: Transport, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};rport;branch={branch}",
            transport.token(),
            self.local
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build_request(
        &self,
        method: Method,
        uri: &str,
        from: &str,
        to: &str,
        call_id: &str,
        cseq: u32,
        routes: &[String],
        transport: Transport,
        extra: Vec<rsip::Header>,
        body: Vec<u8>,
    ) -> Result<rsip::Request, SipError> {
        let ruri = rsip::Uri::try_from(uri).map_err(|_| SipError::InvalidUri(uri.into()))?;
        let mut h = Headers::default();
        h.push(header("Via", self.via(transport, &branch())));
        h.push(header("Max-Forwards", "70"));
        for r in routes {
            h.push(header("Route", r.clone()));
        }
        h.push(header("From", from));
        h.push(header("To", to));
        h.push(header("Call-ID", call_id));
        h.push(header("CSeq", format!("{cseq} {method}")));
        h.push(header("User-Agent", self.cfg.user_agent.clone()));
        for x in extra {
            h.push(x);
        }
        Ok(rsip::Request {
            method,
            uri: ruri,
            version: rsip::Version::V2,
            headers: h,
            body,
        })
    }

    /// Sends a request in a new client transaction.
    async fn send_request(
        &mut self,
        request: rsip::Request,
        dest: SocketAddr,
        transport: Transport,
        owner: Owner,
        auth_tries: u8,
    ) {
        let Some(branch) = m::top_via_branch(&request.headers) else {
            return;
        };
        let kind = if request.method == Method::Invite {
            ClientKind::Invite
        } else {
            ClientKind::NonInvite
        };
        let bytes = to_bytes(&SipMessage::Request(request.clone()));
        tracing::debug!(method = %request.method, %dest, "sending request");
        if let Err(e) = self.transport.send(transport, dest, bytes.clone()).await {
            tracing::warn!(error = %e, %dest, "send failed");
        }
        let sm = ClientTransaction::new(
            kind,
            Self::reliability(transport),
            self.cfg.timers,
            Instant::now(),
        );
        let key = (branch, request.method.to_string());
        self.clients.insert(
            key,
            ClientEntry {
                sm,
                request,
                bytes,
                dest,
                transport,
                owner,
                auth_tries,
            },
        );
    }

    async fn send_raw(&self, transport: Transport, dest: SocketAddr, bytes: Vec<u8>) {
        if let Err(e) = self.transport.send(transport, dest, bytes).await {
            tracing::warn!(error = %e, %dest, "send failed");
        }
    }

    async fn on_command(&mut self, c: Command) {
        match c {
            Command::Register { account, reply } => self.start_register(account, reply).await,
            Command::Unregister { reply } => self.unregister(reply).await,
            Command::Call {
                uri,
                sdp,
                headers,
                reply,
            } => {
                let r = self.start_call(uri, sdp, headers).await;
                let _ = reply.send(r);
            }
            Command::OutOfDialog {
                method,
                uri,
                content_type,
                body,
                call_id,
                headers,
                reply,
            } => {
                let r = self
                    .out_of_dialog(method, &uri, content_type, body, call_id, headers)
                    .await;
                match r {
                    Ok((req, dest)) => {
                        self.send_request(
                            req,
                            dest,
                            self.cfg.transport,
                            Owner::Status {
                                reply: Some(reply),
                                call_id: None,
                                bye: false,
                            },
                            0,
                        )
                        .await
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Answer {
                call_id,
                sdp,
                reply,
            } => {
                let r = match sdp {
                    Some(s) => self.answer_external(&call_id, s).await,
                    None => self.answer(&call_id).await,
                };
                let _ = reply.send(r);
            }
            Command::Reject {
                call_id,
                code,
                reply,
            } => {
                let r = self.reject(&call_id, code).await;
                let _ = reply.send(r);
            }
            Command::Hangup { call_id, reply } => self.hangup(&call_id, reply).await,
            Command::Hold {
                call_id,
                hold,
                reply,
            } => self.reinvite(&call_id, hold, reply).await,
            Command::Reoffer {
                call_id,
                sdp,
                reply,
            } => self.reoffer(&call_id, sdp, reply).await,
            Command::SetEventState {
                package,
                content_type,
                body,
                reply,
            } => {
                let n = self.set_event_state(package, content_type, body).await;
                let _ = reply.send(Ok(n));
            }
            Command::InDialog {
                call_id,
                method,
                content_type,
                body,
                headers,
                reply,
            } => {
                let mut extra: Vec<rsip::Header> = headers
                    .into_iter()
                    .map(|(name, value)| header(&name, value))
                    .collect();
                if let Some(ct) = content_type {
                    extra.push(header("Content-Type", ct));
                }
                match self.in_dialog_request(&call_id, method, extra, body) {
                    Ok((req, dest, t)) => {
                        self.send_request(
                            req,
                            dest,
                            t,
                            Owner::Status {
                                reply: Some(reply),
                                call_id: Some(call_id),
                                bye: false,
                            },
                            0,
                        )
                        .await
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
    }

    async fn out_of_dialog(
        &self,
        method: Method,
        uri: &str,
        content_type: Option<String>,
        body: Vec<u8>,
        call_id: Option<String>,
        headers: Vec<(String, String)>,
    ) -> Result<(rsip::Request, SocketAddr), SipError> {
        let dest = match &self.account {
            Some(a) => resolve(a.next_hop()).await?,
            None => resolve(uri).await?,
        };
        let from = format!(
            "<sip:{}@{}>;tag={}",
            self.user(),
            self.domain(),
            rand_token(10)
        );
        let mut extra = vec![header("Contact", self.contact(&self.user()))];
        extra.extend(
            headers
                .into_iter()
                .map(|(name, value)| header(&name, value)),
        );
        if let Some(ct) = content_type {
            extra.push(header("Content-Type", ct));
        }
        let req = self.build_request(
            method,
            uri,
            &from,
            &format!("<{uri}>"),
            &call_id.unwrap_or_else(|| rand_token(20)),
            1,
            &[],
            self.cfg.transport,
            extra,
            body,
        )?;
        Ok((req, dest))
    }

    async fn on_tick(&mut self, now: Instant) {
        let due: Vec<(String, String)> = self
            .clients
            .iter()
            .filter(|(_, e)| e.sm.next_deadline().is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(e) = self.clients.get_mut(&key) else {
                continue;
            };
            for a in e.sm.on_timer(now) {
                match a {
                    ClientAction::Retransmit => {
                        if let Some(e) = self.clients.get(&key) {
                            let (t, d, b) = (e.transport, e.dest, e.bytes.clone());
                            self.send_raw(t, d, b).await;
                        }
                    }
                    ClientAction::Timeout => self.client_timeout(&key),
                    ClientAction::Terminated => {
                        self.clients.remove(&key);
                    }
                    _ => {}
                }
            }
        }
        let due: Vec<(String, String)> = self
            .servers
            .iter()
            .filter(|(_, e)| e.sm.next_deadline().is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let Some(e) = self.servers.get_mut(&key) else {
                continue;
            };
            for a in e.sm.on_timer(now) {
                match a {
                    ServerAction::ResendResponse => {
                        if let Some(e) = self.servers.get(&key) {
                            if let Some(b) = e.last_response.clone() {
                                let (t, s) = (e.transport, e.source);
                                self.send_raw(t, s, b).await;
                            }
                        }
                    }
                    ServerAction::AckTimeout => tracing::info!("no ACK for final response"),
                    ServerAction::Terminated => {
                        self.servers.remove(&key);
                    }
                }
            }
        }
        self.expire_subscriptions(now);
        // 2xx retransmission of answered INVITEs until the ACK (§13.3.1.4).
        let mut give_up = Vec::new();
        let mut resend = Vec::new();
        for (cid, c) in self.calls.iter_mut() {
            if let Some(r) = c.ok_retx.as_mut() {
                if now >= r.give_up {
                    give_up.push(cid.clone());
                } else if now >= r.next {
                    r.interval = (r.interval * 2).min(self.cfg.timers.t2);
                    r.next = now + r.interval;
                    resend.push((r.transport, r.dest, r.bytes.clone()));
                }
            }
        }
        for (t, d, b) in resend {
            self.send_raw(t, d, b).await;
        }
        for cid in give_up {
            self.send_bye(&cid, None, EndReason::AckTimeout).await;
            self.end_call(&cid, CallEvent::Ended(EndReason::AckTimeout));
        }
        if let Some(reg) = &self.reg {
            if reg.refresh_at.is_some_and(|t| now >= t)
                && !self
                    .clients
                    .values()
                    .any(|e| matches!(e.owner, Owner::Register))
            {
                if let Some(r) = self.reg.as_mut() {
                    r.refresh_at = None;
                }
                self.send_register(false).await;
            }
        }
        if let (Some(period), Some(reg)) = (self.cfg.keepalive, &self.reg) {
            if reg.registered && now.duration_since(self.last_keepalive) >= period {
                self.last_keepalive = now;
                let dest = reg.dest;
                match self.cfg.transport {
                    Transport::Tcp => {
                        self.send_raw(Transport::Tcp, dest, b"\r\n\r\n".to_vec())
                            .await
                    }
                    Transport::Udp => {
                        let uri = reg.registrar_uri.clone();
                        if let Ok((req, d)) = self
                            .out_of_dialog(Method::Options, &uri, None, vec![], None, vec![])
                            .await
                        {
                            self.send_request(req, d, Transport::Udp, Owner::Keepalive, 0)
                                .await;
                        }
                    }
                }
            }
        }
    }

    fn client_timeout(&mut self, key: &(String, String)) {
        let Some(e) = self.clients.get_mut(key) else {
            return;
        };
        let owner = std::mem::replace(&mut e.owner, Owner::Cancel);
        match owner {
            Owner::Register => self.registration_failed(SipError::Timeout),
            Owner::Invite { call_id } => self.end_call(
                &call_id,
                CallEvent::Failed {
                    code: 408,
                    reason: "Request Timeout".into(),
                },
            ),
            Owner::ReInvite { reply, .. } => {
                if let Some(r) = reply {
                    let _ = r.send(Err(SipError::Timeout));
                }
            }
            Owner::Reoffer { reply, .. } => {
                if let Some(r) = reply {
                    let _ = r.send(Err(SipError::Timeout));
                }
            }
            Owner::Status { reply, .. } => {
                if let Some(r) = reply {
                    let _ = r.send(Err(SipError::Timeout));
                }
            }
            Owner::Cancel | Owner::Keepalive => {}
        }
    }
}

impl CallState {
    fn remote_uri_addr(&self) -> String {
        self.remote_uri.clone()
    }
}

/// Methods we accept.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, MESSAGE, REFER, NOTIFY, UPDATE";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_host_port() {
        assert_eq!(
            uri_hostport("sip:alice@127.0.0.1:5070;transport=udp"),
            Some(("127.0.0.1".into(), 5070))
        );
        assert_eq!(
            uri_hostport("<sip:example.com>"),
            Some(("example.com".into(), 5060))
        );
        assert_eq!(uri_hostport("sip:[::1]:5062"), Some(("::1".into(), 5062)));
        assert_eq!(uri_hostport("mailto:x"), None);
    }

    #[test]
    fn record_route_lists_split_outside_brackets() {
        let v = vec![
            "<sip:a;lr>, <sip:b;lr>".to_string(),
            "<sip:c,d;lr>".to_string(),
        ];
        assert_eq!(
            split_list(&v),
            vec!["<sip:a;lr>", "<sip:b;lr>", "<sip:c,d;lr>"]
        );
    }
}
