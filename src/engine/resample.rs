//! The two bicubic resizes of the reference pipeline, reproduced so that
//! our depth maps match it: Pillow's (the image processor shrinks or
//! enlarges the photo with it: antialiased, a = -0.5, 8-bit fixed point,
//! horizontal pass then vertical) and PyTorch's `interpolate(mode="bicubic",
//! align_corners=False)` (position embeddings for a non-square input, and
//! the depth map back to the photo's size: a = -0.75, no antialias).

use rayon::prelude::*;

/// Pillow's `PRECISION_BITS` for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

fn pil_bicubic(x: f64) -> f64 {
    let a = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// One output pixel's source window and fixed-point weights.
struct Taps {
    start: Vec<usize>,
    len: Vec<usize>,
    ksize: usize,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` and `normalize_coeffs_8bpc`.
fn pil_taps(in_size: usize, out_size: usize) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 2.0 * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut t = Taps {
        start: Vec::with_capacity(out_size),
        len: Vec::with_capacity(out_size),
        ksize,
        weights: vec![0; out_size * ksize],
    };
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // Pillow truncates towards zero after adding 0.5 (C's int cast).
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = pil_bicubic((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        let row = &mut t.weights[xx * ksize..(xx + 1) * ksize];
        for (x, r) in row.iter_mut().enumerate().take(n) {
            let w = if ww != 0.0 { k[x] / ww } else { k[x] };
            let f = w * (1u32 << PRECISION_BITS) as f64;
            *r = if w < 0.0 {
                (-0.5 + f) as i32
            } else {
                (0.5 + f) as i32
            };
        }
        t.start.push(xmin);
        t.len.push(n);
    }
    t
}

fn clip8(v: i64) -> u8 {
    let v = v >> PRECISION_BITS;
    v.clamp(0, 255) as u8
}

/// Resizes an interleaved RGB image as Pillow's `Image.resize(..., BICUBIC)`.
pub fn pil_resize_rgb(src: &[u8], w: usize, h: usize, ow: usize, oh: usize) -> Vec<u8> {
    debug_assert_eq!(src.len(), w * h * 3);
    let horiz = pil_taps(w, ow);
    let vert = pil_taps(h, oh);
    let rounding = 1i64 << (PRECISION_BITS - 1);
    // Only the rows the vertical pass reads are resized horizontally.
    let (first, last) = if oh == 0 {
        (0, 0)
    } else {
        (vert.start[0], vert.start[oh - 1] + vert.len[oh - 1])
    };
    let tmp: Vec<u8> = if ow != w {
        let mut tmp = vec![0u8; (last - first) * ow * 3];
        tmp.par_chunks_mut(ow * 3).enumerate().for_each(|(y, out)| {
            let row = &src[(y + first) * w * 3..(y + first + 1) * w * 3];
            for xx in 0..ow {
                let k = &horiz.weights[xx * horiz.ksize..];
                let s = horiz.start[xx];
                let mut acc = [rounding; 3];
                for (i, &kw) in k.iter().take(horiz.len[xx]).enumerate() {
                    let p = &row[(s + i) * 3..(s + i) * 3 + 3];
                    for c in 0..3 {
                        acc[c] += p[c] as i64 * kw as i64;
                    }
                }
                for c in 0..3 {
                    out[xx * 3 + c] = clip8(acc[c]);
                }
            }
        });
        tmp
    } else {
        src[first * w * 3..last * w * 3].to_vec()
    };
    if oh == h {
        return tmp;
    }
    let stride = ow * 3;
    let mut out = vec![0u8; oh * stride];
    out.par_chunks_mut(stride).enumerate().for_each(|(yy, o)| {
        let k = &vert.weights[yy * vert.ksize..];
        let s = vert.start[yy] - first;
        for x in 0..stride {
            let mut acc = rounding;
            for (i, &kw) in k.iter().take(vert.len[yy]).enumerate() {
                acc += tmp[(s + i) * stride + x] as i64 * kw as i64;
            }
            o[x] = clip8(acc);
        }
    });
    out
}

fn cubic1(x: f32, a: f32) -> f32 {
    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
}

fn cubic2(x: f32, a: f32) -> f32 {
    ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
}

/// For each output index: the four clamped source indices and weights of
/// PyTorch's bicubic (`align_corners=False`, size given), in f32 as its
/// CPU kernel computes them.
fn torch_taps(in_size: usize, out_size: usize) -> Vec<([usize; 4], [f32; 4])> {
    let a = -0.75f32;
    let scale = in_size as f32 / out_size as f32;
    (0..out_size)
        .map(|o| {
            let real = scale * (o as f32 + 0.5) - 0.5;
            let i = real.floor();
            let t = real - i;
            let i = i as i64;
            let idx = [i - 1, i, i + 1, i + 2].map(|v| v.clamp(0, in_size as i64 - 1) as usize);
            let w = [
                cubic2(t + 1.0, a),
                cubic1(t, a),
                cubic1(1.0 - t, a),
                cubic2(2.0 - t, a),
            ];
            (idx, w)
        })
        .collect()
}

/// PyTorch's bicubic resize of `planes` planar images of `h` x `w`.
pub fn torch_bicubic(
    src: &[f32],
    planes: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
) -> Vec<f32> {
    debug_assert_eq!(src.len(), planes * h * w);
    let ty = torch_taps(h, oh);
    let tx = torch_taps(w, ow);
    let mut out = vec![0f32; planes * oh * ow];
    out.par_chunks_mut(ow).enumerate().for_each(|(row, o)| {
        let (p, y) = (row / oh, row % oh);
        let plane = &src[p * h * w..(p + 1) * h * w];
        let (iy, wy) = ty[y];
        for (x, ox) in o.iter_mut().enumerate() {
            let (ix, wx) = tx[x];
            // Row by row, as PyTorch's kernel sums: four horizontal cubics,
            // then one vertical.
            let mut rows = [0f32; 4];
            for (r, &yy) in rows.iter_mut().zip(iy.iter()) {
                let line = &plane[yy * w..];
                *r = line[ix[0]] * wx[0]
                    + line[ix[1]] * wx[1]
                    + line[ix[2]] * wx[2]
                    + line[ix[3]] * wx[3];
            }
            *ox = rows[0] * wy[0] + rows[1] * wy[1] + rows[2] * wy[2] + rows[3] * wy[3];
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_identity() {
        let src: Vec<u8> = (0..5 * 4 * 3).map(|v| (v * 7 % 256) as u8).collect();
        assert_eq!(pil_resize_rgb(&src, 5, 4, 5, 4), src);
        let f: Vec<f32> = (0..2 * 3 * 5).map(|v| v as f32 * 0.3).collect();
        assert_eq!(torch_bicubic(&f, 2, 3, 5, 3, 5), f);
    }

    #[test]
    fn flat_stays_flat() {
        let src = vec![200u8; 30 * 20 * 3];
        assert!(pil_resize_rgb(&src, 30, 20, 7, 11)
            .iter()
            .all(|&v| v == 200));
        let f = vec![0.25f32; 9 * 4];
        assert!(torch_bicubic(&f, 1, 9, 4, 20, 3)
            .iter()
            .all(|&v| (v - 0.25).abs() < 1e-6));
    }
}
