//! RFC 3261 §17 transactions as pure state machines.
//!
//! They hold no sockets and read no clock: the owner feeds events with the current instant and
//! performs the returned actions (send, retransmit, report). Unit tests therefore drive them in
//! fake time and check the exact retransmission schedule and timeouts.

mod client;
mod server;

pub use client::{ClientAction, ClientKind, ClientState, ClientTransaction};
pub use server::{ServerAction, ServerKind, ServerState, ServerTransaction};

use std::time::Duration;

/// The timer base values of RFC 3261 §17.1.1.1 (defaults T1 = 500 ms, T2 = 4 s, T4 = 5 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses.
    pub t2: Duration,
    /// Maximum time a message stays in the network.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Whether the transport retransmits by itself (TCP) or the transaction must (UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    /// UDP: retransmit timers A, E, G run; wait timers D, K, I, J are non-zero.
    Unreliable,
    /// TCP/TLS: no retransmissions, wait timers are zero.
    Reliable,
}
