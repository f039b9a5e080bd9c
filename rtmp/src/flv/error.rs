use bifrons_transcoding::aac::AscError;
use thiserror::Error;

/// Why an FLV tag payload could not be turned into media.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FlvError {
    /// The payload ended before a field it announces.
    #[error("truncated FLV {what}: need {needed} bytes, have {available}")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Bytes the structure needs.
        needed: usize,
        /// Bytes that were there.
        available: usize,
    },
    /// A codec Bifrons does not carry (Enhanced RTMP FourCC or a legacy FLV codec id).
    #[error("unsupported codec {0}")]
    UnsupportedCodec(String),
    /// A field holds a value the format does not allow.
    #[error("invalid FLV {0}")]
    Invalid(&'static str),
}

impl From<AscError> for FlvError {
    fn from(e: AscError) -> Self {
        match e {
            AscError::Truncated { needed, available } => FlvError::Truncated {
                what: "AudioSpecificConfig",
                needed,
                available,
            },
            AscError::ReservedFrequencyIndex(_) => {
                FlvError::Invalid("AAC sampling frequency index")
            }
            AscError::ZeroSampleRate => FlvError::Invalid("AAC sampling frequency 0 Hz"),
        }
    }
}

pub(crate) fn need(what: &'static str, data: &[u8], needed: usize) -> Result<(), FlvError> {
    if data.len() < needed {
        return Err(FlvError::Truncated {
            what,
            needed,
            available: data.len(),
        });
    }
    Ok(())
}
