//! Opus packets from RTP → an Ogg Opus file (RFC 7845), written page by page.
//!
//! [`OggOpusWriter`] is sans-I/O in spirit: it writes to any `io::Write` and reads no clock, so
//! unit tests run it on a `Vec<u8>`. The recording service runs it on a `BufWriter<File>` on its
//! writer thread.
//!
//! Layout (RFC 7845 §3): a page holding only the identification header `OpusHead` (beginning of
//! stream), a page holding only the comment header `OpusTags`, then audio pages. The last page
//! carries the end-of-stream flag.
//!
//! Timing: the granule position is a count of 48 kHz samples (RFC 7845 §4). It is derived from
//! the RTP timestamps (Opus RTP always runs at 48 kHz, RFC 7587 §4.1) rather than from the
//! packets that happened to arrive: a gap left by lost packets or by DTX is filled with packets
//! whose frames are empty, which a decoder plays as packet-loss concealment (RFC 7845 §4.1,
//! RFC 6716 §3.2.1), so the file keeps the call's real timing and stays free of granule
//! jumps (RFC 7845 §4: an Ogg Opus stream has no gaps). Each packet's own length comes from its
//! TOC byte (RFC 6716 §3.1), which also gives the final granule position after the last packet.
//!
//! Crash safety: each page is flushed to the `io::Write` as soon as it is complete, and pages are
//! kept short ([`PAGE_SAMPLES`]), so a process that dies leaves a file that plays up to its
//! last complete page (minus the newest packet, which is always held back so that the
//! end-of-stream flag has a packet to ride on). [`OggOpusWriter::end_page`] lets an idle writer
//! close a page early.

use std::io::{self, Write};

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

/// The Opus sampling rate that granule positions and RTP timestamps count in (Hz).
pub const SAMPLE_RATE: u32 = 48_000;

/// Audio per page, in 48 kHz samples (250 ms): when a page holds this much, it is written out.
/// Bounds what a crash loses while keeping the per-page overhead (27 bytes + 1 per packet) low.
pub const PAGE_SAMPLES: u64 = 12_000;

/// Lacing values per page after which a page is written out even if short of
/// [`PAGE_SAMPLES`] (a page holds at most 255; staying below keeps packets unsplit).
const PAGE_SEGMENTS: usize = 200;

/// Largest gap, in 48 kHz samples (10 minutes, e.g. a call on hold), filled with concealment
/// packets. A larger jump is taken as a new RTP timeline (a new source or a restarted sender):
/// the packet is placed right after the previous one.
pub const MAX_GAP_SAMPLES: i64 = 600 * SAMPLE_RATE as i64;

/// How far back (48 kHz samples, 2 s) a timestamp may be and still count as a late or duplicate
/// packet, which is dropped; a timestamp further back is a new RTP timeline.
pub const REORDER_WINDOW: i64 = 2 * SAMPLE_RATE as i64;

/// Longest Opus packet (RFC 6716 §3.2.5): 120 ms, in 48 kHz samples.
const MAX_PACKET_SAMPLES: u32 = 5_760;

/// Why a payload is not a usable Opus packet (RFC 6716 §3.1, §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TocError {
    /// A zero-byte payload: there is no TOC byte.
    #[error("empty Opus packet")]
    Empty,
    /// A code 3 packet without its frame count byte.
    #[error("code 3 Opus packet without a frame count byte")]
    MissingFrameCount,
    /// A code 3 packet declaring zero frames.
    #[error("Opus packet with zero frames")]
    NoFrames,
    /// More than 120 ms of audio (RFC 6716 §3.2.5); the value is in 48 kHz samples.
    #[error("Opus packet of {0} samples exceeds 120 ms")]
    TooLong(u32),
}

/// Length of one frame of an Opus packet with this TOC byte, in 48 kHz samples (RFC 6716 §3.1,
/// Table 2): SILK-only configs 0–11 have 10/20/40/60 ms frames, hybrid 12–15 have 10/20 ms and
/// CELT-only 16–31 have 2.5/5/10/20 ms.
pub fn frame_samples(toc: u8) -> u32 {
    let config = toc >> 3;
    match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    }
}

/// Length of a whole Opus packet in 48 kHz samples, from its TOC byte and, for code 3, its frame
/// count byte (RFC 6716 §3.2): code 0 is one frame, codes 1 and 2 two frames, code 3 the count
/// in the low 6 bits of the second byte.
pub fn packet_samples(packet: &[u8]) -> Result<u32, TocError> {
    let &toc = packet.first().ok_or(TocError::Empty)?;
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => {
            let count = packet.get(1).ok_or(TocError::MissingFrameCount)? & 0x3F;
            if count == 0 {
                return Err(TocError::NoFrames);
            }
            u32::from(count)
        }
    };
    let samples = frames * frame_samples(toc);
    if samples > MAX_PACKET_SAMPLES {
        return Err(TocError::TooLong(samples));
    }
    Ok(samples)
}

/// Why [`OggOpusWriter`] failed.
#[derive(Debug, thiserror::Error)]
pub enum OggError {
    /// The payload is not an Opus packet; nothing was written for it.
    #[error(transparent)]
    Packet(#[from] TocError),
    /// Writing to the output failed; the file ends at its last complete page.
    #[error("writing the Ogg file: {0}")]
    Io(#[from] io::Error),
}

/// What [`OggOpusWriter::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Appended (after concealment packets for any gap before it).
    Appended,
    /// Dropped: its timestamp is not after the previous packet's (late or duplicate).
    Late,
}

/// Counters of one writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OggStats {
    /// Opus packets appended from RTP.
    pub packets: u64,
    /// Concealment packets synthesised to fill gaps.
    pub filler_packets: u64,
    /// Packets dropped as late or duplicate.
    pub late: u64,
    /// Timestamp jumps taken as a new RTP timeline.
    pub discontinuities: u64,
    /// Granule position reached: 48 kHz samples of audio, gaps included.
    pub samples: u64,
    /// Bytes written to the output (complete pages only).
    pub bytes: u64,
}

impl OggStats {
    /// The audio length in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        self.samples * 1000 / u64::from(SAMPLE_RATE)
    }
}

/// Counts the bytes that reach the output, so the writer knows when a page went out.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Where the RTP timeline stands.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    /// RTP timestamp of the last appended packet.
    last_ts: u32,
    /// The same, unwrapped: samples since the first packet's timestamp.
    last_ext: i64,
    /// Added to an unwrapped timestamp to get its granule position (moves at discontinuities).
    shift: i64,
    /// TOC byte of the last packet, copied into concealment packets.
    last_toc: u8,
}

/// A packet of the page in progress.
struct Pending {
    packet: Vec<u8>,
    /// Granule position at the end of this packet.
    granule: u64,
    /// Its length in 48 kHz samples.
    samples: u32,
}

/// Lacing values a packet takes in a page (RFC 3533 §6).
fn segments_of(packet: &[u8]) -> usize {
    packet.len() / 255 + 1
}

/// Writes one Opus stream as Ogg pages to `W`; see the module documentation.
pub struct OggOpusWriter<W: Write> {
    out: PacketWriter<'static, Counting<W>>,
    serial: u32,
    vendor: String,
    timeline: Option<Timeline>,
    /// Packets appended but not yet written. The last one is held back until the next packet
    /// or [`OggOpusWriter::finish`].
    pending: Vec<Pending>,
    stats: OggStats,
}

impl<W: Write> OggOpusWriter<W> {
    /// A writer for one logical stream with Ogg serial number `serial` (random per file, so
    /// files can be chained). `vendor` goes into `OpusTags` (e.g. `"Bifrons 0.1.0"`).
    /// Nothing is written before the first packet, whose TOC byte gives the channel count.
    pub fn new(out: W, serial: u32, vendor: &str) -> Self {
        Self {
            out: PacketWriter::new(Counting {
                inner: out,
                bytes: 0,
            }),
            serial,
            vendor: vendor.to_owned(),
            timeline: None,
            pending: Vec::new(),
            stats: OggStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> OggStats {
        self.stats
    }

    /// Whether any packet has been appended (and so the headers written).
    pub fn has_audio(&self) -> bool {
        self.timeline.is_some()
    }

    /// Appends one Opus packet (an RTP payload) with its RTP timestamp (48 kHz).
    ///
    /// A gap since the previous packet is filled with concealment packets first; a packet whose
    /// timestamp is not after the previous one's (within [`REORDER_WINDOW`]) is dropped
    /// ([`Pushed::Late`]). Completed pages are written and flushed before this returns.
    /// Errors: [`OggError::Packet`] for a payload that is not Opus (nothing written),
    /// [`OggError::Io`] when the output fails.
    pub fn push(&mut self, packet: &[u8], rtp_timestamp: u32) -> Result<Pushed, OggError> {
        let samples = packet_samples(packet)?;
        let toc = packet[0];
        match self.timeline {
            None => {
                self.write_headers(if toc & 0x04 != 0 { 2 } else { 1 })?;
                self.timeline = Some(Timeline {
                    last_ts: rtp_timestamp,
                    last_ext: 0,
                    shift: 0,
                    last_toc: toc,
                });
            }
            Some(mut t) => {
                let delta = i64::from(rtp_timestamp.wrapping_sub(t.last_ts) as i32);
                if delta <= 0 && delta > -REORDER_WINDOW {
                    self.stats.late += 1;
                    return Ok(Pushed::Late);
                }
                let ext = t.last_ext + delta;
                let pos = self.stats.samples as i64;
                let mut gap = ext + t.shift - pos;
                if delta <= -REORDER_WINDOW || gap > MAX_GAP_SAMPLES {
                    t.shift -= gap;
                    gap = 0;
                    self.stats.discontinuities += 1;
                }
                if gap > 0 {
                    self.conceal(t.last_toc, gap as u64)?;
                }
                t.last_ts = rtp_timestamp;
                t.last_ext = ext;
                t.last_toc = toc;
                self.timeline = Some(t);
            }
        }
        self.append(packet.to_vec(), samples)?;
        self.stats.packets += 1;
        Ok(Pushed::Appended)
    }

    /// Writes out the page in progress now, except for the newest packet (held back for the
    /// end-of-stream page), so that a quiet stream (DTX, hold) does not keep audio off the disk.
    pub fn end_page(&mut self) -> Result<(), OggError> {
        if self.pending.len() >= 2 {
            let keep = self.pending.pop();
            self.write_pending(PacketWriteEndInfo::EndPage)?;
            self.pending.extend(keep);
        }
        Ok(())
    }

    /// Writes the last page with the end-of-stream flag and returns the output and the final
    /// counters. A writer that got no packet writes nothing (not even headers): its caller
    /// decides what an empty recording leaves behind.
    pub fn finish(mut self) -> Result<(W, OggStats), OggError> {
        self.write_pending(PacketWriteEndInfo::EndStream)?;
        let stats = self.stats;
        Ok((self.out.into_inner().inner, stats))
    }

    /// `OpusHead` (RFC 7845 §5.1) and `OpusTags` (§5.2), each alone on its page.
    fn write_headers(&mut self, channels: u8) -> Result<(), OggError> {
        let mut head = Vec::with_capacity(19);
        head.extend_from_slice(b"OpusHead");
        head.push(1); // version
        head.push(channels);
        // Pre-skip 0: the file plays exactly what an RTP receiver played, aligned with the RTP
        // timestamps (the sender's encoder delay was part of what the far end heard).
        head.extend_from_slice(&0u16.to_le_bytes());
        head.extend_from_slice(&SAMPLE_RATE.to_le_bytes()); // input sample rate, informative
        head.extend_from_slice(&0i16.to_le_bytes()); // output gain
        head.push(0); // channel mapping family 0: mono or stereo, no table
        let mut tags = Vec::with_capacity(16 + self.vendor.len());
        tags.extend_from_slice(b"OpusTags");
        tags.extend_from_slice(&(self.vendor.len() as u32).to_le_bytes());
        tags.extend_from_slice(self.vendor.as_bytes());
        tags.extend_from_slice(&0u32.to_le_bytes()); // no user comments
        for header in [head, tags] {
            self.out
                .write_packet(header, self.serial, PacketWriteEndInfo::EndPage, 0)?;
        }
        self.flush_written()
    }

    /// Fills `gap` samples with packets of empty frames shaped like the last packet (same mode,
    /// bandwidth and channels: RFC 7845 §4.1), rounded to whole frames; any remainder is
    /// absorbed at the next gap, since positions are always recomputed from the timestamps.
    fn conceal(&mut self, last_toc: u8, gap: u64) -> Result<(), OggError> {
        let frame = frame_samples(last_toc);
        let mut frames = (gap + u64::from(frame) / 2) / u64::from(frame);
        let per_packet = u64::from(MAX_PACKET_SAMPLES / frame);
        let base = last_toc & 0xFC;
        while frames > 0 {
            let n = frames.min(per_packet);
            // Code 0 with one empty frame, or code 3 (CBR, no padding) with n empty frames.
            let packet = if n == 1 {
                vec![base]
            } else {
                vec![base | 0x03, n as u8]
            };
            self.append(packet, n as u32 * frame)?;
            self.stats.filler_packets += 1;
            frames -= n;
        }
        Ok(())
    }

    /// Adds a packet to the page in progress, first writing that page out when the packet
    /// would take it past [`PAGE_SAMPLES`] of audio or [`PAGE_SEGMENTS`] lacing values.
    fn append(&mut self, packet: Vec<u8>, samples: u32) -> Result<(), OggError> {
        if let Some(first) = self.pending.first() {
            let page_start = first.granule - u64::from(first.samples);
            let audio = self.stats.samples + u64::from(samples) - page_start;
            let segments: usize = self
                .pending
                .iter()
                .map(|p| segments_of(&p.packet))
                .sum::<usize>()
                + segments_of(&packet);
            if audio > PAGE_SAMPLES || segments > PAGE_SEGMENTS {
                self.write_pending(PacketWriteEndInfo::EndPage)?;
            }
        }
        self.stats.samples += u64::from(samples);
        self.pending.push(Pending {
            packet,
            granule: self.stats.samples,
            samples,
        });
        Ok(())
    }

    /// Writes every pending packet, the last one ending a page (or the stream).
    fn write_pending(&mut self, end: PacketWriteEndInfo) -> Result<(), OggError> {
        let n = self.pending.len();
        for (i, p) in self.pending.drain(..).enumerate() {
            let info = if i + 1 == n {
                end
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            self.out
                .write_packet(p.packet, self.serial, info, p.granule)?;
        }
        self.flush_written()
    }

    /// Pushes complete pages out of any buffer below (one `write` per page on a `BufWriter`).
    fn flush_written(&mut self) -> Result<(), OggError> {
        let bytes = self.out.inner().bytes;
        if bytes > self.stats.bytes {
            self.out.inner_mut().flush()?;
            self.stats.bytes = bytes;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ogg::reading::PacketReader;
    use std::io::Cursor;

    /// TOC of CELT-only fullband 20 ms mono (config 31), what libopus sends for music.
    const CELT_20: u8 = 31 << 3;
    /// TOC of SILK-only wideband 20 ms stereo (config 9, s = 1), typical WebRTC speech.
    const SILK_WB_20_STEREO: u8 = (9 << 3) | 0x04;

    fn packet(toc: u8, len: usize) -> Vec<u8> {
        let mut p = vec![toc];
        p.resize(len, 0xA5);
        p
    }

    struct Read {
        data: Vec<u8>,
        granule: u64,
        first_in_page: bool,
        last_in_page: bool,
        first_in_stream: bool,
        last_in_stream: bool,
    }

    fn read_all(bytes: Vec<u8>) -> Vec<Read> {
        let mut r = PacketReader::new(Cursor::new(bytes));
        let mut out = Vec::new();
        while let Some(p) = r.read_packet().unwrap() {
            out.push(Read {
                granule: p.absgp_page(),
                first_in_page: p.first_in_page(),
                last_in_page: p.last_in_page(),
                first_in_stream: p.first_in_stream(),
                last_in_stream: p.last_in_stream(),
                data: p.data,
            });
        }
        out
    }

    #[test]
    fn toc_gives_packet_durations_for_every_mode() {
        let cases: &[(&[u8], u32)] = &[
            (&[0 << 3], 480),                    // SILK NB 10 ms
            (&[1 << 3], 960),                    // SILK NB 20 ms
            (&[10 << 3], 1920),                  // SILK WB 40 ms
            (&[11 << 3], 2880),                  // SILK WB 60 ms
            (&[(11 << 3) | 1, 0, 0], 5760),      // two 60 ms frames: the 120 ms maximum
            (&[12 << 3], 480),                   // hybrid SWB 10 ms
            (&[(15 << 3) | 0x04], 960),          // hybrid FB 20 ms stereo
            (&[16 << 3], 120),                   // CELT NB 2.5 ms
            (&[17 << 3], 240),                   // CELT NB 5 ms
            (&[30 << 3], 480),                   // CELT FB 10 ms
            (&[CELT_20], 960),                   // CELT FB 20 ms
            (&[CELT_20 | 2, 1, 0], 1920),        // code 2: two frames
            (&[CELT_20 | 3, 3], 2880),           // code 3: three frames
            (&[(16 << 3) | 3, 0x80 | 48], 5760), // 48 × 2.5 ms, VBR flag set
        ];
        for &(p, samples) in cases {
            assert_eq!(packet_samples(p), Ok(samples), "TOC {:#04x}", p[0]);
        }
        assert_eq!(packet_samples(&[]), Err(TocError::Empty));
        assert_eq!(
            packet_samples(&[CELT_20 | 3]),
            Err(TocError::MissingFrameCount)
        );
        assert_eq!(packet_samples(&[CELT_20 | 3, 0]), Err(TocError::NoFrames));
        assert_eq!(
            packet_samples(&[CELT_20 | 3, 7]),
            Err(TocError::TooLong(6720))
        );
    }

    #[test]
    fn headers_come_first_each_on_its_own_page() {
        let mut w = OggOpusWriter::new(Vec::new(), 7, "Bifrons test");
        w.push(&packet(SILK_WB_20_STEREO, 40), 1000).unwrap();
        let (bytes, stats) = w.finish().unwrap();
        assert_eq!(&bytes[..4], b"OggS");
        assert_eq!(bytes[5] & 0x02, 0x02, "first page begins the stream");
        let p = read_all(bytes);
        assert_eq!(p.len(), 3);

        let head = &p[0].data;
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!(head.len(), 19);
        assert_eq!((head[8], head[9]), (1, 2), "version 1, stereo from the TOC");
        assert_eq!(u16::from_le_bytes([head[10], head[11]]), 0, "pre-skip");
        assert_eq!(
            u32::from_le_bytes([head[12], head[13], head[14], head[15]]),
            48_000
        );
        assert_eq!(head[18], 0, "mapping family 0");
        assert!(p[0].first_in_stream && p[0].first_in_page && p[0].last_in_page);
        assert_eq!(p[0].granule, 0);

        assert_eq!(&p[1].data[..8], b"OpusTags");
        assert!(p[1].data.windows(12).any(|w| w == b"Bifrons test"));
        assert!(p[1].first_in_page && p[1].last_in_page);
        assert_eq!(p[1].granule, 0);

        assert!(p[2].first_in_page && p[2].last_in_stream);
        assert_eq!(p[2].granule, 960, "the TOC's 20 ms end the stream");
        assert_eq!(stats.samples, 960);
        assert_eq!(stats.duration_ms(), 20);
    }

    #[test]
    fn gap_is_filled_with_concealment_and_keeps_rtp_timing() {
        let mut w = OggOpusWriter::new(Vec::new(), 1, "t");
        let start = u32::MAX - 960; // the timestamps wrap around during the test
        for i in 0..3u32 {
            w.push(&packet(CELT_20, 50), start.wrapping_add(960 * i))
                .unwrap();
        }
        // 9 packets (180 ms) lost: the next one is 12 × 20 ms after the first.
        w.push(&packet(CELT_20, 50), start.wrapping_add(960 * 12))
            .unwrap();
        // A 10 ms packet then closes the stream.
        w.push(&packet(30 << 3, 30), start.wrapping_add(960 * 13))
            .unwrap();
        let (bytes, stats) = w.finish().unwrap();
        assert_eq!(stats.samples, 960 * 13 + 480);
        assert_eq!((stats.packets, stats.filler_packets), (5, 2));

        let audio = &read_all(bytes)[2..];
        let lens: Vec<u32> = audio
            .iter()
            .map(|p| packet_samples(&p.data).unwrap())
            .collect();
        assert_eq!(lens, vec![960, 960, 960, 5760, 2880, 960, 480]);
        // Concealment packets: code 3 with six empty 20 ms frames, then three, same config.
        assert_eq!(audio[3].data, vec![CELT_20 | 3, 6]);
        assert_eq!(audio[4].data, vec![CELT_20 | 3, 3]);
        let last = audio.last().unwrap();
        assert!(last.last_in_stream);
        assert_eq!(last.granule, 960 * 13 + 480);
    }

    #[test]
    fn late_and_duplicate_packets_are_dropped_and_big_jumps_start_a_new_timeline() {
        let mut w = OggOpusWriter::new(Vec::new(), 1, "t");
        assert_eq!(
            w.push(&packet(CELT_20, 20), 5000).unwrap(),
            Pushed::Appended
        );
        assert_eq!(
            w.push(&packet(CELT_20, 20), 5960).unwrap(),
            Pushed::Appended
        );
        assert_eq!(w.push(&packet(CELT_20, 20), 5960).unwrap(), Pushed::Late);
        assert_eq!(w.push(&packet(CELT_20, 20), 5000).unwrap(), Pushed::Late);
        // A new source whose timestamps are far away: played right after the last packet.
        w.push(&packet(CELT_20, 20), 3_000_000_000).unwrap();
        w.push(&packet(CELT_20, 20), 3_000_000_960).unwrap();
        w.push(&packet(CELT_20, 20), 1_000).unwrap();
        let s = w.stats();
        assert_eq!((s.packets, s.late, s.discontinuities), (5, 2, 2));
        assert_eq!((s.samples, s.filler_packets), (5 * 960, 0));
        assert!(matches!(
            w.push(&[], 7000),
            Err(OggError::Packet(TocError::Empty))
        ));
    }

    #[test]
    fn pages_are_written_as_they_fill_and_the_newest_packet_is_held() {
        let mut w = OggOpusWriter::new(Vec::new(), 1, "t");
        w.push(&packet(CELT_20, 60), 0).unwrap();
        let headers = w.stats().bytes;
        assert!(headers > 0, "headers are written with the first packet");
        for i in 1..12u32 {
            w.push(&packet(CELT_20, 60), 960 * i).unwrap();
        }
        assert_eq!(
            w.stats().bytes,
            headers,
            "240 ms: the 250 ms page is not full"
        );
        w.push(&packet(CELT_20, 60), 960 * 12).unwrap();
        let one_page = w.stats().bytes;
        assert!(one_page > headers, "a full page went out");
        w.push(&packet(CELT_20, 60), 960 * 13).unwrap();
        w.end_page().unwrap();
        assert!(
            w.stats().bytes > one_page,
            "an idle writer can close its page"
        );
        let before = w.stats().bytes;
        w.end_page().unwrap();
        assert_eq!(
            w.stats().bytes,
            before,
            "the newest packet stays for the EOS page"
        );

        // What a crash leaves: every written page reads back, granules in order.
        let mut out = Vec::new();
        let mut w2 = OggOpusWriter::new(&mut out, 1, "t");
        for i in 0..30u32 {
            w2.push(&packet(CELT_20, 60), 960 * i).unwrap();
        }
        drop(w2);
        let p = read_all(out);
        let granules: Vec<u64> = p
            .iter()
            .skip(2)
            .filter(|p| p.last_in_page)
            .map(|p| p.granule)
            .collect();
        assert!(!granules.is_empty() && granules.windows(2).all(|g| g[0] < g[1]));
        assert!(p.iter().all(|p| !p.last_in_stream), "no EOS without finish");
    }

    #[test]
    fn finish_without_audio_writes_nothing() {
        let w = OggOpusWriter::new(Vec::new(), 1, "t");
        assert!(!w.has_audio());
        let (bytes, stats) = w.finish().unwrap();
        assert!(bytes.is_empty());
        assert_eq!(stats.samples, 0);
    }
}
