//! What a caller gives the mailbox menu and what it reads back: keyed digits (any characters)
//! never yield more than the entry limit or anything but digits; any two caller/account
//! addresses compare without panicking, symmetrically; any bytes read as an Ogg Opus message
//! without panicking.
#![no_main]

use bifrons::services::voicemail::digits::{same_address, Entry, Step, MAX_DIGITS};
use bifrons::services::voicemail::player::opus_packets;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut entry = Entry::default();
    for key in text.chars() {
        if let Step::Done(digits) = entry.push(key) {
            assert!(digits.len() <= MAX_DIGITS && digits.bytes().all(|b| b.is_ascii_digit()));
        }
    }
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let (a, b) = text.split_at(mid);
    assert_eq!(same_address(a, b), same_address(b, a));
    let _ = opus_packets(data);
});
