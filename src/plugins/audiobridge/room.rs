//! One room: its settings, its participants, its running mix, and the notifications every
//! participant receives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};

use super::announcements::Announcements;
use super::fields::Id;
use super::forwarders::Forwarders;
use super::plain_rtp::PlainRtp;
use crate::auth::HashedSecret;
use crate::plugins::HandleRef;
use crate::services::recording::OpusRecorder;
use crate::services::rooms::{MixCodec, ParticipantInput, RoomMix};

/// What `create` set and `edit` may change.
#[derive(Debug, Clone)]
pub struct RoomSettings {
    /// Shown in `list`.
    pub description: String,
    /// Needed for `edit`, `destroy`, `kick`, `mute`... when set.
    pub secret: Option<HashedSecret>,
    /// Needed to `join` when set.
    pub pin: Option<HashedSecret>,
    /// Hidden from `list`.
    pub is_private: bool,
    /// Tokens allowed to join, when the list is enforced.
    pub allowed: Option<BTreeSet<String>>,
    /// Whether plain-RTP participants may join.
    pub allow_rtp_participants: bool,
    /// Whether the mix is recorded (`record`).
    pub record: bool,
    /// Directory of recordings (`record_dir`).
    pub record_dir: Option<String>,
}

/// Fixed settings of a room's mix and talking detection.
#[derive(Debug, Clone, Copy)]
pub struct RoomAudio {
    /// Mixing rate, Hz.
    pub sampling_rate: u32,
    /// Whether `talking`/`stopped-talking` events are sent.
    pub audiolevel_event: bool,
    /// Packets (20 ms) of voice before talking, and of quiet before stopped (Janus default 100).
    pub audio_active_packets: u32,
    /// Level threshold in -dBov (0 loudest, 127 silence; Janus default 25).
    pub audio_level_average: u32,
    /// Default Opus bitrate for participants, bit/s (0: the encoder's choice).
    pub default_bitrate: u32,
    /// Default expected loss for participants, percent.
    pub default_expectedloss: u8,
}

/// One participant of a room.
pub struct Participant {
    /// Its id in the room.
    pub id: Id,
    /// Its id in the mixing job.
    pub mix_id: u64,
    /// Its codec.
    pub codec: MixCodec,
    /// The handle it belongs to.
    pub handle: HandleRef,
    /// Where its RTP goes (its handle pushes here).
    pub input: ParticipantInput,
    /// Mutable state, behind this participant's own lock (never on the packet path).
    pub state: Mutex<ParticipantState>,
    /// Whether its PeerConnection is up (`setup`).
    pub setup: AtomicBool,
    /// Whether it is talking (voice activity).
    pub talking: AtomicBool,
    /// Whether its mix goes to its PeerConnection already.
    pub has_sink: AtomicBool,
    /// Its UDP port, when it is a plain-RTP participant.
    pub plain: Option<PlainRtp>,
}

/// What `configure` changes.
#[derive(Debug, Clone, Default)]
pub struct ParticipantState {
    /// `display`.
    pub display: Option<String>,
    /// `muted`.
    pub muted: bool,
    /// `volume`, percent.
    pub volume: u32,
}

impl Participant {
    /// Releases what it holds outside the mix (a plain-RTP port): it left the room.
    pub fn close_media(&self) {
        if let Some(p) = &self.plain {
            p.close();
        }
    }

    /// Its state, poison-tolerant.
    pub fn state(&self) -> MutexGuard<'_, ParticipantState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The participant as Janus lists it: `{id, display?, setup, muted, talking?}`.
    pub fn to_json(&self, with_talking: bool) -> Value {
        let st = self.state();
        let mut v = json!({
            "id": self.id.to_json(),
            "setup": self.setup.load(Ordering::Relaxed),
            "muted": st.muted,
        });
        if let Some(d) = &st.display {
            v["display"] = json!(d);
        }
        if with_talking {
            v["talking"] = json!(self.talking.load(Ordering::Relaxed));
        }
        v
    }
}

/// A room.
pub struct Room {
    /// Its id.
    pub id: Id,
    /// `create`/`edit` settings.
    pub settings: Mutex<RoomSettings>,
    /// Mixing settings.
    pub audio: RoomAudio,
    /// The participants, by id.
    pub participants: Mutex<BTreeMap<Id, Arc<Participant>>>,
    /// The running mix.
    pub mix: RoomMix,
    /// `mute_room`: nobody is heard.
    pub muted: AtomicBool,
    /// Set once destroyed: late joins and events are refused.
    pub destroyed: AtomicBool,
    /// RTP forwarders of the mix.
    pub forwarders: Forwarders,
    /// Files playing into the mix.
    pub announcements: Announcements,
    /// The recording of the mix, while `record` is on.
    pub recording: tokio::sync::Mutex<Option<RoomRecording>>,
    next_mix_id: AtomicU64,
}

/// A room's open recording: the recorder, fed as a forwarder of the mix.
pub struct RoomRecording {
    /// Forwarder id of the recording inside the mix.
    pub forward_id: u64,
    /// The open file and its registry row.
    pub recorder: OpusRecorder,
}

impl Room {
    /// A room around a started mix.
    pub fn new(id: Id, settings: RoomSettings, audio: RoomAudio, mix: RoomMix) -> Self {
        Self {
            id,
            settings: Mutex::new(settings),
            audio,
            participants: Mutex::new(BTreeMap::new()),
            mix,
            muted: AtomicBool::new(false),
            destroyed: AtomicBool::new(false),
            forwarders: Forwarders::default(),
            recording: tokio::sync::Mutex::new(None),
            announcements: Announcements::default(),
            next_mix_id: AtomicU64::new(1),
        }
    }

    /// Settings, poison-tolerant.
    pub fn settings(&self) -> MutexGuard<'_, RoomSettings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Participants, poison-tolerant.
    pub fn participants(&self) -> MutexGuard<'_, BTreeMap<Id, Arc<Participant>>> {
        self.participants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh id for the mixing job.
    pub fn next_mix_id(&self) -> u64 {
        self.next_mix_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Sends `event` to every participant but `except`.
    pub fn notify(&self, event: &Value, except: Option<&Id>) {
        let targets: Vec<HandleRef> = self
            .participants()
            .values()
            .filter(|p| Some(&p.id) != except)
            .map(|p| p.handle.clone())
            .collect();
        for h in targets {
            if let Some(ctx) = h.upgrade() {
                ctx.push_event(None, event.clone(), None);
            }
        }
    }

    /// `{"audiobridge":"event","room":N,"participants":[p]}`: a participant's setup, mute or
    /// display changed.
    pub fn notify_changed(&self, p: &Participant) {
        let event = json!({
            "audiobridge": "event",
            "room": self.id.to_json(),
            "participants": [p.to_json(false)],
        });
        self.notify(&event, None);
    }

    /// The participants other than `except`, as `joined` lists them.
    pub fn others_json(&self, except: Option<&Id>) -> Vec<Value> {
        self.participants()
            .values()
            .filter(|p| Some(&p.id) != except)
            .map(|p| p.to_json(self.audio.audiolevel_event))
            .collect()
    }

    /// Removes `id` from the room and its mix; tells the others it left. Returns it if it was
    /// there.
    pub fn remove(&self, id: &Id) -> Option<Arc<Participant>> {
        let removed = self.participants().remove(id)?;
        let _ = self.mix.remove(removed.mix_id);
        removed.close_media();
        let event = json!({
            "audiobridge": "event",
            "room": self.id.to_json(),
            "leaving": id.to_json(),
        });
        self.notify(&event, None);
        Some(removed)
    }

    /// The participant with mix id `mix_id`.
    pub fn by_mix_id(&self, mix_id: u64) -> Option<Arc<Participant>> {
        self.participants()
            .values()
            .find(|p| p.mix_id == mix_id)
            .cloned()
    }
}
