use super::*;
use crate::testutil::{relative_level_db, sine};

const N: usize = 960;
const RATE: u32 = 48_000;

/// Runs `ticks` ticks of per-participant tones and returns each participant's concatenated output.
fn run(mixer: &mut Mixer, tones: &[(ParticipantId, f32, f32)], ticks: usize) -> Vec<Vec<i16>> {
    let mut outs = vec![Vec::new(); tones.len()];
    for t in 0..ticks {
        let frames: Vec<Vec<i16>> = tones
            .iter()
            .map(|&(_, f, a)| sine(f, RATE, a, t * N, N))
            .collect();
        let inputs: Vec<(ParticipantId, &[i16])> = tones
            .iter()
            .zip(&frames)
            .map(|(&(id, _, _), f)| (id, f.as_slice()))
            .collect();
        mixer.mix(&inputs);
        for (o, &(id, _, _)) in outs.iter_mut().zip(tones) {
            o.extend_from_slice(mixer.output(id).unwrap());
        }
    }
    outs
}

fn room(ids: &[u64]) -> Mixer {
    let mut m = Mixer::new(MixerConfig::default());
    for &id in ids {
        m.add(ParticipantId(id));
    }
    m
}

#[test]
fn each_participant_hears_the_others_but_not_itself() {
    let mut m = room(&[1, 2, 3]);
    let tones = [
        (ParticipantId(1), 440.0, 0.2),
        (ParticipantId(2), 1000.0, 0.2),
        (ParticipantId(3), 2500.0, 0.2),
    ];
    let outs = run(&mut m, &tones, 10);
    for (i, out) in outs.iter().enumerate() {
        let window = &out[out.len() - 8192..];
        for (j, &(_, f, _)) in tones.iter().enumerate() {
            let level = relative_level_db(window, RATE, f);
            if i == j {
                assert!(
                    level < -60.0,
                    "participant {i} hears itself at {f} Hz: {level} dB"
                );
            } else {
                assert!(level > -6.0, "participant {i} misses {f} Hz: {level} dB");
            }
        }
    }
}

#[test]
fn muted_participant_is_absent_from_every_mix_but_still_hears() {
    let mut m = room(&[1, 2, 3]);
    m.set_muted(ParticipantId(2), true).unwrap();
    let tones = [
        (ParticipantId(1), 440.0, 0.2),
        (ParticipantId(2), 1000.0, 0.2),
        (ParticipantId(3), 2500.0, 0.2),
    ];
    let outs = run(&mut m, &tones, 10);
    for out in [&outs[0], &outs[2]] {
        assert!(relative_level_db(&out[out.len() - 8192..], RATE, 1000.0) < -60.0);
    }
    let muted_hears = &outs[1][outs[1].len() - 8192..];
    assert!(relative_level_db(muted_hears, RATE, 440.0) > -6.0);
    assert!(relative_level_db(muted_hears, RATE, 2500.0) > -6.0);
}

#[test]
fn gain_scales_a_participant_in_the_mix() {
    let mut m = room(&[1, 2, 3]);
    m.set_gain(ParticipantId(1), 0.25).unwrap();
    let tones = [
        (ParticipantId(1), 440.0, 0.2),
        (ParticipantId(2), 1000.0, 0.2),
        (ParticipantId(3), 2500.0, 0.2),
    ];
    let outs = run(&mut m, &tones, 10);
    // Participant 3 hears 1 (gain 0.25) about 12 dB below 2 (gain 1).
    let l = relative_level_db(&outs[2][outs[2].len() - 8192..], RATE, 440.0);
    assert!(
        (-14.0..-10.0).contains(&l),
        "440 Hz at {l} dB, expected about -12 dB"
    );
}

#[test]
fn loud_sum_is_limited_not_wrapped() {
    let ids: Vec<u64> = (1..=6).collect();
    let mut m = room(&ids);
    // Six in-phase full-scale tones: the raw sum is six times full scale.
    let loud = vec![32767i16; N];
    let inputs: Vec<(ParticipantId, &[i16])> = ids
        .iter()
        .map(|&i| (ParticipantId(i), loud.as_slice()))
        .collect();
    m.mix(&inputs);
    let out = m.output(ParticipantId(1)).unwrap();
    assert!(
        out.iter().all(|&s| s > 30000),
        "limited output must stay positive and near full scale"
    );
}

#[test]
fn voice_activity_reports_start_and_stop_once_with_hysteresis() {
    let mut m = room(&[1, 2]);
    let id = ParticipantId(1);
    let loud = sine(300.0, RATE, 0.3, 0, N);
    // Between the stop (-50) and talk (-40) thresholds: neither starts nor stops talking.
    let medium = sine(300.0, RATE, 0.01, 0, N);
    let silence = vec![0i16; N];
    let mut events = Vec::new();
    let feed = |m: &mut Mixer, pcm: &[i16], ticks: usize, events: &mut Vec<VadEvent>| {
        for _ in 0..ticks {
            events.extend_from_slice(m.mix(&[(id, pcm)]));
        }
    };
    feed(&mut m, &medium, 20, &mut events);
    assert!(
        events.is_empty(),
        "a level between thresholds does not start talking"
    );
    feed(&mut m, &loud, 4, &mut events);
    assert!(events.is_empty(), "talking needs 5 voiced ticks");
    feed(&mut m, &loud, 1, &mut events);
    assert_eq!(events.len(), 1);
    assert!(events[0].talking && events[0].participant == id);
    feed(&mut m, &medium, 40, &mut events);
    assert_eq!(
        events.len(),
        1,
        "a level above the stop threshold keeps talking"
    );
    feed(&mut m, &silence, 24, &mut events);
    assert_eq!(events.len(), 1, "stopping needs 25 quiet ticks");
    feed(&mut m, &silence, 1, &mut events);
    assert_eq!(events.len(), 2);
    assert!(!events[1].talking);
    assert_eq!(m.is_talking(id), Some(false));
}

#[test]
fn missing_or_malformed_input_counts_as_silence() {
    let mut m = room(&[1, 2]);
    let short = vec![1000i16; 10];
    m.mix(&[(ParticipantId(1), &short), (ParticipantId(99), &short)]);
    assert!(m.output(ParticipantId(2)).unwrap().iter().all(|&s| s == 0));
}

#[test]
fn duplicate_frame_in_one_tick_is_ignored() {
    let mut m = room(&[1, 2]);
    let a = sine(440.0, RATE, 0.2, 0, N);
    m.mix(&[(ParticipantId(1), &a), (ParticipantId(1), &a)]);
    assert!(
        m.output(ParticipantId(1)).unwrap().iter().all(|&s| s == 0),
        "no echo of itself"
    );
    let heard = m.output(ParticipantId(2)).unwrap();
    let expected: Vec<i16> = a
        .iter()
        .map(|&s| limiter::soft_clip(s as f32 / 32768.0))
        .collect();
    assert_eq!(heard, expected.as_slice(), "heard once, not twice");
}

#[test]
fn talker_who_stops_sending_is_reported_stopped() {
    let mut m = room(&[1, 2]);
    let loud = sine(300.0, RATE, 0.3, 0, N);
    let mut events = Vec::new();
    for _ in 0..5 {
        events.extend_from_slice(m.mix(&[(ParticipantId(1), &loud)]));
    }
    for _ in 0..25 {
        events.extend_from_slice(m.mix(&[]));
    }
    assert_eq!(
        events.iter().map(|e| e.talking).collect::<Vec<_>>(),
        vec![true, false]
    );
}

#[test]
fn non_contributors_hear_exactly_the_full_mix_that_they_can_share() {
    let mut m = room(&[1, 2, 3]);
    m.set_muted(ParticipantId(3), true).unwrap();
    let a = sine(440.0, RATE, 0.2, 0, N);
    let b = sine(1000.0, RATE, 0.2, 0, N);
    let c = sine(2000.0, RATE, 0.2, 0, N);
    // 1 and 3 send (3 muted), 2 sends nothing this tick.
    m.mix(&[(ParticipantId(1), &a), (ParticipantId(3), &c)]);
    assert_eq!(m.contributed(ParticipantId(1)), Some(true));
    assert_eq!(m.contributed(ParticipantId(2)), Some(false));
    assert_eq!(m.contributed(ParticipantId(3)), Some(false), "muted");
    assert_eq!(m.contributed(ParticipantId(9)), None);
    assert_eq!(m.output(ParticipantId(2)).unwrap(), m.full_mix());
    assert_eq!(m.output(ParticipantId(3)).unwrap(), m.full_mix());
    assert!(m.output(ParticipantId(1)).unwrap().iter().all(|&s| s == 0));
    // Below the limiter's knee the mix is the input (to one step of the float round trip).
    for (&got, &sent) in m.full_mix().iter().zip(a.iter()) {
        assert!(
            (i32::from(got) - i32::from(sent)).abs() <= 1,
            "{got} vs {sent}"
        );
    }
    // Next tick only 2 speaks: now 1 shares the full mix.
    m.mix(&[(ParticipantId(2), &b)]);
    assert_eq!(m.contributed(ParticipantId(1)), Some(false));
    assert_eq!(m.output(ParticipantId(1)).unwrap(), m.full_mix());
}

#[test]
fn per_participant_vad_thresholds_apply() {
    let mut m = room(&[1]);
    // Talking after 2 voiced ticks instead of the default 5.
    m.set_vad(
        ParticipantId(1),
        VadConfig {
            talk_ticks: 2,
            ..VadConfig::default()
        },
    )
    .unwrap();
    let loud = sine(440.0, RATE, 0.3, 0, N);
    assert!(m.mix(&[(ParticipantId(1), &loud)]).is_empty());
    let ev = m.mix(&[(ParticipantId(1), &loud)]).to_vec();
    assert_eq!(ev.len(), 1);
    assert!(ev[0].talking);
    assert!(m.set_vad(ParticipantId(7), VadConfig::default()).is_err());
}

#[test]
fn frames_below_the_gate_stay_out_of_the_mix() {
    let mut m = Mixer::new(MixerConfig {
        gate_dbov: Some(-60.0),
        ..MixerConfig::default()
    });
    m.add(ParticipantId(1));
    m.add(ParticipantId(2));
    let loud = sine(440.0, RATE, 0.2, 0, N);
    // About -80 dBov: room noise, not speech.
    let faint = sine(1000.0, RATE, 0.0001, 0, N);
    m.mix(&[(ParticipantId(1), &loud), (ParticipantId(2), &faint)]);
    assert_eq!(m.contributed(ParticipantId(1)), Some(true));
    assert_eq!(m.contributed(ParticipantId(2)), Some(false), "gated");
    assert_eq!(m.output(ParticipantId(2)).unwrap(), m.full_mix());
    assert!(
        m.output(ParticipantId(1)).unwrap().iter().all(|&s| s == 0),
        "1 hears nothing of 2"
    );
}
