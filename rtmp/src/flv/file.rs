//! FLV file container (header + tags), used to replay recorded media and in tests.

use bytes::Bytes;

use super::error::{need, FlvError};

/// Kind of an FLV file tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlvTagKind {
    /// Tag type 8.
    Audio,
    /// Tag type 9.
    Video,
    /// Tag type 18 (onMetaData and friends).
    Script,
}

/// One tag of an FLV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvFileTag {
    /// Tag type.
    pub kind: FlvTagKind,
    /// Timestamp in milliseconds (with the extended byte).
    pub timestamp: u32,
    /// Tag body (what an RTMP audio/video message carries).
    pub data: Bytes,
}

/// Splits a whole FLV file into tags. Unknown tag types are skipped.
pub fn parse_flv_file(data: &Bytes) -> Result<Vec<FlvFileTag>, FlvError> {
    need("FLV header", data, 9)?;
    if &data[..3] != b"FLV" {
        return Err(FlvError::Invalid("FLV signature"));
    }
    let header_len = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize;
    let mut pos = header_len
        .checked_add(4)
        .ok_or(FlvError::Invalid("FLV header size"))?;
    let mut tags = Vec::new();
    while pos < data.len() {
        need("FLV tag header", data, pos + 11)?;
        let kind = data[pos] & 0x1f;
        let size = usize::from(data[pos + 1]) << 16
            | usize::from(data[pos + 2]) << 8
            | usize::from(data[pos + 3]);
        let timestamp = u32::from(data[pos + 7]) << 24
            | u32::from(data[pos + 4]) << 16
            | u32::from(data[pos + 5]) << 8
            | u32::from(data[pos + 6]);
        let body = pos + 11;
        need("FLV tag body", data, body + size)?;
        let kind = match kind {
            8 => Some(FlvTagKind::Audio),
            9 => Some(FlvTagKind::Video),
            18 => Some(FlvTagKind::Script),
            _ => None,
        };
        if let Some(kind) = kind {
            tags.push(FlvFileTag {
                kind,
                timestamp,
                data: data.slice(body..body + size),
            });
        }
        // Skip the body and the PreviousTagSize trailer; a missing final trailer is tolerated.
        pos = body + size + 4;
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_tags_with_extended_timestamp() {
        let mut file = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
        file.extend_from_slice(&[
            9, 0, 0, 2, 0x12, 0x34, 0x56, 0x01, 0, 0, 0, 0x17, 0x02, 0, 0, 0, 13,
        ]);
        let tags = parse_flv_file(&Bytes::from(file)).unwrap();
        assert_eq!(
            tags,
            vec![FlvFileTag {
                kind: FlvTagKind::Video,
                timestamp: 0x0112_3456,
                data: Bytes::from_static(&[0x17, 0x02])
            }]
        );
    }

    proptest! {
        #[test]
        fn arbitrary_files_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut file = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
            file.extend(data);
            let _ = parse_flv_file(&Bytes::from(file));
        }
    }
}
