//! The loop engine's event loops: one per core (or `[media] loops`), each with its own UDP
//! socket; a new PeerConnection goes to the loop with the fewest and stays there.

use std::net::IpAddr;
use std::sync::{Arc, Weak};

use super::event_loop::EventLoop;
use super::handle::LoopHandle;
use super::setup::PeerTemplate;
use crate::media::{MediaError, PeerListener};

/// Every event loop of the process.
pub struct LoopPool {
    loops: Vec<Arc<EventLoop>>,
}

impl LoopPool {
    /// Starts `count` loops (0: one per core) on `ip`. With `single_port`, one loop binds that
    /// port; with `port_min`, loop N binds `port_min + N`; otherwise each a free port.
    ///
    /// Errors: a socket cannot be bound, as [`MediaError::Rtc`].
    pub fn start(
        count: usize,
        ip: IpAddr,
        single_port: u16,
        port_min: u16,
        template: PeerTemplate,
    ) -> Result<Self, MediaError> {
        let count = if single_port != 0 {
            1
        } else if count == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            count
        };
        let loops = (0..count)
            .map(|n| {
                let port = match (single_port, port_min) {
                    (0, 0) => 0,
                    (0, min) => min + n as u16,
                    (port, _) => port,
                };
                EventLoop::start(format!("media-{n}"), ip, port, template.clone()).map(Arc::new)
            })
            .collect::<Result<Vec<_>, _>>()?;
        for event_loop in &loops {
            tracing::info!(address = %event_loop.local_addr(), "media event loop");
        }
        Ok(Self { loops })
    }

    /// A PeerConnection on the least loaded loop, reporting to `listener`.
    ///
    /// Errors: the loop could not create it, as [`MediaError`].
    pub async fn create_peer(
        &self,
        listener: Weak<dyn PeerListener>,
    ) -> Result<LoopHandle, MediaError> {
        let event_loop = self
            .loops
            .iter()
            .min_by_key(|l| l.load())
            .ok_or(MediaError::NoPeer)?;
        LoopHandle::create(event_loop.clone(), listener).await
    }
}
