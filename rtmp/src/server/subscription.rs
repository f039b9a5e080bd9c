//! The media of one live key as codec frames: what the streaming plugin consumes.

use std::collections::VecDeque;
use std::sync::Arc;

use rml_rtmp::sessions::StreamMetadata;
use tokio::sync::broadcast::{self, error::RecvError};

use super::hub::{HubMessage, LiveStream};
use crate::flv::{parse_audio_tag, parse_video_tag, AudioTag, VideoTag};
use crate::media::{AacConfig, AudioFrame, AvcConfig, VideoFrame};
use crate::tag::Tag;

/// One event of a live stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// `onMetaData` from the encoder.
    Metadata(StreamMetadata),
    /// H.264 decoder configuration (SPS/PPS); sent again when the encoder changes it.
    VideoConfig(AvcConfig),
    /// AAC decoder configuration.
    AudioConfig(AacConfig),
    /// One H.264 access unit.
    Video(VideoFrame),
    /// One raw AAC frame.
    Audio(AudioFrame),
    /// The encoder ended its H.264 sequence (it usually stops right after).
    VideoEndOfSequence,
    /// A tag that could not be used (unsupported codec or malformed); the stream goes on.
    Skipped(String),
    /// Frames were lost because this subscriber fell behind; video resumes at a keyframe.
    Lagged(u64),
}

/// Receives a live key's media, starting at the last keyframe.
pub struct StreamSubscription {
    backlog: VecDeque<Arc<Tag>>,
    rx: broadcast::Receiver<HubMessage>,
    nal_length_size: u8,
    waiting_for_keyframe: bool,
}

impl StreamSubscription {
    pub(crate) fn new(stream: &LiveStream) -> Self {
        let (backlog, rx) = stream.join();
        Self {
            backlog: backlog.into(),
            rx,
            nal_length_size: 4,
            waiting_for_keyframe: false,
        }
    }

    /// The next event; `None` once the publisher has gone.
    pub async fn next(&mut self) -> Option<StreamEvent> {
        loop {
            let tag = match self.backlog.pop_front() {
                Some(tag) => tag,
                None => match self.rx.recv().await {
                    Ok(HubMessage::Tag(tag)) => tag,
                    Ok(HubMessage::Ended) | Err(RecvError::Closed) => return None,
                    Err(RecvError::Lagged(n)) => {
                        self.waiting_for_keyframe = true;
                        return Some(StreamEvent::Lagged(n));
                    }
                },
            };
            if self.waiting_for_keyframe {
                if !tag.is_keyframe() && !tag.is_sequence_header() {
                    continue;
                }
                self.waiting_for_keyframe = !tag.is_keyframe();
            }
            return Some(self.convert(&tag));
        }
    }

    fn convert(&mut self, tag: &Tag) -> StreamEvent {
        match tag {
            Tag::Metadata(m) => StreamEvent::Metadata(m.clone()),
            Tag::Video { timestamp, data } => {
                match parse_video_tag(data, *timestamp, self.nal_length_size) {
                    Ok(VideoTag::Config(config)) => {
                        self.nal_length_size = config.nal_length_size;
                        StreamEvent::VideoConfig(config)
                    }
                    Ok(VideoTag::Frame(frame)) => StreamEvent::Video(frame),
                    Ok(VideoTag::EndOfSequence) => StreamEvent::VideoEndOfSequence,
                    Ok(VideoTag::Command) => StreamEvent::Skipped("video command frame".into()),
                    Err(e) => StreamEvent::Skipped(e.to_string()),
                }
            }
            Tag::Audio { timestamp, data } => match parse_audio_tag(data, *timestamp) {
                Ok(AudioTag::Config(config)) => StreamEvent::AudioConfig(config),
                Ok(AudioTag::Frame(frame)) => StreamEvent::Audio(frame),
                Err(e) => StreamEvent::Skipped(e.to_string()),
            },
        }
    }
}
