//! Datagrams on the loop media engine's shared socket: reading STUN (the USERNAME's ufrag, a
//! nomination, a check's success) and routing never panic, whatever arrives.
#![no_main]

use std::net::SocketAddr;

use bifrons::media::rtc::demux::Demux;
use bifrons::media::rtc::stun::{is_binding_success, is_nomination, stun_local_ufrag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = stun_local_ufrag(data);
    let _ = is_nomination(data);
    let _ = is_binding_success(data);
    let mut demux = Demux::default();
    demux.add_ufrag("aaaa", 1u32);
    let from = SocketAddr::from(([127, 0, 0, 1], 5000));
    let _ = demux.route(data, from);
    let _ = demux.route(data, from);
});
