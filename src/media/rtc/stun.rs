//! Just enough of STUN (RFC 8489) for the loop to look at a datagram before `rtc` does: the
//! local ufrag a Binding request names (to route it), and whether it nominates its pair (ICE's
//! USE-CANDIDATE, RFC 8445 §7.1.2) or answers one of our checks. Nothing here allocates or
//! trusts a length: anything malformed is "not that message".

/// STUN magic cookie (RFC 8489 §5).
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// Binding request message type (RFC 8489 §5, §18.2).
const BINDING_REQUEST: u16 = 0x0001;
/// Binding success response message type (RFC 8489 §5, §18.2).
const BINDING_SUCCESS: u16 = 0x0101;
/// `USERNAME` attribute type (RFC 8489 §14.3).
const ATTR_USERNAME: u16 = 0x0006;
/// `USE-CANDIDATE` attribute type (RFC 8445 §16.1).
const ATTR_USE_CANDIDATE: u16 = 0x0025;
/// Header length, bytes.
const HEADER_LEN: usize = 20;

/// The attributes of `datagram` when it is a STUN message of type `message_type`.
fn body(datagram: &[u8], message_type: u16) -> Option<&[u8]> {
    if datagram.len() < HEADER_LEN || datagram[0] & 0xC0 != 0 {
        return None;
    }
    if u16::from_be_bytes([datagram[0], datagram[1]]) != message_type
        || datagram[4..8] != MAGIC_COOKIE
    {
        return None;
    }
    let body_len = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    datagram.get(HEADER_LEN..HEADER_LEN + body_len)
}

/// The value of the first attribute `kind` in `body`; `None` when absent or when a length runs
/// past the message before it.
fn attribute(body: &[u8], kind: u16) -> Option<&[u8]> {
    let mut at = 0;
    while at + 4 <= body.len() {
        let this = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + len)?;
        if this == kind {
            return Some(value);
        }
        // Attributes are padded to 4 bytes (RFC 8489 §14).
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

/// The local ufrag named by a STUN Binding request: the part of `USERNAME` before the first
/// `:` (RFC 8445 §7.2.2). `None` for anything else (not STUN, not a Binding request, no or
/// malformed `USERNAME`).
pub fn stun_local_ufrag(datagram: &[u8]) -> Option<&str> {
    let username = attribute(body(datagram, BINDING_REQUEST)?, ATTR_USERNAME)?;
    let (local, _remote) = std::str::from_utf8(username).ok()?.split_once(':')?;
    (!local.is_empty()).then_some(local)
}

/// Whether `datagram` is a Binding request carrying `USE-CANDIDATE`: the controlling agent
/// nominating the pair it arrives on (RFC 8445 §7.2.2, §8.1.1).
pub fn is_nomination(datagram: &[u8]) -> bool {
    body(datagram, BINDING_REQUEST).is_some_and(|b| attribute(b, ATTR_USE_CANDIDATE).is_some())
}

/// Whether `datagram` is a Binding success response: the answer to a connectivity check.
pub fn is_binding_success(datagram: &[u8]) -> bool {
    body(datagram, BINDING_SUCCESS).is_some()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A STUN message of `message_type` with `attributes` (type, value), padded.
    fn message(message_type: u16, attributes: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in attributes {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut message = message_type.to_be_bytes().to_vec();
        message.extend_from_slice(&(body.len() as u16).to_be_bytes());
        message.extend_from_slice(&MAGIC_COOKIE);
        message.extend_from_slice(&[7; 12]);
        message.extend_from_slice(&body);
        message
    }

    /// A Binding request with `USERNAME` = `username` after a PRIORITY attribute.
    pub fn binding_request(username: &str) -> Vec<u8> {
        message(
            BINDING_REQUEST,
            &[
                (0x0024, &[1, 2, 3, 4]),
                (ATTR_USERNAME, username.as_bytes()),
            ],
        )
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
        let response = message(BINDING_SUCCESS, &[(ATTR_USERNAME, b"gw1x:abcd")]);
        assert_eq!(stun_local_ufrag(&response), None);
        // DTLS record (content type 22) and RTP (version 2).
        assert_eq!(stun_local_ufrag(&[22; 40]), None);
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None);
        assert_eq!(stun_local_ufrag(&binding_request("nocolon")), None);
        assert_eq!(stun_local_ufrag(&binding_request(":abcd")), None);
    }

    #[test]
    fn a_nomination_is_a_binding_request_with_use_candidate() {
        let nomination = message(
            BINDING_REQUEST,
            &[(ATTR_USERNAME, b"gw1x:abcd"), (ATTR_USE_CANDIDATE, b"")],
        );
        assert!(is_nomination(&nomination));
        assert!(!is_nomination(&binding_request("gw1x:abcd")));
        let success = message(BINDING_SUCCESS, &[(ATTR_USE_CANDIDATE, b"")]);
        assert!(!is_nomination(&success));
        assert!(is_binding_success(&success));
        assert!(!is_binding_success(&nomination));
        assert!(!is_binding_success(&[0x80; 40]));
        // USE-CANDIDATE behind an attribute whose length runs past the message.
        let mut truncated = nomination.clone();
        truncated[HEADER_LEN + 3] = 200;
        assert!(!is_nomination(&truncated));
    }

    proptest! {
        #[test]
        fn any_datagram_is_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = stun_local_ufrag(&bytes);
            let _ = is_nomination(&bytes);
            let _ = is_binding_success(&bytes);
        }

        #[test]
        fn any_username_round_trips(local in "[A-Za-z0-9+/]{4,32}", remote in "[A-Za-z0-9+/]{4,32}") {
            let request = binding_request(&format!("{local}:{remote}"));
            prop_assert_eq!(stun_local_ufrag(&request), Some(local.as_str()));
        }
    }
}
