//! Voicemail state shared by every handle: today the start-up recovery of messages cut short
//! by a crash ([`recovery`]).

pub mod recovery;

pub use recovery::{recover_interrupted, scan_ogg_opus, OggExtent};

pub mod encoder;
pub mod machine;

pub use machine::AnsweringMachine;
