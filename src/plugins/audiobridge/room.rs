//! One room: its settings, its participants, its running mix, and the notifications every
//! participant receives.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};

use super::announcements::Announcements;
use super::errors::{AbError, AbResult, ID_EXISTS, NO_SUCH_ROOM, UNKNOWN_ERROR};
use super::fields::{Id, IdMode};
use super::forwarders::Forwarders;
use super::plain_rtp::PlainRtp;
use super::sip::{DialIn, SipLeg};
use crate::auth::HashedSecret;
use crate::plugins::HandleRef;
use crate::services::recording::OpusRecorder;
use crate::services::rooms::{MixCodec, NewParticipant, ParticipantInput, RoomMix};

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
    /// `spatial_audio` (48 kHz rooms): stereo listeners hear each voice at its
    /// `spatial_position`.
    pub spatial: bool,
}

/// One participant of a room.
pub struct Participant {
    /// Its id in the room.
    pub id: Id,
    /// Its id in the mixing job.
    pub mix_id: u64,
    /// Its codec.
    pub codec: MixCodec,
    /// The handle it belongs to; `None` for a SIP participant (the room owns its call).
    pub handle: Option<HandleRef>,
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
    /// Its call, when it is a SIP participant.
    pub sip: Option<SipLeg>,
}

/// `spatial_position` of a participant who gave none: the centre of the stereo image.
pub const CENTRE: u8 = 50;

/// What `configure` changes.
#[derive(Debug, Clone, Default)]
pub struct ParticipantState {
    /// `display`.
    pub display: Option<String>,
    /// `muted`.
    pub muted: bool,
    /// `volume`, percent.
    pub volume: u32,
    /// `spatial_position` (0 left, 50 centre, 100 right) in a spatial room, else `None`.
    pub spatial_position: Option<u8>,
}

impl Participant {
    /// Releases what it holds outside the mix (a plain-RTP port): it left the room.
    pub fn close_media(&self) {
        if let Some(p) = &self.plain {
            p.close();
        }
        if let Some(leg) = &self.sip {
            leg.close();
        }
    }

    /// Its state, poison-tolerant.
    pub fn state(&self) -> MutexGuard<'_, ParticipantState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The participant as Janus lists it: `{id, display?, setup, muted, talking?,
    /// spatial_position?}` (the position in spatial rooms only), plus `sip: true` and the
    /// peer's `uri` for a SIP participant.
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
        if let Some(position) = st.spatial_position {
            v["spatial_position"] = json!(position);
        }
        if let Some(leg) = &self.sip {
            v["sip"] = json!(true);
            v["uri"] = json!(leg.uri);
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
    /// The `create` request without secret, PIN and flags (what a permanent room stores).
    pub config: serde_json::Map<String, Value>,
    /// The account line callers dial in on, while the room has an extension.
    pub dial_in: Mutex<Option<DialIn>>,
    /// The id of the mountpoint restreaming the mix, while there is one.
    pub mountpoint: Mutex<Option<u64>>,
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
    /// A room around a started mix, made by the `create` request `config` (secret, PIN and
    /// flags left out).
    pub fn new(
        id: Id,
        settings: RoomSettings,
        audio: RoomAudio,
        mix: RoomMix,
        config: serde_json::Map<String, Value>,
    ) -> Self {
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
            config,
            dial_in: Mutex::new(None),
            mountpoint: Mutex::new(None),
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
            .filter_map(|p| p.handle.clone())
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

    /// Puts a participant in the room and its mix: `make` builds it with its id (`requested`,
    /// else a random one of `ids`), `entry` is its side of the mix. Tells the others it
    /// joined.
    ///
    /// Errors: 485 when the room was destroyed meanwhile, 490 when `requested` is taken, 499
    /// when the mix does not take it.
    pub fn admit(
        &self,
        ids: IdMode,
        requested: Option<Id>,
        entry: NewParticipant,
        make: impl FnOnce(Id) -> Participant,
    ) -> AbResult<Arc<Participant>> {
        let participant = {
            let mut list = self.participants();
            if self.destroyed.load(Ordering::Acquire) {
                return Err(AbError::new(
                    NO_SUCH_ROOM,
                    format!("No such room ({})", self.id),
                ));
            }
            let id = match requested {
                Some(id) if list.contains_key(&id) => {
                    return Err(AbError::new(
                        ID_EXISTS,
                        format!("User ID {id} already exists"),
                    ))
                }
                Some(id) => id,
                None => loop {
                    let id = ids.random();
                    if !list.contains_key(&id) {
                        break id;
                    }
                },
            };
            let p = Arc::new(make(id.clone()));
            self.mix
                .add(entry)
                .map_err(|e| AbError::new(UNKNOWN_ERROR, e.to_string()))?;
            list.insert(id, p.clone());
            p
        };
        let joined_event = json!({
            "audiobridge": "joined",
            "room": self.id.to_json(),
            "participants": [participant.to_json(false)],
        });
        self.notify(&joined_event, Some(&participant.id));
        Ok(participant)
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
