//! Responses to our requests: transaction matching, ACK for non-2xx, digest retries on
//! 401/407, and hand-over to the owner (registration, call, waiting API call).

use super::*;

impl Core {
    pub(super) async fn on_response(&mut self, resp: rsip::Response) {
        let Some(branch) = m::top_via_branch(&resp.headers) else {
            return;
        };
        let Some((_, method)) = header_value(&resp.headers, "cseq").and_then(|v| parse_cseq(&v))
        else {
            return;
        };
        let key = (branch, method.to_ascii_uppercase());
        let mut resp = resp;
        if matches!(key.1.as_str(), "INVITE" | "UPDATE") {
            if let Err(e) = session_body(&mut resp.headers, &mut resp.body) {
                // An answer we cannot read is no answer; the dialog itself still stands.
                tracing::info!(error = %e, "no usable SDP in response");
                resp.body.clear();
            }
        }
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
    pub(super) async fn pass_to_tu(&mut self, key: &(String, String), resp: rsip::Response) {
        let code = m::status(&resp);
        if (code == 401 || code == 407) && self.retry_with_auth(key, &resp).await {
            return;
        }
        let Some(entry) = self.clients.get_mut(key) else {
            return;
        };
        // Final responses consume the owner (the transaction stays for absorbing retransmits).
        let owner = if code >= 200 {
            std::mem::replace(&mut entry.owner, Owner::Cancel)
        } else {
            Owner::Cancel
        };
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
            Owner::ReInvite {
                call_id,
                hold,
                reply,
            } => self.on_reinvite_response(&call_id, hold, reply, resp).await,
            Owner::Reoffer { call_id, reply } => {
                self.on_reoffer_response(&call_id, reply, resp).await
            }
            Owner::Status {
                reply,
                call_id,
                bye,
            } => {
                if let Some(r) = reply {
                    let _ = r.send(Ok((code, reason_of(&resp))));
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
    pub(super) async fn retry_with_auth(
        &mut self,
        key: &(String, String),
        resp: &rsip::Response,
    ) -> bool {
        let code = m::status(resp);
        let Some(entry) = self.clients.get_mut(key) else {
            return false;
        };
        let hname = if code == 401 {
            "www-authenticate"
        } else {
            "proxy-authenticate"
        };
        let Some(chal_text) = header_value(&resp.headers, hname) else {
            return false;
        };
        let fail = |e: SipError| Some(e);
        let failure: Option<SipError> = match (&self.account, Challenge::parse(&chal_text)) {
            (None, _) => fail(SipError::Auth(AuthFailure::NoCredentials)),
            (_, Err(e)) => fail(SipError::Auth(AuthFailure::Unsupported(e))),
            (Some(_), Ok(ch)) if entry.auth_tries >= 1 && !ch.stale => {
                fail(SipError::Auth(AuthFailure::WrongCredentials { code }))
            }
            (Some(_), Ok(_)) if entry.auth_tries >= 3 => {
                fail(SipError::Auth(AuthFailure::WrongCredentials { code }))
            }
            _ => None,
        };
        if let Some(err) = failure {
            // Failures of REGISTER and INVITE are reported as typed errors/events here.
            let owner = std::mem::replace(&mut entry.owner, Owner::Cancel);
            match owner {
                Owner::Register => self.registration_failed(err),
                Owner::Invite { call_id } => self.end_call(
                    &call_id,
                    CallEvent::Failed {
                        code,
                        reason: err.to_string(),
                    },
                ),
                Owner::ReInvite { reply: Some(r), .. } => {
                    let _ = r.send(Err(err));
                }
                Owner::Reoffer { reply: Some(r), .. } => {
                    let _ = r.send(Err(err));
                }
                Owner::Status { reply: Some(r), .. } => {
                    let _ = r.send(Err(err));
                }
                _ => {}
            }
            return true;
        }
        let (Some(acct), Ok(ch)) = (self.account.clone(), Challenge::parse(&chal_text)) else {
            return false;
        };
        let mut req = entry.request.clone();
        let tries = entry.auth_tries + 1;
        let owner = std::mem::replace(&mut entry.owner, Owner::Cancel);
        let (dest, t) = (entry.dest, entry.transport);
        let uri = req.uri.to_string();
        let auth = digest::authorization(
            &ch,
            acct.digest_user(),
            &acct.secret,
            &req.method.to_string(),
            &uri,
            &rand_token(16),
            1,
        );
        let auth_name = if code == 401 {
            "authorization"
        } else {
            "proxy-authorization"
        };
        req.headers.retain(|h| {
            let n = m::name_value(h).0;
            n != auth_name && n != "via" && n != "cseq"
        });
        let old = header_value(&entry.request.headers, "cseq")
            .and_then(|v| parse_cseq(&v))
            .map(|x| x.0)
            .unwrap_or(1);
        let new_cseq = old + 1;
        let mut h = Headers::default();
        h.push(header("Via", self.via(t, &branch())));
        for x in req.headers.iter() {
            h.push(x.clone());
        }
        h.push(header("CSeq", format!("{new_cseq} {}", req.method)));
        h.push(header(
            if code == 401 {
                "Authorization"
            } else {
                "Proxy-Authorization"
            },
            auth,
        ));
        req.headers = h;
        match &owner {
            Owner::Register => {
                if let Some(r) = self.reg.as_mut() {
                    r.cseq = new_cseq;
                }
            }
            Owner::Invite { call_id }
            | Owner::ReInvite { call_id, .. }
            | Owner::Reoffer { call_id, .. }
            | Owner::Status {
                call_id: Some(call_id),
                ..
            } => {
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
}

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
    let num = header_value(&invite.headers, "cseq")
        .and_then(|v| parse_cseq(&v))
        .map(|x| x.0)
        .unwrap_or(1);
    h.push(header("CSeq", format!("{num} ACK")));
    h.push(header("Max-Forwards", "70"));
    let ack = rsip::Request {
        method: Method::Ack,
        uri: invite.uri.clone(),
        version: rsip::Version::V2,
        headers: h,
        body: vec![],
    };
    to_bytes(&SipMessage::Request(ack))
}
