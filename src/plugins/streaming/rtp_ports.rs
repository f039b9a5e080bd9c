//! Where an `rtp` mountpoint listens: a UDP port, optionally on one interface (`iface`: an
//! address or an interface name, as Janus' `audioiface`/`videoiface`/`iface`) and optionally
//! joined to a multicast group (`mcast`, as Janus' `audiomcast`/`videomcast`/`mcast`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::UdpSocket;

/// One port to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// UDP port; 0 lets the system pick one (never for a multicast group).
    pub port: u16,
    /// The interface's address (`None`: the plugin's default, every interface).
    pub iface: Option<IpAddr>,
    /// The IPv4 multicast group to join on that interface.
    pub mcast: Option<Ipv4Addr>,
}

/// The address of interface `name`: an IP address as given, else the first IPv4 address of
/// the interface of that name (`lo`, `eth0`...). `None` when neither.
pub fn resolve_iface(name: &str) -> Option<IpAddr> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some(ip);
    }
    let list = if_addrs::get_if_addrs().ok()?;
    let mut of_name = list.iter().filter(|i| i.name == name);
    of_name
        .clone()
        .find(|i| i.ip().is_ipv4())
        .or_else(|| of_name.next())
        .map(|i| i.ip())
}

/// A multicast group from `mcast`: an IPv4 multicast address (224.0.0.0/4).
pub fn parse_mcast(text: &str) -> Option<Ipv4Addr> {
    text.parse::<Ipv4Addr>().ok().filter(Ipv4Addr::is_multicast)
}

/// Binds `spec`: on its interface (or `default_iface`) for unicast; on every address at its
/// port, joined to its group on its interface (or any), for multicast.
pub async fn bind(spec: &PortSpec, default_iface: IpAddr) -> std::io::Result<UdpSocket> {
    let Some(group) = spec.mcast else {
        return UdpSocket::bind(SocketAddr::new(
            spec.iface.unwrap_or(default_iface),
            spec.port,
        ))
        .await;
    };
    let on = match spec.iface {
        Some(IpAddr::V4(a)) => a,
        Some(IpAddr::V6(_)) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "an IPv4 multicast group needs an IPv4 interface",
            ))
        }
        None => Ipv4Addr::UNSPECIFIED,
    };
    let socket = UdpSocket::bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), spec.port)).await?;
    socket.join_multicast_v4(group, on)?;
    tracing::info!(%group, interface = %on, port = spec.port, "multicast group joined");
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_and_groups() {
        assert_eq!(
            resolve_iface("127.0.0.2"),
            Some(IpAddr::from([127, 0, 0, 2]))
        );
        assert_eq!(resolve_iface("no-such-interface-x"), None);
        assert_eq!(parse_mcast("239.1.2.3"), Some(Ipv4Addr::new(239, 1, 2, 3)));
        assert_eq!(parse_mcast("127.0.0.1"), None);
        assert_eq!(parse_mcast("nonsense"), None);
    }

    #[tokio::test]
    async fn unicast_binds_on_its_interface() {
        let spec = PortSpec {
            port: 0,
            iface: Some(IpAddr::from([127, 0, 0, 1])),
            mcast: None,
        };
        let s = bind(&spec, IpAddr::from([0, 0, 0, 0])).await.unwrap();
        assert_eq!(s.local_addr().unwrap().ip(), IpAddr::from([127, 0, 0, 1]));
    }
}
