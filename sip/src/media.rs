//! Feeding a call's RTP endpoint from PCM and recording it back, in G.711 μ-law: what the
//! softphone and the tests need to put real audio through a call.

use crate::g711::{ulaw_decode, ulaw_encode};
use crate::rtp::{RtpEndpoint, RtpEvent};
use std::time::Duration;

/// What a call delivered.
#[derive(Debug, Default, Clone)]
pub struct Recording {
    /// Decoded 8 kHz samples, in arrival order.
    pub samples: Vec<i16>,
    /// RFC 4733 digits.
    pub dtmf: Vec<char>,
    /// Audio packets received.
    pub packets: u64,
}

/// Sends 8 kHz `samples` as 20 ms PCMU packets in real time (loops over them until `duration`).
pub async fn play_ulaw(
    rtp: &RtpEndpoint,
    samples: &[i16],
    duration: Duration,
) -> Result<(), crate::rtp::RtpError> {
    if samples.is_empty() {
        return Ok(());
    }
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let frames = (duration.as_millis() / 20) as usize;
    let mut pos = 0usize;
    let mut payload = [0u8; 160];
    for _ in 0..frames {
        tick.tick().await;
        for b in payload.iter_mut() {
            *b = ulaw_encode(samples[pos % samples.len()]);
            pos += 1;
        }
        rtp.send_audio(&payload, 160)?;
    }
    Ok(())
}

/// Records PCMU audio (payload type 0) and DTMF for `duration`.
pub async fn record_ulaw(rtp: &RtpEndpoint, duration: Duration) -> Recording {
    let mut rec = Recording::default();
    let deadline = tokio::time::Instant::now() + duration;
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, rtp.recv()).await {
        match ev {
            RtpEvent::Audio { pt: 0, payload, .. } => {
                rec.packets += 1;
                rec.samples.extend(payload.iter().map(|&b| ulaw_decode(b)));
            }
            RtpEvent::Audio { .. } => rec.packets += 1,
            RtpEvent::Dtmf(d) => rec.dtmf.push(d),
        }
    }
    rec
}
