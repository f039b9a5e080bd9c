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

/// STUN magic cookie (RFC 8489 §5).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// STUN Binding request message type (RFC 8489 §5, §18.2).
const BINDING_REQUEST: u16 = 0x0001;
/// STUN `USERNAME` attribute type (RFC 8489 §14.3).
const ATTR_USERNAME: u16 = 0x0006;
/// STUN header length in bytes.
const HEADER_LEN: usize = 20;

/// The local ufrag named by a STUN Binding request: the part of `USERNAME` before the first
/// `:`. `None` for anything else (not STUN, not a Binding request, no or malformed
/// `USERNAME`, a length that runs past the datagram). Never allocates.
pub fn stun_local_ufrag(datagram: &[u8]) -> Option<&str> {
    if datagram.len() < HEADER_LEN || datagram[0] & 0xC0 != 0 {
        return None;
    }
    if u16::from_be_bytes([datagram[0], datagram[1]]) != BINDING_REQUEST
        || datagram[4..8] != MAGIC_COOKIE
    {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let body = datagram.get(HEADER_LEN..HEADER_LEN + body_len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + len)?;
        if kind == ATTR_USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            let (local, _remote) = username.split_once(':')?;
            return (!local.is_empty()).then_some(local);
        }
        // Attributes are padded to 4 bytes (RFC 8489 §14).
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

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
    use proptest::prelude::*;

    /// A Binding request with `USERNAME` = `username` and one other attribute before it.
    fn binding_request(username: &str) -> Vec<u8> {
        let mut body = Vec::new();
        // PRIORITY (0x0024), 4 bytes.
        body.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        body.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        body.extend_from_slice(&(username.len() as u16).to_be_bytes());
        body.extend_from_slice(username.as_bytes());
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let mut message = vec![0x00, 0x01];
        message.extend_from_slice(&(body.len() as u16).to_be_bytes());
        message.extend_from_slice(&MAGIC_COOKIE);
        message.extend_from_slice(&[7; 12]);
        message.extend_from_slice(&body);
        message
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn binding_request_names_the_local_ufrag() {
        assert_eq!(
            stun_local_ufrag(&binding_request("gw1x:abcd")),
            Some("gw1x")
        );
    }

    #[test]
    fn non_stun_and_responses_name_nothing() {
        let mut response = binding_request("gw1x:abcd");
        response[1] = 0x01;
        response[0] = 0x01; // Binding success response 0x0101.
        assert_eq!(stun_local_ufrag(&response), None);
        // DTLS record (content type 22) and RTP (version 2).
        assert_eq!(stun_local_ufrag(&[22; 40]), None);
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None);
        assert_eq!(stun_local_ufrag(&binding_request("nocolon")), None);
        assert_eq!(stun_local_ufrag(&binding_request(":abcd")), None);
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
            let _ = stun_local_ufrag(&bytes);
            let _ = demux.route(&bytes, addr(1));
        }

        #[test]
        fn any_username_round_trips(local in "[A-Za-z0-9+/]{4,32}", remote in "[A-Za-z0-9+/]{4,32}") {
            let request = binding_request(&format!("{local}:{remote}"));
            prop_assert_eq!(stun_local_ufrag(&request), Some(local.as_str()));
        }
    }
}
