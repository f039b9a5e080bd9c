//! UDP and TCP transport: one UDP socket and one TCP listener on the same local port, outgoing
//! TCP connections reused per destination, and message framing for streams.

use crate::message::{stream_frame_len, MAX_MESSAGE};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

/// Transport protocol of a hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// RFC 3261 §18 over UDP; transactions retransmit.
    Udp,
    /// Over TCP; Content-Length frames messages.
    Tcp,
}

impl Transport {
    /// Token used in Via and `transport=` parameters.
    pub fn token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// A message (or datagram) received from the network.
#[derive(Debug)]
pub struct Incoming {
    /// Raw bytes of one framed message.
    pub bytes: Vec<u8>,
    /// Where it came from (the address responses go back to: rport behaviour).
    pub source: SocketAddr,
    /// On which transport.
    pub transport: Transport,
}

type Conns = Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>;

/// The sockets of one user agent.
pub struct TransportLayer {
    udp: Arc<UdpSocket>,
    conns: Conns,
    incoming: mpsc::Sender<Incoming>,
    local: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for TransportLayer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn conns_lock(c: &Conns) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

impl TransportLayer {
    /// Binds UDP and TCP on `addr` (port 0 picks a free port shared by both when possible).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<(Self, mpsc::Receiver<Incoming>)> {
        let (udp, listener) = bind_pair(addr).await?;
        let local = udp.local_addr()?;
        let udp = Arc::new(udp);
        let (tx, rx) = mpsc::channel(1024);
        let conns: Conns = Arc::default();
        let mut tasks = vec![tokio::spawn(udp_reader(udp.clone(), tx.clone()))];
        tasks.push(tokio::spawn(tcp_acceptor(
            listener,
            conns.clone(),
            tx.clone(),
        )));
        Ok((
            Self {
                udp,
                conns,
                incoming: tx,
                local,
                tasks,
            },
            rx,
        ))
    }

    /// Local address of both sockets.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Sends one message, opening a TCP connection if none is open to `dest`.
    pub async fn send(
        &self,
        transport: Transport,
        dest: SocketAddr,
        bytes: Vec<u8>,
    ) -> std::io::Result<()> {
        match transport {
            Transport::Udp => self.udp.send_to(&bytes, dest).await.map(|_| ()),
            Transport::Tcp => {
                let existing = conns_lock(&self.conns).get(&dest).cloned();
                let sender = match existing {
                    Some(s) if !s.is_closed() => s,
                    _ => {
                        let stream = TcpStream::connect(dest).await?;
                        spawn_connection(stream, dest, self.conns.clone(), self.incoming.clone())
                    }
                };
                sender
                    .send(bytes)
                    .await
                    .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            }
        }
    }
}

async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    if addr.port() != 0 {
        return Ok((UdpSocket::bind(addr).await?, TcpListener::bind(addr).await?));
    }
    let mut last = None;
    for _ in 0..20 {
        let udp = UdpSocket::bind(addr).await?;
        let port = udp.local_addr()?.port();
        match TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(l) => return Ok((udp, l)),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::from(std::io::ErrorKind::AddrInUse)))
}

async fn udp_reader(udp: Arc<UdpSocket>, tx: mpsc::Sender<Incoming>) {
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    loop {
        let (n, source) = match udp.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP port unreachable surfaces here on some systems; keep serving.
                tracing::debug!(error = %e, "udp receive error");
                continue;
            }
        };
        let data = &buf[..n];
        if data.iter().all(|b| matches!(b, b'\r' | b'\n' | 0)) {
            continue; // keep-alive
        }
        if tx
            .send(Incoming {
                bytes: data.to_vec(),
                source,
                transport: Transport::Udp,
            })
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn tcp_acceptor(listener: TcpListener, conns: Conns, tx: mpsc::Sender<Incoming>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                spawn_connection(stream, peer, conns.clone(), tx.clone());
            }
            Err(e) => tracing::debug!(error = %e, "tcp accept error"),
        }
    }
}

fn spawn_connection(
    stream: TcpStream,
    peer: SocketAddr,
    conns: Conns,
    tx: mpsc::Sender<Incoming>,
) -> mpsc::Sender<Vec<u8>> {
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);
    conns_lock(&conns).insert(peer, out_tx.clone());
    let (mut rd, mut wr) = stream.into_split();
    tokio::spawn(async move {
        while let Some(b) = out_rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 8192];
        loop {
            let n = match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            loop {
                // RFC 5626 keep-alives (CRLF) between messages.
                let skip = buf
                    .iter()
                    .take_while(|b| matches!(b, b'\r' | b'\n'))
                    .count();
                buf.drain(..skip);
                match stream_frame_len(&buf) {
                    Ok(Some(len)) => {
                        let msg: Vec<u8> = buf.drain(..len).collect();
                        if tx
                            .send(Incoming {
                                bytes: msg,
                                source: peer,
                                transport: Transport::Tcp,
                            })
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // A stream cannot resynchronise after a framing error: close it.
                        tracing::warn!(%peer, error = %e, "closing TCP connection after framing error");
                        conns_lock(&conns).remove(&peer);
                        return;
                    }
                }
            }
        }
        conns_lock(&conns).remove(&peer);
    });
    out_tx
}
