//! Codecs and DSP for Bifrons: Opus, G.711, AAC, VP8 (and H.264), resampling and the audio
//! mixer. No networking and no dependency on the gateway core.
