//! Client transactions (RFC 3261 §17.1): INVITE (timers A, B, D) and non-INVITE (E, F, K).

use super::{Reliability, Timers};
use std::time::{Duration, Instant};

/// Which client state machine applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// INVITE client transaction (§17.1.1).
    Invite,
    /// Any other request (§17.1.2).
    NonInvite,
}

/// States of §17.1 figures 5 and 6 (`Calling` doubles as non-INVITE `Trying`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// Request sent, nothing heard yet.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing retransmissions.
    Completed,
    /// Done; the owner drops the transaction.
    Terminated,
}

/// What the owner must do after feeding an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Send the request again (timer A or E).
    Retransmit,
    /// Hand the response to the transaction user.
    PassToTu,
    /// Send an ACK for a non-2xx final response to an INVITE (§17.1.1.3).
    SendAck,
    /// No final response in time (timer B or F): report a 408 to the user.
    Timeout,
    /// The transaction ended; remove it.
    Terminated,
}

/// One client transaction.
#[derive(Debug, Clone)]
pub struct ClientTransaction {
    kind: ClientKind,
    state: ClientState,
    reliability: Reliability,
    timers: Timers,
    interval: Duration,
    retransmit_at: Option<Instant>,
    timeout_at: Option<Instant>,
    terminate_at: Option<Instant>,
}

impl ClientTransaction {
    /// Starts a transaction whose request the owner has just sent at `now`.
    pub fn new(kind: ClientKind, reliability: Reliability, timers: Timers, now: Instant) -> Self {
        let retransmit_at = (reliability == Reliability::Unreliable).then(|| now + timers.t1);
        Self {
            kind,
            state: ClientState::Calling,
            reliability,
            timers,
            interval: timers.t1,
            retransmit_at,
            timeout_at: Some(now + timers.t1 * 64),
            terminate_at: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// Earliest instant at which [`Self::on_timer`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        [self.retransmit_at, self.timeout_at, self.terminate_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// A response with `code` matched this transaction.
    pub fn on_response(&mut self, code: u16, now: Instant) -> Vec<ClientAction> {
        use ClientState::*;
        let provisional = code < 200;
        match (self.kind, self.state) {
            (_, Terminated) => vec![],
            (ClientKind::Invite, Calling | Proceeding) if provisional => {
                self.state = Proceeding;
                self.retransmit_at = None;
                vec![ClientAction::PassToTu]
            }
            (ClientKind::Invite, Calling | Proceeding) if code < 300 => {
                // 2xx: the TU (dialog) acknowledges and absorbs retransmissions itself.
                self.terminate();
                vec![ClientAction::PassToTu, ClientAction::Terminated]
            }
            (ClientKind::Invite, Calling | Proceeding) => {
                self.state = Completed;
                self.retransmit_at = None;
                self.timeout_at = None;
                self.terminate_at = Some(now + self.wait(Duration::from_secs(32)));
                let mut a = vec![ClientAction::SendAck, ClientAction::PassToTu];
                a.extend(self.maybe_terminate_now(now));
                a
            }
            (ClientKind::Invite, Completed) if !provisional && code >= 300 => {
                vec![ClientAction::SendAck]
            }
            (ClientKind::Invite, _) => vec![],
            (ClientKind::NonInvite, Calling | Proceeding) if provisional => {
                self.state = Proceeding;
                // Timer E keeps firing in Proceeding, but at T2 (§17.1.2.2).
                if self.reliability == Reliability::Unreliable {
                    self.interval = self.timers.t2;
                }
                vec![ClientAction::PassToTu]
            }
            (ClientKind::NonInvite, Calling | Proceeding) => {
                self.state = Completed;
                self.retransmit_at = None;
                self.timeout_at = None;
                self.terminate_at = Some(now + self.wait(self.timers.t4));
                let mut a = vec![ClientAction::PassToTu];
                a.extend(self.maybe_terminate_now(now));
                a
            }
            (ClientKind::NonInvite, Completed) => vec![],
        }
    }

    /// Fires whichever timers are due at `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<ClientAction> {
        let mut out = Vec::new();
        if self.timeout_at.is_some_and(|t| now >= t) {
            self.terminate();
            return vec![ClientAction::Timeout, ClientAction::Terminated];
        }
        if self.terminate_at.is_some_and(|t| now >= t) {
            self.terminate();
            return vec![ClientAction::Terminated];
        }
        if let Some(at) = self.retransmit_at {
            if now >= at {
                out.push(ClientAction::Retransmit);
                self.interval = match self.kind {
                    ClientKind::Invite => self.interval * 2,
                    ClientKind::NonInvite if self.state == ClientState::Proceeding => {
                        self.timers.t2
                    }
                    ClientKind::NonInvite => (self.interval * 2).min(self.timers.t2),
                };
                self.retransmit_at = Some(at + self.interval);
            }
        }
        out
    }

    fn wait(&self, unreliable: Duration) -> Duration {
        match self.reliability {
            Reliability::Unreliable => unreliable,
            Reliability::Reliable => Duration::ZERO,
        }
    }

    fn maybe_terminate_now(&mut self, now: Instant) -> Option<ClientAction> {
        if self.terminate_at.is_some_and(|t| now >= t) {
            self.terminate();
            return Some(ClientAction::Terminated);
        }
        None
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
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

    /// Advances fake time in 1 ms steps and records when each action fired (ms since start).
    fn run(tx: &mut ClientTransaction, t0: Instant, until_ms: u64) -> Vec<(u64, ClientAction)> {
        let mut log = Vec::new();
        for t in 0..=until_ms {
            for a in tx.on_timer(t0 + ms(t)) {
                log.push((t, a));
            }
        }
        log
    }

    #[test]
    fn invite_timer_a_doubles_and_timer_b_times_out_at_64_t1() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(
            ClientKind::Invite,
            Reliability::Unreliable,
            Timers::default(),
            t0,
        );
        let log = run(&mut tx, t0, 40_000);
        let retx: Vec<u64> = log
            .iter()
            .filter(|(_, a)| *a == ClientAction::Retransmit)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(retx, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert!(log.contains(&(32_000, ClientAction::Timeout)));
        assert_eq!(tx.state(), ClientState::Terminated);
    }

    #[test]
    fn invite_provisional_stops_retransmits_and_non2xx_acks_then_timer_d() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(
            ClientKind::Invite,
            Reliability::Unreliable,
            Timers::default(),
            t0,
        );
        assert_eq!(
            tx.on_response(180, t0 + ms(100)),
            vec![ClientAction::PassToTu]
        );
        assert!(
            run(&mut tx, t0, 20_000).is_empty(),
            "no retransmit after 1xx, no timer B"
        );
        let a = tx.on_response(486, t0 + ms(20_000));
        assert_eq!(a, vec![ClientAction::SendAck, ClientAction::PassToTu]);
        // a retransmitted final response is acknowledged again but not passed up
        assert_eq!(
            tx.on_response(486, t0 + ms(20_100)),
            vec![ClientAction::SendAck]
        );
        assert_eq!(tx.on_timer(t0 + ms(51_999)), vec![]);
        assert_eq!(tx.on_timer(t0 + ms(52_000)), vec![ClientAction::Terminated]);
    }

    #[test]
    fn invite_2xx_terminates_at_once() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(
            ClientKind::Invite,
            Reliability::Unreliable,
            Timers::default(),
            t0,
        );
        assert_eq!(
            tx.on_response(200, t0),
            vec![ClientAction::PassToTu, ClientAction::Terminated]
        );
    }

    #[test]
    fn non_invite_timer_e_caps_at_t2_and_timer_f_times_out() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(
            ClientKind::NonInvite,
            Reliability::Unreliable,
            Timers::default(),
            t0,
        );
        let log = run(&mut tx, t0, 33_000);
        let retx: Vec<u64> = log
            .iter()
            .filter(|(_, a)| *a == ClientAction::Retransmit)
            .map(|(t, _)| *t)
            .collect();
        assert_eq!(
            retx,
            vec![500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
        );
        assert!(log.contains(&(32_000, ClientAction::Timeout)));
    }

    #[test]
    fn non_invite_proceeding_retransmits_at_t2_and_timer_k_after_final() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(
            ClientKind::NonInvite,
            Reliability::Unreliable,
            Timers::default(),
            t0,
        );
        assert_eq!(tx.on_timer(t0 + ms(500)), vec![ClientAction::Retransmit]);
        tx.on_response(100, t0 + ms(600));
        assert_eq!(tx.on_timer(t0 + ms(1500)), vec![ClientAction::Retransmit]);
        assert_eq!(tx.on_timer(t0 + ms(5499)), vec![]);
        assert_eq!(tx.on_timer(t0 + ms(5500)), vec![ClientAction::Retransmit]);
        assert_eq!(
            tx.on_response(200, t0 + ms(6000)),
            vec![ClientAction::PassToTu]
        );
        assert_eq!(
            tx.on_response(200, t0 + ms(6001)),
            vec![],
            "retransmitted final absorbed"
        );
        assert_eq!(tx.on_timer(t0 + ms(10_999)), vec![]);
        assert_eq!(tx.on_timer(t0 + ms(11_000)), vec![ClientAction::Terminated]);
    }

    #[test]
    fn reliable_transport_never_retransmits_and_terminates_at_once() {
        let t0 = Instant::now();
        let mut tx = ClientTransaction::new(
            ClientKind::NonInvite,
            Reliability::Reliable,
            Timers::default(),
            t0,
        );
        assert!(run(&mut tx, t0, 31_000).is_empty());
        assert_eq!(
            tx.on_response(200, t0 + ms(31_000)),
            vec![ClientAction::PassToTu, ClientAction::Terminated]
        );
        let mut inv = ClientTransaction::new(
            ClientKind::Invite,
            Reliability::Reliable,
            Timers::default(),
            t0,
        );
        assert_eq!(
            inv.on_response(404, t0),
            vec![
                ClientAction::SendAck,
                ClientAction::PassToTu,
                ClientAction::Terminated
            ]
        );
    }
}
