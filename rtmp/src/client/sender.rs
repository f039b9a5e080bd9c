//! The producer side of a publisher: a `Clone + Send` handle whose `send_*` queue a tag and
//! return at once, and the connection task's end of the queue.
//!
//! Media is queued with `try_send` on a bounded channel, so a worker thread (or any code that
//! must not wait) can publish; when the connection falls behind, media is dropped and counted.
//! Two rules keep what does get through decodable:
//!
//! - Configuration (metadata and sequence headers) is never dropped. When the queue is full it
//!   waits in a side slot, one per kind, and goes out before any later media; media arriving
//!   while configuration waits is dropped.
//! - After a video frame is dropped, the frames that reference it are useless: video is dropped
//!   until the next keyframe.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use rml_rtmp::sessions::StreamMetadata;
use tokio::sync::mpsc::{
    self,
    error::{TryRecvError, TrySendError},
};

use crate::error::RtmpError;
use crate::flv::{aac_config_tag, aac_frame_tag, avc_config_tag, avc_frame_tag};
use crate::media::{AacConfig, AudioFrame, AvcConfig, VideoFrame};
use crate::tag::Tag;

/// What the connection task receives.
pub(crate) enum Command {
    Tag(Tag),
    Close,
}

/// State shared by every sender handle and the task's inbox.
struct Shared {
    queue: Mutex<Overflow>,
    dropped: AtomicU64,
}

/// What happened when the queue was full.
#[derive(Default)]
struct Overflow {
    /// Configuration tags that found the queue full, oldest first, at most one per kind.
    /// Everything already in the channel precedes them.
    pending: Vec<Tag>,
    /// A video frame was dropped: drop video until a keyframe.
    video_gap: bool,
}

fn lock(shared: &Shared) -> MutexGuard<'_, Overflow> {
    // A panic in another sender must not stop publishing: the data stays consistent.
    shared.queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// Metadata and sequence headers: rare, small, and needed to decode everything after them.
fn is_config(tag: &Tag) -> bool {
    matches!(tag, Tag::Metadata(_)) || tag.is_sequence_header()
}

fn same_kind(a: &Tag, b: &Tag) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// A cheap, cloneable handle that queues media for an [`RtmpPublisher`](super::RtmpPublisher)
/// without waiting: what a media worker thread holds.
///
/// Every `send_*` returns at once. `Ok(())` means the tag was queued, or dropped because the
/// queue ([`PublisherConfig::queue`](super::PublisherConfig::queue) tags) was full; drops are
/// counted by [`dropped`](Self::dropped). The only error is [`RtmpError::Closed`], once the
/// publisher has closed or failed for good. Timestamps are FLV milliseconds.
#[derive(Clone)]
pub struct PublisherSender {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl PublisherSender {
    /// A sender and the connection task's inbox, joined by a queue of `capacity` tags.
    pub(crate) fn channel(capacity: usize) -> (Self, Inbox) {
        let (commands, rx) = mpsc::channel(capacity.max(1));
        let shared = Arc::new(Shared {
            queue: Mutex::new(Overflow::default()),
            dropped: AtomicU64::new(0),
        });
        let inbox = Inbox {
            commands: rx,
            shared: shared.clone(),
            taken: VecDeque::new(),
        };
        (Self { commands, shared }, inbox)
    }

    /// Queues `onMetaData` (remembered and re-sent after a reconnect; never dropped).
    pub fn send_metadata(&self, metadata: StreamMetadata) -> Result<(), RtmpError> {
        self.push(Tag::Metadata(metadata))
    }

    /// Queues the H.264 sequence header (AVCDecoderConfigurationRecord; remembered and re-sent
    /// after a reconnect; never dropped).
    pub fn send_video_config(
        &self,
        config: &AvcConfig,
        timestamp_ms: u32,
    ) -> Result<(), RtmpError> {
        self.push(Tag::Video {
            timestamp: timestamp_ms,
            data: avc_config_tag(config),
        })
    }

    /// Queues the AAC sequence header (AudioSpecificConfig; remembered and re-sent after a
    /// reconnect; never dropped).
    pub fn send_audio_config(
        &self,
        config: &AacConfig,
        timestamp_ms: u32,
    ) -> Result<(), RtmpError> {
        self.push(Tag::Audio {
            timestamp: timestamp_ms,
            data: aac_config_tag(config),
        })
    }

    /// Queues one H.264 access unit, stamped with its DTS and composition offset.
    pub fn send_video(&self, frame: &VideoFrame) -> Result<(), RtmpError> {
        self.push(Tag::Video {
            timestamp: frame.dts_ms,
            data: avc_frame_tag(frame),
        })
    }

    /// Queues one raw AAC frame.
    pub fn send_audio(&self, frame: &AudioFrame) -> Result<(), RtmpError> {
        self.push(Tag::Audio {
            timestamp: frame.timestamp_ms,
            data: aac_frame_tag(frame),
        })
    }

    /// Queues an FLV video tag body as is (relaying another RTMP source).
    pub fn send_video_tag(&self, timestamp_ms: u32, data: Bytes) -> Result<(), RtmpError> {
        self.push(Tag::Video {
            timestamp: timestamp_ms,
            data,
        })
    }

    /// Queues an FLV audio tag body as is.
    pub fn send_audio_tag(&self, timestamp_ms: u32, data: Bytes) -> Result<(), RtmpError> {
        self.push(Tag::Audio {
            timestamp: timestamp_ms,
            data,
        })
    }

    /// Media tags dropped so far because the queue was full, or because they followed a
    /// dropped video frame or waiting configuration (see the module doc).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Waits until the queue has room and no configuration is waiting: for async producers
    /// that would rather wait than drop. With a single producer, the `send_*` that follows is
    /// not dropped for lack of room.
    ///
    /// Errors: [`RtmpError::Closed`] once the publisher has stopped.
    pub async fn ready(&self) -> Result<(), RtmpError> {
        loop {
            let permit = self
                .commands
                .reserve()
                .await
                .map_err(|_| RtmpError::Closed)?;
            let mut overflow = lock(&self.shared);
            if overflow.pending.is_empty() {
                return Ok(());
            }
            permit.send(Command::Tag(overflow.pending.remove(0)));
        }
    }

    /// Asks the task to unpublish once everything queued before has been sent.
    pub(crate) async fn close(&self) {
        if self.ready().await.is_ok() {
            let _ = self.commands.send(Command::Close).await;
        }
    }

    fn push(&self, tag: Tag) -> Result<(), RtmpError> {
        // Held across try_send so that tags from concurrent handles enter the queue in one
        // order and waiting configuration cannot be overtaken.
        let mut overflow = lock(&self.shared);
        while !overflow.pending.is_empty() {
            match self
                .commands
                .try_send(Command::Tag(overflow.pending[0].clone()))
            {
                Ok(()) => {
                    overflow.pending.remove(0);
                }
                Err(TrySendError::Full(_)) => break,
                Err(TrySendError::Closed(_)) => return Err(RtmpError::Closed),
            }
        }
        if is_config(&tag) {
            let tag = if overflow.pending.is_empty() {
                match self.commands.try_send(Command::Tag(tag)) {
                    Ok(()) => return Ok(()),
                    Err(TrySendError::Full(Command::Tag(tag))) => tag,
                    Err(_) => return Err(RtmpError::Closed),
                }
            } else {
                tag
            };
            // No media went into the queue since an older config of this kind was set
            // aside, so the newer one simply replaces it.
            match overflow.pending.iter_mut().find(|t| same_kind(t, &tag)) {
                Some(slot) => *slot = tag,
                None => overflow.pending.push(tag),
            }
            return Ok(());
        }
        let video = matches!(tag, Tag::Video { .. });
        let keyframe = tag.is_keyframe();
        let waits_for_keyframe = video && overflow.video_gap && !keyframe;
        let queued = if waits_for_keyframe || !overflow.pending.is_empty() {
            false
        } else {
            match self.commands.try_send(Command::Tag(tag)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => false,
                Err(TrySendError::Closed(_)) => return Err(RtmpError::Closed),
            }
        };
        if !queued {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if video {
            overflow.video_gap = !queued;
        }
        Ok(())
    }
}

/// The connection task's end of the queue: commands in the order the senders issued them.
pub(crate) struct Inbox {
    commands: mpsc::Receiver<Command>,
    shared: Arc<Shared>,
    /// Configuration taken from the side slots, to hand out before the channel again.
    taken: VecDeque<Tag>,
}

impl Inbox {
    /// The next command; `None` when every sender is gone. Cancel-safe (for `select!`).
    pub async fn recv(&mut self) -> Option<Command> {
        loop {
            if let Some(tag) = self.taken.pop_front() {
                return Some(Command::Tag(tag));
            }
            match self.commands.try_recv() {
                Ok(command) => return Some(command),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            {
                // Under the lock no sender can queue, so "channel empty" and "take the side
                // slots" happen as one step and the slots are handed out in their place.
                let mut overflow = lock(&self.shared);
                if self.commands.is_empty() && !overflow.pending.is_empty() {
                    self.taken.extend(overflow.pending.drain(..));
                    continue;
                }
            }
            return self.commands.recv().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(timestamp: u32, keyframe: bool) -> Tag {
        let frame_type = if keyframe { 0x17 } else { 0x27 };
        Tag::Video {
            timestamp,
            data: Bytes::from(vec![frame_type, 1, 0, 0, 0, 0, 0, 0, 1, 0x65]),
        }
    }

    fn config(timestamp: u32) -> Tag {
        Tag::Video {
            timestamp,
            data: Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x42, 0, 0x1f]),
        }
    }

    /// Timestamps of what the task would receive now, in order.
    async fn drain(inbox: &mut Inbox) -> Vec<u32> {
        let mut out = Vec::new();
        while let Ok(Some(command)) =
            tokio::time::timeout(std::time::Duration::from_millis(20), inbox.recv()).await
        {
            if let Command::Tag(Tag::Video { timestamp, .. }) = command {
                out.push(timestamp);
            }
        }
        out
    }

    #[tokio::test]
    async fn full_queue_drops_media_and_counts() {
        let (sender, mut inbox) = PublisherSender::channel(2);
        for ts in 0..5 {
            sender.push(video(ts, true)).unwrap();
        }
        assert_eq!(sender.dropped(), 3);
        assert_eq!(drain(&mut inbox).await, [0, 1]);
    }

    #[tokio::test]
    async fn video_after_a_drop_resumes_at_the_next_keyframe() {
        let (sender, mut inbox) = PublisherSender::channel(2);
        sender.push(video(0, true)).unwrap();
        sender.push(video(1, false)).unwrap();
        sender.push(video(2, false)).unwrap(); // full: dropped
        assert_eq!(drain(&mut inbox).await, [0, 1]);
        sender.push(video(3, false)).unwrap(); // room, but references the dropped frame
        sender.push(video(4, true)).unwrap();
        sender.push(video(5, false)).unwrap();
        assert_eq!(sender.dropped(), 2);
        assert_eq!(drain(&mut inbox).await, [4, 5]);
    }

    #[tokio::test]
    async fn config_on_a_full_queue_waits_and_precedes_later_media() {
        let (sender, mut inbox) = PublisherSender::channel(1);
        sender.push(video(0, true)).unwrap();
        sender.push(config(10)).unwrap(); // set aside
        sender.push(config(11)).unwrap(); // replaces it
        sender.push(video(1, true)).unwrap(); // dropped: config waits
        assert_eq!(sender.dropped(), 1);
        // The task alone gets the waiting config out once the channel is empty.
        assert_eq!(drain(&mut inbox).await, [0, 11]);
        sender.push(video(2, true)).unwrap();
        assert_eq!(drain(&mut inbox).await, [2]);
    }

    #[tokio::test]
    async fn ready_flushes_waiting_config_then_returns() {
        let (sender, mut inbox) = PublisherSender::channel(1);
        sender.push(video(0, true)).unwrap();
        sender.push(config(10)).unwrap();
        let task = tokio::spawn(async move { drain(&mut inbox).await });
        sender.ready().await.unwrap();
        sender.push(video(1, true)).unwrap();
        drop(sender);
        assert_eq!(task.await.unwrap(), [0, 10, 1]);
    }

    #[tokio::test]
    async fn sending_after_the_task_ended_is_an_error() {
        let (sender, inbox) = PublisherSender::channel(4);
        drop(inbox);
        assert!(matches!(
            sender.push(video(0, true)),
            Err(RtmpError::Closed)
        ));
    }
}
