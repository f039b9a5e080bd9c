//! Calls we place (UAC side) and requests inside any confirmed dialog: INVITE, ACK for 2xx,
//! CANCEL, BYE, 3xx follow, early media, re-INVITE for hold/unhold.

use super::*;

impl Core {
    pub(super) async fn start_call(
        &mut self,
        uri: String,
        sdp: Option<Sdp>,
        extra_headers: Vec<(String, String)>,
    ) -> Result<Call, SipError> {
        let call_id = rand_token(24);
        let (rtp, offer) = match sdp {
            Some(s) => (None, s),
            None => {
                let ep =
                    Arc::new(RtpEndpoint::bind(self.cfg.rtp_ip, self.cfg.rtp_ports.clone()).await?);
                let addr = ep.local_addr()?;
                let offer = Sdp::offer(
                    addr,
                    &self.cfg.codecs,
                    Direction::SendRecv,
                    rand::random::<u32>() as u64,
                    1,
                );
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
            extra_headers,
        };
        self.calls.insert(call_id.clone(), state);
        if let Err(e) = self.send_invite(&call_id, &uri).await {
            self.calls.remove(&call_id);
            return Err(e);
        }
        let cmd = self.cmd.upgrade().ok_or(SipError::Closed)?;
        Ok(Call {
            id: call_id,
            cmd,
            events: ev_rx,
            rtp,
            remote: uri,
            offer: None,
        })
    }

    pub(super) async fn send_invite(&mut self, call_id: &str, uri: &str) -> Result<(), SipError> {
        let dest = match &self.account {
            Some(a) => resolve(a.next_hop()).await?,
            None => resolve(uri).await?,
        };
        let contact = self.contact(&self.user());
        let c = self
            .calls
            .get_mut(call_id)
            .ok_or(SipError::InvalidState("no such call"))?;
        let body = c
            .local_sdp
            .as_ref()
            .map(|s| s.to_bytes())
            .unwrap_or_default();
        let from = format!("<{}>;tag={}", c.local_uri, c.local_tag);
        let cseq = c.local_cseq;
        let t = c.transport;
        let mut extra = vec![
            header("Contact", contact),
            header("Allow", ALLOW),
            header("Content-Type", "application/sdp"),
        ];
        extra.extend(
            c.extra_headers
                .iter()
                .map(|(name, value)| header(name, value.clone())),
        );
        let req = self.build_request(
            Method::Invite,
            uri,
            &from,
            &format!("<{uri}>"),
            call_id,
            cseq,
            &[],
            t,
            extra,
            body,
        )?;
        let c = self
            .calls
            .get_mut(call_id)
            .ok_or(SipError::InvalidState("no such call"))?;
        c.invite = Some(req.clone());
        c.invite_dest = Some(dest);
        c.got_provisional = false;
        self.send_request(
            req,
            dest,
            t,
            Owner::Invite {
                call_id: call_id.to_string(),
            },
            0,
        )
        .await;
        Ok(())
    }

    pub(super) fn emit(&self, call_id: &str, ev: CallEvent) {
        if let Some(c) = self.calls.get(call_id) {
            tracing::info!(call_id, event = ?ev, "call event");
            let _ = c.events.try_send(ev);
        }
    }

    pub(super) fn end_call(&mut self, call_id: &str, ev: CallEvent) {
        self.emit(call_id, ev);
        self.calls.remove(call_id);
    }

    /// Applies a remote SDP (answer or offer) to the call's RTP endpoint.
    pub(super) fn apply_remote_sdp(&mut self, call_id: &str, body: &[u8]) -> Result<(), SipError> {
        let codecs = self.cfg.codecs.clone();
        let c = self
            .calls
            .get_mut(call_id)
            .ok_or(SipError::InvalidState("no such call"))?;
        let sdp = Sdp::parse(body)?;
        if c.rtp.is_none() {
            // Media belongs to the application (e.g. a WebRTC bridge): hand it the description.
            let _ = c.events.try_send(CallEvent::RemoteSdp(sdp));
            return Ok(());
        }
        let local_dir = if c.local_hold {
            Direction::SendOnly
        } else {
            Direction::SendRecv
        };
        let neg = negotiate(&sdp, &codecs, local_dir, false)?;
        if let Some(ep) = &c.rtp {
            ep.configure(
                neg.remote,
                RtpParams {
                    pt: neg.pt,
                    dtmf_pt: neg.dtmf_pt,
                    clock_rate: neg.codec.clock_rate(),
                    dtmf_rate: neg.dtmf_rate,
                    ptime: neg.ptime,
                },
            );
            ep.set_sending(neg.direction.flags().0);
        }
        c.negotiated = Some(neg);
        Ok(())
    }

    pub(super) async fn on_invite_response(&mut self, call_id: &str, resp: rsip::Response) {
        let code = m::status(&resp);
        let Some(c) = self.calls.get_mut(call_id) else {
            return;
        };
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
                let early =
                    !resp.body.is_empty() && self.apply_remote_sdp(call_id, &resp.body).is_ok();
                self.emit(call_id, CallEvent::Ringing { early_media: early });
            }
            return;
        }
        if code < 300 {
            self.on_invite_2xx(call_id, resp, to_tag).await;
            return;
        }
        if (300..400).contains(&code) {
            let target = split_list(&header_values(&resp.headers, "contact"))
                .first()
                .map(|c| m::addr_uri(c));
            if let (Some(target), true) = (target, c.redirects < 3 && !c.cancelled) {
                c.redirects += 1;
                c.local_cseq += 1;
                c.remote_tag = None;
                c.remote_target = target.clone();
                self.emit(
                    call_id,
                    CallEvent::Redirected {
                        target: target.clone(),
                    },
                );
                if let Err(e) = self.send_invite(call_id, &target).await {
                    self.end_call(
                        call_id,
                        CallEvent::Failed {
                            code: 480,
                            reason: e.to_string(),
                        },
                    );
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

    pub(super) async fn on_invite_2xx(
        &mut self,
        call_id: &str,
        resp: rsip::Response,
        to_tag: Option<String>,
    ) {
        let Some(c) = self.calls.get_mut(call_id) else {
            return;
        };
        let cseq = header_value(&resp.headers, "cseq")
            .and_then(|v| parse_cseq(&v))
            .map(|x| x.0)
            .unwrap_or(c.local_cseq);
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
        c.route_set = split_list(&header_values(&resp.headers, "record-route"))
            .into_iter()
            .rev()
            .collect();
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
            self.send_bye(call_id, None, EndReason::Cancelled).await;
            return;
        }
        self.emit(call_id, CallEvent::Answered);
    }

    pub(super) async fn send_cancel(&mut self, call_id: &str) {
        let Some(c) = self.calls.get(call_id) else {
            return;
        };
        let (Some(inv), Some(dest)) = (c.invite.clone(), c.invite_dest) else {
            return;
        };
        let mut h = Headers::default();
        for name in ["via", "route", "from", "to", "call-id"] {
            let vals = header_values(&inv.headers, name);
            // CANCEL carries only the top Via of the INVITE (same branch).
            let vals = if name == "via" {
                vals.into_iter().take(1).collect()
            } else {
                vals
            };
            for v in vals {
                h.push(header(name, v));
            }
        }
        let num = header_value(&inv.headers, "cseq")
            .and_then(|v| parse_cseq(&v))
            .map(|x| x.0)
            .unwrap_or(1);
        h.push(header("CSeq", format!("{num} CANCEL")));
        h.push(header("Max-Forwards", "70"));
        let req = rsip::Request {
            method: Method::Cancel,
            uri: inv.uri.clone(),
            version: rsip::Version::V2,
            headers: h,
            body: vec![],
        };
        let t = c.transport;
        self.send_request(req, dest, t, Owner::Cancel, 0).await;
    }

    pub(super) async fn send_bye(
        &mut self,
        call_id: &str,
        reply: Option<Reply<()>>,
        reason: EndReason,
    ) {
        match self.in_dialog_request(call_id, Method::Bye, vec![], vec![]) {
            Ok((req, dest, t)) => {
                // The caller learns the outcome via Ended; BYE's own result only matters for logs.
                self.send_request(
                    req,
                    dest,
                    t,
                    Owner::Status {
                        reply: None,
                        call_id: Some(call_id.to_string()),
                        bye: true,
                    },
                    0,
                )
                .await;
                if let Some(c) = self.calls.get(call_id) {
                    if let Some(ep) = &c.rtp {
                        ep.set_sending(false);
                    }
                }
                self.end_call(call_id, CallEvent::Ended(reason));
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

    pub(super) async fn hangup(&mut self, call_id: &str, reply: Reply<()>) {
        let Some(c) = self.calls.get_mut(call_id) else {
            let _ = reply.send(Err(SipError::InvalidState("no such call")));
            return;
        };
        match (c.role, c.state) {
            (_, DialogState::Confirmed) => {
                self.send_bye(call_id, Some(reply), EndReason::Local).await
            }
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
    pub(super) fn in_dialog_request(
        &mut self,
        call_id: &str,
        method: Method,
        extra: Vec<rsip::Header>,
        body: Vec<u8>,
    ) -> Result<(rsip::Request, SocketAddr, Transport), SipError> {
        self.in_dialog_request_cseq(call_id, method, extra, body, None)
    }

    pub(super) fn in_dialog_request_cseq(
        &mut self,
        call_id: &str,
        method: Method,
        mut extra: Vec<rsip::Header>,
        body: Vec<u8>,
        cseq: Option<u32>,
    ) -> Result<(rsip::Request, SocketAddr, Transport), SipError> {
        let contact = self.contact(&self.user());
        let c = self
            .calls
            .get_mut(call_id)
            .ok_or(SipError::InvalidState("no such call"))?;
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
        let next_hop = c
            .route_set
            .first()
            .map(|r| m::addr_uri(r))
            .unwrap_or_else(|| c.remote_target.clone());
        let (target, routes, t) = (c.remote_target.clone(), c.route_set.clone(), c.transport);
        // Target-refresh requests carry our Contact (§12.2.1.1; REFER, RFC 3515 §2.4.1).
        if matches!(method, Method::Invite | Method::Refer) {
            extra.push(header("Contact", contact));
        }
        let (h, p) =
            uri_hostport(&next_hop).ok_or_else(|| SipError::InvalidUri(next_hop.clone()))?;
        let ip: std::net::IpAddr = h
            .parse()
            .map_err(|_| SipError::InvalidUri(next_hop.clone()))?;
        let req = self.build_request(
            method, &target, &from, &to, call_id, n, &routes, t, extra, body,
        )?;
        Ok((req, SocketAddr::new(ip, p), t))
    }

    pub(super) async fn reinvite(&mut self, call_id: &str, hold: bool, reply: Reply<()>) {
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
            m.direction = if hold {
                Direction::SendOnly
            } else {
                Direction::SendRecv
            };
        }
        c.local_sdp = Some(sdp.clone());
        let extra = vec![header("Content-Type", "application/sdp")];
        match self.in_dialog_request(call_id, Method::Invite, extra, sdp.to_bytes()) {
            Ok((req, dest, t)) => {
                self.send_request(
                    req,
                    dest,
                    t,
                    Owner::ReInvite {
                        call_id: call_id.to_string(),
                        hold,
                        reply: Some(reply),
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

    pub(super) async fn on_reinvite_response(
        &mut self,
        call_id: &str,
        hold: bool,
        reply: Option<Reply<()>>,
        resp: rsip::Response,
    ) {
        let code = m::status(&resp);
        if code < 200 {
            return;
        }
        let cseq = header_value(&resp.headers, "cseq")
            .and_then(|v| parse_cseq(&v))
            .map(|x| x.0);
        if code < 300 {
            if let Ok((ack, dest, t)) =
                self.in_dialog_request_cseq(call_id, Method::Ack, vec![], vec![], cseq)
            {
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
            let _ = r.send(Err(SipError::Rejected {
                code,
                reason: reason_of(&resp),
            }));
        }
    }

    /// Sends a re-INVITE offering `sdp` (or the current local SDP again), version bumped.
    pub(super) async fn reoffer(
        &mut self,
        call_id: &str,
        sdp: Option<Sdp>,
        reply: Reply<Option<Sdp>>,
    ) {
        let Some(c) = self.calls.get_mut(call_id) else {
            let _ = reply.send(Err(SipError::InvalidState("no such call")));
            return;
        };
        let Some(current) = c.local_sdp.clone() else {
            let _ = reply.send(Err(SipError::InvalidState("no local SDP")));
            return;
        };
        // Same origin, next version (RFC 3264 §8): a new offer in the same session.
        let mut offer = sdp.unwrap_or_else(|| current.clone());
        offer.session_id = current.session_id;
        offer.version = current.version + 1;
        let body = offer.to_bytes();
        let extra = vec![header("Content-Type", "application/sdp")];
        match self.in_dialog_request(call_id, Method::Invite, extra, body) {
            Ok((req, dest, t)) => {
                if let Some(c) = self.calls.get_mut(call_id) {
                    c.local_sdp = Some(offer);
                }
                self.send_request(
                    req,
                    dest,
                    t,
                    Owner::Reoffer {
                        call_id: call_id.to_string(),
                        reply: Some(reply),
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

    pub(super) async fn on_reoffer_response(
        &mut self,
        call_id: &str,
        reply: Option<Reply<Option<Sdp>>>,
        resp: rsip::Response,
    ) {
        let code = m::status(&resp);
        if code < 200 {
            return;
        }
        let cseq = header_value(&resp.headers, "cseq")
            .and_then(|v| parse_cseq(&v))
            .map(|x| x.0);
        if code >= 300 {
            if let Some(r) = reply {
                let _ = r.send(Err(SipError::Rejected {
                    code,
                    reason: reason_of(&resp),
                }));
            }
            return;
        }
        if let Ok((ack, dest, t)) =
            self.in_dialog_request_cseq(call_id, Method::Ack, vec![], vec![], cseq)
        {
            let bytes = to_bytes(&SipMessage::Request(ack));
            self.send_raw(t, dest, bytes).await;
        }
        let answer = if resp.body.is_empty() {
            None
        } else {
            match Sdp::parse(&resp.body) {
                Ok(sdp) => {
                    if let Err(e) = self.apply_remote_sdp(call_id, &resp.body) {
                        tracing::warn!(error = %e, "unusable SDP in re-INVITE answer");
                    }
                    Some(sdp)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "unparsable SDP in re-INVITE answer");
                    None
                }
            }
        };
        if let Some(r) = reply {
            let _ = r.send(Ok(answer));
        }
    }
}
