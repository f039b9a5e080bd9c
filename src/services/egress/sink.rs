//! The egress as a sink of its mountpoint: every packet, stamped with its arrival time, goes
//! into the egress job's bounded queue without waiting (dropped and counted when full).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::job::Input;
use crate::media::{MediaKind, RtpPacket};
use crate::services::streams::StreamSink;
use crate::services::workers::{InputSender, PushError};

/// Feeds one mountpoint's egress job.
pub struct EgressSink {
    /// The job's input.
    pub input: InputSender<Input>,
    /// Set when the egress of this mountpoint ends: the fan-out then forgets the sink.
    pub stopped: Arc<AtomicBool>,
}

impl StreamSink for EgressSink {
    fn deliver(&self, kind: MediaKind, packet: &RtpPacket) -> bool {
        match self.input.try_push((kind, packet.clone(), Instant::now())) {
            Ok(()) => true,
            Err(PushError::Full) => false,
            Err(PushError::Closed) => {
                self.stopped.store(true, Ordering::Release);
                false
            }
        }
    }

    fn is_closed(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}
