//! Minimal 16-bit PCM mono WAV reading and writing, for the softphone and the tests.

use std::io::{self, Read, Write};

/// Mono 16-bit audio with its sample rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    /// Samples per second.
    pub rate: u32,
    /// Samples (first channel if the file had several).
    pub samples: Vec<i16>,
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

impl Wav {
    /// Reads a RIFF/WAVE file with 16-bit PCM samples; keeps the first channel.
    pub fn read(mut r: impl Read) -> io::Result<Wav> {
        let mut data = Vec::new();
        r.read_to_end(&mut data)?;
        if data.len() < 12 || &data[0..4] != b"RIFF" || &data[8..12] != b"WAVE" {
            return Err(bad("not a RIFF/WAVE file"));
        }
        let mut pos = 12;
        let (mut rate, mut channels, mut bits) = (0u32, 0u16, 0u16);
        while pos + 8 <= data.len() {
            let id = &data[pos..pos + 4];
            let len =
                u32::from_le_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]])
                    as usize;
            let body = &data[pos + 8..(pos + 8 + len).min(data.len())];
            if id == b"fmt " && body.len() >= 16 {
                channels = u16::from_le_bytes([body[2], body[3]]);
                rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                bits = u16::from_le_bytes([body[14], body[15]]);
            } else if id == b"data" {
                if bits != 16 || channels == 0 {
                    return Err(bad("only 16-bit PCM is supported"));
                }
                let frame = 2 * channels as usize;
                let samples = body
                    .chunks_exact(frame)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                return Ok(Wav { rate, samples });
            }
            pos += 8 + len + (len & 1);
        }
        Err(bad("no data chunk"))
    }

    /// Writes a 16-bit mono PCM file.
    pub fn write(&self, mut w: impl Write) -> io::Result<()> {
        let data_len = (self.samples.len() * 2) as u32;
        w.write_all(b"RIFF")?;
        w.write_all(&(36 + data_len).to_le_bytes())?;
        w.write_all(b"WAVEfmt ")?;
        w.write_all(&16u32.to_le_bytes())?;
        w.write_all(&1u16.to_le_bytes())?;
        w.write_all(&1u16.to_le_bytes())?;
        w.write_all(&self.rate.to_le_bytes())?;
        w.write_all(&(self.rate * 2).to_le_bytes())?;
        w.write_all(&2u16.to_le_bytes())?;
        w.write_all(&16u16.to_le_bytes())?;
        w.write_all(b"data")?;
        w.write_all(&data_len.to_le_bytes())?;
        let mut bytes = Vec::with_capacity(self.samples.len() * 2);
        for s in &self.samples {
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        w.write_all(&bytes)
    }

    /// A sine tone, for tests and diagnostics.
    pub fn tone(rate: u32, freq: f64, seconds: f64, amplitude: f64) -> Wav {
        let n = (rate as f64 * seconds) as usize;
        let samples = (0..n)
            .map(|i| {
                (amplitude
                    * 32767.0
                    * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin())
                    as i16
            })
            .collect();
        Wav { rate, samples }
    }

    /// Resamples to 8 kHz by picking every k-th sample after a crude box filter (48 kHz → 8 kHz).
    pub fn to_8k(&self) -> Wav {
        if self.rate == 8000 || self.rate % 8000 != 0 {
            return self.clone();
        }
        let k = (self.rate / 8000) as usize;
        let samples = self
            .samples
            .chunks(k)
            .map(|c| (c.iter().map(|&s| s as i32).sum::<i32>() / c.len() as i32) as i16)
            .collect();
        Wav {
            rate: 8000,
            samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let w = Wav::tone(8000, 440.0, 0.1, 0.5);
        let mut buf = Vec::new();
        w.write(&mut buf).unwrap();
        assert_eq!(Wav::read(buf.as_slice()).unwrap(), w);
        assert!(Wav::read(&b"RIFFxxxxWAVE"[..]).is_err());
    }
}
