//! REGISTER: digest-authenticated registration, refresh before expiry, unregister, and the
//! rport-learned Contact address.

use super::*;

impl Core {
    pub(super) async fn start_register(&mut self, account: Account, reply: Reply<u32>) {
        let dest = match resolve(account.next_hop()).await {
            Ok(d) => d,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        self.account = Some(account.clone());
        let domain = self.domain();
        let registrar_uri = format!("sip:{domain}");
        let registrar_uri =
            if uri_hostport(&account.registrar).map(|(h, _)| h) == Some(domain.clone()) {
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

    pub(super) async fn send_register(&mut self, remove: bool) {
        let Some(reg) = self.reg.as_mut() else { return };
        reg.cseq += 1;
        reg.unregistering = remove;
        let expires = if remove { 0 } else { reg.account.expires };
        let (uri, aor, call_id, tag, cseq, dest, user) = (
            reg.registrar_uri.clone(),
            reg.aor.clone(),
            reg.call_id.clone(),
            reg.tag.clone(),
            reg.cseq,
            reg.dest,
            reg.account.user.clone(),
        );
        let extra = vec![
            header("Contact", self.contact(&user)),
            header("Expires", expires.to_string()),
            header("Allow", ALLOW),
        ];
        let from = format!("<{aor}>;tag={tag}");
        match self.build_request(
            Method::Register,
            &uri,
            &from,
            &format!("<{aor}>"),
            &call_id,
            cseq,
            &[],
            self.cfg.transport,
            extra,
            vec![],
        ) {
            Ok(req) => {
                self.send_request(req, dest, self.cfg.transport, Owner::Register, 0)
                    .await
            }
            Err(e) => self.registration_failed(e),
        }
    }

    pub(super) fn registration_failed(&mut self, e: SipError) {
        let Some(reg) = self.reg.as_mut() else { return };
        tracing::warn!(error = %e, "registration failed");
        reg.refresh_at = None;
        if let Some(r) = reg.unregister_reply.take() {
            let _ = r.send(Err(e));
        } else if let Some(r) = reg.first_reply.take() {
            let _ = r.send(Err(e));
        } else {
            let _ = self
                .events
                .try_send(UaEvent::Registration(RegistrationEvent::Failed(
                    e.to_string(),
                )));
        }
    }

    pub(super) fn on_register_response(&mut self, resp: &rsip::Response) {
        let code = m::status(resp);
        if code < 200 {
            return;
        }
        let mut contact_moved = false;
        if let Some(via) = header_value(&resp.headers, "via") {
            // rport/received tell us our address as the registrar sees it (RFC 3581).
            let ip = param(&via, "received")
                .and_then(|r| r.parse().ok())
                .unwrap_or(self.public.ip());
            let port = param(&via, "rport")
                .and_then(|r| r.parse().ok())
                .unwrap_or(self.public.port());
            let seen = SocketAddr::new(ip, port);
            contact_moved = seen != self.public;
            self.public = seen;
        }
        let Some(reg) = self.reg.as_mut() else { return };
        if code >= 300 {
            let e = match code {
                403 => SipError::Auth(AuthFailure::Forbidden),
                _ => SipError::Rejected {
                    code,
                    reason: reason_of(resp),
                },
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
            let _ = self
                .events
                .try_send(UaEvent::Registration(RegistrationEvent::Unregistered));
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
        reg.refresh_at = Some(
            Instant::now() + Duration::from_secs((granted as u64).saturating_sub(lead).max(1)),
        );
        if contact_moved {
            // Behind NAT the Contact we registered is unreachable: register the public one now.
            tracing::info!(public = %self.public, "registering the address the registrar sees");
            reg.refresh_at = Some(Instant::now());
        }
        let first = !reg.registered;
        reg.registered = true;
        if let Some(r) = reg.first_reply.take() {
            let _ = r.send(Ok(granted));
        }
        let ev = if first {
            RegistrationEvent::Registered { expires: granted }
        } else {
            RegistrationEvent::Refreshed { expires: granted }
        };
        let _ = self.events.try_send(UaEvent::Registration(ev));
    }

    pub(super) async fn unregister(&mut self, reply: Reply<()>) {
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
}
