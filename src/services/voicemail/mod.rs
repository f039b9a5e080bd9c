//! Voicemail state shared by every handle and call: the answering machine of accounts with a
//! mailbox ([`machine`], encoding on the workers with [`encoder`]) and the start-up recovery of
//! messages cut short by a crash ([`recovery`]).

pub mod encoder;
pub mod machine;
pub mod recovery;

pub use machine::AnsweringMachine;
pub use recovery::{recover_interrupted, scan_ogg_opus, OggExtent};
