//! The start-up recovery pass: a voicemail message whose gateway died while recording keeps
//! the row registered at its start (duration and size 0) and an Ogg file cut after its last
//! flushed page. This pass reads how much audio the file holds and fills the row in.

use std::path::Path;

use crate::storage::{Page, RecordingFilter, RecordingKind, Storage, StorageError};

/// Length of the fixed part of an Ogg page header (RFC 3533 §6), bytes.
const PAGE_HEADER: usize = 27;
/// Opus granule positions count 48 kHz samples (RFC 7845 §4).
const SAMPLES_PER_MS: u64 = 48;

/// What the complete pages of an Ogg Opus file hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OggExtent {
    /// Bytes up to the end of the last complete page.
    pub complete_bytes: u64,
    /// Audio length in ms: the last granule position minus the `OpusHead` pre-skip
    /// (RFC 7845 §4, §5.1), at 48 kHz.
    pub duration_ms: u64,
}

/// Walks the Ogg pages of `data` (RFC 3533 §6) and stops at the first torn or invalid one.
/// Never panics, whatever the bytes.
pub fn scan_ogg_opus(data: &[u8]) -> OggExtent {
    let mut pos = 0usize;
    let mut pre_skip = 0u64;
    let mut last_granule = 0u64;
    let mut complete = 0usize;
    while let Some(header) = data.get(pos..pos + PAGE_HEADER) {
        if &header[..4] != b"OggS" || header[4] != 0 {
            break;
        }
        let segments = usize::from(header[26]);
        let Some(lacing) = data.get(pos + PAGE_HEADER..pos + PAGE_HEADER + segments) else {
            break;
        };
        let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
        let body_start = pos + PAGE_HEADER + segments;
        let Some(body) = data.get(body_start..body_start + body_len) else {
            break;
        };
        if body.starts_with(b"OpusHead") && body.len() >= 12 {
            pre_skip = u64::from(u16::from_le_bytes([body[10], body[11]]));
        }
        let granule = u64::from_le_bytes(header[6..14].try_into().unwrap_or([0; 8]));
        // -1: no packet ends on this page (RFC 3533 §6).
        if granule != u64::MAX {
            last_granule = granule;
        }
        pos = body_start + body_len;
        complete = pos;
    }
    OggExtent {
        complete_bytes: complete as u64,
        duration_ms: last_granule.saturating_sub(pre_skip) / SAMPLES_PER_MS,
    }
}

/// Rows of voicemail messages examined per query.
const BATCH: u32 = 500;

/// Fills in duration (ms) and size (bytes) of every voicemail row still at zero size whose file
/// is in `recordings_dir`, from the file's complete pages. Run once at start, before anything
/// records. Returns how many rows were fixed; files that are missing or unreadable are logged
/// and left alone.
///
/// Errors: the registry's, when the rows cannot be listed or updated.
pub async fn recover_interrupted(
    storage: &Storage,
    recordings_dir: &Path,
) -> Result<u64, StorageError> {
    let recordings = storage.recordings();
    let filter = RecordingFilter {
        kind: Some(RecordingKind::Voicemail),
        ..Default::default()
    };
    let mut fixed = 0u64;
    let mut offset = 0u64;
    loop {
        let page = recordings
            .list(
                &filter,
                Page {
                    offset,
                    limit: BATCH,
                },
            )
            .await?;
        let n = page.len();
        for row in page.into_iter().filter(|r| r.meta.size_bytes == 0) {
            let path = recordings_dir.join(&row.meta.file_path);
            let data = match tokio::fs::read(&path).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(recording = %row.id, file = %path.display(), error = %e, "interrupted voicemail message without a readable file");
                    continue;
                }
            };
            let extent = tokio::task::spawn_blocking(move || scan_ogg_opus(&data))
                .await
                .unwrap_or_default();
            recordings
                .finish(row.id, extent.duration_ms, extent.complete_bytes)
                .await?;
            tracing::info!(
                recording = %row.id,
                duration_ms = extent.duration_ms,
                size = extent.complete_bytes,
                "interrupted voicemail message recovered"
            );
            fixed += 1;
        }
        if n < BATCH as usize {
            return Ok(fixed);
        }
        offset += u64::from(BATCH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::recording::ogg::OggOpusWriter;
    use proptest::prelude::*;

    /// 20 ms Opus packets (TOC 0xF8: CELT FB 20 ms, mono, one frame).
    fn file_of(packets: u32) -> Vec<u8> {
        let mut w = OggOpusWriter::new(Vec::new(), 7, "test");
        for i in 0..packets {
            w.push(&[0xF8, 1, 2, 3], i * 960).unwrap();
        }
        w.finish().unwrap().0
    }

    #[test]
    fn a_whole_file_reads_its_duration() {
        let data = file_of(250);
        let extent = scan_ogg_opus(&data);
        assert_eq!(extent.complete_bytes, data.len() as u64);
        assert!((4990..=5000).contains(&extent.duration_ms), "{extent:?}");
    }

    #[test]
    fn a_torn_file_stops_at_its_last_complete_page() {
        let data = file_of(250);
        let cut = &data[..data.len() * 2 / 3];
        let extent = scan_ogg_opus(cut);
        assert!(extent.complete_bytes < cut.len() as u64);
        assert!(extent.complete_bytes > 0);
        assert!(
            extent.duration_ms > 2000 && extent.duration_ms < 4000,
            "{extent:?}"
        );
    }

    proptest! {
        /// Any prefix of a file, and any bytes, scan without panicking, never past the input.
        #[test]
        fn any_bytes_scan(cut in 0usize..6000, noise in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut data = file_of(100);
            data.truncate(cut.min(data.len()));
            data.extend_from_slice(&noise);
            let extent = scan_ogg_opus(&data);
            prop_assert!(extent.complete_bytes <= data.len() as u64);
        }
    }
}
