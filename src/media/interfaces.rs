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

/// The addresses host candidates will be gathered on, by the rule webrtc-rs' agent applies
/// (`webrtc_ice::util::local_interfaces` with UDP over IPv4 and IPv6): loopback ones only
/// when `loopback`, and only those in `bind` when it is not empty. What the gateway logs and
/// reports (`server_info`'s `ipv6`) comes from this list, so it says what is offered.
pub fn gathered_addresses(addresses: &[IpAddr], loopback: bool, bind: &[IpAddr]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = addresses
        .iter()
        .copied()
        .filter(|ip| loopback || !ip.is_loopback())
        .filter(|ip| bind.is_empty() || bind.contains(ip))
        .collect();
    out.sort();
    out.dedup();
    out
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

    #[test]
    fn gathered_addresses_leave_out_loopback_when_it_is_off_and_keep_ipv6() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let all = [
            ip("127.0.0.1"),
            ip("::1"),
            ip("192.0.2.10"),
            ip("2001:db8::5"),
        ];
        let loopback = include_loopback(LoopbackMode::Auto, &all);
        assert!(!loopback);
        let gathered = gathered_addresses(&all, loopback, &[]);
        assert_eq!(gathered, vec![ip("192.0.2.10"), ip("2001:db8::5")]);
        assert!(gathered.iter().any(IpAddr::is_ipv6));

        // Only loopback: it is gathered, IPv6 ::1 included.
        let lo_only = [ip("127.0.0.1"), ip("::1")];
        let gathered = gathered_addresses(&lo_only, true, &[]);
        assert_eq!(gathered, vec![ip("127.0.0.1"), ip("::1")]);

        // `[ice] bind_addresses` restricts the list: no IPv6 offered then.
        let gathered = gathered_addresses(&all, loopback, &[ip("192.0.2.10")]);
        assert_eq!(gathered, vec![ip("192.0.2.10")]);
        assert!(!gathered.iter().any(IpAddr::is_ipv6));
    }
}
