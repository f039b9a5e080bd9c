//! The audio bridge's mixer: N participants' 48 kHz mono frames in, for each participant the
//! mix of everybody else out.
//!
//! Pure logic: the caller drives it one tick at a time with whatever frames arrived; it never
//! reads a clock, so tests feed it exactly the ticks they want.

mod limiter;
mod vad;

use std::collections::BTreeMap;

pub use vad::{VadConfig, VadEvent, VoiceActivity};

use crate::error::{Result, TranscodeError};

/// Identifies a participant inside one mixer (the room's own id space).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParticipantId(pub u64);

/// How a mixer is set up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixerConfig {
    /// Samples per tick (960 = 20 ms at 48 kHz).
    pub frame_samples: usize,
    /// Voice-activity thresholds.
    pub vad: VadConfig,
    /// Noise gate, dBov: a frame quieter than this is left out of the mix (its sender then
    /// hears, and can share, the whole room's mix). `None` mixes every frame.
    pub gate_dbov: Option<f32>,
}

impl Default for MixerConfig {
    fn default() -> Self {
        Self {
            frame_samples: 960,
            vad: VadConfig::default(),
            gate_dbov: None,
        }
    }
}

struct Participant {
    gain: f32,
    muted: bool,
    vad: VoiceActivity,
    /// This tick's input after gain, kept to subtract it from the total.
    contribution: Vec<f32>,
    output: Vec<i16>,
    /// Whether a frame was taken from this participant in the current tick.
    fed: bool,
    /// Whether this tick's frame went into the mix (fed, not muted, gain above 0): when
    /// false the participant's mix is the whole room's, shared with every other such listener.
    contributed: bool,
}

/// Mix-minus mixer for one room.
pub struct Mixer {
    config: MixerConfig,
    participants: BTreeMap<ParticipantId, Participant>,
    total: Vec<f32>,
    /// The whole room's mix of the last tick, clipped: what every non-contributor hears.
    full: Vec<i16>,
    events: Vec<VadEvent>,
}

impl Mixer {
    /// An empty room.
    pub fn new(config: MixerConfig) -> Self {
        Self {
            total: vec![0.0; config.frame_samples],
            full: vec![0; config.frame_samples],
            config,
            participants: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// Samples per tick every input and output has.
    pub fn frame_samples(&self) -> usize {
        self.config.frame_samples
    }

    /// Adds a participant at unit gain, unmuted; adding an existing one is a no-op.
    pub fn add(&mut self, id: ParticipantId) {
        let n = self.config.frame_samples;
        self.participants.entry(id).or_insert_with(|| Participant {
            gain: 1.0,
            muted: false,
            vad: VoiceActivity::new(self.config.vad),
            contribution: vec![0.0; n],
            output: vec![0; n],
            fed: false,
            contributed: false,
        });
    }

    /// Removes a participant; true if it was there.
    pub fn remove(&mut self, id: ParticipantId) -> bool {
        self.participants.remove(&id).is_some()
    }

    /// Number of participants.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// True when nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// Sets a participant's linear gain (1.0 = unchanged), applied before mixing.
    pub fn set_gain(&mut self, id: ParticipantId, gain: f32) -> Result<()> {
        let p = self.get_mut(id)?;
        p.gain = if gain.is_finite() { gain.max(0.0) } else { 1.0 };
        Ok(())
    }

    /// Mutes or unmutes a participant: a muted participant is heard by nobody but still hears.
    pub fn set_muted(&mut self, id: ParticipantId, muted: bool) -> Result<()> {
        self.get_mut(id)?.muted = muted;
        Ok(())
    }

    /// Replaces a participant's voice-activity thresholds (Janus' per-participant
    /// `audio_active_packets` / `audio_level_average`); its talking state starts over.
    pub fn set_vad(&mut self, id: ParticipantId, vad: VadConfig) -> Result<()> {
        self.get_mut(id)?.vad = VoiceActivity::new(vad);
        Ok(())
    }

    fn get_mut(&mut self, id: ParticipantId) -> Result<&mut Participant> {
        self.participants
            .get_mut(&id)
            .ok_or_else(|| TranscodeError::BadFrame(format!("no participant {}", id.0)))
    }

    /// Mixes one tick. `inputs` holds the frames that arrived this tick; a participant without
    /// one is silent. Frames of the wrong size or from unknown participants are ignored (the
    /// jitter buffer upstream owns framing). Returns the voice-activity changes of this tick;
    /// each participant's mix is then read with [`output`](Self::output).
    pub fn mix(&mut self, inputs: &[(ParticipantId, &[i16])]) -> &[VadEvent] {
        let n = self.config.frame_samples;
        self.events.clear();
        self.total.iter_mut().for_each(|s| *s = 0.0);
        for p in self.participants.values_mut() {
            p.contribution.iter_mut().for_each(|s| *s = 0.0);
            p.fed = false;
            p.contributed = false;
        }
        for (id, pcm) in inputs {
            let Some(p) = self.participants.get_mut(id) else {
                continue;
            };
            if p.fed {
                // A second frame in one tick would be heard twice by others and once by itself.
                tracing::debug!(
                    participant = id.0,
                    "mixer: second frame in one tick ignored"
                );
                continue;
            }
            if pcm.len() != n {
                tracing::debug!(
                    participant = id.0,
                    len = pcm.len(),
                    "mixer: frame of wrong size ignored"
                );
                continue;
            }
            p.fed = true;
            if let Some(talking) = p.vad.update(pcm, p.muted) {
                self.events.push(VadEvent {
                    participant: *id,
                    talking,
                    level: p.vad.level_dbov(),
                });
            }
            if p.muted || p.gain == 0.0 {
                continue;
            }
            if self
                .config
                .gate_dbov
                .is_some_and(|gate| p.vad.level_dbov() < gate)
            {
                continue;
            }
            p.contributed = true;
            let gain = p.gain / 32768.0;
            for ((c, t), &s) in p
                .contribution
                .iter_mut()
                .zip(self.total.iter_mut())
                .zip(pcm.iter())
            {
                *c = s as f32 * gain;
                *t += *c;
            }
        }
        for (id, p) in self.participants.iter_mut() {
            // Nothing arrived (DTX, loss, a stalled sender): quiet for voice activity too, so a
            // talker who stops sending is eventually reported as stopped.
            if !p.fed {
                if let Some(talking) = p.vad.update(&[], p.muted) {
                    self.events.push(VadEvent {
                        participant: *id,
                        talking,
                        level: p.vad.level_dbov(),
                    });
                }
            }
            for ((o, &t), &c) in p
                .output
                .iter_mut()
                .zip(self.total.iter())
                .zip(p.contribution.iter())
            {
                *o = limiter::soft_clip(t - c);
            }
        }
        for (f, &t) in self.full.iter_mut().zip(self.total.iter()) {
            *f = limiter::soft_clip(t);
        }
        &self.events
    }

    /// The whole room's mix of the last tick (everybody, nobody subtracted): what each
    /// participant who did not contribute to this tick hears, and what forwarders and
    /// recordings of the room take.
    pub fn full_mix(&self) -> &[i16] {
        &self.full
    }

    /// Whether `id`'s frame went into the last tick's mix. When false, its
    /// [`output`](Self::output) equals [`full_mix`](Self::full_mix), so it can share the
    /// encoding of the whole room's mix with every other such listener.
    pub fn contributed(&self, id: ParticipantId) -> Option<bool> {
        self.participants.get(&id).map(|p| p.contributed)
    }

    /// The mix for `id` from the last tick (everybody but `id`).
    pub fn output(&self, id: ParticipantId) -> Option<&[i16]> {
        self.participants.get(&id).map(|p| p.output.as_slice())
    }

    /// Whether voice activity currently considers `id` talking.
    pub fn is_talking(&self, id: ParticipantId) -> Option<bool> {
        self.participants.get(&id).map(|p| p.vad.talking())
    }
}

#[cfg(test)]
mod tests;
