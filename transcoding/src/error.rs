//! The crate's single error type: every codec and DSP step reports through it.

use thiserror::Error;

/// Why a codec or DSP step refused its input or could not be set up.
#[derive(Debug, Error)]
pub enum TranscodeError {
    /// A configuration value outside what the codec supports (rate, channels, frame size...).
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    /// An input frame whose size or layout does not match what the step was built for.
    #[error("bad input frame: {0}")]
    BadFrame(String),
    /// A compressed payload the decoder could not parse (truncated, corrupt, garbage).
    #[error("malformed {codec} payload: {reason}")]
    Malformed {
        /// Which codec rejected the payload.
        codec: &'static str,
        /// The decoder's own explanation.
        reason: String,
    },
    /// The underlying codec library failed for a reason other than bad input.
    #[error("{codec} library error: {reason}")]
    Codec {
        /// Which codec library failed.
        codec: &'static str,
        /// The library's own explanation.
        reason: String,
    },
}

impl TranscodeError {
    pub(crate) fn malformed(codec: &'static str, reason: impl ToString) -> Self {
        TranscodeError::Malformed {
            codec,
            reason: reason.to_string(),
        }
    }

    #[cfg_attr(
        not(any(
            feature = "opus",
            feature = "aac",
            feature = "resample",
            feature = "h264"
        )),
        allow(dead_code)
    )]
    pub(crate) fn codec(codec: &'static str, reason: impl ToString) -> Self {
        TranscodeError::Codec {
            codec,
            reason: reason.to_string(),
        }
    }
}

/// Result alias used across the crate.
pub type Result<T> = std::result::Result<T, TranscodeError>;
