//! 2-D convolution as one matrix product per band of output rows
//! (im2col), which keeps the arithmetic in gemm: candle's own CPU conv2d
//! ran the DPT head's 3x3 convolutions at 4-10 GMAC/s where its matrix
//! products reach 30-40 (a 32->32 3x3 convolution on a 518x686 map took
//! 0.73-0.79 s for 3.3 GMAC). A band's columns are at most about 8 MB.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

/// Floats of one band's columns.
const BAND: usize = 2 << 20;

pub struct Conv {
    /// `cout x (cin * k * k)`.
    weight: Tensor,
    /// `cout x 1`.
    bias: Option<Tensor>,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

impl Conv {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vb: VarBuilder,
        cin: usize,
        cout: usize,
        k: usize,
        pad: usize,
        stride: usize,
        bias: bool,
    ) -> Result<Self> {
        let weight = vb
            .get((cout, cin, k, k), "weight")?
            .reshape((cout, cin * k * k))?;
        let bias = if bias {
            Some(vb.get(cout, "bias")?.reshape((cout, 1))?)
        } else {
            None
        };
        Ok(Conv {
            weight,
            bias,
            cin,
            cout,
            k,
            stride,
            pad,
        })
    }

    /// `x`: 1 x cin x h x w.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, cin, h, w) = x.dims4()?;
        if b != 1 || cin != self.cin {
            candle_core::bail!(
                "conv: expected 1 x {} x h x w, got {:?}",
                self.cin,
                x.dims()
            );
        }
        let (k, s, p) = (self.k, self.stride, self.pad);
        let oh = (h + 2 * p - k) / s + 1;
        let ow = (w + 2 * p - k) / s + 1;
        let y = if k == 1 && s == 1 && p == 0 {
            self.weight.matmul(&x.reshape((cin, h * w))?)?
        } else {
            let src: Vec<f32> = x.flatten_all()?.to_vec1()?;
            let rows_k = cin * k * k;
            let per_band = (BAND / (rows_k * ow).max(1)).clamp(1, oh);
            let mut bands = Vec::with_capacity(oh.div_ceil(per_band));
            let mut oy0 = 0;
            while oy0 < oh {
                let n = per_band.min(oh - oy0);
                let cols = im2col(&src, (cin, h, w), (k, s, p), ow, oy0, n);
                let cols = Tensor::from_vec(cols, (rows_k, n * ow), x.device())?;
                bands.push(self.weight.matmul(&cols)?);
                oy0 += n;
            }
            if bands.len() == 1 {
                bands.pop().expect("one band")
            } else {
                Tensor::cat(&bands, 1)?
            }
        };
        let y = match &self.bias {
            Some(bias) => y.broadcast_add(bias)?,
            None => y,
        };
        y.reshape((1, self.cout, oh, ow))
    }
}

/// The columns of output rows `oy0 .. oy0 + n`: one row per (channel,
/// kernel row, kernel column), zeros where the kernel hangs over the edge.
fn im2col(
    src: &[f32],
    (cin, h, w): (usize, usize, usize),
    (k, s, p): (usize, usize, usize),
    ow: usize,
    oy0: usize,
    n: usize,
) -> Vec<f32> {
    let mut cols = vec![0f32; cin * k * k * n * ow];
    cols.par_chunks_mut(n * ow)
        .enumerate()
        .for_each(|(r, out)| {
            let (ci, ky, kx) = (r / (k * k), (r / k) % k, r % k);
            let plane = &src[ci * h * w..(ci + 1) * h * w];
            for (dy, row) in out.chunks_mut(ow).enumerate() {
                let iy = ((oy0 + dy) * s + ky) as isize - p as isize;
                if iy < 0 || iy >= h as isize {
                    continue;
                }
                let line = &plane[iy as usize * w..(iy as usize + 1) * w];
                if s == 1 {
                    // ix = ox + kx - p: one shifted copy, the overhang left at 0.
                    let lo = p.saturating_sub(kx);
                    let hi = (w + p - kx).min(ow);
                    if lo < hi {
                        row[lo..hi].copy_from_slice(&line[lo + kx - p..hi + kx - p]);
                    }
                } else {
                    for (ox, v) in row.iter_mut().enumerate() {
                        let ix = (ox * s + kx) as isize - p as isize;
                        if ix >= 0 && (ix as usize) < w {
                            *v = line[ix as usize];
                        }
                    }
                }
            }
        });
    cols
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use std::collections::HashMap;

    #[test]
    fn matches_candles_conv2d() {
        let dev = Device::Cpu;
        for (cin, cout, k, p, s, h, w) in [
            (3, 5, 3, 1, 1, 9, 7),
            (4, 2, 3, 1, 2, 11, 8),
            (3, 4, 14, 0, 14, 28, 42),
            (6, 3, 1, 0, 1, 5, 4),
        ] {
            let x = Tensor::randn(0f32, 1.0, (1, cin, h, w), &dev).unwrap();
            let wt = Tensor::randn(0f32, 1.0, (cout, cin, k, k), &dev).unwrap();
            let bias = Tensor::randn(0f32, 1.0, cout, &dev).unwrap();
            let mut t = HashMap::new();
            t.insert("weight".to_string(), wt.clone());
            t.insert("bias".to_string(), bias.clone());
            let vb = VarBuilder::from_tensors(t, DType::F32, &dev);
            let ours = Conv::new(vb, cin, cout, k, p, s, true)
                .unwrap()
                .forward(&x)
                .unwrap();
            let want = x
                .conv2d(&wt, p, s, 1, 1)
                .unwrap()
                .broadcast_add(&bias.reshape((1, cout, 1, 1)).unwrap())
                .unwrap();
            assert_eq!(ours.dims(), want.dims());
            let err = super::super::ops::max_abs_diff(&ours, &want);
            assert!(err < 1e-4, "{cin}->{cout} k{k} p{p} s{s}: {err}");
        }
    }
}
