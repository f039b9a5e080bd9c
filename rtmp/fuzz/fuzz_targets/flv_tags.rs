//! FLV tag bodies, AVC/AAC configuration records and whole FLV files.
#![no_main]

use bifrons_rtmp::flv::{check_supported_codec, parse_audio_tag, parse_flv_file, parse_video_tag};
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    for nal_length_size in [1, 2, 4] {
        let _ = parse_video_tag(&bytes, 0, nal_length_size);
    }
    let _ = parse_audio_tag(&bytes, 0);
    let _ = check_supported_codec(data, true);
    let _ = check_supported_codec(data, false);
    let _ = parse_flv_file(&bytes);
});
