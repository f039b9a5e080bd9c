//! The `profile-level-id` (RFC 6184 §8.1) to offer for an H.264 stream, from its SPS.

use bifrons_rtmp::AvcConfig;

/// `profile-level-id` as six hex digits for the stream whose decoder configuration is
/// `config`: profile_idc and level_idc from the SPS; the constraint flags normalised to what
/// browsers list (`42e0` constrained baseline when constraint_set1 is set, `4200` baseline,
/// `4d00` main, `6400` high), so that a browser matches the profile it can decode. Level 1b
/// and unknown profiles keep their bytes.
pub fn profile_level_id(config: &AvcConfig) -> String {
    let (profile, compat, level) = match config.sps.first().filter(|s| s.len() >= 4) {
        Some(sps) => (sps[1], sps[2], sps[3]),
        None => (config.profile, config.compatibility, config.level),
    };
    let compat = match profile {
        66 if compat & 0x40 != 0 => 0xe0,
        66 => 0x00,
        77 | 100 => 0x00,
        _ => compat,
    };
    format!("{profile:02x}{compat:02x}{level:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn config(sps: &[u8]) -> AvcConfig {
        AvcConfig {
            profile: 0,
            compatibility: 0,
            level: 0,
            nal_length_size: 4,
            sps: vec![Bytes::copy_from_slice(sps)],
            pps: vec![Bytes::from_static(&[0x68, 1])],
        }
    }

    #[test]
    fn profiles_as_browsers_list_them() {
        // x264 high 3.0, baseline with constraint_set0+1 (42c01e), main 3.1.
        assert_eq!(
            profile_level_id(&config(&[0x67, 0x64, 0x00, 0x1e, 0xac])),
            "64001e"
        );
        assert_eq!(
            profile_level_id(&config(&[0x67, 0x42, 0xc0, 0x1e])),
            "42e01e"
        );
        assert_eq!(
            profile_level_id(&config(&[0x67, 0x42, 0x80, 0x1f])),
            "42001f"
        );
        assert_eq!(
            profile_level_id(&config(&[0x67, 0x4d, 0x40, 0x1f])),
            "4d001f"
        );
    }
}
