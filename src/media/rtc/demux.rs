//! Which PeerConnection a datagram on a shared UDP socket belongs to.
//!
//! Every PeerConnection of a loop shares the loop's socket, so a datagram is routed by its
//! remote address once that address is known, and before that by the ICE username fragment
//! the remote peer puts in its STUN Binding request: `USERNAME` is `<our ufrag>:<its ufrag>`
//! (RFC 8445 §7.2.2), and our ufrag is unique per PeerConnection of the process. A remote
//! address is learnt from a routed STUN request, so DTLS, SRTP and SRTCP that follow it from
//! the same address reach the same PeerConnection (RFC 7983 multiplexing happens inside it).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;

use super::stun::stun_local_ufrag;

/// Routes datagrams to PeerConnection keys `K` by remote address, then by local ufrag.
#[derive(Debug)]
pub struct Demux<K> {
    by_ufrag: HashMap<String, K>,
    by_addr: HashMap<SocketAddr, K>,
}

impl<K> Default for Demux<K> {
    fn default() -> Self {
        Self {
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
        }
    }
}

impl<K: Copy + Eq + Hash> Demux<K> {
    /// Registers the local ufrag of PeerConnection `key` (a restart registers the new one
    /// beside the old, which [`Demux::remove`] clears with the rest).
    pub fn add_ufrag(&mut self, ufrag: &str, key: K) {
        self.by_ufrag.insert(ufrag.to_owned(), key);
    }

    /// The PeerConnection `datagram` from `from` is for. A STUN Binding request naming a
    /// known ufrag wins over the address (a peer may move: ICE restart, new candidate pair)
    /// and teaches the address; anything else goes by address. `None`: drop it.
    pub fn route(&mut self, datagram: &[u8], from: SocketAddr) -> Option<K> {
        if let Some(key) = stun_local_ufrag(datagram).and_then(|u| self.by_ufrag.get(u).copied()) {
            self.by_addr.insert(from, key);
            return Some(key);
        }
        self.by_addr.get(&from).copied()
    }

    /// Forgets every ufrag and address of `key` (its PeerConnection closed).
    pub fn remove(&mut self, key: K) {
        self.by_ufrag.retain(|_, k| *k != key);
        self.by_addr.retain(|_, k| *k != key);
    }

    /// Remote addresses known, for tests and stats.
    pub fn addresses(&self) -> usize {
        self.by_addr.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtc::stun::tests::binding_request;
    use proptest::prelude::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn routes_by_ufrag_then_by_learnt_address() {
        let mut demux = Demux::default();
        demux.add_ufrag("aaaa", 1);
        demux.add_ufrag("bbbb", 2);
        assert_eq!(demux.route(&[0x80; 12], addr(5000)), None);
        assert_eq!(demux.route(&binding_request("bbbb:x"), addr(5000)), Some(2));
        assert_eq!(demux.route(&binding_request("aaaa:y"), addr(6000)), Some(1));
        assert_eq!(demux.route(&[0x80; 12], addr(5000)), Some(2));
        assert_eq!(demux.route(&[22; 30], addr(6000)), Some(1));
        demux.remove(2);
        assert_eq!(demux.route(&[0x80; 12], addr(5000)), None);
        assert_eq!(demux.route(&binding_request("bbbb:x"), addr(5000)), None);
        assert_eq!(demux.addresses(), 1);
    }

    #[test]
    fn a_known_ufrag_from_a_new_address_moves_the_peer() {
        let mut demux = Demux::default();
        demux.add_ufrag("aaaa", 1);
        demux.route(&binding_request("aaaa:y"), addr(6000));
        assert_eq!(demux.route(&binding_request("aaaa:y"), addr(6001)), Some(1));
        assert_eq!(demux.route(&[0x80; 12], addr(6001)), Some(1));
    }

    proptest! {
        #[test]
        fn any_datagram_is_routed_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut demux = Demux::default();
            demux.add_ufrag("aaaa", 1u32);
            let _ = demux.route(&bytes, addr(1));
        }
    }
}
