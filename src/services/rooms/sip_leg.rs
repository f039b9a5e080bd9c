//! The media of a SIP leg in a room: the call's own RTP endpoint (G.711 at 8 kHz or Opus at
//! 48 kHz, as negotiated) read into the participant's input queue, and the participant's mix
//! sent back through the same endpoint, which keeps the leg's SSRC, sequence numbers and
//! timestamps (RFC 3550 §5.1). Resampling to and from the room's rate happens in the mixing
//! job like for any other G.711 or Opus participant.

use std::sync::Arc;

use bifrons_sip::rtp::{RtpEndpoint, RtpEvent};
use bifrons_sip::Codec;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::{AudioPacket, MixCodec, OutSink, ParticipantInput};
use crate::media::RtpPacket;
use crate::services::sinks::AudioSink;

/// The room codec of a codec negotiated on a SIP leg; `None` for one rooms do not mix
/// (G.722).
pub fn mix_codec(codec: Codec) -> Option<MixCodec> {
    match codec {
        Codec::Opus => Some(MixCodec::Opus),
        Codec::Pcmu => Some(MixCodec::Pcmu),
        Codec::Pcma => Some(MixCodec::Pcma),
        _ => None,
    }
}

/// A participant's mix into a SIP call's RTP endpoint. The endpoint numbers the packets
/// itself; [`RtpEndpoint::send_audio`] only queues, so the mixing thread never waits.
pub struct RtpEndpointSink {
    rtp: Arc<RtpEndpoint>,
    ticks: u32,
}

impl RtpEndpointSink {
    /// The sink of a leg sending `codec` on `rtp`, as an [`OutSink`] (its header values are
    /// the endpoint's business: the ones given here are not used).
    pub fn out_sink(rtp: Arc<RtpEndpoint>, codec: MixCodec) -> OutSink {
        let sink = Self {
            rtp,
            ticks: codec.samples_per_tick(),
        };
        OutSink::random(Arc::new(sink), 0)
    }
}

impl AudioSink for RtpEndpointSink {
    fn send_audio(&self, packet: RtpPacket) -> bool {
        self.rtp.send_audio(&packet.payload, self.ticks).is_ok()
    }
}

/// Reads the leg's RTP until the endpoint closes or `stop`: audio of payload type `pt` into
/// `input`, RFC 4733 digits to `on_dtmf`. Other payload types are ignored.
pub async fn pump(
    rtp: Arc<RtpEndpoint>,
    pt: u8,
    input: ParticipantInput,
    stop: CancellationToken,
    on_dtmf: impl Fn(char) + Send,
) {
    loop {
        let event = tokio::select! {
            _ = stop.cancelled() => return,
            e = rtp.recv() => e,
        };
        match event {
            None => return,
            Some(RtpEvent::Audio {
                pt: got,
                seq,
                timestamp,
                payload,
            }) if got == pt => {
                input.push(AudioPacket {
                    level: None,
                    seq,
                    timestamp,
                    payload: Bytes::from(payload),
                });
            }
            Some(RtpEvent::Audio { .. }) => {}
            Some(RtpEvent::Dtmf(digit)) => on_dtmf(digit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::rooms::NewParticipant;
    use bifrons_sip::rtp::RtpParams;
    use std::net::IpAddr;
    use std::time::Duration;

    #[test]
    fn sip_codecs_map_to_the_rooms() {
        assert_eq!(mix_codec(Codec::Pcma), Some(MixCodec::Pcma));
        assert_eq!(mix_codec(Codec::Opus), Some(MixCodec::Opus));
        assert_eq!(mix_codec(Codec::G722), None);
    }

    #[tokio::test]
    async fn audio_goes_both_ways_and_digits_are_reported() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let leg = Arc::new(RtpEndpoint::bind(ip, 44000..=44999).await.unwrap());
        let phone = Arc::new(RtpEndpoint::bind(ip, 45000..=45999).await.unwrap());
        let params = RtpParams {
            pt: 0,
            dtmf_pt: Some(101),
            clock_rate: 8000,
            dtmf_rate: 8000,
            ptime: 20,
        };
        leg.configure(phone.local_addr().unwrap(), params);
        phone.configure(leg.local_addr().unwrap(), params);
        let (entry, input) = NewParticipant::new(1, MixCodec::Pcmu);
        let stop = CancellationToken::new();
        let (tx, mut digits) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(pump(leg.clone(), 0, input, stop.clone(), move |d| {
            let _ = tx.send(d);
        }));
        for _ in 0..5 {
            phone.send_audio(&[0xff; 160], 160).unwrap();
        }
        phone.send_dtmf('7', 60).await.unwrap();
        let digit = tokio::time::timeout(Duration::from_secs(5), digits.recv()).await;
        assert_eq!(digit.unwrap(), Some('7'));
        let mut queued = 0;
        while entry.input.try_recv().is_some() {
            queued += 1;
        }
        assert_eq!(
            queued, 5,
            "every audio packet reached the participant's queue"
        );
        let out = RtpEndpointSink::out_sink(leg.clone(), MixCodec::Pcmu);
        let packet = RtpPacket {
            payload_type: 0,
            sequence_number: 1,
            timestamp: 0,
            ssrc: 1,
            marker: false,
            payload: Bytes::from_static(&[0x55; 160]),
        };
        assert!(out.sink.send_audio(packet));
        let got = tokio::time::timeout(Duration::from_secs(5), phone.recv()).await;
        assert!(
            matches!(got, Ok(Some(RtpEvent::Audio { pt: 0, ref payload, .. })) if payload.len() == 160),
            "{got:?}"
        );
        stop.cancel();
        task.await.unwrap();
    }
}
