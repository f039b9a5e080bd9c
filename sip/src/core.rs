//! The protocol task: owns the transport, the transaction tables, the registration and the
//! dialogs. Everything runs on one task so no state is shared or locked; the public handles in
//! `ua` talk to it through commands.

use crate::digest::{self, Challenge};
use crate::dtmf::parse_dtmf_relay;
use crate::error::{AuthFailure, SipError};
use crate::message::{self as m, header, header_value, header_values, param, parse_cseq, to_bytes};
use crate::rtp::{RtpEndpoint, RtpParams};
use crate::sdp::{negotiate, Direction, Negotiated, Sdp};
use crate::transaction::{ClientAction, ClientKind, ClientTransaction, Reliability, ServerAction, ServerKind, ServerTransaction};
use crate::transport::{Incoming, Transport, TransportLayer};
use crate::ua::{Account, Call, CallEvent, DtmfVia, EndReason, RegistrationEvent, UaConfig, UaEvent};
use rsip::{Headers, Method, SipMessage};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

type Reply<T> = oneshot::Sender<Result<T, SipError>>;

/// Requests from the API handles.
pub(crate) enum Command {
    Register { account: Account, reply: Reply<u32> },
    Unregister { reply: Reply<()> },
    Call { uri: String, sdp: Option<Sdp>, reply: Reply<Call> },
    OutOfDialog { method: Method, uri: String, content_type: Option<String>, body: Vec<u8>, reply: Reply<u16> },
    Answer { call_id: String, reply: Reply<()> },
    Reject { call_id: String, code: u16, reply: Reply<()> },
    Hangup { call_id: String, reply: Reply<()> },
    Hold { call_id: String, hold: bool, reply: Reply<()> },
    Info { call_id: String, content_type: String, body: Vec<u8>, reply: Reply<u16> },
}

/// Who waits for a client transaction's outcome.
enum Owner {
    Register,
    Invite { call_id: String },
    ReInvite { call_id: String, hold: bool, reply: Option<Reply<()>> },
    Cancel,
    Status { reply: Option<Reply<u16>>, call_id: Option<String>, bye: bool },
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
}

fn rand_token(n: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut r = rand::thread_rng();
    (0..n).map(|_| CHARS[r.gen_range(0..CHARS.len())] as char).collect()
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
        let port = tail.strip_prefix(':').map(|p| p.parse().ok()).unwrap_or(Some(5060))?;
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
fn split_list(values: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for v in values {
        let (mut depth, mut quoted, mut cur) = (0, false, String::new());
        for c in v.chars() {
            match c {
                '"' => quoted = !quoted,
                '<' if !quoted => depth += 1,
                '>' if !quoted => depth -= 1,
                ',' if !quoted && depth == 0 => {
                    out.push(cur.trim().to_string());
                    cur.clear();
                    continue;
                }
                _ => {}
            }
            cur.push(c);
        }
        if !cur.trim().is_empty() {
            out.push(cur.trim().to_string());
        }
    }
    out
}

fn reason_of(resp: &rsip::Response) -> String {
    // rsip keeps the phrase only for codes it does not know; fall back to the RFC phrase.
    match &resp.status_code {
        rsip::StatusCode::Other(_, r) => r.clone(),
        other => m::reason_phrase(other.code()).to_string(),
    }
}

impl Core {
    pub(crate) fn new(cfg: UaConfig, transport: TransportLayer, cmd: mpsc::WeakSender<Command>, events: mpsc::Sender<UaEvent>) -> Self {
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
        }
    }

    pub(crate) async fn run(mut self, mut incoming: mpsc::Receiver<Incoming>, mut commands: mpsc::Receiver<Command>) {
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
        self.account.as_ref().map(|a| a.user.clone()).unwrap_or_else(|| "bifrons".into())
    }

    fn domain(&self) -> String {
        match &self.account {
            Some(a) => a.domain.clone().or_else(|| uri_hostport(&a.registrar).map(|(h, _)| h)).unwrap_or_default(),
            None => self.local.ip().to_string(),
        }
    }

    fn via(&self, transport: Transport, branch: &str) -> String {
        format!("SIP/2.0/{} {};rport;branch={branch}", transport.token(), self.local)
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
        Ok(rsip::Request { method, uri: ruri, version: rsip::Version::V2, headers: h, body })
    }

    /// Sends a request in a new client transaction.
    async fn send_request(&mut self, request: rsip::Request, dest: SocketAddr, transport: Transport, owner: Owner, auth_tries: u8) {
        let Some(branch) = m::top_via_branch(&request.headers) else { return };
        let kind = if request.method == Method::Invite { ClientKind::Invite } else { ClientKind::NonInvite };
        let bytes = to_bytes(&SipMessage::Request(request.clone()));
        tracing::debug!(method = %request.method, %dest, "sending request");
        if let Err(e) = self.transport.send(transport, dest, bytes.clone()).await {
            tracing::warn!(error = %e, %dest, "send failed");
        }
        let sm = ClientTransaction::new(kind, Self::reliability(transport), self.cfg.timers, Instant::now());
        let key = (branch, request.method.to_string());
        self.clients.insert(key, ClientEntry { sm, request, bytes, dest, transport, owner, auth_tries });
    }

    async fn send_raw(&self, transport: Transport, dest: SocketAddr, bytes: Vec<u8>) {
        if let Err(e) = self.transport.send(transport, dest, bytes).await {
            tracing::warn!(error = %e, %dest, "send failed");
        }
    }

    // ---------------------------------------------------------------- commands

    async fn on_command(&mut self, c: Command) {
        match c {
            Command::Register { account, reply } => self.start_register(account, reply).await,
            Command::Unregister { reply } => self.unregister(reply).await,
            Command::Call { uri, sdp, reply } => {
                let r = self.start_call(uri, sdp).await;
                let _ = reply.send(r);
            }
            Command::OutOfDialog { method, uri, content_type, body, reply } => {
                let r = self.out_of_dialog(method, &uri, content_type, body).await;
                match r {
                    Ok((req, dest)) => self.send_request(req, dest, self.cfg.transport, Owner::Status { reply: Some(reply), call_id: None, bye: false }, 0).await,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Answer { call_id, reply } => {
                let r = self.answer(&call_id).await;
                let _ = reply.send(r);
            }
            Command::Reject { call_id, code, reply } => {
                let r = self.reject(&call_id, code).await;
                let _ = reply.send(r);
            }
            Command::Hangup { call_id, reply } => self.hangup(&call_id, reply).await,
            Command::Hold { call_id, hold, reply } => self.reinvite(&call_id, hold, reply).await,
            Command::Info { call_id, content_type, body, reply } => {
                let extra = vec![header("Content-Type", content_type)];
                match self.in_dialog_request(&call_id, Method::Info, extra, body) {
                    Ok((req, dest, t)) => {
                        self.send_request(req, dest, t, Owner::Status { reply: Some(reply), call_id: Some(call_id), bye: false }, 0).await
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
        }
    }

    async fn out_of_dialog(&self, method: Method, uri: &str, content_type: Option<String>, body: Vec<u8>) -> Result<(rsip::Request, SocketAddr), SipError> {
        let dest = match &self.account {
            Some(a) => resolve(&a.registrar).await?,
            None => resolve(uri).await?,
        };
        let from = format!("<sip:{}@{}>;tag={}", self.user(), self.domain(), rand_token(10));
        let mut extra = vec![header("Contact", self.contact(&self.user()))];
        if let Some(ct) = content_type {
            extra.push(header("Content-Type", ct));
        }
        let req = self.build_request(method, uri, &from, &format!("<{uri}>"), &rand_token(20), 1, &[], self.cfg.transport, extra, body)?;
        Ok((req, dest))
    }

    // ---------------------------------------------------------------- registration

    async fn start_register(&mut self, account: Account, reply: Reply<u32>) {
        let dest = match resolve(&account.registrar).await {
            Ok(d) => d,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        self.account = Some(account.clone());
        let domain = self.domain();
        let registrar_uri = format!("sip:{domain}");
        let registrar_uri = if uri_hostport(&account.registrar).map(|(h, _)| h) == Some(domain.clone()) {
            m::addr_uri(&account.registrar)
        } else {
            registrar_uri
        };
        self.reg = Some(Registration {
            aor: format!("sip:{}@{}", account.user, domain),
            registrar_uri,
            account,
            dest,
            call_id: rand_token(20),
            tag: rand_token(10),
            cseq: 0,
            expires: 0,
            registered: false,
            refresh_at: None,
            first_reply: Some(reply),
            unregister_reply: None,
            unregistering: false,
        });
        self.send_register(false).await;
    }

    async fn send_register(&mut self, remove: bool) {
        let Some(reg) = self.reg.as_mut() else { return };
        reg.cseq += 1;
        reg.unregistering = remove;
        let expires = if remove { 0 } else { reg.account.expires };
        let (uri, aor, call_id, tag, cseq, dest, user) =
            (reg.registrar_uri.clone(), reg.aor.clone(), reg.call_id.clone(), reg.tag.clone(), reg.cseq, reg.dest, reg.account.user.clone());
        let extra = vec![header("Contact", self.contact(&user)), header("Expires", expires.to_string()), header("Allow", ALLOW)];
        let from = format!("<{aor}>;tag={tag}");
        match self.build_request(Method::Register, &uri, &from, &format!("<{aor}>"), &call_id, cseq, &[], self.cfg.transport, extra, vec![]) {
            Ok(req) => self.send_request(req, dest, self.cfg.transport, Owner::Register, 0).await,
            Err(e) => self.registration_failed(e),
        }
    }

    fn registration_failed(&mut self, e: SipError) {
        let Some(reg) = self.reg.as_mut() else { return };
        tracing::warn!(error = %e, "registration failed");
        reg.refresh_at = None;
        if let Some(r) = reg.unregister_reply.take() {
            let _ = r.send(Err(e));
        } else if let Some(r) = reg.first_reply.take() {
            let _ = r.send(Err(e));
        } else {
            let _ = self.events.try_send(UaEvent::Registration(RegistrationEvent::Failed(e.to_string())));
        }
    }

    fn on_register_response(&mut self, resp: &rsip::Response) {
        let code = m::status(resp);
        if code < 200 {
            return;
        }
        if let Some(via) = header_value(&resp.headers, "via") {
            // rport/received tell us our address as the registrar sees it (RFC 3581).
            let ip = param(&via, "received").and_then(|r| r.parse().ok()).unwrap_or(self.public.ip());
            let port = param(&via, "rport").and_then(|r| r.parse().ok()).unwrap_or(self.public.port());
            self.public = SocketAddr::new(ip, port);
        }
        let Some(reg) = self.reg.as_mut() else { return };
        if code >= 300 {
            let e = match code {
                403 => SipError::Auth(AuthFailure::Forbidden),
                _ => SipError::Rejected { code, reason: reason_of(resp) },
            };
            self.registration_failed(e);
            return;
        }
        if reg.unregistering {
            reg.registered = false;
            reg.refresh_at = None;
            if let Some(r) = reg.unregister_reply.take() {
                let _ = r.send(Ok(()));
            }
            let _ = self.events.try_send(UaEvent::Registration(RegistrationEvent::Unregistered));
            return;
        }
        // Granted lifetime: our Contact's expires parameter, else Expires, else what we asked.
        let ours = format!("{}", self.public);
        let granted = split_list(&header_values(&resp.headers, "contact"))
            .iter()
            .find(|c| m::addr_uri(c).contains(&ours))
            .and_then(|c| param(c, "expires"))
            .and_then(|e| e.parse().ok())
            .or_else(|| header_value(&resp.headers, "expires").and_then(|e| e.parse().ok()))
            .unwrap_or(reg.account.expires);
        reg.expires = granted;
        // Refresh well before expiry; at least 1 s ahead even for tiny lifetimes.
        let lead = (granted / 4).clamp(1, 30) as u64;
        reg.refresh_at = Some(Instant::now() + Duration::from_secs((granted as u64).saturating_sub(lead).max(1)));
        let first = !reg.registered;
        reg.registered = true;
        if let Some(r) = reg.first_reply.take() {
            let _ = r.send(Ok(granted));
        }
        let ev = if first { RegistrationEvent::Registered { expires: granted } } else { RegistrationEvent::Refreshed { expires: granted } };
        let _ = self.events.try_send(UaEvent::Registration(ev));
    }

    async fn unregister(&mut self, reply: Reply<()>) {
        match self.reg.as_mut() {
            Some(reg) => {
                reg.unregister_reply = Some(reply);
                self.send_register(true).await;
            }
            None => {
                let _ = reply.send(Err(SipError::InvalidState("not registered")));
            }
        }
    }

    // ---------------------------------------------------------------- calls (UAC)

    async fn start_call(&mut self, uri: String, sdp: Option<Sdp>) -> Result<Call, SipError> {
        let call_id = rand_token(24);
        let (rtp, offer) = match sdp {
            Some(s) => (None, s),
            None => {
                let ep = Arc::new(RtpEndpoint::bind(self.cfg.rtp_ip, self.cfg.rtp_ports.clone()).await?);
                let addr = ep.local_addr()?;
                let offer = Sdp::offer(addr, &self.cfg.codecs, Direction::SendRecv, rand::random::<u32>() as u64, 1);
                (Some(ep), offer)
            }
        };
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let local_tag = rand_token(10);
        let local_uri = format!("sip:{}@{}", self.user(), self.domain());
        let state = CallState {
            role: Role::Uac,
            state: DialogState::Early,
            local_tag,
            remote_tag: None,
            local_uri,
            remote_uri: uri.clone(),
            remote_target: uri.clone(),
            route_set: vec![],
            local_cseq: 1,
            remote_cseq: None,
            transport: self.cfg.transport,
            events: ev_tx,
            rtp: rtp.clone(),
            local_sdp: Some(offer),
            negotiated: None,
            invite: None,
            invite_dest: None,
            got_provisional: false,
            cancel_pending: false,
            cancelled: false,
            redirects: 0,
            uas_invite: None,
            ok_retx: None,
            last_ack: None,
            local_hold: false,
            remote_hold: false,
        };
        self.calls.insert(call_id.clone(), state);
        if let Err(e) = self.send_invite(&call_id, &uri).await {
            self.calls.remove(&call_id);
            return Err(e);
        }
        let cmd = self.cmd.upgrade().ok_or(SipError::Closed)?;
        Ok(Call { id: call_id, cmd, events: ev_rx, rtp, remote: uri })
    }

    async fn send_invite(&mut self, call_id: &str, uri: &str) -> Result<(), SipError> {
        let dest = match &self.account {
            Some(a) => resolve(&a.registrar).await?,
            None => resolve(uri).await?,
        };
        let contact = self.contact(&self.user());
        let c = self.calls.get_mut(call_id).ok_or(SipError::InvalidState("no such call"))?;
        let body = c.local_sdp.as_ref().map(|s| s.to_bytes()).unwrap_or_default();
        let from = format!("<{}>;tag={}", c.local_uri, c.local_tag);
        let cseq = c.local_cseq;
        let t = c.transport;
        let extra = vec![header("Contact", contact), header("Allow", ALLOW), header("Content-Type", "application/sdp")];
        let req = self.build_request(Method::Invite, uri, &from, &format!("<{uri}>"), call_id, cseq, &[], t, extra, body)?;
        let c = self.calls.get_mut(call_id).ok_or(SipError::InvalidState("no such call"))?;
        c.invite = Some(req.clone());
        c.invite_dest = Some(dest);
        c.got_provisional = false;
        self.send_request(req, dest, t, Owner::Invite { call_id: call_id.to_string() }, 0).await;
        Ok(())
    }

    fn emit(&self, call_id: &str, ev: CallEvent) {
        if let Some(c) = self.calls.get(call_id) {
            tracing::info!(call_id, event = ?ev, "call event");
            let _ = c.events.try_send(ev);
        }
    }

    fn end_call(&mut self, call_id: &str, ev: CallEvent) {
        self.emit(call_id, ev);
        self.calls.remove(call_id);
    }

    /// Applies a remote SDP (answer or offer) to the call's RTP endpoint.
    fn apply_remote_sdp(&mut self, call_id: &str, body: &[u8]) -> Result<(), SipError> {
        let codecs = self.cfg.codecs.clone();
        let c = self.calls.get_mut(call_id).ok_or(SipError::InvalidState("no such call"))?;
        let sdp = Sdp::parse(body)?;
        let local_dir = if c.local_hold { Direction::SendOnly } else { Direction::SendRecv };
        let neg = negotiate(&sdp, &codecs, local_dir, false)?;
        if let Some(ep) = &c.rtp {
            ep.configure(neg.remote, RtpParams { pt: neg.pt, dtmf_pt: neg.dtmf_pt, clock_rate: neg.codec.clock_rate(), ptime: neg.ptime });
            ep.set_sending(neg.direction.flags().0);
        }
        c.negotiated = Some(neg);
        Ok(())
    }

    async fn on_invite_response(&mut self, call_id: &str, resp: rsip::Response) {
        let code = m::status(&resp);
        let Some(c) = self.calls.get_mut(call_id) else { return };
        let to_tag = header_value(&resp.headers, "to").and_then(|t| param(&t, "tag"));
        if code < 200 {
            c.got_provisional = true;
            if code > 100 && c.remote_tag.is_none() {
                c.remote_tag = to_tag;
            }
            let pending_cancel = std::mem::take(&mut c.cancel_pending);
            if pending_cancel {
                self.send_cancel(call_id).await;
            }
            if code == 100 {
                self.emit(call_id, CallEvent::Trying);
            } else {
                let early = !resp.body.is_empty() && self.apply_remote_sdp(call_id, &resp.body).is_ok();
                self.emit(call_id, CallEvent::Ringing { early_media: early });
            }
            return;
        }
        if code < 300 {
            self.on_invite_2xx(call_id, resp, to_tag).await;
            return;
        }
        if (300..400).contains(&code) {
            let target = split_list(&header_values(&resp.headers, "contact")).first().map(|c| m::addr_uri(c));
            if let (Some(target), true) = (target, c.redirects < 3 && !c.cancelled) {
                c.redirects += 1;
                c.local_cseq += 1;
                c.remote_tag = None;
                c.remote_target = target.clone();
                self.emit(call_id, CallEvent::Redirected { target: target.clone() });
                if let Err(e) = self.send_invite(call_id, &target).await {
                    self.end_call(call_id, CallEvent::Failed { code: 480, reason: e.to_string() });
                }
                return;
            }
        }
        if c.cancelled && code == 487 {
            self.end_call(call_id, CallEvent::Ended(EndReason::Cancelled));
        } else {
            let reason = reason_of(&resp);
            self.end_call(call_id, CallEvent::Failed { code, reason });
        }
    }

    async fn on_invite_2xx(&mut self, call_id: &str, resp: rsip::Response, to_tag: Option<String>) {
        let Some(c) = self.calls.get_mut(call_id) else { return };
        let cseq = header_value(&resp.headers, "cseq").and_then(|v| parse_cseq(&v)).map(|x| x.0).unwrap_or(c.local_cseq);
        if c.state == DialogState::Confirmed {
            // A retransmitted 2xx: our ACK was lost, send it again (§13.2.2.4).
            if let Some((ack, dest)) = c.last_ack.clone() {
                let t = c.transport;
                self.send_raw(t, dest, ack).await;
            }
            return;
        }
        c.state = DialogState::Confirmed;
        c.remote_tag = to_tag;
        if let Some(ct) = split_list(&header_values(&resp.headers, "contact")).first() {
            c.remote_target = m::addr_uri(ct);
        }
        c.route_set = split_list(&header_values(&resp.headers, "record-route")).into_iter().rev().collect();
        let cancelled = c.cancelled;
        if !resp.body.is_empty() {
            if let Err(e) = self.apply_remote_sdp(call_id, &resp.body) {
                tracing::warn!(error = %e, "unusable SDP answer");
            }
        }
        match self.in_dialog_request_cseq(call_id, Method::Ack, vec![], vec![], Some(cseq)) {
            Ok((ack, dest, t)) => {
                let bytes = to_bytes(&SipMessage::Request(ack));
                self.send_raw(t, dest, bytes.clone()).await;
                if let Some(c) = self.calls.get_mut(call_id) {
                    c.last_ack = Some((bytes, dest));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot build ACK"),
        }
        if cancelled {
            // Our CANCEL lost the race with the 2xx: end the dialog right away.
            self.send_bye(call_id, None).await;
            return;
        }
        self.emit(call_id, CallEvent::Answered);
    }

    async fn send_cancel(&mut self, call_id: &str) {
        let Some(c) = self.calls.get(call_id) else { return };
        let (Some(inv), Some(dest)) = (c.invite.clone(), c.invite_dest) else { return };
        let mut h = Headers::default();
        for name in ["via", "route", "from", "to", "call-id"] {
            let vals = header_values(&inv.headers, name);
            // CANCEL carries only the top Via of the INVITE (same branch).
            let vals = if name == "via" { vals.into_iter().take(1).collect() } else { vals };
            for v in vals {
                h.push(header(name, v));
            }
        }
        let num = header_value(&inv.headers, "cseq").and_then(|v| parse_cseq(&v)).map(|x| x.0).unwrap_or(1);
        h.push(header("CSeq", format!("{num} CANCEL")));
        h.push(header("Max-Forwards", "70"));
        let req = rsip::Request { method: Method::Cancel, uri: inv.uri.clone(), version: rsip::Version::V2, headers: h, body: vec![] };
        let t = c.transport;
        self.send_request(req, dest, t, Owner::Cancel, 0).await;
    }

    async fn send_bye(&mut self, call_id: &str, reply: Option<Reply<()>>) {
        match self.in_dialog_request(call_id, Method::Bye, vec![], vec![]) {
            Ok((req, dest, t)) => {
                // The caller learns the outcome via Ended; BYE's own result only matters for logs.
                self.send_request(req, dest, t, Owner::Status { reply: None, call_id: Some(call_id.to_string()), bye: true }, 0).await;
                if let Some(c) = self.calls.get(call_id) {
                    if let Some(ep) = &c.rtp {
                        ep.set_sending(false);
                    }
                }
                self.end_call(call_id, CallEvent::Ended(EndReason::Local));
                if let Some(r) = reply {
                    let _ = r.send(Ok(()));
                }
            }
            Err(e) => {
                if let Some(r) = reply {
                    let _ = r.send(Err(e));
                }
            }
        }
    }

    async fn hangup(&mut self, call_id: &str, reply: Reply<()>) {
        let Some(c) = self.calls.get_mut(call_id) else {
            let _ = reply.send(Err(SipError::InvalidState("no such call")));
            return;
        };
        match (c.role, c.state) {
            (_, DialogState::Confirmed) => self.send_bye(call_id, Some(reply)).await,
            (Role::Uac, DialogState::Early) => {
                c.cancelled = true;
                if c.got_provisional {
                    self.send_cancel(call_id).await;
                } else {
                    // §9.1: no CANCEL before a provisional response; send it when one arrives.
                    c.cancel_pending = true;
                }
                let _ = reply.send(Ok(()));
            }
            (Role::Uas, DialogState::Early) => {
                let r = self.reject(call_id, 603).await;
                let _ = reply.send(r);
            }
        }
    }

    /// Builds an in-dialog request with the next local CSeq.
    fn in_dialog_request(&mut self, call_id: &str, method: Method, extra: Vec<rsip::Header>, body: Vec<u8>) -> Result<(rsip::Request, SocketAddr, Transport), SipError> {
        self.in_dialog_request_cseq(call_id, method, extra, body, None)
    }

    fn in_dialog_request_cseq(
        &mut self,
        call_id: &str,
        method: Method,
        mut extra: Vec<rsip::Header>,
        body: Vec<u8>,
        cseq: Option<u32>,
    ) -> Result<(rsip::Request, SocketAddr, Transport), SipError> {
        let contact = self.contact(&self.user());
        let c = self.calls.get_mut(call_id).ok_or(SipError::InvalidState("no such call"))?;
        if c.state != DialogState::Confirmed {
            return Err(SipError::InvalidState("dialog not confirmed"));
        }
        let n = match cseq {
            Some(n) => n,
            None => {
                c.local_cseq += 1;
                c.local_cseq
            }
        };
        let from = format!("<{}>;tag={}", c.local_uri, c.local_tag);
        let to = match &c.remote_tag {
            Some(t) => format!("<{}>;tag={t}", c.remote_uri_addr()),
            None => format!("<{}>", c.remote_uri_addr()),
        };
        // Loose routing: the first route is the next hop; otherwise the remote target.
        let next_hop = c.route_set.first().map(|r| m::addr_uri(r)).unwrap_or_else(|| c.remote_target.clone());
        let (target, routes, t) = (c.remote_target.clone(), c.route_set.clone(), c.transport);
        if matches!(method, Method::Invite) {
            extra.push(header("Contact", contact));
        }
        let (h, p) = uri_hostport(&next_hop).ok_or_else(|| SipError::InvalidUri(next_hop.clone()))?;
        let ip: std::net::IpAddr = h.parse().map_err(|_| SipError::InvalidUri(next_hop.clone()))?;
        let req = self.build_request(method, &target, &from, &to, call_id, n, &routes, t, extra, body)?;
        Ok((req, SocketAddr::new(ip, p), t))
    }

    async fn reinvite(&mut self, call_id: &str, hold: bool, reply: Reply<()>) {
        let Some(c) = self.calls.get_mut(call_id) else {
            let _ = reply.send(Err(SipError::InvalidState("no such call")));
            return;
        };
        let Some(mut sdp) = c.local_sdp.clone() else {
            let _ = reply.send(Err(SipError::InvalidState("no local SDP")));
            return;
        };
        sdp.version += 1;
        for m in &mut sdp.media {
            m.direction = if hold { Direction::SendOnly } else { Direction::SendRecv };
        }
        c.local_sdp = Some(sdp.clone());
        let extra = vec![header("Content-Type", "application/sdp")];
        match self.in_dialog_request(call_id, Method::Invite, extra, sdp.to_bytes()) {
            Ok((req, dest, t)) => {
                self.send_request(req, dest, t, Owner::ReInvite { call_id: call_id.to_string(), hold, reply: Some(reply) }, 0).await
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    async fn on_reinvite_response(&mut self, call_id: &str, hold: bool, reply: Option<Reply<()>>, resp: rsip::Response) {
        let code = m::status(&resp);
        if code < 200 {
            return;
        }
        let cseq = header_value(&resp.headers, "cseq").and_then(|v| parse_cseq(&v)).map(|x| x.0);
        if code < 300 {
            if let Ok((ack, dest, t)) = self.in_dialog_request_cseq(call_id, Method::Ack, vec![], vec![], cseq) {
                let bytes = to_bytes(&SipMessage::Request(ack));
                self.send_raw(t, dest, bytes).await;
            }
            if let Some(c) = self.calls.get_mut(call_id) {
                c.local_hold = hold;
            }
            if !resp.body.is_empty() {
                if let Err(e) = self.apply_remote_sdp(call_id, &resp.body) {
                    tracing::warn!(error = %e, "unusable SDP in re-INVITE answer");
                }
            }
            self.emit(call_id, CallEvent::LocalHold(hold));
            if let Some(r) = reply {
                let _ = r.send(Ok(()));
            }
        } else if let Some(r) = reply {
            let _ = r.send(Err(SipError::Rejected { code, reason: reason_of(&resp) }));
        }
    }

    // ---------------------------------------------------------------- calls (UAS)

    async fn answer(&mut self, call_id: &str) -> Result<(), SipError> {
        let codecs = self.cfg.codecs.clone();
        let (rtp_ip, ports) = (self.cfg.rtp_ip, self.cfg.rtp_ports.clone());
        let c = self.calls.get_mut(call_id).ok_or(SipError::InvalidState("no such call"))?;
        if c.role != Role::Uas || c.state != DialogState::Early {
            return Err(SipError::InvalidState("not an unanswered incoming call"));
        }
        let (invite, _, _) = c.uas_invite.clone().ok_or(SipError::InvalidState("no INVITE"))?;
        let ep = match &c.rtp {
            Some(e) => e.clone(),
            None => Arc::new(RtpEndpoint::bind(rtp_ip, ports).await?),
        };
        let addr = ep.local_addr()?;
        let c = self.calls.get_mut(call_id).ok_or(SipError::InvalidState("no such call"))?;
        c.rtp = Some(ep.clone());
        let body = if invite.body.is_empty() {
            // Offerless INVITE: we offer in the 2xx, the answer comes in the ACK.
            let s = Sdp::offer(addr, &codecs, Direction::SendRecv, rand::random::<u32>() as u64, 1);
            c.local_sdp = Some(s.clone());
            s.to_bytes()
        } else {
            let offer = Sdp::parse(&invite.body)?;
            let (ans, _) = Sdp::answer(&offer, &codecs, addr, Direction::SendRecv, rand::random::<u32>() as u64)?;
            c.local_sdp = Some(ans.clone());
            let b = ans.to_bytes();
            self.apply_remote_sdp(call_id, &invite.body)?;
            b
        };
        self.respond_invite(call_id, 200, body).await;
        Ok(())
    }

    async fn reject(&mut self, call_id: &str, code: u16) -> Result<(), SipError> {
        let c = self.calls.get(call_id).ok_or(SipError::InvalidState("no such call"))?;
        if c.role != Role::Uas || c.state != DialogState::Early {
            return Err(SipError::InvalidState("not an unanswered incoming call"));
        }
        self.respond_invite(call_id, code, vec![]).await;
        self.calls.remove(call_id);
        Ok(())
    }

    /// Sends a response to the pending incoming INVITE through its server transaction.
    async fn respond_invite(&mut self, call_id: &str, code: u16, body: Vec<u8>) {
        let contact = self.contact(&self.user());
        let Some(c) = self.calls.get_mut(call_id) else { return };
        let Some((invite, source, t)) = c.uas_invite.clone() else { return };
        let mut resp = m::response_to(&invite, code, Some(&c.local_tag));
        if code < 300 {
            for rr in header_values(&invite.headers, "record-route") {
                resp.headers.push(header("Record-Route", rr));
            }
            resp.headers.push(header("Contact", contact));
            resp.headers.push(header("Allow", ALLOW));
        }
        if !body.is_empty() {
            resp.headers.push(header("Content-Type", "application/sdp"));
            resp.body = body;
        }
        let bytes = to_bytes(&SipMessage::Response(resp));
        if (200..300).contains(&code) {
            c.state = DialogState::Confirmed;
            let now = Instant::now();
            if t == Transport::Udp {
                c.ok_retx = Some(Retransmit {
                    bytes: bytes.clone(),
                    dest: source,
                    transport: t,
                    next: now + self.cfg.timers.t1,
                    interval: self.cfg.timers.t1,
                    give_up: now + self.cfg.timers.t1 * 64,
                });
            }
        }
        let key = (m::top_via_branch(&invite.headers).unwrap_or_default(), "INVITE".to_string());
        self.server_respond(&key, code, bytes, source, t).await;
    }

    /// Sends a response through the server transaction `key` (or statelessly if it is gone).
    async fn server_respond(&mut self, key: &(String, String), code: u16, bytes: Vec<u8>, dest: SocketAddr, t: Transport) {
        let now = Instant::now();
        if let Some(e) = self.servers.get_mut(key) {
            let (ok, actions) = e.sm.on_send_response(code, now);
            if !ok {
                return;
            }
            e.last_response = Some(bytes.clone());
            if actions.contains(&ServerAction::Terminated) {
                self.servers.remove(key);
            }
        }
        self.send_raw(t, dest, bytes).await;
    }

    async fn respond(&mut self, req: &rsip::Request, code: u16, source: SocketAddr, t: Transport, extra: Vec<rsip::Header>, body: Option<(&str, Vec<u8>)>) {
        let tag = header_value(&req.headers, "to").and_then(|v| param(&v, "tag")).unwrap_or_else(|| rand_token(10));
        let mut resp = m::response_to(req, code, Some(&tag));
        for h in extra {
            resp.headers.push(h);
        }
        if let Some((ct, b)) = body {
            resp.headers.push(header("Content-Type", ct));
            resp.body = b;
        }
        let bytes = to_bytes(&SipMessage::Response(resp));
        let method = if req.method == Method::Ack { "INVITE".to_string() } else { req.method.to_string() };
        let key = (m::top_via_branch(&req.headers).unwrap_or_default(), method);
        self.server_respond(&key, code, bytes, source, t).await;
    }

    // ---------------------------------------------------------------- incoming

    async fn on_incoming(&mut self, msg: Incoming) {
        match m::parse(&msg.bytes) {
            Ok(SipMessage::Request(req)) => self.on_request(req, msg.source, msg.transport).await,
            Ok(SipMessage::Response(resp)) => self.on_response(resp).await,
            Err(e) => {
                // A request we can identify gets a 400 so the sender stops retransmitting;
                // anything else is dropped. Either way the UA keeps serving.
                tracing::warn!(source = %msg.source, error = %e, "malformed SIP message");
                if let Some(resp) = m::raw_bad_request(&msg.bytes, &e.to_string()) {
                    self.send_raw(msg.transport, msg.source, resp).await;
                }
            }
        }
    }

    async fn on_request(&mut self, req: rsip::Request, source: SocketAddr, t: Transport) {
        let branch = m::top_via_branch(&req.headers).unwrap_or_default();
        let method_key = if req.method == Method::Ack { "INVITE".to_string() } else { req.method.to_string() };
        let key = (branch.clone(), method_key);
        let now = Instant::now();
        if let Some(e) = self.servers.get_mut(&key) {
            if req.method == Method::Ack {
                let actions = e.sm.on_ack(now);
                if actions.contains(&ServerAction::Terminated) {
                    self.servers.remove(&key);
                }
            } else if e.sm.on_request_retransmission().contains(&ServerAction::ResendResponse) {
                if let Some(b) = e.last_response.clone() {
                    let (s, tp) = (e.source, e.transport);
                    self.send_raw(tp, s, b).await;
                }
            }
            return;
        }
        if req.method != Method::Ack {
            let kind = if req.method == Method::Invite { ServerKind::Invite } else { ServerKind::NonInvite };
            self.servers.insert(key, ServerEntry { sm: ServerTransaction::new(kind, Self::reliability(t), self.cfg.timers), last_response: None, source, transport: t });
        }
        let call_id = header_value(&req.headers, "call-id").unwrap_or_default();
        let to_tag = header_value(&req.headers, "to").and_then(|v| param(&v, "tag"));
        tracing::debug!(method = %req.method, %source, call_id, "request received");
        match req.method {
            Method::Invite if to_tag.is_none() => self.incoming_invite(req, source, t, call_id).await,
            Method::Invite => self.incoming_reinvite(req, source, t, call_id).await,
            Method::Ack => {
                if let Some(c) = self.calls.get_mut(&call_id) {
                    let was_pending = c.ok_retx.take().is_some();
                    let body = req.body.clone();
                    if !body.is_empty() && c.negotiated.is_none() {
                        let _ = self.apply_remote_sdp(&call_id, &body);
                    }
                    if was_pending {
                        self.emit(&call_id, CallEvent::Answered);
                    }
                }
            }
            Method::Bye => {
                if self.calls.contains_key(&call_id) {
                    self.respond(&req, 200, source, t, vec![], None).await;
                    if let Some(c) = self.calls.get(&call_id) {
                        if let Some(ep) = &c.rtp {
                            ep.set_sending(false);
                        }
                    }
                    self.end_call(&call_id, CallEvent::Ended(EndReason::RemoteBye));
                } else {
                    self.respond(&req, 481, source, t, vec![], None).await;
                }
            }
            Method::Cancel => self.incoming_cancel(req, source, t, call_id, branch).await,
            Method::Info => {
                if !self.calls.contains_key(&call_id) {
                    self.respond(&req, 481, source, t, vec![], None).await;
                    return;
                }
                let ct = header_value(&req.headers, "content-type").unwrap_or_default();
                self.respond(&req, 200, source, t, vec![], None).await;
                let ev = match (ct.to_ascii_lowercase().starts_with("application/dtmf-relay"), parse_dtmf_relay(&req.body)) {
                    (true, Some(d)) => CallEvent::Dtmf { digit: d, via: DtmfVia::Info },
                    _ => CallEvent::Info { content_type: ct, body: req.body.clone() },
                };
                self.emit(&call_id, ev);
            }
            Method::Message => {
                let from = header_value(&req.headers, "from").map(|f| m::addr_uri(&f)).unwrap_or_default();
                let content_type = header_value(&req.headers, "content-type").unwrap_or_default();
                self.respond(&req, 200, source, t, vec![], None).await;
                let _ = self.events.try_send(UaEvent::Message { from, content_type, body: req.body.clone() });
            }
            Method::Options => {
                let extra = vec![header("Allow", ALLOW), header("Accept", "application/sdp, application/dtmf-relay, text/plain")];
                self.respond(&req, 200, source, t, extra, None).await;
            }
            Method::Refer => {
                if !self.calls.contains_key(&call_id) {
                    self.respond(&req, 481, source, t, vec![], None).await;
                    return;
                }
                let target = header_value(&req.headers, "refer-to").map(|r| m::addr_uri(&r));
                match target {
                    Some(target) => {
                        self.respond(&req, 202, source, t, vec![], None).await;
                        self.emit(&call_id, CallEvent::Refer { target });
                    }
                    None => self.respond(&req, 400, source, t, vec![], None).await,
                }
            }
            Method::Update | Method::Notify => {
                // UPDATE without SDP (session timers) and NOTIFY (REFER progress) are accepted.
                let code = if self.calls.contains_key(&call_id) { 200 } else { 481 };
                self.respond(&req, code, source, t, vec![], None).await;
            }
            _ => {
                self.respond(&req, 405, source, t, vec![header("Allow", ALLOW)], None).await;
            }
        }
    }

    async fn incoming_invite(&mut self, req: rsip::Request, source: SocketAddr, t: Transport, call_id: String) {
        if self.calls.contains_key(&call_id) {
            // Same Call-ID, new branch and no To tag: a merged request (§8.2.2.2).
            self.respond(&req, 482, source, t, vec![], None).await;
            return;
        }
        if !req.body.is_empty() {
            if let Err(e) = Sdp::parse(&req.body).and_then(|o| negotiate(&o, &self.cfg.codecs, Direction::SendRecv, true)) {
                tracing::info!(error = %e, "refusing offer");
                self.respond(&req, 488, source, t, vec![], None).await;
                return;
            }
        }
        let Some(cmd) = self.cmd.upgrade() else { return };
        let from = header_value(&req.headers, "from").unwrap_or_default();
        let to = header_value(&req.headers, "to").unwrap_or_default();
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let remote_tag = param(&from, "tag");
        let remote_target = split_list(&header_values(&req.headers, "contact")).first().map(|c| m::addr_uri(c)).unwrap_or_else(|| m::addr_uri(&from));
        let local_tag = rand_token(10);
        let remote_cseq = header_value(&req.headers, "cseq").and_then(|v| parse_cseq(&v)).map(|x| x.0);
        let state = CallState {
            role: Role::Uas,
            state: DialogState::Early,
            local_tag,
            remote_tag,
            local_uri: m::addr_uri(&to),
            remote_uri: m::addr_uri(&from),
            remote_target,
            // UAS keeps Record-Route order (§12.1.1).
            route_set: split_list(&header_values(&req.headers, "record-route")),
            local_cseq: rand::random::<u16>() as u32,
            remote_cseq,
            transport: t,
            events: ev_tx,
            rtp: None,
            local_sdp: None,
            negotiated: None,
            invite: None,
            invite_dest: None,
            got_provisional: false,
            cancel_pending: false,
            cancelled: false,
            redirects: 0,
            uas_invite: Some((req.clone(), source, t)),
            ok_retx: None,
            last_ack: None,
            local_hold: false,
            remote_hold: false,
        };
        let remote = state.remote_uri.clone();
        self.calls.insert(call_id.clone(), state);
        // Bind media now so the application can attach players before answering.
        if let Ok(ep) = RtpEndpoint::bind(self.cfg.rtp_ip, self.cfg.rtp_ports.clone()).await {
            if let Some(c) = self.calls.get_mut(&call_id) {
                c.rtp = Some(Arc::new(ep));
            }
        }
        let rtp = self.calls.get(&call_id).and_then(|c| c.rtp.clone());
        self.respond_invite(&call_id, 180, vec![]).await;
        let call = Call { id: call_id.clone(), cmd, events: ev_rx, rtp, remote };
        tracing::info!(call_id, "incoming call");
        let _ = self.events.try_send(UaEvent::IncomingCall(call));
    }

    async fn incoming_reinvite(&mut self, req: rsip::Request, source: SocketAddr, t: Transport, call_id: String) {
        let codecs = self.cfg.codecs.clone();
        let contact = self.contact(&self.user());
        let Some(c) = self.calls.get_mut(&call_id) else {
            self.respond(&req, 481, source, t, vec![], None).await;
            return;
        };
        let cseq = header_value(&req.headers, "cseq").and_then(|v| parse_cseq(&v)).map(|x| x.0);
        if let (Some(n), Some(prev)) = (cseq, c.remote_cseq) {
            if n <= prev {
                self.respond(&req, 500, source, t, vec![], None).await;
                return;
            }
        }
        c.remote_cseq = cseq;
        if let Some(ct) = split_list(&header_values(&req.headers, "contact")).first() {
            c.remote_target = m::addr_uri(ct);
        }
        let mut answer = c.local_sdp.clone();
        let mut remote_dir = None;
        if !req.body.is_empty() {
            let parsed = Sdp::parse(&req.body).and_then(|offer| {
                let addr = c.rtp.as_ref().and_then(|e| e.local_addr().ok()).or_else(|| c.local_sdp.as_ref().and_then(|s| s.audio_addr().ok()));
                let addr = addr.ok_or(crate::sdp::SdpError::NoConnection)?;
                let local_dir = if c.local_hold { Direction::SendOnly } else { Direction::SendRecv };
                let session = c.local_sdp.as_ref().map(|s| s.session_id).unwrap_or(1);
                let (mut ans, _) = Sdp::answer(&offer, &codecs, addr, local_dir, session)?;
                ans.version = c.local_sdp.as_ref().map(|s| s.version + 1).unwrap_or(2);
                Ok((ans, offer.audio().map(|m| m.direction)))
            });
            match parsed {
                Ok((ans, dir)) => {
                    answer = Some(ans);
                    remote_dir = dir;
                }
                Err(e) => {
                    tracing::info!(error = %e, "refusing re-offer");
                    self.respond(&req, 488, source, t, vec![], None).await;
                    return;
                }
            }
        }
        let c = self.calls.get_mut(&call_id);
        if let (Some(c), Some(a)) = (c, &answer) {
            c.local_sdp = Some(a.clone());
        }
        if !req.body.is_empty() {
            let _ = self.apply_remote_sdp(&call_id, &req.body);
        }
        let body = answer.map(|a| a.to_bytes());
        let mut resp = m::response_to(&req, 200, None);
        resp.headers.push(header("Contact", contact));
        if let Some(b) = body {
            resp.headers.push(header("Content-Type", "application/sdp"));
            resp.body = b;
        }
        let bytes = to_bytes(&SipMessage::Response(resp));
        if t == Transport::Udp {
            let now = Instant::now();
            if let Some(c) = self.calls.get_mut(&call_id) {
                c.ok_retx = Some(Retransmit { bytes: bytes.clone(), dest: source, transport: t, next: now + self.cfg.timers.t1, interval: self.cfg.timers.t1, give_up: now + self.cfg.timers.t1 * 64 });
            }
        }
        let key = (m::top_via_branch(&req.headers).unwrap_or_default(), "INVITE".to_string());
        self.server_respond(&key, 200, bytes, source, t).await;
        if let (Some(dir), Some(c)) = (remote_dir, self.calls.get_mut(&call_id)) {
            let held = !dir.flags().0;
            if held != c.remote_hold {
                c.remote_hold = held;
                self.emit(&call_id, if held { CallEvent::RemoteHold } else { CallEvent::RemoteResume });
            }
        }
    }

    async fn incoming_cancel(&mut self, req: rsip::Request, source: SocketAddr, t: Transport, call_id: String, branch: String) {
        let invite_key = (branch, "INVITE".to_string());
        let matches = self.servers.contains_key(&invite_key);
        if !matches {
            self.respond(&req, 481, source, t, vec![], None).await;
            return;
        }
        self.respond(&req, 200, source, t, vec![], None).await;
        let early = self.calls.get(&call_id).is_some_and(|c| c.role == Role::Uas && c.state == DialogState::Early);
        if early {
            self.respond_invite(&call_id, 487, vec![]).await;
            self.end_call(&call_id, CallEvent::Ended(EndReason::Cancelled));
        }
    }

    // ---------------------------------------------------------------- responses

    async fn on_response(&mut self, resp: rsip::Response) {
        let Some(branch) = m::top_via_branch(&resp.headers) else { return };
        let Some((_, method)) = header_value(&resp.headers, "cseq").and_then(|v| parse_cseq(&v)) else { return };
        let key = (branch, method.to_ascii_uppercase());
        let code = m::status(&resp);
        let now = Instant::now();
        let Some(entry) = self.clients.get_mut(&key) else {
            // 2xx retransmissions to an INVITE outlive the transaction: re-ACK them.
            if key.1 == "INVITE" && (200..300).contains(&code) {
                if let Some(cid) = header_value(&resp.headers, "call-id") {
                    let tag = header_value(&resp.headers, "to").and_then(|t| param(&t, "tag"));
                    self.on_invite_2xx(&cid, resp, tag).await;
                }
            }
            return;
        };
        let actions = entry.sm.on_response(code, now);
        let (request, t, d) = (entry.request.clone(), entry.transport, entry.dest);
        for a in actions {
            match a {
                ClientAction::SendAck => {
                    let ack = non_2xx_ack(&request, &resp);
                    self.send_raw(t, d, ack).await;
                }
                ClientAction::PassToTu => self.pass_to_tu(&key, resp.clone()).await,
                ClientAction::Terminated => {
                    self.clients.remove(&key);
                }
                ClientAction::Retransmit | ClientAction::Timeout => {}
            }
        }
    }

    /// Hands a response to its owner, answering digest challenges on the way.
    async fn pass_to_tu(&mut self, key: &(String, String), resp: rsip::Response) {
        let code = m::status(&resp);
        if code == 401 || code == 407 {
            if self.retry_with_auth(key, &resp).await {
                return;
            }
        }
        let Some(entry) = self.clients.get_mut(key) else { return };
        // Final responses consume the owner (the transaction stays for absorbing retransmits).
        let owner = if code >= 200 { std::mem::replace(&mut entry.owner, Owner::Cancel) } else { Owner::Cancel };
        let call_id_of_invite = match &entry.owner {
            Owner::Invite { call_id } => Some(call_id.clone()),
            _ => None,
        };
        if code < 200 {
            if let Some(cid) = call_id_of_invite {
                self.on_invite_response(&cid, resp).await;
            }
            return;
        }
        match owner {
            Owner::Register => self.on_register_response(&resp),
            Owner::Invite { call_id } => self.on_invite_response(&call_id, resp).await,
            Owner::ReInvite { call_id, hold, reply } => self.on_reinvite_response(&call_id, hold, reply, resp).await,
            Owner::Status { reply, call_id, bye } => {
                if let Some(r) = reply {
                    let _ = r.send(Ok(code));
                }
                // 481/408 to an in-dialog request ends the dialog (§12.2.1.2).
                if let (Some(cid), false, true) = (call_id, bye, code == 481 || code == 408) {
                    self.end_call(&cid, CallEvent::Ended(EndReason::RemoteBye));
                }
            }
            Owner::Cancel | Owner::Keepalive => {}
        }
    }

    /// Re-sends the request of `key` with credentials. Returns false when it must not (no
    /// account, repeated challenge): the response then goes to the owner as a failure.
    async fn retry_with_auth(&mut self, key: &(String, String), resp: &rsip::Response) -> bool {
        let code = m::status(resp);
        let Some(entry) = self.clients.get_mut(key) else { return false };
        let hname = if code == 401 { "www-authenticate" } else { "proxy-authenticate" };
        let Some(chal_text) = header_value(&resp.headers, hname) else { return false };
        let fail = |e: SipError| Some(e);
        let failure: Option<SipError> = match (&self.account, Challenge::parse(&chal_text)) {
            (None, _) => fail(SipError::Auth(AuthFailure::NoCredentials)),
            (_, Err(e)) => fail(SipError::Auth(AuthFailure::Unsupported(e))),
            (Some(_), Ok(ch)) if entry.auth_tries >= 1 && !ch.stale => fail(SipError::Auth(AuthFailure::WrongCredentials { code })),
            (Some(_), Ok(_)) if entry.auth_tries >= 3 => fail(SipError::Auth(AuthFailure::WrongCredentials { code })),
            _ => None,
        };
        if let Some(err) = failure {
            // Failures of REGISTER and INVITE are reported as typed errors/events here.
            let owner = std::mem::replace(&mut entry.owner, Owner::Cancel);
            match owner {
                Owner::Register => self.registration_failed(err),
                Owner::Invite { call_id } => self.end_call(&call_id, CallEvent::Failed { code, reason: err.to_string() }),
                Owner::ReInvite { reply: Some(r), .. } => {
                    let _ = r.send(Err(err));
                }
                Owner::Status { reply: Some(r), .. } => {
                    let _ = r.send(Err(err));
                }
                _ => {}
            }
            return true;
        }
        let (Some(acct), Ok(ch)) = (self.account.clone(), Challenge::parse(&chal_text)) else { return false };
        let mut req = entry.request.clone();
        let tries = entry.auth_tries + 1;
        let owner = std::mem::replace(&mut entry.owner, Owner::Cancel);
        let (dest, t) = (entry.dest, entry.transport);
        let uri = req.uri.to_string();
        let auth = digest::authorization(&ch, &acct.user, &acct.password, &req.method.to_string(), &uri, &rand_token(16), 1);
        let auth_name = if code == 401 { "authorization" } else { "proxy-authorization" };
        req.headers.retain(|h| {
            let n = m::name_value(h).0;
            n != auth_name && n != "via" && n != "cseq"
        });
        let old = header_value(&entry.request.headers, "cseq").and_then(|v| parse_cseq(&v)).map(|x| x.0).unwrap_or(1);
        let new_cseq = old + 1;
        let mut h = Headers::default();
        h.push(header("Via", self.via(t, &branch())));
        for x in req.headers.iter() {
            h.push(x.clone());
        }
        h.push(header("CSeq", format!("{new_cseq} {}", req.method)));
        h.push(header(if code == 401 { "Authorization" } else { "Proxy-Authorization" }, auth));
        req.headers = h;
        match &owner {
            Owner::Register => {
                if let Some(r) = self.reg.as_mut() {
                    r.cseq = new_cseq;
                }
            }
            Owner::Invite { call_id } | Owner::ReInvite { call_id, .. } | Owner::Status { call_id: Some(call_id), .. } => {
                if let Some(c) = self.calls.get_mut(call_id) {
                    c.local_cseq = c.local_cseq.max(new_cseq);
                    if matches!(owner, Owner::Invite { .. }) {
                        c.invite = Some(req.clone());
                        c.got_provisional = false;
                    }
                }
            }
            _ => {}
        }
        self.send_request(req, dest, t, owner, tries).await;
        true
    }

    // ---------------------------------------------------------------- timers

    async fn on_tick(&mut self, now: Instant) {
        let due: Vec<(String, String)> = self.clients.iter().filter(|(_, e)| e.sm.next_deadline().is_some_and(|d| d <= now)).map(|(k, _)| k.clone()).collect();
        for key in due {
            let Some(e) = self.clients.get_mut(&key) else { continue };
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
        let due: Vec<(String, String)> = self.servers.iter().filter(|(_, e)| e.sm.next_deadline().is_some_and(|d| d <= now)).map(|(k, _)| k.clone()).collect();
        for key in due {
            let Some(e) = self.servers.get_mut(&key) else { continue };
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
            let _ = self.send_bye(&cid, None).await;
            self.end_call(&cid, CallEvent::Ended(EndReason::AckTimeout));
        }
        if let Some(reg) = &self.reg {
            if reg.refresh_at.is_some_and(|t| now >= t) && !self.clients.values().any(|e| matches!(e.owner, Owner::Register)) {
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
                    Transport::Tcp => self.send_raw(Transport::Tcp, dest, b"\r\n\r\n".to_vec()).await,
                    Transport::Udp => {
                        let uri = reg.registrar_uri.clone();
                        if let Ok((req, d)) = self.out_of_dialog(Method::Options, &uri, None, vec![]).await {
                            self.send_request(req, d, Transport::Udp, Owner::Keepalive, 0).await;
                        }
                    }
                }
            }
        }
    }

    fn client_timeout(&mut self, key: &(String, String)) {
        let Some(e) = self.clients.get_mut(key) else { return };
        let owner = std::mem::replace(&mut e.owner, Owner::Cancel);
        match owner {
            Owner::Register => self.registration_failed(SipError::Timeout),
            Owner::Invite { call_id } => self.end_call(&call_id, CallEvent::Failed { code: 408, reason: "Request Timeout".into() }),
            Owner::ReInvite { reply, .. } => {
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

/// ACK for a non-2xx final response: same branch as the INVITE, To from the response (§17.1.1.3).
fn non_2xx_ack(invite: &rsip::Request, resp: &rsip::Response) -> Vec<u8> {
    let mut h = Headers::default();
    if let Some(v) = header_value(&invite.headers, "via") {
        h.push(header("Via", v));
    }
    for r in header_values(&invite.headers, "route") {
        h.push(header("Route", r));
    }
    for n in ["from", "call-id"] {
        if let Some(v) = header_value(&invite.headers, n) {
            h.push(header(n, v));
        }
    }
    if let Some(v) = header_value(&resp.headers, "to") {
        h.push(header("To", v));
    }
    let num = header_value(&invite.headers, "cseq").and_then(|v| parse_cseq(&v)).map(|x| x.0).unwrap_or(1);
    h.push(header("CSeq", format!("{num} ACK")));
    h.push(header("Max-Forwards", "70"));
    let ack = rsip::Request { method: Method::Ack, uri: invite.uri.clone(), version: rsip::Version::V2, headers: h, body: vec![] };
    to_bytes(&SipMessage::Request(ack))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_host_port() {
        assert_eq!(uri_hostport("sip:alice@127.0.0.1:5070;transport=udp"), Some(("127.0.0.1".into(), 5070)));
        assert_eq!(uri_hostport("<sip:example.com>"), Some(("example.com".into(), 5060)));
        assert_eq!(uri_hostport("sip:[::1]:5062"), Some(("::1".into(), 5062)));
        assert_eq!(uri_hostport("mailto:x"), None);
    }

    #[test]
    fn record_route_lists_split_outside_brackets() {
        let v = vec!["<sip:a;lr>, <sip:b;lr>".to_string(), "<sip:c,d;lr>".to_string()];
        assert_eq!(split_list(&v), vec!["<sip:a;lr>", "<sip:b;lr>", "<sip:c,d;lr>"]);
    }
}
