//! Server transactions (RFC 3261 §17.2): INVITE (timers G, H, I) and non-INVITE (J).

use super::{Reliability, Timers};
use std::time::{Duration, Instant};

/// Which server state machine applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// INVITE server transaction (§17.2.1).
    Invite,
    /// Any other request (§17.2.2).
    NonInvite,
}

/// States of §17.2 figures 7 and 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE request received, no response yet.
    Trying,
    /// A provisional response was sent (INVITE starts here after the automatic 100).
    Proceeding,
    /// A final response was sent; retransmitting it (INVITE) or absorbing requests.
    Completed,
    /// INVITE: the ACK arrived; absorbing ACK retransmissions (timer I).
    Confirmed,
    /// Done; the owner drops the transaction.
    Terminated,
}

/// What the owner must do after feeding an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAction {
    /// Send the last response again (request retransmission or timer G).
    ResendResponse,
    /// No ACK arrived for a final non-2xx response (timer H).
    AckTimeout,
    /// The transaction ended; remove it.
    Terminated,
}

/// One server transaction.
#[derive(Debug, Clone)]
pub struct ServerTransaction {
    kind: ServerKind,
    state: ServerState,
    reliability: Reliability,
    timers: Timers,
    has_response: bool,
    interval: Duration,
    retransmit_at: Option<Instant>,
    timeout_at: Option<Instant>,
    terminate_at: Option<Instant>,
}

impl ServerTransaction {
    /// Creates the transaction for a newly received request.
    pub fn new(kind: ServerKind, reliability: Reliability, timers: Timers) -> Self {
        Self {
            kind,
            state: match kind {
                ServerKind::Invite => ServerState::Proceeding,
                ServerKind::NonInvite => ServerState::Trying,
            },
            reliability,
            timers,
            has_response: false,
            interval: timers.t1,
            retransmit_at: None,
            timeout_at: None,
            terminate_at: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Earliest instant at which [`Self::on_timer`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.terminate_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// The request was received again.
    pub fn on_request_retransmission(&mut self) -> Vec<ServerAction> {
        match self.state {
            ServerState::Proceeding | ServerState::Completed if self.has_response => {
                vec![ServerAction::ResendResponse]
            }
            _ => vec![],
        }
    }

    /// The TU sends a response with `code` (the owner sends it and stores it for resends).
    /// Returns false if the state forbids that response (it must then not be sent).
    pub fn on_send_response(&mut self, code: u16, now: Instant) -> (bool, Vec<ServerAction>) {
        use ServerState::*;
        if !matches!(self.state, Trying | Proceeding) {
            return (false, vec![]);
        }
        self.has_response = true;
        if code < 200 {
            self.state = Proceeding;
            return (true, vec![]);
        }
        match self.kind {
            ServerKind::Invite if code < 300 => {
                // 2xx retransmission belongs to the TU (§13.3.1.4); the transaction ends.
                self.terminate();
                (true, vec![ServerAction::Terminated])
            }
            ServerKind::Invite => {
                self.state = Completed;
                if self.reliability == Reliability::Unreliable {
                    self.retransmit_at = Some(now + self.timers.t1);
                }
                self.timeout_at = Some(now + self.timers.t1 * 64);
                (true, vec![])
            }
            ServerKind::NonInvite => {
                self.state = Completed;
                let j = match self.reliability {
                    Reliability::Unreliable => self.timers.t1 * 64,
                    Reliability::Reliable => Duration::ZERO,
                };
                if j.is_zero() {
                    self.terminate();
                    return (true, vec![ServerAction::Terminated]);
                }
                self.terminate_at = Some(now + j);
                (true, vec![])
            }
        }
    }

    /// An ACK matched this INVITE transaction (non-2xx final response).
    pub fn on_ack(&mut self, now: Instant) -> Vec<ServerAction> {
        if self.kind != ServerKind::Invite || self.state != ServerState::Completed {
            return vec![];
        }
        self.state = ServerState::Confirmed;
        self.retransmit_at = None;
        self.timeout_at = None;
        match self.reliability {
            Reliability::Unreliable => {
                self.terminate_at = Some(now + self.timers.t4);
                vec![]
            }
            Reliability::Reliable => {
                self.terminate();
                vec![ServerAction::Terminated]
            }
        }
    }

    /// Fires whichever timers are due at `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<ServerAction> {
        if self.timeout_at.is_some_and(|t| now >= t) {
            self.terminate();
            return vec![ServerAction::AckTimeout, ServerAction::Terminated];
        }
        if self.terminate_at.is_some_and(|t| now >= t) {
            self.terminate();
            return vec![ServerAction::Terminated];
        }
        if let Some(at) = self.retransmit_at {
            if now >= at {
                self.interval = (self.interval * 2).min(self.timers.t2);
                self.retransmit_at = Some(at + self.interval);
                return vec![ServerAction::ResendResponse];
            }
        }
        vec![]
    }

    fn terminate(&mut self) {
        self.state = ServerState::Terminated;
        self.retransmit_at = None;
        self.timeout_at = None;
        self.terminate_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn invite_final_error_retransmits_on_timer_g_until_timer_h() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(
            ServerKind::Invite,
            Reliability::Unreliable,
            Timers::default(),
        );
        assert_eq!(tx.on_send_response(486, t0), (true, vec![]));
        let mut retx = vec![];
        let mut timeout = None;
        for t in 0..=40_000 {
            for a in tx.on_timer(t0 + ms(t)) {
                match a {
                    ServerAction::ResendResponse => retx.push(t),
                    ServerAction::AckTimeout => timeout = Some(t),
                    ServerAction::Terminated => {}
                }
            }
        }
        assert_eq!(
            retx,
            vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert_eq!(timeout, Some(32_000));
    }

    #[test]
    fn invite_ack_confirms_and_timer_i_terminates() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(
            ServerKind::Invite,
            Reliability::Unreliable,
            Timers::default(),
        );
        tx.on_send_response(180, t0);
        assert_eq!(
            tx.on_request_retransmission(),
            vec![ServerAction::ResendResponse]
        );
        tx.on_send_response(603, t0);
        assert_eq!(tx.on_ack(t0 + ms(200)), vec![]);
        assert_eq!(tx.state(), ServerState::Confirmed);
        assert_eq!(
            tx.on_timer(t0 + ms(600)),
            vec![],
            "no timer G once confirmed"
        );
        assert_eq!(tx.on_timer(t0 + ms(5199)), vec![]);
        assert_eq!(tx.on_timer(t0 + ms(5200)), vec![ServerAction::Terminated]);
    }

    #[test]
    fn invite_2xx_hands_over_to_the_tu() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(
            ServerKind::Invite,
            Reliability::Unreliable,
            Timers::default(),
        );
        assert_eq!(
            tx.on_send_response(200, t0),
            (true, vec![ServerAction::Terminated])
        );
    }

    #[test]
    fn non_invite_absorbs_retransmissions_until_timer_j() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(
            ServerKind::NonInvite,
            Reliability::Unreliable,
            Timers::default(),
        );
        assert_eq!(
            tx.on_request_retransmission(),
            vec![],
            "nothing to resend in Trying"
        );
        tx.on_send_response(200, t0);
        assert_eq!(
            tx.on_request_retransmission(),
            vec![ServerAction::ResendResponse]
        );
        assert!(
            !tx.on_send_response(500, t0).0,
            "a second final response is refused"
        );
        assert_eq!(tx.on_timer(t0 + ms(31_999)), vec![]);
        assert_eq!(tx.on_timer(t0 + ms(32_000)), vec![ServerAction::Terminated]);
    }

    #[test]
    fn reliable_non_invite_terminates_on_final() {
        let t0 = Instant::now();
        let mut tx = ServerTransaction::new(
            ServerKind::NonInvite,
            Reliability::Reliable,
            Timers::default(),
        );
        assert_eq!(
            tx.on_send_response(200, t0),
            (true, vec![ServerAction::Terminated])
        );
    }
}
