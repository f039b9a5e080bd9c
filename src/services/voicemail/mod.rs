//! Voicemail state shared by every handle and call: the answering machine of accounts with a
//! mailbox ([`machine`], encoding on the workers with [`encoder`]) and the start-up recovery of
//! messages cut short by a crash ([`recovery`]).

pub mod audio_file;
pub mod encoder;
pub mod machine;
pub mod recovery;
pub mod tokens;

pub use machine::AnsweringMachine;
pub use recovery::{recover_interrupted, scan_ogg_opus, OggExtent};

/// The file of a message row's relative path `rel` inside `dir` (the recordings directory);
/// `None` for anything but a plain relative path (no `..`, no root, no `.`), so a row cannot
/// point outside.
pub fn message_file(dir: &std::path::Path, rel: &str) -> Option<std::path::PathBuf> {
    let relative = std::path::Path::new(rel);
    let plain = !rel.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    plain.then(|| dir.join(relative))
}
