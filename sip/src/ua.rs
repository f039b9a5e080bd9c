//! The typed async API: [`Ua`] (one user agent: sockets, registration, calls) and [`Call`].
//!
//! All protocol state lives in one task (see `core`); these handles only send it commands and
//! receive events, so a plugin can hold one `Ua` per browser handle or per account cheaply.

use crate::core::{Command, Core};
use crate::digest::DigestSecret;
use crate::error::SipError;
use crate::rtp::RtpEndpoint;
use crate::sdp::{Codec, Sdp};
use crate::transaction::Timers;
use crate::transport::{Transport, TransportLayer};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// User agent settings.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Local SIP address (UDP and TCP share it; port 0 = any).
    pub bind: SocketAddr,
    /// Transport for requests we originate.
    pub transport: Transport,
    /// Address RTP sockets bind to and SDP advertises.
    pub rtp_ip: IpAddr,
    /// RTP port range (even port RTP, odd RTCP).
    pub rtp_ports: RangeInclusive<u16>,
    /// Codecs offered/accepted, in preference order.
    pub codecs: Vec<Codec>,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Transaction timer base values.
    pub timers: Timers,
    /// Keep-alive period towards the registrar (CRLF over TCP, OPTIONS over UDP); None = off.
    pub keepalive: Option<Duration>,
    /// Who we are (`user`, `domain`) in `From` and `Contact` while no account is registered,
    /// e.g. an extension on a trunk that authenticates by IP address. `None`: `bifrons` at
    /// the local address.
    pub identity: Option<(String, String)>,
}

impl Default for UaConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:0".parse().expect("literal address"),
            transport: Transport::Udp,
            rtp_ip: "127.0.0.1".parse().expect("literal address"),
            rtp_ports: 20000..=29999,
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            user_agent: "bifrons".into(),
            timers: Timers::default(),
            keepalive: None,
            identity: None,
        }
    }
}

/// A SIP account: where and as whom to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Registrar, e.g. `sip:127.0.0.1:5060`; also the next hop of every request unless
    /// `outbound_proxy` is set.
    pub registrar: String,
    /// Where requests are sent instead of the registrar (Janus' `outbound_proxy`), e.g.
    /// `sip:sbc.example:5060`; the request URIs stay the same.
    pub outbound_proxy: Option<String>,
    /// User part of the address of record.
    pub user: String,
    /// Digest user name when it differs from `user` (Janus' `authuser`).
    pub auth_user: Option<String>,
    /// What digest challenges are answered with.
    pub secret: DigestSecret,
    /// Domain of the address of record; the registrar's host when `None`.
    pub domain: Option<String>,
    /// Requested registration lifetime in seconds.
    pub expires: u32,
}

impl Account {
    /// The address requests are sent to: the outbound proxy, else the registrar.
    pub fn next_hop(&self) -> &str {
        self.outbound_proxy.as_deref().unwrap_or(&self.registrar)
    }

    /// The digest user name: `auth_user`, else `user`.
    pub fn digest_user(&self) -> &str {
        self.auth_user.as_deref().unwrap_or(&self.user)
    }
}

/// Registration outcomes reported after the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationEvent {
    /// Registered (first time) for this many seconds.
    Registered {
        /// Granted lifetime.
        expires: u32,
    },
    /// A refresh succeeded.
    Refreshed {
        /// Granted lifetime.
        expires: u32,
    },
    /// A refresh failed (reason as text; the typed error went to the caller the first time).
    Failed(String),
    /// Unregistered.
    Unregistered,
}

/// How a DTMF digit arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfVia {
    /// RFC 4733 telephone-event.
    Rtp,
    /// SIP INFO `application/dtmf-relay`.
    Info,
}

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// We hung up.
    Local,
    /// The peer sent BYE.
    RemoteBye,
    /// The INVITE was cancelled (by us or by the caller).
    Cancelled,
    /// The peer did not acknowledge our 2xx (timer H-like give-up).
    AckTimeout,
}

/// Call progress and mid-call events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// 100 Trying received.
    Trying,
    /// 180/183 received.
    Ringing {
        /// The provisional response carried SDP (early media is flowing).
        early_media: bool,
    },
    /// Following a 3xx to this target.
    Redirected {
        /// The new request URI.
        target: String,
    },
    /// 2xx received (outbound) or sent and acknowledged (inbound).
    Answered,
    /// The peer sent a new offer in the dialog (re-INVITE, or UPDATE with SDP) and the UA
    /// answered it with 200 OK; `sdp` is that offer (already applied: an application-managed
    /// call got it as [`CallEvent::RemoteSdp`] first). Not sent for answers to our own
    /// re-INVITEs.
    Reinvited {
        /// The peer's offer.
        sdp: Sdp,
    },
    /// The peer put us on hold (`sendonly`/`inactive` re-offer).
    RemoteHold,
    /// The peer resumed.
    RemoteResume,
    /// Our hold/unhold re-INVITE was accepted.
    LocalHold(bool),
    /// A DTMF digit arrived.
    Dtmf {
        /// The digit.
        digit: char,
        /// Transport.
        via: DtmfVia,
    },
    /// An INFO with another body.
    Info {
        /// From URI.
        from: String,
        /// From display name, if any.
        display_name: Option<String>,
        /// Content-Type.
        content_type: String,
        /// Body.
        body: Vec<u8>,
    },
    /// A REFER (blind transfer request) arrived and was accepted with 202.
    Refer {
        /// Refer-To URI.
        target: String,
    },
    /// A MESSAGE (RFC 3428) arrived inside this call's dialog (answered 200).
    Message {
        /// From URI.
        from: String,
        /// From display name, if any.
        display_name: Option<String>,
        /// Content-Type.
        content_type: String,
        /// Body.
        body: Vec<u8>,
    },
    /// A NOTIFY arrived inside this call's dialog (answered 200), e.g. the progress of a
    /// transfer we asked for with [`Call::refer`] (RFC 3515 §2.4.5: `Event: refer`, a
    /// `message/sipfrag` body such as `SIP/2.0 180 Ringing`).
    Notify {
        /// Event package of the `Event` header, without parameters (`refer`).
        event: String,
        /// Subscription-State value without parameters (`active`, `terminated`...).
        substate: String,
        /// Content-Type (empty without body).
        content_type: String,
        /// Body.
        body: Vec<u8>,
    },
    /// The call failed before being answered.
    Failed {
        /// Final status code (408 on timeout).
        code: u16,
        /// Reason phrase.
        reason: String,
    },
    /// The call is over.
    Ended(EndReason),
    /// A remote description for a call whose media the application handles itself (calls
    /// placed with an SDP, or answered with [`Call::answer_with_sdp`]).
    RemoteSdp(Sdp),
}

/// Events not tied to an existing call.
#[derive(Debug)]
pub enum UaEvent {
    /// A new incoming call (already answered with 180 Ringing).
    IncomingCall(Call),
    /// A MESSAGE arrived.
    Message {
        /// From URI.
        from: String,
        /// From display name, if any.
        display_name: Option<String>,
        /// Content-Type.
        content_type: String,
        /// Body.
        body: Vec<u8>,
    },
    /// Registration state change.
    Registration(RegistrationEvent),
}

/// A user agent.
pub struct Ua {
    cmd: mpsc::Sender<Command>,
    local: SocketAddr,
}

/// The stream of [`UaEvent`]s of one user agent.
pub struct UaEvents(mpsc::Receiver<UaEvent>);

impl UaEvents {
    /// Next event; `None` once the user agent stopped.
    pub async fn next(&mut self) -> Option<UaEvent> {
        self.0.recv().await
    }
}

impl Ua {
    /// Binds the UDP and TCP sockets on `config.bind` and starts the protocol task on the
    /// current runtime.
    ///
    /// Errors: [`SipError::Io`] when the address cannot be bound.
    pub async fn start(config: UaConfig) -> Result<(Ua, UaEvents), SipError> {
        let (transport, incoming) = TransportLayer::bind(config.bind).await?;
        let local = transport.local_addr();
        let (cmd_tx, cmd_rx) = mpsc::channel(256);
        let (ev_tx, ev_rx) = mpsc::channel(256);
        let core = Core::new(config, transport, cmd_tx.downgrade(), ev_tx);
        tokio::spawn(core.run(incoming, cmd_rx));
        Ok((Ua { cmd: cmd_tx, local }, UaEvents(ev_rx)))
    }

    /// Local SIP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, SipError>>) -> Command,
    ) -> Result<T, SipError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(make(tx))
            .await
            .map_err(|_| SipError::Closed)?;
        rx.await.map_err(|_| SipError::Closed)?
    }

    /// Registers (RFC 3261 §10, answering digest challenges) and keeps the registration
    /// refreshed. Returns the granted lifetime in seconds.
    ///
    /// Errors: [`SipError::Auth`] for refused credentials, [`SipError::Rejected`] for any
    /// other final error response, [`SipError::Timeout`] (timer F), [`SipError::Closed`].
    pub async fn register(&self, account: Account) -> Result<u32, SipError> {
        self.ask(|reply| Command::Register { account, reply }).await
    }

    /// Removes the registration (Expires: 0).
    pub async fn unregister(&self) -> Result<(), SipError> {
        self.ask(|reply| Command::Unregister { reply }).await
    }

    /// Places a call. With `sdp = None` the UA opens its own RTP endpoint and builds the offer;
    /// otherwise `sdp` is sent as the offer and media is the caller's business. Returns once
    /// the INVITE is sent; progress, answer and failure arrive as [`CallEvent`]s.
    ///
    /// Errors: [`SipError::InvalidUri`], [`SipError::Rtp`] when no RTP port is free,
    /// [`SipError::Closed`].
    pub async fn call(&self, uri: &str, sdp: Option<Sdp>) -> Result<Call, SipError> {
        self.call_with_headers(uri, sdp, Vec::new()).await
    }

    /// Like [`Ua::call`], adding `headers` (name, value) to the INVITE and its retries, e.g.
    /// `X-` headers a PBX routes on. The caller keeps them well-formed: a name of token
    /// characters, a value without CR or LF, and none of the headers the dialog owns (Via,
    /// From, To, Call-ID, CSeq, Contact, Content-*).
    ///
    /// Errors: as [`Ua::call`].
    pub async fn call_with_headers(
        &self,
        uri: &str,
        sdp: Option<Sdp>,
        headers: Vec<(String, String)>,
    ) -> Result<Call, SipError> {
        let uri = uri.to_string();
        self.ask(|reply| Command::Call {
            uri,
            sdp,
            headers,
            reply,
        })
        .await
    }

    /// Sends a MESSAGE (RFC 3428) with `body` of type `content_type`; returns the final
    /// status code (2xx or not: a rejection is a status, not an error).
    ///
    /// Errors: [`SipError::Auth`] when a 401/407 challenge cannot be answered,
    /// [`SipError::InvalidUri`], [`SipError::Timeout`] (timer F), [`SipError::Closed`].
    pub async fn message(
        &self,
        uri: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<u16, SipError> {
        self.message_with_headers(uri, content_type, body, None, Vec::new())
            .await
            .map(|(code, _)| code)
    }

    /// Like [`Ua::message`], with the request's `Call-ID` (a fresh one when `None`; the
    /// caller keeps it a valid RFC 3261 `callid`) and `headers` (name, value; well-formed as
    /// for [`Ua::call_with_headers`]). Returns the final status code and its reason phrase.
    ///
    /// Errors: as [`Ua::message`].
    pub async fn message_with_headers(
        &self,
        uri: &str,
        content_type: &str,
        body: Vec<u8>,
        call_id: Option<String>,
        headers: Vec<(String, String)>,
    ) -> Result<(u16, String), SipError> {
        let (uri, content_type) = (uri.to_string(), content_type.to_string());
        self.ask(|reply| Command::OutOfDialog {
            method: rsip::Method::Message,
            uri,
            content_type: Some(content_type),
            body,
            call_id,
            headers,
            reply,
        })
        .await
    }

    /// Publishes the state document of event `package` (e.g. [`crate::event::MESSAGE_SUMMARY`]
    /// with an `application/simple-message-summary` body): from now on SUBSCRIBE for the
    /// package is accepted (RFC 6665 §4.2.1: 200 with the granted `Expires`, at most 7200 s,
    /// 3600 s without one, then a NOTIFY with this state; `Expires: 0` ends the subscription
    /// with a `terminated` NOTIFY; an unrefreshed one is dropped when it expires), and every
    /// live subscription of the package gets a NOTIFY with the new state now. Returns how
    /// many subscriptions were notified. SUBSCRIBE for a package never published is answered
    /// 489 Bad Event.
    ///
    /// Errors: [`SipError::Closed`].
    pub async fn set_event_state(
        &self,
        package: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<usize, SipError> {
        let (package, content_type) = (package.to_string(), content_type.to_string());
        self.ask(|reply| Command::SetEventState {
            package,
            content_type,
            body,
            reply,
        })
        .await
    }

    /// Sends a NOTIFY outside any subscription (the "unsolicited" message waiting many PBXs
    /// and phones use, RFC 3842 §4 names it as deployed practice) for event `package` to
    /// `uri`, through the registrar or outbound proxy like [`Ua::message`]; returns the final
    /// status code.
    ///
    /// Errors: as [`Ua::message`].
    pub async fn notify_unsolicited(
        &self,
        uri: &str,
        package: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<u16, SipError> {
        let (uri, content_type) = (uri.to_string(), content_type.to_string());
        let headers = vec![
            ("Event".to_string(), package.to_string()),
            ("Subscription-State".to_string(), "active".to_string()),
        ];
        self.ask(|reply| Command::OutOfDialog {
            method: rsip::Method::Notify,
            uri,
            content_type: Some(content_type),
            body,
            call_id: None,
            headers,
            reply,
        })
        .await
        .map(|(code, _)| code)
    }

    /// Sends an OPTIONS (RFC 3261 §11); returns the final status code.
    ///
    /// Errors: [`SipError::Auth`] when a 401/407 challenge cannot be answered,
    /// [`SipError::InvalidUri`], [`SipError::Timeout`] (timer F), [`SipError::Closed`].
    pub async fn options(&self, uri: &str) -> Result<u16, SipError> {
        let uri = uri.to_string();
        self.ask(|reply| Command::OutOfDialog {
            method: rsip::Method::Options,
            uri,
            content_type: None,
            body: vec![],
            call_id: None,
            headers: Vec::new(),
            reply,
        })
        .await
        .map(|(code, _)| code)
    }
}

/// The event stream of one [`Call`], taken with [`Call::take_events`].
pub struct CallEvents(mpsc::Receiver<CallEvent>);

impl CallEvents {
    /// Next call event; `None` once the call is gone.
    pub async fn next(&mut self) -> Option<CallEvent> {
        self.0.recv().await
    }
}

/// One call (dialog with its media).
pub struct Call {
    pub(crate) id: String,
    pub(crate) cmd: mpsc::Sender<Command>,
    pub(crate) events: mpsc::Receiver<CallEvent>,
    pub(crate) rtp: Option<Arc<RtpEndpoint>>,
    pub(crate) remote: String,
    pub(crate) offer: Option<Sdp>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("id", &self.id)
            .field("remote", &self.remote)
            .finish()
    }
}

impl Call {
    /// The Call-ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The peer's address (From of an incoming call, request URI of an outgoing one).
    pub fn remote(&self) -> &str {
        &self.remote
    }

    /// The UA-managed RTP endpoint, if the UA built the SDP. Its
    /// [`send_audio`](RtpEndpoint::send_audio) never waits, so the `Arc` can be handed to a
    /// media worker thread.
    pub fn rtp(&self) -> Option<&Arc<RtpEndpoint>> {
        self.rtp.as_ref()
    }

    /// Next call event; `None` once the call is gone (or after [`Call::take_events`]).
    pub async fn next_event(&mut self) -> Option<CallEvent> {
        self.events.recv().await
    }

    /// Moves the call's event stream out, so one task can read events while others share the
    /// `Call` (behind an `Arc`) to answer, hold or hang up. Later calls of
    /// [`next_event`](Self::next_event) on this `Call` return `None` at once.
    pub fn take_events(&mut self) -> CallEvents {
        let (_, closed) = mpsc::channel(1);
        CallEvents(std::mem::replace(&mut self.events, closed))
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(String, oneshot::Sender<Result<T, SipError>>) -> Command,
    ) -> Result<T, SipError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(make(self.id.clone(), tx))
            .await
            .map_err(|_| SipError::Closed)?;
        rx.await.map_err(|_| SipError::Closed)?
    }

    /// Answers an incoming call with 200 OK and an SDP answer from the UA-managed endpoint.
    pub async fn answer(&self) -> Result<(), SipError> {
        self.ask(|call_id, reply| Command::Answer {
            call_id,
            sdp: None,
            reply,
        })
        .await
    }

    /// Answers with the application's own SDP (answer to [`Call::remote_offer`], or an offer if
    /// the INVITE had none); later remote descriptions arrive as [`CallEvent::RemoteSdp`].
    pub async fn answer_with_sdp(&self, sdp: Sdp) -> Result<(), SipError> {
        self.ask(|call_id, reply| Command::Answer {
            call_id,
            sdp: Some(sdp),
            reply,
        })
        .await
    }

    /// The SDP offer of an incoming INVITE, if it had one.
    pub fn remote_offer(&self) -> Option<&Sdp> {
        self.offer.as_ref()
    }

    /// Rejects an incoming call with `code` (486 busy, 603 decline...).
    pub async fn reject(&self, code: u16) -> Result<(), SipError> {
        self.ask(|call_id, reply| Command::Reject {
            call_id,
            code,
            reply,
        })
        .await
    }

    /// Ends the call: CANCEL before answer, BYE after, 603 for an unanswered incoming call.
    pub async fn hangup(&self) -> Result<(), SipError> {
        self.ask(|call_id, reply| Command::Hangup { call_id, reply })
            .await
    }

    /// Puts the peer on hold (re-INVITE with `a=sendonly`).
    pub async fn hold(&self) -> Result<(), SipError> {
        self.ask(|call_id, reply| Command::Hold {
            call_id,
            hold: true,
            reply,
        })
        .await
    }

    /// Resumes (re-INVITE with `a=sendrecv`).
    pub async fn unhold(&self) -> Result<(), SipError> {
        self.ask(|call_id, reply| Command::Hold {
            call_id,
            hold: false,
            reply,
        })
        .await
    }

    /// Sends a DTMF digit as RFC 4733 events on the call's RTP endpoint.
    pub async fn send_dtmf(&self, digit: char, duration_ms: u32) -> Result<(), SipError> {
        let rtp = self
            .rtp
            .as_ref()
            .ok_or(SipError::InvalidState("no UA-managed media"))?;
        Ok(rtp.send_dtmf(digit, duration_ms).await?)
    }

    /// Sends an INFO in the dialog; returns the final status code.
    pub async fn send_info(&self, content_type: &str, body: Vec<u8>) -> Result<u16, SipError> {
        self.request(rsip::Method::Info, Some(content_type), body, Vec::new())
            .await
            .map(|(code, _)| code)
    }

    /// Sends `method` (INFO, MESSAGE, REFER...) inside the confirmed dialog, with a body of
    /// `content_type` if given and the application's `headers` (well-formed, as for
    /// [`Ua::call_with_headers`]); returns the final status code and reason phrase. A 481 or
    /// 408 ends the call (RFC 3261 §12.2.1.2).
    ///
    /// Errors: [`SipError::InvalidState`] before the dialog is confirmed or after it ended,
    /// [`SipError::Timeout`] (timer F), [`SipError::Auth`], [`SipError::Closed`].
    pub async fn request(
        &self,
        method: rsip::Method,
        content_type: Option<&str>,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<(u16, String), SipError> {
        let content_type = content_type.map(str::to_string);
        self.ask(|call_id, reply| Command::InDialog {
            call_id,
            method,
            content_type,
            body,
            headers,
            reply,
        })
        .await
    }

    /// Sends an INFO (RFC 6086) with a body of `content_type` and the application's `headers`
    /// in the dialog; returns the final status code and reason.
    ///
    /// Errors: as [`Call::request`].
    pub async fn info(
        &self,
        content_type: &str,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<(u16, String), SipError> {
        self.request(rsip::Method::Info, Some(content_type), body, headers)
            .await
    }

    /// Sends a MESSAGE (RFC 3428) in the dialog; returns the final status code and reason.
    ///
    /// Errors: as [`Call::request`].
    pub async fn send_message(
        &self,
        content_type: &str,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<(u16, String), SipError> {
        self.request(rsip::Method::Message, Some(content_type), body, headers)
            .await
    }

    /// Asks the peer to call `target` (a blind transfer: REFER with `Refer-To`, RFC 3515 §2.4),
    /// and returns its final status (202 Accepted when it takes it on). The peer then reports
    /// how its new call goes in NOTIFYs, delivered as [`CallEvent::Notify`].
    ///
    /// Errors: [`SipError::InvalidUri`] for a target that is not a SIP URI, else as
    /// [`Call::request`].
    pub async fn refer(&self, target: &str) -> Result<(u16, String), SipError> {
        let well_formed = (target.starts_with("sip:") || target.starts_with("sips:"))
            && !target
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
            && rsip::Uri::try_from(target).is_ok();
        if !well_formed {
            return Err(SipError::InvalidUri(target.to_string()));
        }
        let headers = vec![("Refer-To".to_string(), format!("<{target}>"))];
        self.request(rsip::Method::Refer, None, Vec::new(), headers)
            .await
    }

    /// Sends a re-INVITE (RFC 3261 §14.1) offering `sdp`, or the current local description
    /// again (version incremented) when `None`, e.g. to refresh the session after the other
    /// leg renegotiated. Returns the peer's answer, also applied like any remote description
    /// (UA-managed media is reconfigured, an application-managed call gets
    /// [`CallEvent::RemoteSdp`]).
    ///
    /// Errors: [`SipError::Rejected`] for a non-2xx final answer (the session goes on as it
    /// was, §14.1), [`SipError::InvalidState`] outside a confirmed dialog, [`SipError::Timeout`],
    /// [`SipError::Closed`].
    pub async fn reoffer(&self, sdp: Option<Sdp>) -> Result<Option<Sdp>, SipError> {
        self.ask(|call_id, reply| Command::Reoffer {
            call_id,
            sdp,
            reply,
        })
        .await
    }
}
