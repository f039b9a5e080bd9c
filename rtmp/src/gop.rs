//! GOP cache: what a player or viewer joining a live stream needs to start decoding at once.

use std::sync::Arc;

use crate::tag::Tag;

/// Keeps metadata, sequence headers and every tag since the last video keyframe.
#[derive(Debug)]
pub struct GopCache {
    metadata: Option<Arc<Tag>>,
    video_header: Option<Arc<Tag>>,
    audio_header: Option<Arc<Tag>>,
    gop: Vec<Arc<Tag>>,
    max_tags: usize,
}

impl GopCache {
    /// A cache holding at most `max_tags` tags of the current GOP; a GOP longer than that is
    /// dropped (joiners then wait for the next keyframe) so memory stays bounded.
    pub fn new(max_tags: usize) -> Self {
        Self {
            metadata: None,
            video_header: None,
            audio_header: None,
            gop: Vec::new(),
            max_tags,
        }
    }

    /// Records a tag of the live stream.
    pub fn push(&mut self, tag: &Arc<Tag>) {
        match &**tag {
            Tag::Metadata(_) => self.metadata = Some(tag.clone()),
            t if t.is_sequence_header() => match t {
                Tag::Video { .. } => self.video_header = Some(tag.clone()),
                _ => self.audio_header = Some(tag.clone()),
            },
            t if t.is_keyframe() => {
                self.gop.clear();
                self.gop.push(tag.clone());
            }
            _ if self.gop.is_empty() => {}
            _ => {
                if self.gop.len() >= self.max_tags {
                    self.gop.clear();
                } else {
                    self.gop.push(tag.clone());
                }
            }
        }
    }

    /// The tags a new player gets first, in order: metadata, sequence headers, current GOP.
    pub fn snapshot(&self) -> Vec<Arc<Tag>> {
        let mut tags = Vec::with_capacity(3 + self.gop.len());
        tags.extend(self.metadata.iter().cloned());
        tags.extend(self.video_header.iter().cloned());
        tags.extend(self.audio_header.iter().cloned());
        tags.extend(self.gop.iter().cloned());
        tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn video(ts: u32, key: bool) -> Arc<Tag> {
        let first = if key { 0x17 } else { 0x27 };
        Arc::new(Tag::Video {
            timestamp: ts,
            data: Bytes::from(vec![first, 1, 0, 0, 0]),
        })
    }

    #[test]
    fn snapshot_starts_at_last_keyframe_after_headers() {
        let mut cache = GopCache::new(100);
        let header = Arc::new(Tag::Video {
            timestamp: 0,
            data: Bytes::from_static(&[0x17, 0, 0, 0, 0, 1]),
        });
        let aac = Arc::new(Tag::Audio {
            timestamp: 0,
            data: Bytes::from_static(&[0xaf, 0, 0x11, 0x90]),
        });
        cache.push(&header);
        cache.push(&aac);
        cache.push(&video(40, false)); // before any keyframe: useless to a joiner
        cache.push(&video(80, true));
        cache.push(&video(120, false));
        cache.push(&video(160, true));
        cache.push(&video(200, false));
        let snapshot = cache.snapshot();
        assert_eq!(
            snapshot,
            vec![header, aac, video(160, true), video(200, false)]
        );
    }

    #[test]
    fn overlong_gop_is_dropped() {
        let mut cache = GopCache::new(3);
        cache.push(&video(0, true));
        for ts in 1..10 {
            cache.push(&video(ts, false));
        }
        assert!(cache.snapshot().is_empty());
    }
}
