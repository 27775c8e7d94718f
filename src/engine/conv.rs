//! 2-D convolution as one matrix product per band of output rows
//! (im2col), which keeps the arithmetic in gemm: candle's own CPU conv2d
//! ran the DPT head's 3x3 convolutions at 4-10 GMAC/s where its matrix
//! products reach 30-40 (a 32->32 3x3 convolution on a 518x686 map took
//! 0.73-0.79 s for 3.3 GMAC). A band's columns are at most about 8 MB,
//! in one buffer per convolution that every band rewrites: a new one per
//! band cost the static build 1 GB of page faults per 12 MP photo.

use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Result, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

use super::ops::{self, Per};

/// Floats of one band's columns.
const BAND: usize = 2 << 20;

pub struct Conv {
    /// `cout x (cin * k * k)`.
    weight: Tensor,
    /// One value per output channel (zeros for a convolution without).
    bias: Vec<f32>,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: usize,
    /// Floats of one band's columns ([`BAND`]; smaller in tests, to have
    /// many bands on a small input).
    band: usize,
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
            vb.get(cout, "bias")?.to_dtype(DType::F32)?.to_vec1()?
        } else {
            vec![0.0; cout]
        };
        Ok(Conv {
            weight,
            bias,
            cin,
            cout,
            k,
            stride,
            pad,
            band: BAND,
        })
    }

    /// `x`: 1 x cin x h x w.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_relu(x, false, false)
    }

    /// The convolution of ReLU(`x`) if `relu_in`, followed by a ReLU if
    /// `relu_out`: both are applied while the columns and the bias are
    /// written, so neither takes a tensor of its own.
    pub fn forward_relu(&self, x: &Tensor, relu_in: bool, relu_out: bool) -> Result<Tensor> {
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
        let x = x.contiguous()?;
        let y = if k == 1 && s == 1 && p == 0 && !relu_in {
            self.weight.matmul(&x.reshape((cin, h * w))?)?
        } else {
            let rows_k = cin * k * k;
            let per_band = (self.band / (rows_k * ow).max(1)).clamp(1, oh);
            // One buffer for the columns of every band, rewritten in place.
            let cols = Tensor::zeros(rows_k * per_band * ow, DType::F32, x.device())?;
            let mut bands = Vec::with_capacity(oh.div_ceil(per_band));
            let mut oy0 = 0;
            while oy0 < oh {
                let n = per_band.min(oh - oy0);
                let band = Im2col {
                    geometry: (cin, h, w),
                    kernel: (k, s, p),
                    ow,
                    rows: (oy0, n),
                    relu: relu_in,
                };
                cols.inplace_op2(&x, &band)?;
                let view = cols
                    .narrow(0, 0, rows_k * n * ow)?
                    .reshape((rows_k, n * ow))?;
                bands.push(self.weight.matmul(&view)?);
                oy0 += n;
            }
            if bands.len() == 1 {
                bands.pop().expect("one band")
            } else {
                Tensor::cat(&bands, 1)?
            }
        };
        ops::add_bias_in_place(&y, &self.bias, Per::Row, relu_out)?;
        y.reshape((1, self.cout, oh, ow))
    }
}

/// Writes the columns of output rows `oy0 .. oy0 + n` at the start of the
/// buffer: one row per (channel, kernel row, kernel column), zeros where
/// the kernel hangs over the edge.
struct Im2col {
    geometry: (usize, usize, usize),
    kernel: (usize, usize, usize),
    ow: usize,
    rows: (usize, usize),
    relu: bool,
}

impl InplaceOp2 for Im2col {
    fn name(&self) -> &'static str {
        "engine-im2col"
    }

    fn cpu_fwd(
        &self,
        dst: &mut CpuStorage,
        dl: &Layout,
        src: &CpuStorage,
        sl: &Layout,
    ) -> Result<()> {
        let ((cin, h, w), (k, s, p), ow, (oy0, n)) =
            (self.geometry, self.kernel, self.ow, self.rows);
        let (CpuStorage::F32(cols), CpuStorage::F32(src)) = (dst, src) else {
            candle_core::bail!("im2col: f32 only")
        };
        let (Some((d0, d1)), Some((s0, s1))) = (dl.contiguous_offsets(), sl.contiguous_offsets())
        else {
            candle_core::bail!("im2col: contiguous tensors only")
        };
        let (cols, src) = (&mut cols[d0..d1], &src[s0..s1]);
        if src.len() != cin * h * w || cols.len() < cin * k * k * n * ow {
            candle_core::bail!("im2col: buffers do not fit the band");
        }
        let relu = self.relu;
        cols[..cin * k * k * n * ow]
            .par_chunks_mut(n * ow)
            .enumerate()
            .for_each(|(r, out)| {
                let (ci, ky, kx) = (r / (k * k), (r / k) % k, r % k);
                let plane = &src[ci * h * w..(ci + 1) * h * w];
                for (dy, row) in out.chunks_mut(ow).enumerate() {
                    let iy = ((oy0 + dy) * s + ky) as isize - p as isize;
                    if iy < 0 || iy >= h as isize {
                        row.fill(0.0);
                        continue;
                    }
                    let line = &plane[iy as usize * w..(iy as usize + 1) * w];
                    if s == 1 {
                        // ix = ox + kx - p: one shifted copy, the overhang 0.
                        let lo = p.saturating_sub(kx).min(ow);
                        let hi = (w + p - kx).min(ow).max(lo);
                        row[..lo].fill(0.0);
                        row[hi..].fill(0.0);
                        let part = &mut row[lo..hi];
                        part.copy_from_slice(&line[lo + kx - p..hi + kx - p]);
                        if relu {
                            part.iter_mut().for_each(|v| *v = v.max(0.0));
                        }
                    } else {
                        for (ox, v) in row.iter_mut().enumerate() {
                            let ix = (ox * s + kx) as isize - p as isize;
                            *v = if ix >= 0 && (ix as usize) < w {
                                let v = line[ix as usize];
                                if relu {
                                    v.max(0.0)
                                } else {
                                    v
                                }
                            } else {
                                0.0
                            };
                        }
                    }
                }
            });
        Ok(())
    }
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
            let before = x.copy().unwrap();
            let wt = Tensor::randn(0f32, 1.0, (cout, cin, k, k), &dev).unwrap();
            let bias = Tensor::randn(0f32, 1.0, cout, &dev).unwrap();
            let mut t = HashMap::new();
            t.insert("weight".to_string(), wt.clone());
            t.insert("bias".to_string(), bias.clone());
            let vb = VarBuilder::from_tensors(t, DType::F32, &dev);
            let mut conv = Conv::new(vb, cin, cout, k, p, s, true).unwrap();
            let want = x
                .conv2d(&wt, p, s, 1, 1)
                .unwrap()
                .broadcast_add(&bias.reshape((1, cout, 1, 1)).unwrap())
                .unwrap();
            let want_relu = x
                .relu()
                .unwrap()
                .conv2d(&wt, p, s, 1, 1)
                .unwrap()
                .broadcast_add(&bias.reshape((1, cout, 1, 1)).unwrap())
                .unwrap()
                .relu()
                .unwrap();
            // One band, then bands of one or two output rows: the shared
            // buffer still holds the previous band's columns each time.
            for band in [BAND, cin * k * k * 2 * w, 1] {
                conv.band = band;
                let ours = conv.forward(&x).unwrap();
                assert_eq!(ours.dims(), want.dims());
                let err = super::super::ops::max_abs_diff(&ours, &want);
                assert!(
                    err < 1e-4,
                    "{cin}->{cout} k{k} p{p} s{s} band {band}: {err}"
                );
                let ours = conv.forward_relu(&x, true, true).unwrap();
                let err = super::super::ops::max_abs_diff(&ours, &want_relu);
                assert!(
                    err < 1e-4,
                    "relu {cin}->{cout} k{k} p{p} s{s} band {band}: {err}"
                );
            }
            // The input is left as it was (the ReLU is applied to copies).
            assert_eq!(super::super::ops::max_abs_diff(&x, &before), 0.0);
        }
    }
}
