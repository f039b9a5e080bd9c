//! Incoming requests (UAS side): new and re-INVITEs, ACK, BYE, CANCEL, INFO, MESSAGE, OPTIONS,
//! REFER, UPDATE/NOTIFY, and responses sent through server transactions.

use super::*;

impl Core {
    /// Answers with an SDP the application built; media is then the application's business.
    pub(super) async fn answer_external(
        &mut self,
        call_id: &str,
        sdp: Sdp,
    ) -> Result<(), SipError> {
        let c = self
            .calls
            .get_mut(call_id)
            .ok_or(SipError::InvalidState("no such call"))?;
        if c.role != Role::Uas || c.state != DialogState::Early {
            return Err(SipError::InvalidState("not an unanswered incoming call"));
        }
        c.rtp = None;
        c.local_sdp = Some(sdp.clone());
        self.respond_invite(call_id, 200, sdp.to_bytes()).await;
        Ok(())
    }

    pub(super) async fn answer(&mut self, call_id: &str) -> Result<(), SipError> {
        let codecs = self.cfg.codecs.clone();
        let (rtp_ip, ports) = (self.cfg.rtp_ip, self.cfg.rtp_ports.clone());
        let c = self
            .calls
            .get_mut(call_id)
            .ok_or(SipError::InvalidState("no such call"))?;
        if c.role != Role::Uas || c.state != DialogState::Early {
            return Err(SipError::InvalidState("not an unanswered incoming call"));
        }
        let (invite, _, _) = c
            .uas_invite
            .clone()
            .ok_or(SipError::InvalidState("no INVITE"))?;
        let ep = match &c.rtp {
            Some(e) => e.clone(),
            None => Arc::new(RtpEndpoint::bind(rtp_ip, ports).await?),
        };
        let addr = ep.local_addr()?;
        let c = self
            .calls
            .get_mut(call_id)
            .ok_or(SipError::InvalidState("no such call"))?;
        c.rtp = Some(ep.clone());
        let body = if invite.body.is_empty() {
            // Offerless INVITE: we offer in the 2xx, the answer comes in the ACK.
            let s = Sdp::offer(
                addr,
                &codecs,
                Direction::SendRecv,
                rand::random::<u32>() as u64,
                1,
            );
            c.local_sdp = Some(s.clone());
            s.to_bytes()
        } else {
            let offer = Sdp::parse(&invite.body)?;
            let (ans, _) = Sdp::answer(
                &offer,
                &codecs,
                addr,
                Direction::SendRecv,
                rand::random::<u32>() as u64,
            )?;
            c.local_sdp = Some(ans.clone());
            let b = ans.to_bytes();
            self.apply_remote_sdp(call_id, &invite.body)?;
            b
        };
        self.respond_invite(call_id, 200, body).await;
        Ok(())
    }

    pub(super) async fn reject(&mut self, call_id: &str, code: u16) -> Result<(), SipError> {
        let c = self
            .calls
            .get(call_id)
            .ok_or(SipError::InvalidState("no such call"))?;
        if c.role != Role::Uas || c.state != DialogState::Early {
            return Err(SipError::InvalidState("not an unanswered incoming call"));
        }
        self.respond_invite(call_id, code, vec![]).await;
        self.calls.remove(call_id);
        Ok(())
    }

    /// Sends a response to the pending incoming INVITE through its server transaction.
    pub(super) async fn respond_invite(&mut self, call_id: &str, code: u16, body: Vec<u8>) {
        let contact = self.contact(&self.user());
        let Some(c) = self.calls.get_mut(call_id) else {
            return;
        };
        let Some((invite, source, t)) = c.uas_invite.clone() else {
            return;
        };
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
        let key = (
            m::top_via_branch(&invite.headers).unwrap_or_default(),
            "INVITE".to_string(),
        );
        self.server_respond(&key, code, bytes, source, t).await;
    }

    /// Sends a response through the server transaction `key` (or statelessly if it is gone).
    pub(super) async fn server_respond(
        &mut self,
        key: &(String, String),
        code: u16,
        bytes: Vec<u8>,
        dest: SocketAddr,
        t: Transport,
    ) {
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

    pub(super) async fn respond(
        &mut self,
        req: &rsip::Request,
        code: u16,
        source: SocketAddr,
        t: Transport,
        extra: Vec<rsip::Header>,
        body: Option<(&str, Vec<u8>)>,
    ) {
        let tag = header_value(&req.headers, "to")
            .and_then(|v| param(&v, "tag"))
            .unwrap_or_else(|| rand_token(10));
        let mut resp = m::response_to(req, code, Some(&tag));
        for h in extra {
            resp.headers.push(h);
        }
        if let Some((ct, b)) = body {
            resp.headers.push(header("Content-Type", ct));
            resp.body = b;
        }
        let bytes = to_bytes(&SipMessage::Response(resp));
        let method = if req.method == Method::Ack {
            "INVITE".to_string()
        } else {
            req.method.to_string()
        };
        let key = (m::top_via_branch(&req.headers).unwrap_or_default(), method);
        self.server_respond(&key, code, bytes, source, t).await;
    }

    pub(super) async fn on_incoming(&mut self, msg: Incoming) {
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

    pub(super) async fn on_request(
        &mut self,
        req: rsip::Request,
        source: SocketAddr,
        t: Transport,
    ) {
        let branch = m::top_via_branch(&req.headers).unwrap_or_default();
        let method_key = if req.method == Method::Ack {
            "INVITE".to_string()
        } else {
            req.method.to_string()
        };
        let key = (branch.clone(), method_key);
        let now = Instant::now();
        if let Some(e) = self.servers.get_mut(&key) {
            if req.method == Method::Ack {
                let actions = e.sm.on_ack(now);
                if actions.contains(&ServerAction::Terminated) {
                    self.servers.remove(&key);
                }
            } else if e
                .sm
                .on_request_retransmission()
                .contains(&ServerAction::ResendResponse)
            {
                if let Some(b) = e.last_response.clone() {
                    let (s, tp) = (e.source, e.transport);
                    self.send_raw(tp, s, b).await;
                }
            }
            return;
        }
        if req.method != Method::Ack {
            let kind = if req.method == Method::Invite {
                ServerKind::Invite
            } else {
                ServerKind::NonInvite
            };
            self.servers.insert(
                key,
                ServerEntry {
                    sm: ServerTransaction::new(kind, Self::reliability(t), self.cfg.timers),
                    last_response: None,
                    source,
                    transport: t,
                },
            );
        }
        let call_id = header_value(&req.headers, "call-id").unwrap_or_default();
        let to_tag = header_value(&req.headers, "to").and_then(|v| param(&v, "tag"));
        tracing::debug!(method = %req.method, %source, call_id, "request received");
        // We implement no SIP extension that a peer could require (§8.2.2.3): refuse with 420
        // and name them, except on ACK/CANCEL which cannot be refused.
        let required: Vec<String> = header_values(&req.headers, "require")
            .iter()
            .flat_map(|v| {
                v.split(',')
                    .map(|x| x.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|x| !x.is_empty())
            .collect();
        if !required.is_empty() && !matches!(req.method, Method::Ack | Method::Cancel) {
            self.respond(
                &req,
                420,
                source,
                t,
                vec![header("Unsupported", required.join(", "))],
                None,
            )
            .await;
            return;
        }
        let mut req = req;
        if matches!(req.method, Method::Invite | Method::Update | Method::Ack) {
            // Offer/answer reads SDP only: take it out of a multipart body (RFC 5621).
            if let Err(e) = session_body(&mut req.headers, &mut req.body) {
                tracing::info!(error = %e, method = %req.method, "no usable session description");
                let (code, extra) = match e {
                    BodyError::Unsupported(_) => (415, vec![header("Accept", body::SDP)]),
                    BodyError::Malformed(_) => (400, vec![]),
                };
                if req.method == Method::Ack {
                    // An ACK cannot be refused: go on as if it had no body.
                    req.body.clear();
                } else {
                    self.respond(&req, code, source, t, extra, None).await;
                    return;
                }
            }
        }
        match req.method {
            Method::Invite if to_tag.is_none() => {
                self.incoming_invite(req, source, t, call_id).await
            }
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
                let ev = match (
                    ct.to_ascii_lowercase()
                        .starts_with("application/dtmf-relay"),
                    parse_dtmf_relay(&req.body),
                ) {
                    (true, Some(d)) => CallEvent::Dtmf {
                        digit: d,
                        via: DtmfVia::Info,
                    },
                    _ => {
                        let from = header_value(&req.headers, "from").unwrap_or_default();
                        CallEvent::Info {
                            from: m::addr_uri(&from),
                            display_name: m::display_name(&from),
                            content_type: ct,
                            body: req.body.clone(),
                        }
                    }
                };
                self.emit(&call_id, ev);
            }
            Method::Message => {
                let from_header = header_value(&req.headers, "from").unwrap_or_default();
                let from = m::addr_uri(&from_header);
                let display_name = m::display_name(&from_header);
                let content_type = header_value(&req.headers, "content-type").unwrap_or_default();
                // In a dialog (To tag of one of our calls) it belongs to that call (RFC 3428 §4).
                let in_dialog = to_tag.is_some() && self.calls.contains_key(&call_id);
                if to_tag.is_some() && !in_dialog {
                    self.respond(&req, 481, source, t, vec![], None).await;
                    return;
                }
                self.respond(&req, 200, source, t, vec![], None).await;
                if in_dialog {
                    let ev = CallEvent::Message {
                        from,
                        display_name,
                        content_type,
                        body: req.body.clone(),
                    };
                    self.emit(&call_id, ev);
                } else {
                    let _ = self.events.try_send(UaEvent::Message {
                        from,
                        display_name,
                        content_type,
                        body: req.body.clone(),
                    });
                }
            }
            Method::Options => {
                let extra = vec![
                    header("Allow", ALLOW),
                    header(
                        "Accept",
                        "application/sdp, application/dtmf-relay, text/plain",
                    ),
                ];
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
            Method::Subscribe => {
                self.incoming_subscribe(req, source, t, call_id, to_tag)
                    .await
            }
            Method::Update if !req.body.is_empty() && self.calls.contains_key(&call_id) => {
                // An offer in UPDATE (RFC 3311 §5.2) moves media like a re-INVITE does.
                match self.answer_in_dialog_offer(&call_id, &req.body) {
                    Ok((Some(answer), _)) => {
                        let body = Some(("application/sdp", answer.to_bytes()));
                        self.respond(&req, 200, source, t, vec![], body).await;
                        if let Ok(sdp) = Sdp::parse(&req.body) {
                            self.emit(&call_id, CallEvent::Reinvited { sdp });
                        }
                    }
                    Ok((None, _)) => self.respond(&req, 200, source, t, vec![], None).await,
                    Err(e) => {
                        tracing::info!(error = %e, "refusing UPDATE offer");
                        self.respond(&req, 488, source, t, vec![], None).await;
                    }
                }
            }
            Method::Notify if self.calls.contains_key(&call_id) => {
                // The progress of a transfer we asked for (RFC 3515 §2.4.5), or another
                // in-dialog event package: accepted and handed to the call.
                self.respond(&req, 200, source, t, vec![], None).await;
                let before_params =
                    |v: String| v.split(';').next().unwrap_or("").trim().to_string();
                let ev = CallEvent::Notify {
                    event: header_value(&req.headers, "event")
                        .map(before_params)
                        .unwrap_or_default(),
                    substate: header_value(&req.headers, "subscription-state")
                        .map(before_params)
                        .unwrap_or_default(),
                    content_type: header_value(&req.headers, "content-type").unwrap_or_default(),
                    body: req.body.clone(),
                };
                self.emit(&call_id, ev);
            }
            Method::Update | Method::Notify => {
                // UPDATE without SDP (session timers) is accepted; a NOTIFY outside our
                // dialogs is not ours.
                let code = if self.calls.contains_key(&call_id) {
                    200
                } else {
                    481
                };
                self.respond(&req, code, source, t, vec![], None).await;
            }
            _ => {
                self.respond(&req, 405, source, t, vec![header("Allow", ALLOW)], None)
                    .await;
            }
        }
    }

    pub(super) async fn incoming_invite(
        &mut self,
        req: rsip::Request,
        source: SocketAddr,
        t: Transport,
        call_id: String,
    ) {
        if self.calls.contains_key(&call_id) {
            // Same Call-ID, new branch and no To tag: a merged request (§8.2.2.2).
            self.respond(&req, 482, source, t, vec![], None).await;
            return;
        }
        if !req.body.is_empty() {
            if let Err(e) = Sdp::parse(&req.body)
                .and_then(|o| negotiate(&o, &self.cfg.codecs, Direction::SendRecv, true))
            {
                tracing::info!(error = %e, "refusing offer");
                self.respond(&req, 488, source, t, vec![], None).await;
                return;
            }
        }
        let Some(cmd) = self.cmd.upgrade() else {
            return;
        };
        let from = header_value(&req.headers, "from").unwrap_or_default();
        let to = header_value(&req.headers, "to").unwrap_or_default();
        let (ev_tx, ev_rx) = mpsc::channel(64);
        let remote_tag = param(&from, "tag");
        let remote_target = split_list(&header_values(&req.headers, "contact"))
            .first()
            .map(|c| m::addr_uri(c))
            .unwrap_or_else(|| m::addr_uri(&from));
        let local_tag = rand_token(10);
        let remote_cseq = header_value(&req.headers, "cseq")
            .and_then(|v| parse_cseq(&v))
            .map(|x| x.0);
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
            extra_headers: Vec::new(),
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
        let offer = Sdp::parse(&req.body).ok();
        let call = Call {
            id: call_id.clone(),
            cmd,
            events: ev_rx,
            rtp,
            remote,
            offer,
        };
        tracing::info!(call_id, "incoming call");
        let _ = self.events.try_send(UaEvent::IncomingCall(call));
    }

    /// Answers an offer received inside a dialog (re-INVITE, RFC 3261 §14.2, or UPDATE,
    /// RFC 3311 §5.2) and applies it to the call's endpoint, so that media follows the new
    /// remote address. An empty `body` keeps the current session: the answer is the last
    /// local SDP. Returns the answer and the offer's audio direction.
    ///
    /// Errors: the offer does not parse or has no usable codec (the caller answers 488).
    pub(super) fn answer_in_dialog_offer(
        &mut self,
        call_id: &str,
        body: &[u8],
    ) -> Result<(Option<Sdp>, Option<Direction>), SipError> {
        let codecs = self.cfg.codecs.clone();
        let c = self
            .calls
            .get_mut(call_id)
            .ok_or(SipError::InvalidState("no such call"))?;
        if body.is_empty() {
            return Ok((c.local_sdp.clone(), None));
        }
        let offer = Sdp::parse(body)?;
        let addr = c
            .rtp
            .as_ref()
            .and_then(|e| e.local_addr().ok())
            .or_else(|| c.local_sdp.as_ref().and_then(|s| s.audio_addr().ok()))
            .ok_or(crate::sdp::SdpError::NoConnection)?;
        let local_dir = if c.local_hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let session = c.local_sdp.as_ref().map(|s| s.session_id).unwrap_or(1);
        let (mut ans, _) = Sdp::answer(&offer, &codecs, addr, local_dir, session)?;
        if let Some(previous) = &c.local_sdp {
            // SDES-SRTP: our key again for the offered suite (RFC 4568 §7.1.4).
            Sdp::reanswer_srtp(&mut ans, &offer, previous)?;
        }
        ans.version = c.local_sdp.as_ref().map(|s| s.version + 1).unwrap_or(2);
        // Only a usable offer changes the session: a 488 leaves the previous one in place.
        self.apply_remote_sdp(call_id, body)?;
        if let Some(c) = self.calls.get_mut(call_id) {
            c.local_sdp = Some(ans.clone());
        }
        Ok((Some(ans), offer.audio().map(|m| m.direction)))
    }

    pub(super) async fn incoming_reinvite(
        &mut self,
        req: rsip::Request,
        source: SocketAddr,
        t: Transport,
        call_id: String,
    ) {
        let contact = self.contact(&self.user());
        let Some(c) = self.calls.get_mut(&call_id) else {
            self.respond(&req, 481, source, t, vec![], None).await;
            return;
        };
        let cseq = header_value(&req.headers, "cseq")
            .and_then(|v| parse_cseq(&v))
            .map(|x| x.0);
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
        let (answer, remote_dir) = match self.answer_in_dialog_offer(&call_id, &req.body) {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(error = %e, "refusing re-offer");
                self.respond(&req, 488, source, t, vec![], None).await;
                return;
            }
        };
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
        let key = (
            m::top_via_branch(&req.headers).unwrap_or_default(),
            "INVITE".to_string(),
        );
        self.server_respond(&key, 200, bytes, source, t).await;
        if let Ok(sdp) = Sdp::parse(&req.body) {
            self.emit(&call_id, CallEvent::Reinvited { sdp });
        }
        if let (Some(dir), Some(c)) = (remote_dir, self.calls.get_mut(&call_id)) {
            let held = !dir.flags().0;
            if held != c.remote_hold {
                c.remote_hold = held;
                self.emit(
                    &call_id,
                    if held {
                        CallEvent::RemoteHold
                    } else {
                        CallEvent::RemoteResume
                    },
                );
            }
        }
    }

    pub(super) async fn incoming_cancel(
        &mut self,
        req: rsip::Request,
        source: SocketAddr,
        t: Transport,
        call_id: String,
        branch: String,
    ) {
        let invite_key = (branch, "INVITE".to_string());
        let matches = self.servers.contains_key(&invite_key);
        if !matches {
            self.respond(&req, 481, source, t, vec![], None).await;
            return;
        }
        self.respond(&req, 200, source, t, vec![], None).await;
        let early = self
            .calls
            .get(&call_id)
            .is_some_and(|c| c.role == Role::Uas && c.state == DialogState::Early);
        if early {
            self.respond_invite(&call_id, 487, vec![]).await;
            self.end_call(&call_id, CallEvent::Ended(EndReason::Cancelled));
        }
    }
}
