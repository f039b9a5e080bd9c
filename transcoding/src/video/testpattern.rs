//! A moving test pattern and PSNR, for the video codec tests.

/// I420 frame `index` of a pattern with a drifting gradient, fixed fine texture and a
/// checkered square moving 4 px/frame: enough detail and motion that a broken encoder or
/// decoder cannot score well.
pub fn moving_pattern(width: usize, height: usize, index: usize) -> Vec<u8> {
    let mut data = vec![0u8; width * height * 3 / 2];
    let (bx, by) = ((index * 4) % (width - 64), (index * 2) % (height - 64));
    for y in 0..height {
        for x in 0..width {
            let base = ((x + y + index * 2) * 255 / (width + height)) as u8 / 2 + 40;
            let inside = x >= bx && x < bx + 64 && y >= by && y < by + 64;
            // Per-pixel hash texture (±12) and a 4-px checkerboard inside the square.
            let h = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 7;
            let texture = (h % 25) as u8;
            data[y * width + x] = if inside {
                if ((x - bx) / 4 + (y - by) / 4) % 2 == 0 {
                    230
                } else {
                    60
                }
            } else {
                base + texture
            };
        }
    }
    let (cw, ch) = (width / 2, height / 2);
    for y in 0..ch {
        for x in 0..cw {
            data[width * height + y * cw + x] = (96 + (x * 64 / cw)) as u8;
            data[width * height + cw * ch + y * cw + x] = (160 - (y * 64 / ch)) as u8;
        }
    }
    data
}

/// Luma PSNR (dB) of `b` against `a` (both I420 of the same size).
pub fn psnr_y(a: &[u8], b: &[u8], width: usize, height: usize) -> f64 {
    let n = width * height;
    let mse: f64 = a[..n]
        .iter()
        .zip(&b[..n])
        .map(|(&p, &q)| (p as f64 - q as f64).powi(2))
        .sum::<f64>()
        / n as f64;
    if mse == 0.0 {
        return 99.0;
    }
    10.0 * (255.0f64 * 255.0 / mse).log10()
}
