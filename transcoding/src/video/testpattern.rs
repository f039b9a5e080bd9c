//! A moving test pattern and PSNR, for the video codec tests.

/// I420 frame `index` of a pattern with smooth gradients and a bright square moving 4 px/frame.
pub fn moving_pattern(width: usize, height: usize, index: usize) -> Vec<u8> {
    let mut data = vec![0u8; width * height * 3 / 2];
    let (bx, by) = ((index * 4) % (width - 64), (index * 2) % (height - 64));
    for y in 0..height {
        for x in 0..width {
            let base = ((x + y + index * 2) * 255 / (width + height)) as u8 / 2 + 40;
            let inside = x >= bx && x < bx + 64 && y >= by && y < by + 64;
            data[y * width + x] = if inside { 220 } else { base };
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
    let mse: f64 = a[..n].iter().zip(&b[..n]).map(|(&p, &q)| (p as f64 - q as f64).powi(2)).sum::<f64>() / n as f64;
    if mse == 0.0 {
        return 99.0;
    }
    10.0 * (255.0f64 * 255.0 / mse).log10()
}
