//! One media event loop: a thread that owns one UDP socket and drives every PeerConnection
//! assigned to it, with one deadline heap for all their timers.
//!
//! The thread blocks in `recvmmsg` with a read timeout set to the earliest deadline, and takes
//! up to a batch of datagrams per wake-up; what their PeerConnections answer goes out in one
//! `sendmmsg` before the thread next waits ([`super::batch`]). Other threads reach it through a
//! command queue; a zero-length datagram from the loop's own waker socket wakes it (coalesced:
//! at most one in flight).

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::batch::{RecvBatch, SendBatch};
use super::demux::Demux;
use super::loop_peer::{LoopPeer, PeerHandler, PeerShared};
use super::setup::PeerTemplate;
use super::timers::Timers;
use crate::media::sender::{MediaSender, OUTBOUND_QUEUE};
use crate::media::{AnswerPlan, MediaError};

/// Identifies a PeerConnection inside its loop; never reused by that loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(u64);

/// Receive and send buffer asked for the shared socket, bytes: ~3,400 datagrams of 1,200 B,
/// 170 ms of 100 sessions' echo (20,000 packets/s). One socket carries every PeerConnection
/// of the loop, so the kernel's default (~208 KiB) overflows whenever the loop thread waits
/// for a core, and each drop turns into NACKs and retransmissions. Linux caps it at
/// `net.core.rmem_max` / `wmem_max` (4 MiB on Debian).
const SOCKET_BUFFER: usize = 4 << 20;
/// Longest sleep without a deadline, so a lost wake-up cannot stall the loop for long.
const IDLE_WAIT: Duration = Duration::from_millis(500);

/// The answer to an offer: the PeerConnection's key and our SDP.
pub type AnswerResult = Result<(PeerKey, String), MediaError>;

/// Work for one PeerConnection, run on the loop thread.
type PeerCall = Box<dyn FnOnce(&mut LoopPeer, Instant) + Send>;

enum Command {
    Create {
        handler: Box<dyn PeerHandler>,
        queue: Option<Queue>,
        shared: Arc<PeerShared>,
        reply: oneshot::Sender<Result<PeerKey, MediaError>>,
    },
    With(PeerKey, PeerCall),
    /// The PeerConnection's `MediaSender` queued something.
    Flush(PeerKey),
    Close(PeerKey),
    Stop,
}

/// The queue of a PeerConnection's `MediaSender`, and whether a Flush for it is in flight.
pub struct Queue {
    pub(super) rx: tokio::sync::mpsc::Receiver<crate::media::sender::Outbound>,
    pub(super) scheduled: Arc<AtomicBool>,
}

std::thread_local! {
    /// The id of the loop running on this thread (0: none), so that a send from a loop's own
    /// thread does not wake it: it drains its queues before it next waits.
    static CURRENT_LOOP: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Ids of loops, for [`CURRENT_LOOP`].
static NEXT_LOOP_ID: AtomicUsize = AtomicUsize::new(1);

/// Wakes the loop thread out of `recv_from`.
struct Waker {
    socket: UdpSocket,
    target: SocketAddr,
    pending: AtomicBool,
    loop_id: usize,
}

impl Waker {
    fn wake(&self) {
        if CURRENT_LOOP.with(|c| c.get()) == self.loop_id {
            return;
        }
        if !self.pending.swap(true, Ordering::AcqRel) {
            let _ = self.socket.send_to(&[], self.target);
        }
    }
}

/// The handle other threads hold on one loop; dropping it stops the loop and joins it.
pub struct EventLoop {
    commands: mpsc::Sender<Command>,
    waker: Arc<Waker>,
    local_addr: SocketAddr,
    peers: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl EventLoop {
    /// Binds `ip:port` (0: any free port) and starts the loop thread `name`.
    ///
    /// Errors: the socket cannot be bound, as [`MediaError::Rtc`].
    pub fn start(
        name: String,
        ip: IpAddr,
        port: u16,
        template: PeerTemplate,
    ) -> Result<Self, MediaError> {
        let err =
            |e: std::io::Error| MediaError::Rtc(format!("media loop socket {ip}:{port}: {e}"));
        let socket = UdpSocket::bind((ip, port)).map_err(err)?;
        {
            let socket = socket2::SockRef::from(&socket);
            socket.set_recv_buffer_size(SOCKET_BUFFER).map_err(err)?;
            socket.set_send_buffer_size(SOCKET_BUFFER).map_err(err)?;
        }
        let local_addr = socket.local_addr().map_err(err)?;
        let waker_socket = UdpSocket::bind((ip, 0)).map_err(err)?;
        let waker_addr = waker_socket.local_addr().map_err(err)?;
        let loop_id = NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed);
        let waker = Arc::new(Waker {
            socket: waker_socket,
            target: local_addr,
            pending: AtomicBool::new(false),
            loop_id,
        });
        let (commands, rx) = mpsc::channel();
        let peers = Arc::new(AtomicUsize::new(0));
        let state = LoopState {
            socket,
            local_addr,
            waker_addr,
            waker: waker.clone(),
            commands: rx,
            template,
            out: SendBatch::default(),
            peers: HashMap::new(),
            demux: Demux::default(),
            timers: Timers::default(),
            next_key: 0,
            live: peers.clone(),
        };
        // Listeners may start Tokio tasks (a hangup, an event): the loop thread enters the
        // runtime it was started from, when there is one.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let _runtime = runtime.as_ref().map(|r| r.enter());
                CURRENT_LOOP.with(|c| c.set(loop_id));
                state.run()
            })
            .map_err(err)?;
        Ok(Self {
            commands,
            waker,
            local_addr,
            peers,
            thread: Some(thread),
        })
    }

    /// The address of the loop's socket: every PeerConnection's host candidate.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// PeerConnections alive on this loop: the load new ones are balanced on.
    pub fn load(&self) -> usize {
        self.peers.load(Ordering::Relaxed)
    }

    /// Creates a PeerConnection on this loop whose events go to `handler` on the loop
    /// thread; with `with_sender`, also the [`MediaSender`] other threads send on it with.
    ///
    /// Errors: `rtc` refused the configuration, or the loop stopped ([`MediaError::NoPeer`]).
    pub async fn create(
        &self,
        handler: Box<dyn PeerHandler>,
        shared: Arc<PeerShared>,
        with_sender: bool,
    ) -> Result<(PeerKey, Option<MediaSender>), MediaError> {
        // One Flush in flight per PeerConnection: the loop clears `scheduled` before it
        // drains, so a packet queued during the drain schedules the next one.
        let scheduled = Arc::new(AtomicBool::new(false));
        let (tx, queue) = if with_sender {
            let (tx, rx) = tokio::sync::mpsc::channel(OUTBOUND_QUEUE);
            (
                Some(tx),
                Some(Queue {
                    rx,
                    scheduled: scheduled.clone(),
                }),
            )
        } else {
            (None, None)
        };
        let (reply, created) = oneshot::channel();
        self.send(Command::Create {
            handler,
            queue,
            shared,
            reply,
        })?;
        let key = created.await.map_err(|_| MediaError::NoPeer)??;
        let sender = tx.map(|tx| {
            let commands = self.commands.clone();
            let waker = self.waker.clone();
            let wake = move || {
                if !scheduled.swap(true, Ordering::AcqRel)
                    && commands.send(Command::Flush(key)).is_ok()
                {
                    waker.wake();
                }
            };
            MediaSender::waking(tx, Arc::new(wake))
        });
        Ok((key, sender))
    }

    /// Runs `call` on the PeerConnection `key` on the loop thread, then sends what it made
    /// the PeerConnection send.
    ///
    /// Errors: the PeerConnection or the loop is gone ([`MediaError::NoPeer`]).
    pub async fn with<R: Send + 'static>(
        &self,
        key: PeerKey,
        call: impl FnOnce(&mut LoopPeer, Instant) -> R + Send + 'static,
    ) -> Result<R, MediaError> {
        let (reply, result) = oneshot::channel();
        self.send(Command::With(
            key,
            Box::new(move |peer, now| {
                let _ = reply.send(call(peer, now));
            }),
        ))?;
        result.await.map_err(|_| MediaError::NoPeer)
    }

    /// Creates a PeerConnection on this loop that answers `offer` with Opus and VP8 (or the
    /// offer's first codecs) sendrecv; its media goes to `handler` on the loop thread.
    ///
    /// Errors: the offer cannot be answered ([`MediaError::InvalidSdp`], [`MediaError::Rtc`]),
    /// or the loop stopped ([`MediaError::NoPeer`]).
    pub async fn answer(&self, offer: String, handler: Box<dyn PeerHandler>) -> AnswerResult {
        let (key, _) = self.create(handler, Arc::default(), false).await?;
        let answered = self
            .with(key, move |peer, now| {
                peer.answer(now, &offer, &AnswerPlan::echo())
            })
            .await?;
        match answered {
            Ok((sdp, _)) => Ok((key, sdp)),
            Err(e) => {
                self.close(key);
                Err(e)
            }
        }
    }

    /// Closes the PeerConnection `key` (nothing if it is already gone).
    pub fn close(&self, key: PeerKey) {
        let _ = self.send(Command::Close(key));
    }

    fn send(&self, command: Command) -> Result<(), MediaError> {
        self.commands
            .send(command)
            .map_err(|_| MediaError::NoPeer)?;
        self.waker.wake();
        Ok(())
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        let _ = self.send(Command::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Everything the loop thread owns.
struct LoopState {
    socket: UdpSocket,
    local_addr: SocketAddr,
    waker_addr: SocketAddr,
    waker: Arc<Waker>,
    commands: mpsc::Receiver<Command>,
    template: PeerTemplate,
    /// Datagrams to send, flushed before the thread next waits.
    out: SendBatch,
    /// Boxed: a PeerConnection is several KiB, and the map keeps its capacity after peers
    /// leave; it holds pointers, and each PeerConnection's memory goes when it closes.
    peers: HashMap<PeerKey, Box<LoopPeer>>,
    demux: Demux<PeerKey>,
    timers: Timers<PeerKey>,
    next_key: u64,
    live: Arc<AtomicUsize>,
}

impl LoopState {
    fn run(mut self) {
        let mut batch = RecvBatch::default();
        let mut wait = None;
        loop {
            if !self.run_commands() {
                break;
            }
            let now = Instant::now();
            while let Some(key) = self.timers.pop_due(now) {
                if let Some(peer) = self.peers.get_mut(&key) {
                    peer.handle_timeout(now);
                }
                self.drive(key, now);
            }
            self.out.flush(&self.socket);
            let next = self
                .timers
                .next_deadline()
                .map(|at| at.saturating_duration_since(Instant::now()))
                .unwrap_or(IDLE_WAIT)
                .clamp(Duration::from_micros(100), IDLE_WAIT);
            // A syscall only when the wait changes by more than a millisecond.
            if wait.is_none_or(|w: Duration| w.abs_diff(next) > Duration::from_millis(1)) {
                let _ = self.socket.set_read_timeout(Some(next));
                wait = Some(next);
            }
            match batch.recv(&self.socket) {
                Ok(n) => {
                    let now = Instant::now();
                    for i in 0..n {
                        let (datagram, from) = batch.get(i);
                        let Some(from) = from else { continue };
                        self.receive(now, datagram, from);
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => tracing::debug!(error = %e, "media loop receive"),
            }
        }
        self.out.flush(&self.socket);
        for (_, mut peer) in self.peers.drain() {
            peer.close();
        }
        self.live.store(0, Ordering::Relaxed);
    }

    /// Hands one datagram to its PeerConnection (or takes the waker's).
    fn receive(&mut self, now: Instant, datagram: &[u8], from: SocketAddr) {
        if from == self.waker_addr && datagram.is_empty() {
            self.waker.pending.store(false, Ordering::Release);
            return;
        }
        let Some(key) = self.demux.route(datagram, from) else {
            return;
        };
        if let Some(peer) = self.peers.get_mut(&key) {
            peer.handle_datagram(now, from, datagram);
        }
        self.drive(key, now);
    }

    /// Runs queued commands; `false` once told to stop or every handle is gone.
    fn run_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Create {
                    handler,
                    queue,
                    shared,
                    reply,
                }) => {
                    let _ = reply.send(self.create(handler, queue, shared));
                }
                Ok(Command::With(key, call)) => {
                    let now = Instant::now();
                    let Some(peer) = self.peers.get_mut(&key) else {
                        continue;
                    };
                    call(peer, now);
                    if !peer.ufrag().is_empty() {
                        let ufrag = peer.ufrag().to_owned();
                        self.demux.add_ufrag(&ufrag, key);
                    }
                    self.drive(key, now);
                }
                Ok(Command::Flush(key)) => {
                    let now = Instant::now();
                    if let Some(peer) = self.peers.get_mut(&key) {
                        peer.flush(now);
                    }
                    self.drive(key, now);
                }
                Ok(Command::Close(key)) => {
                    if let Some(peer) = self.peers.get_mut(&key) {
                        peer.close();
                    }
                    self.drive(key, Instant::now());
                }
                Ok(Command::Stop) | Err(mpsc::TryRecvError::Disconnected) => return false,
                Err(mpsc::TryRecvError::Empty) => return true,
            }
        }
    }

    fn create(
        &mut self,
        handler: Box<dyn PeerHandler>,
        queue: Option<Queue>,
        shared: Arc<PeerShared>,
    ) -> Result<PeerKey, MediaError> {
        let now = Instant::now();
        let peer = LoopPeer::new(now, &self.template, self.local_addr, handler, queue, shared)?;
        let key = PeerKey(self.next_key);
        self.next_key += 1;
        self.peers.insert(key, Box::new(peer));
        self.live.store(self.peers.len(), Ordering::Relaxed);
        self.drive(key, now);
        Ok(key)
    }

    /// Sends what `key` has to send, reschedules its timer, and forgets it once closed.
    fn drive(&mut self, key: PeerKey, now: Instant) {
        let Some(peer) = self.peers.get_mut(&key) else {
            return;
        };
        let (socket, out) = (&self.socket, &mut self.out);
        peer.drain(now, |to, bytes| out.push(socket, to, bytes));
        if peer.is_closed() {
            self.peers.remove(&key);
            self.demux.remove(key);
            self.timers.remove(key);
            self.live.store(self.peers.len(), Ordering::Relaxed);
        } else {
            let at = peer.poll_timeout();
            self.timers.schedule(key, at);
        }
    }
}
