//! Announcements: Ogg/Opus files played into a room's mix (`play_file`, `is_playing`,
//! `stop_file`, `stop_all_files`, `listannouncements`), with `announcement-started` /
//! `announcement-stopped` events to the room.
//!
//! Files are read from the recordings directory only (a relative `filename`, or an absolute one
//! inside it): a client must not make the gateway read any file it can name.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ogg::reading::PacketReader;
use serde_json::{json, Map, Value};

use super::errors::*;
use super::fields::{bool_of, str_of, validate, Field, Kind};
use super::manage::check_room_secret;
use super::room::Room;
use super::Bridge;

const PLAY_FILE: &[Field] = &[
    ("filename", Kind::Str, true),
    ("file_id", Kind::Str, false),
    ("group", Kind::Str, false),
    ("loop", Kind::Bool, false),
];
const FILE_ID: &[Field] = &[("file_id", Kind::Str, true)];
const SECRET: &[Field] = &[("secret", Kind::Str, false)];

/// One announcement of a room.
#[derive(Debug, Clone)]
pub struct Announcement {
    /// Its id in the mix.
    pub mix_id: u64,
    /// The file as given.
    pub filename: String,
    /// Whether it loops.
    pub looping: bool,
}

/// The announcements of a room, by `file_id`.
#[derive(Default)]
pub struct Announcements {
    list: Mutex<BTreeMap<String, Announcement>>,
}

impl Announcements {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Announcement>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets the announcement of mix id `mix_id` (it ended); its `file_id`.
    pub fn finished(&self, mix_id: u64) -> Option<String> {
        let mut list = self.lock();
        let id = list
            .iter()
            .find(|(_, a)| a.mix_id == mix_id)
            .map(|(k, _)| k.clone())?;
        list.remove(&id);
        Some(id)
    }
}

/// Reads the Opus packets of an Ogg/Opus file (RFC 7845: `OpusHead`, `OpusTags`, then audio).
pub fn read_ogg_opus(bytes: Vec<u8>) -> Result<Vec<Bytes>, String> {
    let mut reader = PacketReader::new(Cursor::new(bytes));
    let mut packets = Vec::new();
    let mut index = 0;
    while let Some(p) = reader.read_packet().map_err(|e| e.to_string())? {
        match index {
            0 if !p.data.starts_with(b"OpusHead") => return Err("not an Ogg/Opus file".into()),
            0 | 1 => {}
            _ if !p.data.is_empty() => packets.push(Bytes::from(p.data)),
            _ => {}
        }
        index += 1;
    }
    if packets.is_empty() {
        return Err("no audio in the file".into());
    }
    Ok(packets)
}

/// `filename` inside the recordings directory `root`, or `None` if it points elsewhere.
fn resolve(root: &Path, filename: &str) -> Option<PathBuf> {
    let path = Path::new(filename);
    let relative = if path.is_absolute() {
        path.strip_prefix(root).ok()?.to_path_buf()
    } else {
        path.to_path_buf()
    };
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Some(root.join(relative))
}

fn room_of(bridge: &Bridge, body: &Map<String, Value>) -> AbResult<Arc<Room>> {
    let id = bridge.ids.require(body, "room")?;
    bridge.room(&id)
}

fn stopped_event(room: &Room, file_id: &str) -> Value {
    json!({"audiobridge": "announcement-stopped", "room": room.id.to_json(), "file_id": file_id})
}

/// `play_file`.
pub async fn play_file(bridge: &Bridge, body: &Map<String, Value>) -> AbResult<Value> {
    validate(body, PLAY_FILE)?;
    validate(body, SECRET)?;
    let room = room_of(bridge, body)?;
    check_room_secret(&room, body).await?;
    let filename = str_of(body, "filename").unwrap_or_default().to_owned();
    let file_id = match str_of(body, "file_id") {
        Some(f) => f.to_owned(),
        None => format!("{:016x}", rand::random::<u64>()),
    };
    if room.announcements.lock().contains_key(&file_id) {
        return Err(AbError::new(
            ID_EXISTS,
            format!("File ID exists ({file_id})"),
        ));
    }
    let Some(path) = resolve(bridge.recording.dir(), &filename) else {
        return Err(AbError::new(
            INVALID_ELEMENT,
            "Invalid element (filename must be inside the recordings directory)",
        ));
    };
    let read = tokio::task::spawn_blocking(move || {
        std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(read_ogg_opus)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let packets = read.map_err(|e| {
        tracing::info!(file = %filename, error = %e, "audiobridge announcement not played");
        AbError::new(UNKNOWN_ERROR, "Error opening file")
    })?;
    let looping = bool_of(body, "loop").unwrap_or(false);
    let mix_id = room.next_mix_id();
    {
        let mut list = room.announcements.lock();
        if list.contains_key(&file_id) {
            return Err(AbError::new(
                ID_EXISTS,
                format!("File ID exists ({file_id})"),
            ));
        }
        list.insert(
            file_id.clone(),
            Announcement {
                mix_id,
                filename: filename.clone(),
                looping,
            },
        );
    }
    if let Err(e) = room.mix.play_file(mix_id, Arc::new(packets), looping) {
        room.announcements.lock().remove(&file_id);
        return Err(AbError::new(UNKNOWN_ERROR, e.to_string()));
    }
    let event = json!({"audiobridge": "announcement-started", "room": room.id.to_json(), "file_id": file_id});
    room.notify(&event, None);
    Ok(json!({"audiobridge": "success", "room": room.id.to_json(), "file_id": file_id}))
}

/// `is_playing`.
pub async fn is_playing(bridge: &Bridge, body: &Map<String, Value>) -> AbResult<Value> {
    validate(body, FILE_ID)?;
    validate(body, SECRET)?;
    let room = room_of(bridge, body)?;
    check_room_secret(&room, body).await?;
    let file_id = str_of(body, "file_id").unwrap_or_default();
    let playing = room.announcements.lock().contains_key(file_id);
    Ok(
        json!({"audiobridge": "success", "room": room.id.to_json(), "file_id": file_id, "playing": playing}),
    )
}

/// `stop_file`.
pub async fn stop_file(bridge: &Bridge, body: &Map<String, Value>) -> AbResult<Value> {
    validate(body, FILE_ID)?;
    validate(body, SECRET)?;
    let room = room_of(bridge, body)?;
    check_room_secret(&room, body).await?;
    let file_id = str_of(body, "file_id").unwrap_or_default();
    let Some(a) = room.announcements.lock().remove(file_id) else {
        return Err(AbError::new(
            INVALID_ELEMENT,
            format!("No such file_id ({file_id})"),
        ));
    };
    let _ = room.mix.stop_file(a.mix_id);
    room.notify(&stopped_event(&room, file_id), None);
    Ok(json!({"audiobridge": "success", "room": room.id.to_json(), "file_id": file_id}))
}

/// `stop_all_files`.
pub async fn stop_all_files(bridge: &Bridge, body: &Map<String, Value>) -> AbResult<Value> {
    validate(body, SECRET)?;
    let room = room_of(bridge, body)?;
    check_room_secret(&room, body).await?;
    let all = std::mem::take(&mut *room.announcements.lock());
    let mut ids = Vec::new();
    for (file_id, a) in all {
        let _ = room.mix.stop_file(a.mix_id);
        room.notify(&stopped_event(&room, &file_id), None);
        ids.push(file_id);
    }
    Ok(json!({"audiobridge": "success", "room": room.id.to_json(), "file_id_list": ids}))
}

/// `listannouncements`.
pub async fn list(bridge: &Bridge, body: &Map<String, Value>) -> AbResult<Value> {
    validate(body, SECRET)?;
    let room = room_of(bridge, body)?;
    check_room_secret(&room, body).await?;
    let list: Vec<Value> = room
        .announcements
        .lock()
        .iter()
        .map(|(id, a)| json!({"file_id": id, "filename": a.filename, "playing": true, "loop": a.looping}))
        .collect();
    Ok(json!({"audiobridge": "announcements", "room": room.id.to_json(), "announcements": list}))
}

/// An announcement ended by itself: tell the room.
pub fn on_finished(room: &Room, mix_id: u64) {
    if let Some(file_id) = room.announcements.finished(mix_id) {
        room.notify(&stopped_event(room, &file_id), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_inside_the_recordings_directory_resolve() {
        let root = Path::new("/var/lib/bifrons/recordings");
        assert_eq!(
            resolve(root, "greetings/hello.opus"),
            Some(root.join("greetings/hello.opus"))
        );
        assert_eq!(
            resolve(root, "/var/lib/bifrons/recordings/a.opus"),
            Some(root.join("a.opus"))
        );
        assert_eq!(resolve(root, "/etc/passwd"), None);
        assert_eq!(resolve(root, "../secret.opus"), None);
        assert_eq!(resolve(root, "a/../../b.opus"), None);
    }

    #[test]
    fn a_file_that_is_not_ogg_opus_is_refused() {
        assert!(read_ogg_opus(b"not ogg at all".to_vec()).is_err());
        assert!(read_ogg_opus(Vec::new()).is_err());
    }
}
