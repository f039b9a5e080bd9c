//! AVCDecoderConfigurationRecord (ISO 14496-15 §5.2.4.1) and length-prefixed NAL units.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{need, FlvError};
use crate::media::AvcConfig;

/// Parses an AVCDecoderConfigurationRecord into SPS/PPS lists and the NAL length size.
pub fn parse_avc_config(data: &Bytes) -> Result<AvcConfig, FlvError> {
    need("AVCDecoderConfigurationRecord", data, 6)?;
    if data[0] != 1 {
        return Err(FlvError::Invalid("AVCDecoderConfigurationRecord version"));
    }
    let nal_length_size = (data[4] & 0x03) + 1;
    if nal_length_size == 3 {
        // 3 is reserved by the spec; no encoder emits it.
        return Err(FlvError::Invalid("NAL length size 3"));
    }
    let mut pos = 5;
    let sps_count = usize::from(data[pos] & 0x1f);
    pos += 1;
    let sps = read_parameter_sets(data, &mut pos, sps_count)?;
    need("AVCDecoderConfigurationRecord", data, pos + 1)?;
    let pps_count = usize::from(data[pos]);
    pos += 1;
    let pps = read_parameter_sets(data, &mut pos, pps_count)?;
    Ok(AvcConfig {
        profile: data[1],
        compatibility: data[2],
        level: data[3],
        nal_length_size,
        sps,
        pps,
    })
}

fn read_parameter_sets(
    data: &Bytes,
    pos: &mut usize,
    count: usize,
) -> Result<Vec<Bytes>, FlvError> {
    let mut sets = Vec::with_capacity(count);
    for _ in 0..count {
        need("parameter set length", data, *pos + 2)?;
        let len = usize::from(u16::from_be_bytes([data[*pos], data[*pos + 1]]));
        *pos += 2;
        need("parameter set", data, *pos + len)?;
        sets.push(data.slice(*pos..*pos + len));
        *pos += len;
    }
    Ok(sets)
}

/// Serializes an [`AvcConfig`] as an AVCDecoderConfigurationRecord.
pub fn serialize_avc_config(config: &AvcConfig) -> Bytes {
    let mut out = BytesMut::with_capacity(
        7 + config
            .sps
            .iter()
            .chain(&config.pps)
            .map(|s| s.len() + 2)
            .sum::<usize>(),
    );
    out.put_u8(1);
    out.put_u8(config.profile);
    out.put_u8(config.compatibility);
    out.put_u8(config.level);
    out.put_u8(0xfc | (config.nal_length_size.clamp(1, 4) - 1));
    out.put_u8(0xe0 | (config.sps.len().min(31) as u8));
    for sps in config.sps.iter().take(31) {
        out.put_u16(sps.len() as u16);
        out.put_slice(sps);
    }
    out.put_u8(config.pps.len().min(255) as u8);
    for pps in config.pps.iter().take(255) {
        out.put_u16(pps.len() as u16);
        out.put_slice(pps);
    }
    out.freeze()
}

/// Splits length-prefixed NAL units (AVCC framing) into zero-copy slices.
pub fn split_length_prefixed(data: &Bytes, nal_length_size: u8) -> Result<Vec<Bytes>, FlvError> {
    let size = usize::from(nal_length_size);
    if !(1..=4).contains(&size) {
        return Err(FlvError::Invalid("NAL length size"));
    }
    let mut nalus = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        need("NAL unit length", data, pos + size)?;
        let len = data[pos..pos + size]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        pos += size;
        need("NAL unit", data, pos + len)?;
        if len > 0 {
            nalus.push(data.slice(pos..pos + len));
        }
        pos += len;
    }
    Ok(nalus)
}

/// Appends NAL units with 4-byte length prefixes (the framing every encoder uses).
pub fn write_length_prefixed(out: &mut BytesMut, nalus: &[Bytes]) {
    for nalu in nalus {
        out.put_u32(nalu.len() as u32);
        out.put_slice(nalu);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn config() -> AvcConfig {
        AvcConfig {
            profile: 100,
            compatibility: 0,
            level: 31,
            nal_length_size: 4,
            sps: vec![Bytes::from_static(&[0x67, 0x64, 0x00, 0x1f, 0xac])],
            pps: vec![Bytes::from_static(&[0x68, 0xee, 0x3c, 0x80])],
        }
    }

    #[test]
    fn avc_config_round_trips() {
        let bytes = serialize_avc_config(&config());
        assert_eq!(parse_avc_config(&bytes).unwrap(), config());
    }

    #[test]
    fn truncated_avc_config_is_an_error() {
        let bytes = serialize_avc_config(&config());
        for cut in 0..bytes.len() {
            assert!(
                parse_avc_config(&bytes.slice(..cut)).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn length_prefixed_round_trips() {
        let nalus = vec![
            Bytes::from_static(&[0x65, 1, 2, 3]),
            Bytes::from_static(&[0x06, 9]),
        ];
        let mut out = BytesMut::new();
        write_length_prefixed(&mut out, &nalus);
        assert_eq!(split_length_prefixed(&out.freeze(), 4).unwrap(), nalus);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200), size in 0u8..6) {
            let data = Bytes::from(data);
            let _ = parse_avc_config(&data);
            let _ = split_length_prefixed(&data, size);
        }

        #[test]
        fn nalu_lists_round_trip(nalus in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..8)) {
            let nalus: Vec<Bytes> = nalus.into_iter().map(Bytes::from).collect();
            let mut out = BytesMut::new();
            write_length_prefixed(&mut out, &nalus);
            prop_assert_eq!(split_length_prefixed(&out.freeze(), 4).unwrap(), nalus);
        }
    }
}
