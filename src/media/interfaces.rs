//! Which local addresses ICE may gather host candidates on.

use std::net::IpAddr;

use crate::config::LoopbackMode;

/// Whether loopback candidates are gathered: `auto` turns them on only when no other
/// interface has an address, so a gateway inside `unshare --net` (only `lo`) still works.
pub fn include_loopback(mode: LoopbackMode, addresses: &[IpAddr]) -> bool {
    match mode {
        LoopbackMode::Always => true,
        LoopbackMode::Never => false,
        LoopbackMode::Auto => addresses.iter().all(|ip| ip.is_loopback()),
    }
}

/// The addresses (IPv4 and IPv6, loopback included) of the local interfaces; empty when the
/// system cannot list them, which [`include_loopback`] in `auto` mode treats like a host with
/// only loopback.
pub fn local_addresses() -> Vec<IpAddr> {
    if_addrs::get_if_addrs()
        .map(|list| list.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_includes_loopback_only_when_alone() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let eth: IpAddr = "192.0.2.10".parse().unwrap();
        assert!(include_loopback(LoopbackMode::Auto, &[lo]));
        assert!(!include_loopback(LoopbackMode::Auto, &[lo, eth]));
        assert!(include_loopback(LoopbackMode::Always, &[lo, eth]));
        assert!(!include_loopback(LoopbackMode::Never, &[lo]));
    }
}
