//! Room dial-in: a registry account bound to an audio-bridge room answers the inbound calls
//! to its extension and hands each caller to the room, after a DTMF PIN when the room has
//! one.
//!
//! [`RoomDialIn`] is the room's [`CallTarget`] (kind [`TargetKind::Room`]) in the
//! [`super::InboundRouter`]. For each call it takes the ring, answers with the first of
//! Opus, PCMU and PCMA in the caller's offer (RFC 3264 §6.1) from an RTP endpoint of its own,
//! then, when [`RoomDoor::needs_pin`], reads digits (RFC 4733 events or SIP INFO
//! `application/dtmf-relay`) until `#`: a wrong PIN may be tried again up to
//! [`PIN_TRIES`] times within [`PIN_TIMEOUT`], after which the call is hung up. Until the
//! first digit of an entry the caller hears the prompt tone of
//! [`crate::services::rooms::pin_prompt`] (again after a wrong PIN). The answered
//! leg goes to [`RoomDoor::enter`]; what the room does with it (mix, events, the end of the
//! call) is the audio bridge's business.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use bifrons_sip::rtp::{RtpEndpoint, RtpEvent};
use bifrons_sip::sdp::{Direction, Negotiated};
use bifrons_sip::{Call, CallEvent, Codec, Sdp};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use super::ringing::RingingCall;
use super::routing::{CallTarget, InboundCall, TargetKind};
use crate::services::rooms::pin_prompt::{self, Prompt, PromptCodec};

/// The ring-claim id of room dial-in (browser handles claim with their handle id, listen
/// lines with `u64::MAX`).
const ROOM_CLAIM: u64 = u64::MAX - 1;

/// Wrong PINs a caller may enter before the call is hung up.
pub const PIN_TRIES: u32 = 3;

/// How long a caller has to enter a right PIN.
pub const PIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Digits a PIN entry may have before it counts as a wrong PIN.
const MAX_PIN_DIGITS: usize = 32;

/// Codecs a room answers callers with, the caller's order deciding.
pub const ROOM_CODECS: [Codec; 3] = [Codec::Opus, Codec::Pcmu, Codec::Pcma];

/// An answered call on its way into a room.
pub struct AnsweredLeg {
    /// The SIP call (hang up through it).
    pub call: Arc<Call>,
    /// Its SIP events from now on.
    pub events: broadcast::Receiver<CallEvent>,
    /// The call's RTP endpoint, configured with the negotiated codec and the caller's address.
    pub rtp: Arc<RtpEndpoint>,
    /// What the offer/answer settled.
    pub negotiated: Negotiated,
    /// The caller's URI (`From`).
    pub caller: String,
}

/// The room side of dial-in, implemented by the audio bridge.
#[async_trait::async_trait]
pub trait RoomDoor: Send + Sync {
    /// Whether the room still takes callers (not destroyed).
    fn is_open(&self) -> bool;
    /// Whether callers must enter a PIN.
    fn needs_pin(&self) -> bool;
    /// Whether `pin` (the digits before `#`) opens the room; compared in constant time.
    async fn check_pin(&self, pin: &str) -> bool;
    /// Takes the answered leg into the room. Must not block.
    fn enter(&self, leg: AnsweredLeg);
}

/// Where a dial-in call gets its RTP port.
#[derive(Clone, Debug)]
pub struct DialInMedia {
    /// Address RTP binds to and the SDP answer advertises.
    pub rtp_ip: IpAddr,
    /// RTP port range (even RTP, odd RTCP).
    pub rtp_ports: RangeInclusive<u16>,
}

/// The call target of a room's extension.
pub struct RoomDialIn {
    door: Arc<dyn RoomDoor>,
    media: DialInMedia,
}

impl RoomDialIn {
    /// A target letting callers through `door`, with RTP ports from `media`.
    pub fn new(door: Arc<dyn RoomDoor>, media: DialInMedia) -> Self {
        Self { door, media }
    }
}

impl CallTarget for RoomDialIn {
    fn kind(&self) -> TargetKind {
        TargetKind::Room
    }

    fn offer(&self, call: &InboundCall) {
        tracing::debug!(call_id = %call.call_id, "room dial-in offered a call without a SIP dialog: ignored");
    }

    fn ring(&self, _call: &InboundCall, ringing: &Arc<RingingCall>) {
        let (_, events) = ringing.subscribe();
        tokio::spawn(serve(
            ringing.clone(),
            events,
            self.door.clone(),
            self.media.clone(),
        ));
    }
}

/// One dial-in call: answer, PIN, into the room.
async fn serve(
    ringing: Arc<RingingCall>,
    mut events: broadcast::Receiver<CallEvent>,
    door: Arc<dyn RoomDoor>,
    media: DialInMedia,
) {
    let call_id = ringing.id().to_string();
    if !door.is_open() {
        tracing::info!(%call_id, "room dial-in refused: the room is gone");
        ringing.decline(480).await;
        return;
    }
    let Some(offer) = ringing.offer.clone() else {
        tracing::info!(%call_id, "room dial-in refused: an INVITE without SDP offer");
        ringing.decline(488).await;
        return;
    };
    let rtp = match RtpEndpoint::bind(media.rtp_ip, media.rtp_ports.clone()).await {
        Ok(rtp) => Arc::new(rtp),
        Err(e) => {
            tracing::warn!(%call_id, error = %e, "room dial-in refused: no RTP port");
            ringing.decline(503).await;
            return;
        }
    };
    let answered = rtp
        .local_addr()
        .map_err(|e| e.to_string())
        .and_then(|local| {
            Sdp::answer(
                &offer,
                &ROOM_CODECS,
                local,
                Direction::SendRecv,
                rand::random::<u32>().into(),
            )
            .map_err(|e| e.to_string())
        });
    let (answer, negotiated) = match answered {
        Ok(a) => a,
        Err(e) => {
            tracing::info!(%call_id, error = %e, "room dial-in refused: no Opus, PCMU or PCMA in the offer");
            ringing.decline(488).await;
            return;
        }
    };
    if !ringing.claim(ROOM_CLAIM) {
        return;
    }
    if let Err(e) = ringing.call.answer_with_sdp(answer).await {
        tracing::warn!(%call_id, error = %e, "room dial-in: answering failed");
        return;
    }
    rtp.apply(&negotiated);
    tracing::info!(%call_id, caller = %ringing.caller, codec = negotiated.codec.name(), pin = door.needs_pin(), "room dial-in answered");
    if door.needs_pin() {
        let prompt = match prompt_codec(negotiated.codec) {
            Some(codec) => match pin_prompt::prompt(codec).await {
                Ok(p) => Some((p, codec.samples_per_packet())),
                Err(e) => {
                    tracing::warn!(%call_id, error = %e, "room dial-in: no PIN prompt");
                    None
                }
            },
            None => None,
        };
        let entered =
            tokio::time::timeout(PIN_TIMEOUT, read_pin(&rtp, &mut events, &*door, prompt)).await;
        let why = match entered {
            Ok(PinOutcome::Right) => None,
            Ok(PinOutcome::Wrong) => Some("wrong PIN"),
            Ok(PinOutcome::Ended) => {
                tracing::info!(%call_id, "room dial-in: the caller hung up during PIN entry");
                return;
            }
            Err(_) => Some("no PIN in time"),
        };
        if let Some(why) = why {
            tracing::info!(%call_id, caller = %ringing.caller, %why, "room dial-in: hanging up");
            let _ = ringing.call.hangup().await;
            return;
        }
    }
    if !door.is_open() {
        let _ = ringing.call.hangup().await;
        return;
    }
    door.enter(AnsweredLeg {
        call: ringing.call.clone(),
        events,
        rtp,
        negotiated,
        caller: ringing.caller.clone(),
    });
}

/// How a PIN entry ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PinOutcome {
    Right,
    Wrong,
    Ended,
}

/// The prompt's codec for a call's codec (G.722 callers get no prompt).
fn prompt_codec(codec: Codec) -> Option<PromptCodec> {
    match codec {
        Codec::Opus => Some(PromptCodec::Opus),
        Codec::Pcmu => Some(PromptCodec::Pcmu),
        Codec::Pcma => Some(PromptCodec::Pcma),
        Codec::G722 => None,
    }
}

/// Reads digits until a right PIN, [`PIN_TRIES`] wrong ones, or the end of the call. Audio
/// received meanwhile is dropped. `prompt` (payloads and RTP samples per packet) is played
/// every 20 ms while no digit of the current entry was typed.
async fn read_pin(
    rtp: &RtpEndpoint,
    events: &mut broadcast::Receiver<CallEvent>,
    door: &dyn RoomDoor,
    prompt: Option<(Prompt, u32)>,
) -> PinOutcome {
    let mut entry = PinEntry::default();
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut position = 0usize;
    loop {
        let digit = tokio::select! {
            _ = ticks.tick(), if prompt.is_some() => {
                if let Some((payloads, samples)) = &prompt {
                    if entry.digits.is_empty() && !payloads.is_empty() {
                        let _ = rtp.send_audio(&payloads[position % payloads.len()], *samples);
                        position = position.wrapping_add(1);
                    } else {
                        position = 0;
                    }
                }
                continue;
            }
            e = rtp.recv() => match e {
                Some(RtpEvent::Dtmf(d)) => d,
                Some(RtpEvent::Audio { .. }) => continue,
                None => return PinOutcome::Ended,
            },
            e = events.recv() => match e {
                Ok(CallEvent::Dtmf { digit, .. }) => digit,
                Ok(CallEvent::Ended(_)) | Err(RecvError::Closed) => return PinOutcome::Ended,
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
            },
        };
        let Some(pin) = entry.push(digit) else {
            continue;
        };
        if door.check_pin(&pin).await {
            return PinOutcome::Right;
        }
        entry.tries += 1;
        tracing::info!(tries = entry.tries, "room dial-in: wrong PIN");
        if entry.tries >= PIN_TRIES {
            return PinOutcome::Wrong;
        }
    }
}

/// Digits typed so far and wrong tries.
#[derive(Debug, Default)]
struct PinEntry {
    digits: String,
    tries: u32,
}

impl PinEntry {
    /// Adds a digit; returns the PIN entered when it is `#` (or when the entry got longer
    /// than any PIN, so that a caller typing forever is not kept on the line).
    fn push(&mut self, digit: char) -> Option<String> {
        if digit == '#' || self.digits.len() >= MAX_PIN_DIGITS {
            return Some(std::mem::take(&mut self.digits));
        }
        self.digits.push(digit);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_pin_ends_with_hash_and_starts_over_after() {
        let mut e = PinEntry::default();
        assert_eq!(e.push('1'), None);
        assert_eq!(e.push('2'), None);
        assert_eq!(e.push('#').as_deref(), Some("12"));
        assert_eq!(e.push('#').as_deref(), Some(""), "an empty entry is a try");
        assert_eq!(e.push('9'), None);
        assert_eq!(e.push('#').as_deref(), Some("9"));
    }

    proptest! {
        #[test]
        fn an_entry_never_grows_past_the_limit(digits in proptest::collection::vec(prop::sample::select(vec!['0','1','9','*','A']), 0..200)) {
            let mut e = PinEntry::default();
            for d in digits {
                if let Some(pin) = e.push(d) {
                    prop_assert!(pin.len() <= MAX_PIN_DIGITS);
                }
                prop_assert!(e.digits.len() <= MAX_PIN_DIGITS);
            }
        }
    }
}
