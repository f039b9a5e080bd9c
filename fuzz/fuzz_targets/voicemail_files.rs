//! Voicemail inputs from outside: uploaded greetings (Ogg Opus / WAV parsing and decoding to
//! 8 kHz), stored messages read for playback and WAV downloads, download tokens and the
//! download route's file names. None may panic, whatever the bytes.
#![no_main]

use bifrons::audio_file;
use bifrons::auth::download_tokens as tokens;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = audio_file::parse_wav(data);
    let _ = audio_file::greeting_pcm_8k(data);
    if let Ok(file) = audio_file::read_ogg_opus(data) {
        for p in &file.packets {
            let _ = audio_file::opus_packet_samples(p);
        }
    }
    let text = String::from_utf8_lossy(data);
    let _ = tokens::verify(1, &text);
    let _ = bifrons::web::voicemail::parse_name(&text);
});
