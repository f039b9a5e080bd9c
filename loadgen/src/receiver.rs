//! The receiving end of one leg: accounts every packet ([`LegStats`]) and, while a pulse sent
//! by the far side is outstanding, decodes just enough to find its onset.

use crate::audio::OnsetDetector;
use crate::clock::{secs, PulseClock, Window};
use crate::metrics::LegStats;
use std::sync::Arc;
use std::time::Instant;

/// A pulse not found within this long after it was sent (s) counts as missed.
const PULSE_GIVE_UP_S: f64 = 0.9;

/// Decodes a payload to 8 kHz mono samples.
pub trait Decode: Send {
    /// Decodes `payload` into `out` (cleared first); an undecodable payload leaves it empty.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>);
}

/// μ-law (PCMU) payloads.
pub struct Ulaw;

impl Decode for Ulaw {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        crate::audio::ulaw_decode_into(payload, out);
    }
}

/// Opus payloads, decoded at 8 kHz (all the onset detection needs).
pub struct Opus(opus::Decoder);

impl Opus {
    /// A mono 8 kHz decoder. Errors: the Opus library refusing it.
    pub fn new() -> Result<Self, opus::Error> {
        Ok(Self(opus::Decoder::new(8000, opus::Channels::Mono)?))
    }
}

impl Decode for Opus {
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) {
        out.resize(960, 0);
        match self.0.decode(payload, out, false) {
            Ok(n) => out.truncate(n),
            Err(_) => out.clear(),
        }
    }
}

/// One leg's receiver.
pub struct LegReceiver<D: Decode> {
    /// What the leg received.
    pub stats: LegStats,
    decoder: D,
    detector: OnsetDetector,
    pulse: Arc<PulseClock>,
    window: Arc<Window>,
    /// Delay the far side's own encoder adds to the onset (s), subtracted.
    calibration: f64,
    armed_for: Option<f64>,
    done_for: Option<f64>,
    pcm: Vec<i16>,
}

impl<D: Decode> LegReceiver<D> {
    /// A receiver for a leg with RTP clock `clock_rate` whose far side records its pulses
    /// in `pulse`.
    pub fn new(
        clock_rate: u32,
        decoder: D,
        pulse: Arc<PulseClock>,
        window: Arc<Window>,
        calibration: f64,
    ) -> Self {
        Self {
            stats: LegStats::new(clock_rate),
            decoder,
            detector: OnsetDetector::new(8000, 200),
            pulse,
            window,
            calibration,
            armed_for: None,
            done_for: None,
            pcm: Vec::with_capacity(960),
        }
    }

    /// Accounts one packet.
    pub fn packet(&mut self, arrival: Instant, seq: u16, ts: u32, payload: &[u8]) {
        let at = secs(arrival);
        self.stats.on_packet(at, seq, ts, self.window.contains(at));
        let Some(sent) = self.pulse.last() else {
            return;
        };
        if self.done_for == Some(sent) || at < sent {
            return;
        }
        if self.armed_for != Some(sent) {
            self.detector.arm();
            self.armed_for = Some(sent);
        }
        if at - sent > PULSE_GIVE_UP_S {
            self.done_for = Some(sent);
            if self.window.contains(sent) {
                self.stats.pulses_missed += 1;
            }
            return;
        }
        self.decoder.decode(payload, &mut self.pcm);
        if let Some(i) = self.detector.feed(&self.pcm) {
            self.done_for = Some(sent);
            if self.window.contains(sent) {
                let delay = at + i as f64 / 8000.0 - sent - self.calibration;
                self.stats.delays_ms.push(delay * 1000.0);
            }
        }
    }
}

impl<D: Decode> crate::peer::MediaSink for LegReceiver<D> {
    fn audio(&mut self, arrival: Instant, seq: u16, ts: u32, payload: &[u8]) {
        self.packet(arrival, seq, ts, payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::ulaw_loop;
    use std::time::Duration;

    #[test]
    fn delay_is_measured_from_the_pulse_send_time_to_its_onset() {
        let frames = ulaw_loop();
        let pulse = Arc::new(PulseClock::default());
        let window = Arc::new(Window::default());
        let t0 = Instant::now();
        window.set(secs(t0), secs(t0) + 100.0);
        let mut rx = LegReceiver::new(8000, Ulaw, pulse.clone(), window, 0.0);
        // The far side sends frame k at t0 + 20k ms; each arrives 30 ms later.
        for k in 0..150u64 {
            let sent = t0 + Duration::from_millis(20 * k);
            if k % 50 == 0 {
                pulse.sent(sent);
            }
            let f = &frames[(k % 50) as usize];
            rx.packet(
                sent + Duration::from_millis(30),
                k as u16,
                (k * 160) as u32,
                f,
            );
        }
        assert_eq!(rx.stats.received, 150);
        assert_eq!(rx.stats.delays_ms.len(), 3, "{:?}", rx.stats.delays_ms);
        for d in &rx.stats.delays_ms {
            assert!((30.0..30.5).contains(d), "{d}");
        }
        assert_eq!(rx.stats.pulses_missed, 0);
    }

    #[test]
    fn a_pulse_that_never_arrives_is_missed() {
        let quiet = vec![0xffu8; 160];
        let pulse = Arc::new(PulseClock::default());
        let window = Arc::new(Window::default());
        let t0 = Instant::now();
        window.set(secs(t0), secs(t0) + 100.0);
        let mut rx = LegReceiver::new(8000, Ulaw, pulse.clone(), window, 0.0);
        pulse.sent(t0);
        for k in 0..60u64 {
            rx.packet(
                t0 + Duration::from_millis(20 * k),
                k as u16,
                (k * 160) as u32,
                &quiet,
            );
        }
        assert_eq!(rx.stats.pulses_missed, 1);
        assert!(rx.stats.delays_ms.is_empty());
    }
}
