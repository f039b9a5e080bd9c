//! What a caller keys in on the mailbox menu: a mailbox number or a PIN, digits ended by `#`
//! ([`Entry`]), and which mailbox a caller's own address names ([`same_address`]).

/// Most digits one entry takes; more ends it as [`Step::TooLong`].
pub const MAX_DIGITS: usize = 16;

/// Where an entry stands after a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Waiting for more keys.
    More,
    /// `#` ended it: the digits keyed (maybe none).
    Done(String),
    /// More than the entry's limit: refused as a whole.
    TooLong,
}

/// Digits keyed until `#`: `*` starts over, any other key (`A`–`D`, or a character that is
/// not a DTMF key at all) is ignored.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    digits: String,
}

impl Entry {
    /// Takes one key.
    pub fn push(&mut self, key: char) -> Step {
        match key {
            '#' => Step::Done(std::mem::take(&mut self.digits)),
            '*' => {
                self.digits.clear();
                Step::More
            }
            '0'..='9' => {
                if self.digits.len() >= MAX_DIGITS {
                    self.digits.clear();
                    return Step::TooLong;
                }
                self.digits.push(key);
                Step::More
            }
            _ => Step::More,
        }
    }
}

/// Whether `pin` has the shape of a mailbox PIN (4 to 12 digits, as the registry stores).
pub fn pin_shaped(pin: &str) -> bool {
    (4..=12).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}

/// `user@host` of a SIP URI, lower-cased host, without scheme, port, parameters or headers;
/// `None` without a user part.
fn user_host(uri: &str) -> Option<(String, String)> {
    let uri = uri.trim().trim_start_matches('<');
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let rest = rest.split([';', '?', '>']).next()?;
    let (user, hostport) = rest.split_once('@')?;
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?.to_string(),
        None => hostport.split(':').next()?.to_string(),
    };
    (!user.is_empty() && !host.is_empty()).then(|| (user.to_string(), host.to_ascii_lowercase()))
}

/// Whether the caller's URI (`From`) is the account's address of record: same user and host
/// (ports and parameters aside). The mailbox of a phone calling from its own line is known;
/// it still has to give the PIN.
pub fn same_address(caller: &str, account: &str) -> bool {
    match (user_host(caller), user_host(account)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(entry: &mut Entry, s: &str) -> Step {
        let mut last = Step::More;
        for c in s.chars() {
            last = entry.push(c);
        }
        last
    }

    #[test]
    fn digits_end_on_hash_and_star_starts_over() {
        let mut e = Entry::default();
        assert_eq!(keys(&mut e, "12A3#"), Step::Done("123".into()));
        assert_eq!(keys(&mut e, "99*4711#"), Step::Done("4711".into()));
        assert_eq!(keys(&mut e, "#"), Step::Done(String::new()));
        assert_eq!(keys(&mut e, &"1".repeat(MAX_DIGITS + 1)), Step::TooLong);
        assert_eq!(
            keys(&mut e, "5#"),
            Step::Done("5".into()),
            "a fresh start after TooLong"
        );
    }

    #[test]
    fn pins_are_4_to_12_digits() {
        assert!(pin_shaped("1234"));
        assert!(pin_shaped("123456789012"));
        assert!(!pin_shaped("123"));
        assert!(!pin_shaped("1234567890123"));
        assert!(!pin_shaped("12a4"));
    }

    #[test]
    fn the_callers_own_address_names_its_mailbox() {
        assert!(same_address(
            "sip:dave@127.0.0.1:5060;transport=udp",
            "sip:dave@127.0.0.1:5060"
        ));
        assert!(same_address(
            "<sip:dave@PBX.example>",
            "sip:dave@pbx.example:5070"
        ));
        assert!(!same_address("sip:bob@127.0.0.1", "sip:dave@127.0.0.1"));
        assert!(!same_address("sip:dave@a.example", "sip:dave@b.example"));
        assert!(!same_address("sip:127.0.0.1", "sip:127.0.0.1"));
        assert!(same_address("sip:dave@[::1]:5060", "sip:dave@[::1]"));
    }

    proptest! {
        #[test]
        fn any_keys_keep_an_entry_bounded(input in ".{0,200}") {
            let mut e = Entry::default();
            for c in input.chars() {
                if let Step::Done(d) = e.push(c) {
                    prop_assert!(d.len() <= MAX_DIGITS);
                    prop_assert!(d.bytes().all(|b| b.is_ascii_digit()));
                }
                prop_assert!(e.digits.len() <= MAX_DIGITS);
            }
        }

        #[test]
        fn any_uris_compare_without_panicking(a in ".{0,80}", b in ".{0,80}") {
            prop_assert_eq!(same_address(&a, &b), same_address(&b, &a));
        }
    }
}
