//! Datagram batches on a loop's socket: one `recvmmsg(2)` takes every datagram already queued
//! (up to [`BATCH`]), one `sendmmsg(2)` sends what a pass of the loop produced.
//!
//! Under load the loop's socket holds several datagrams whenever the loop thread wakes, and each
//! echoed or forwarded packet makes one to send: batching turns two system calls per packet into
//! two per batch. Buffers are allocated once per loop and reused: nothing is allocated per
//! datagram. Elsewhere than Linux, one `recv_from` / `send_to` per datagram.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Datagrams per `recvmmsg` / `sendmmsg` call.
pub const BATCH: usize = 32;
/// Largest datagram read, bytes: above any path MTU; a longer one is truncated and then refused
/// by its PeerConnection.
pub const DATAGRAM: usize = 2048;

/// Received datagrams: [`RecvBatch::recv`] fills it, [`RecvBatch::get`] reads it.
pub struct RecvBatch {
    /// [`BATCH`] slots of [`DATAGRAM`] bytes.
    bufs: Box<[u8]>,
    lens: [usize; BATCH],
    from: [Option<SocketAddr>; BATCH],
    #[cfg(target_os = "linux")]
    sys: linux::RecvHeaders,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self {
            bufs: vec![0; BATCH * DATAGRAM].into_boxed_slice(),
            lens: [0; BATCH],
            from: [None; BATCH],
            #[cfg(target_os = "linux")]
            sys: linux::RecvHeaders::default(),
        }
    }
}

impl RecvBatch {
    /// Waits for a datagram (as long as the socket's read timeout allows), then takes the others
    /// already queued, up to [`BATCH`]; returns how many it holds.
    ///
    /// Errors: those of `recvmmsg` / `recv_from`; `WouldBlock` or `TimedOut` when the read
    /// timeout passed with nothing received.
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        {
            let n = self.sys.recv(socket, &mut self.bufs)?;
            for i in 0..n {
                (self.lens[i], self.from[i]) = self.sys.entry(i);
            }
            Ok(n)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (len, from) = socket.recv_from(&mut self.bufs[..DATAGRAM])?;
            self.lens[0] = len;
            self.from[0] = Some(from);
            Ok(1)
        }
    }

    /// Datagram `i` of the last [`RecvBatch::recv`] and its source (`None`: an address family
    /// other than IPv4 or IPv6, which a UDP socket of ours never reports).
    pub fn get(&self, i: usize) -> (&[u8], Option<SocketAddr>) {
        let start = i * DATAGRAM;
        (&self.bufs[start..start + self.lens[i]], self.from[i])
    }
}

/// Datagrams waiting to be sent: [`SendBatch::push`] copies one in, [`SendBatch::flush`] sends
/// them all (itself when [`BATCH`] are waiting). Each goes out in the order pushed.
#[derive(Default)]
pub struct SendBatch {
    data: Vec<u8>,
    /// Destination and the range of `data` holding the datagram.
    items: Vec<(SocketAddr, usize, usize)>,
    #[cfg(target_os = "linux")]
    sys: linux::SendHeaders,
}

impl SendBatch {
    /// Queues `bytes` for `to`, first sending the batch if it is full.
    pub fn push(&mut self, socket: &UdpSocket, to: SocketAddr, bytes: &[u8]) {
        if self.items.len() == BATCH {
            self.flush(socket);
        }
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.items.push((to, start, self.data.len()));
    }

    /// Sends every queued datagram. One the kernel refuses is logged at debug and dropped; the
    /// others still go.
    pub fn flush(&mut self, socket: &UdpSocket) {
        if self.items.is_empty() {
            return;
        }
        #[cfg(target_os = "linux")]
        self.sys.send(socket, &self.data, &self.items);
        #[cfg(not(target_os = "linux"))]
        for &(to, start, end) in &self.items {
            if let Err(e) = socket.send_to(&self.data[start..end], to) {
                tracing::debug!(error = %e, %to, "media loop send");
            }
        }
        self.data.clear();
        self.items.clear();
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::mem::{size_of, zeroed};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
    use std::os::fd::AsRawFd;

    use super::{BATCH, DATAGRAM};

    /// The `mmsghdr`s of one `recvmmsg`, pointing into a [`super::RecvBatch`]'s buffers; their
    /// pointers are set again before each call.
    pub struct RecvHeaders {
        addrs: Box<[libc::sockaddr_storage]>,
        iov: Box<[libc::iovec]>,
        hdrs: Box<[libc::mmsghdr]>,
    }

    impl Default for RecvHeaders {
        fn default() -> Self {
            // SAFETY: all three are plain C structs for which all zeros is a valid value.
            let (addrs, iov, hdrs) = unsafe {
                (
                    (0..BATCH).map(|_| zeroed()).collect(),
                    (0..BATCH).map(|_| zeroed()).collect(),
                    (0..BATCH).map(|_| zeroed()).collect(),
                )
            };
            Self { addrs, iov, hdrs }
        }
    }

    impl RecvHeaders {
        /// One `recvmmsg` with `MSG_WAITFORONE`: blocks for the first datagram (up to the
        /// socket's `SO_RCVTIMEO`), then takes the queued ones without waiting, into the
        /// [`DATAGRAM`]-byte slots of `bufs`. Returns how many it received.
        pub fn recv(&mut self, socket: &UdpSocket, bufs: &mut [u8]) -> io::Result<usize> {
            for (i, slot) in bufs.chunks_exact_mut(DATAGRAM).enumerate() {
                self.iov[i] = libc::iovec {
                    iov_base: slot.as_mut_ptr().cast(),
                    iov_len: DATAGRAM,
                };
                let hdr = &mut self.hdrs[i].msg_hdr;
                hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
                hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                hdr.msg_iov = &mut self.iov[i];
                hdr.msg_iovlen = 1;
                hdr.msg_control = std::ptr::null_mut();
                hdr.msg_controllen = 0;
                hdr.msg_flags = 0;
            }
            // SAFETY: every header points at a live buffer of the length it names (the slots of
            // `bufs` and `addrs`), all of which outlive the call.
            let n = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    self.hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(n as usize)
        }

        /// The length and source of datagram `i` of the last [`RecvHeaders::recv`].
        pub fn entry(&self, i: usize) -> (usize, Option<SocketAddr>) {
            let len = (self.hdrs[i].msg_len as usize).min(DATAGRAM);
            (len, socket_addr(&self.addrs[i]))
        }
    }

    /// The IPv4 or IPv6 address in `storage`, as the kernel wrote it.
    fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match storage.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a `sockaddr_in` for AF_INET; the storage is larger
                // and at least as aligned.
                let sin = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
                };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: as above, a `sockaddr_in6` for AF_INET6.
                let sin6 = unsafe {
                    &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
                };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }

    /// The addresses and headers of one `sendmmsg`, rebuilt for each batch in reused vectors.
    #[derive(Default)]
    pub struct SendHeaders {
        addrs: Vec<socket2::SockAddr>,
        iov: Vec<libc::iovec>,
        hdrs: Vec<libc::mmsghdr>,
    }

    // SAFETY: the raw pointers in `iov` and `hdrs` are only set and used inside `send`, which
    // rebuilds them from its arguments before every call; between calls they are never read.
    unsafe impl Send for SendHeaders {}

    impl SendHeaders {
        /// Sends `items` (destination and range of `data`) with as few `sendmmsg` calls as the
        /// kernel allows; a datagram it refuses is logged at debug and skipped.
        pub fn send(
            &mut self,
            socket: &UdpSocket,
            data: &[u8],
            items: &[(SocketAddr, usize, usize)],
        ) {
            self.addrs.clear();
            self.iov.clear();
            self.hdrs.clear();
            for &(to, start, end) in items {
                self.addrs.push(socket2::SockAddr::from(to));
                self.iov.push(libc::iovec {
                    // sendmmsg never writes through it.
                    iov_base: data[start..end].as_ptr().cast_mut().cast(),
                    iov_len: end - start,
                });
            }
            for (addr, iov) in self.addrs.iter().zip(self.iov.iter_mut()) {
                // SAFETY: all zeros is a valid `mmsghdr`.
                let mut hdr: libc::mmsghdr = unsafe { zeroed() };
                hdr.msg_hdr.msg_name = addr.as_ptr().cast_mut().cast();
                hdr.msg_hdr.msg_namelen = addr.len();
                hdr.msg_hdr.msg_iov = iov;
                hdr.msg_hdr.msg_iovlen = 1;
                self.hdrs.push(hdr);
            }
            let mut sent = 0;
            while sent < self.hdrs.len() {
                // SAFETY: the headers point into `self.addrs`, `self.iov` and `data`, all alive
                // and unchanged for the call.
                let n = unsafe {
                    libc::sendmmsg(
                        socket.as_raw_fd(),
                        self.hdrs[sent..].as_mut_ptr(),
                        (self.hdrs.len() - sent) as libc::c_uint,
                        0,
                    )
                };
                if n >= 0 {
                    sent += n as usize;
                    continue;
                }
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    // The first datagram of the rest was refused: drop it, send the others.
                    tracing::debug!(error = %e, to = %items[sent].0, "media loop send");
                    sent += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_batch_carries_each_datagram_with_its_source_and_destination_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to_b = b.local_addr().unwrap();
        let to_c = c.local_addr().unwrap();
        let mut out = SendBatch::default();
        // More than one batch: the push past BATCH sends the first BATCH itself.
        for i in 0..BATCH + 3 {
            let len = 1 + i * 37;
            let to = if i % 2 == 0 { to_b } else { to_c };
            out.push(&a, to, &vec![i as u8; len]);
        }
        out.flush(&a);

        let mut seen = Vec::new();
        for (socket, parity) in [(&b, 0), (&c, 1)] {
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut batch = RecvBatch::default();
            let expected = (0..BATCH + 3).filter(|i| i % 2 == parity).count();
            let mut got = 0;
            while got < expected {
                let n = batch.recv(socket).unwrap();
                for i in 0..n {
                    let (bytes, from) = batch.get(i);
                    assert_eq!(from, Some(a.local_addr().unwrap()));
                    let index = bytes[0] as usize;
                    assert_eq!(bytes.len(), 1 + index * 37);
                    assert!(bytes.iter().all(|&x| x == index as u8));
                    assert_eq!(index % 2, parity);
                    seen.push(index);
                }
                got += n;
            }
        }
        let (even, odd): (Vec<usize>, Vec<usize>) = seen.iter().partition(|&&i| i % 2 == 0);
        assert!(even.windows(2).all(|w| w[0] < w[1]), "{even:?}");
        assert!(odd.windows(2).all(|w| w[0] < w[1]), "{odd:?}");
        assert_eq!(seen.len(), BATCH + 3);
    }

    #[test]
    fn a_datagram_longer_than_a_slot_is_truncated_to_it_and_the_next_one_is_whole() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = b.local_addr().unwrap();
        a.send_to(&[7; DATAGRAM + 100], to).unwrap();
        a.send_to(&[9; 10], to).unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut batch = RecvBatch::default();
        let mut lens = Vec::new();
        while lens.len() < 2 {
            let n = batch.recv(&b).unwrap();
            lens.extend((0..n).map(|i| batch.get(i).0.len()));
        }
        assert_eq!(lens, [DATAGRAM, 10]);
    }

    #[test]
    fn with_nothing_queued_a_receive_ends_at_the_read_timeout() {
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let e = RecvBatch::default().recv(&b).unwrap_err();
        assert!(matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
    }
}
