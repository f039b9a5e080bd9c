//! The notifier side of SIP events (RFC 6665): SUBSCRIBE for a package whose state the
//! application published ([`Core::set_event_state`]) is accepted with 200 and followed at once by
//! a NOTIFY carrying that state; every new state goes to the package's live subscriptions; a
//! refresh extends one, `Expires: 0` ends it with a last NOTIFY (`terminated`), and an expired
//! one is dropped. SUBSCRIBE for any other package gets 489 Bad Event with `Allow-Events`
//! (§4.2.1.1); one that names a subscription we do not hold gets 481.

use super::*;
use crate::event::{grant_expires, EventHeader};

/// Lifetime granted without an `Expires`, and the most granted, seconds (RFC 3842 §6 suggests
/// an hour for message-summary).
const DEFAULT_EXPIRES: u32 = 3600;
const MAX_EXPIRES: u32 = 7200;

/// The state document of one event package.
pub(super) struct EventState {
    content_type: String,
    body: Vec<u8>,
}

/// A subscription we serve (the dialog created by the SUBSCRIBE's 200, §4.1.2.1).
pub(super) struct Subscription {
    event: EventHeader,
    local_tag: String,
    remote_tag: String,
    local_uri: String,
    remote_uri: String,
    remote_target: String,
    route_set: Vec<String>,
    local_cseq: u32,
    transport: Transport,
    expires_at: Instant,
}

impl Core {
    /// Answers a SUBSCRIBE (new, refresh or `Expires: 0`).
    pub(super) async fn incoming_subscribe(
        &mut self,
        req: rsip::Request,
        source: SocketAddr,
        t: Transport,
        call_id: String,
        to_tag: Option<String>,
    ) {
        let allow = || {
            header(
                "Allow-Events",
                self.event_states
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        };
        let event = match header_value(&req.headers, "event").map(|v| EventHeader::parse(&v)) {
            Some(Ok(e)) if self.event_states.contains_key(&e.package) => e,
            other => {
                tracing::info!(event = ?other.and_then(Result::ok).map(|e| e.package), "SUBSCRIBE for an event package we do not serve");
                let extra = vec![allow()];
                self.respond(&req, 489, source, t, extra, None).await;
                return;
            }
        };
        let requested = header_value(&req.headers, "expires").and_then(|v| v.trim().parse().ok());
        let expires = grant_expires(requested, DEFAULT_EXPIRES, MAX_EXPIRES);
        let now = Instant::now();
        let key = (call_id.clone(), event.to_value());
        match &to_tag {
            Some(tag) => {
                let held = self
                    .subscriptions
                    .get(&key)
                    .is_some_and(|s| &s.local_tag == tag);
                if !held {
                    self.respond(&req, 481, source, t, vec![], None).await;
                    return;
                }
            }
            None => {
                let from = header_value(&req.headers, "from").unwrap_or_default();
                let Some(remote_tag) = param(&from, "tag") else {
                    self.respond(&req, 400, source, t, vec![], None).await;
                    return;
                };
                let to = header_value(&req.headers, "to").unwrap_or_default();
                let remote_target = split_list(&header_values(&req.headers, "contact"))
                    .first()
                    .map(|c| m::addr_uri(c))
                    .unwrap_or_else(|| m::addr_uri(&from));
                self.subscriptions.insert(
                    key.clone(),
                    Subscription {
                        event: event.clone(),
                        local_tag: rand_token(10),
                        remote_tag,
                        local_uri: m::addr_uri(&to),
                        remote_uri: m::addr_uri(&from),
                        remote_target,
                        route_set: split_list(&header_values(&req.headers, "record-route")),
                        local_cseq: rand::random::<u16>() as u32,
                        transport: t,
                        expires_at: now,
                    },
                );
            }
        }
        let Some(sub) = self.subscriptions.get_mut(&key) else {
            return;
        };
        sub.expires_at = now + Duration::from_secs(u64::from(expires));
        let tag = sub.local_tag.clone();
        let mut resp = m::response_to(&req, 200, Some(&tag));
        resp.headers.push(header("Expires", expires.to_string()));
        resp.headers
            .push(header("Contact", self.contact(&self.user())));
        let bytes = to_bytes(&SipMessage::Response(resp));
        let server_key = (
            m::top_via_branch(&req.headers).unwrap_or_default(),
            "SUBSCRIBE".to_string(),
        );
        self.server_respond(&server_key, 200, bytes, source, t)
            .await;
        tracing::info!(call_id, event = %event.package, expires, "subscription accepted");
        // The NOTIFY that must follow every accepted SUBSCRIBE (§4.2.1.2), the last one when
        // it was an unsubscribe.
        self.notify(&key).await;
        if expires == 0 {
            self.subscriptions.remove(&key);
        }
    }

    /// Sends the package's current state to the subscription `key` in its dialog.
    async fn notify(&mut self, key: &(String, String)) {
        let contact = self.contact(&self.user());
        let now = Instant::now();
        let Some(sub) = self.subscriptions.get_mut(key) else {
            return;
        };
        let Some(state) = self.event_states.get(&sub.event.package) else {
            return;
        };
        let left = sub.expires_at.saturating_duration_since(now).as_secs();
        let substate = if left == 0 {
            "terminated;reason=timeout".to_string()
        } else {
            format!("active;expires={left}")
        };
        sub.local_cseq += 1;
        let next_hop = sub
            .route_set
            .first()
            .map(|r| m::addr_uri(r))
            .unwrap_or_else(|| sub.remote_target.clone());
        let extra = vec![
            header("Event", sub.event.to_value()),
            header("Subscription-State", substate),
            header("Contact", contact),
            header("Content-Type", state.content_type.clone()),
        ];
        let (from, to) = (
            format!("<{}>;tag={}", sub.local_uri, sub.local_tag),
            format!("<{}>;tag={}", sub.remote_uri, sub.remote_tag),
        );
        let (target, routes, t, cseq, body) = (
            sub.remote_target.clone(),
            sub.route_set.clone(),
            sub.transport,
            sub.local_cseq,
            state.body.clone(),
        );
        let dest = match resolve(&next_hop).await {
            Ok(d) => d,
            Err(e) => {
                tracing::info!(error = %e, "NOTIFY target unusable; subscription dropped");
                self.subscriptions.remove(key);
                return;
            }
        };
        match self.build_request(
            Method::Notify,
            &target,
            &from,
            &to,
            &key.0,
            cseq,
            &routes,
            t,
            extra,
            body,
        ) {
            Ok(req) => {
                let owner = Owner::Status {
                    reply: None,
                    call_id: None,
                    bye: false,
                };
                self.send_request(req, dest, t, owner, 0).await;
            }
            Err(e) => {
                tracing::info!(error = %e, "NOTIFY not built; subscription dropped");
                self.subscriptions.remove(key);
            }
        }
    }

    /// Publishes the state of `package`, notifying its live subscriptions; returns how many
    /// were notified.
    pub(super) async fn set_event_state(
        &mut self,
        package: String,
        content_type: String,
        body: Vec<u8>,
    ) -> usize {
        let package = package.to_ascii_lowercase();
        self.event_states
            .insert(package.clone(), EventState { content_type, body });
        let keys: Vec<_> = self
            .subscriptions
            .iter()
            .filter(|(_, s)| s.event.package == package)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            self.notify(k).await;
        }
        keys.len()
    }

    /// Drops subscriptions whose lifetime ran out (the subscriber did not refresh).
    pub(super) fn expire_subscriptions(&mut self, now: Instant) {
        self.subscriptions.retain(|(call_id, _), s| {
            let live = s.expires_at > now;
            if !live {
                tracing::info!(call_id, event = %s.event.package, "subscription expired");
            }
            live
        });
    }
}
