//! The two element-wise steps that candle computes one value at a time
//! with libm (`exp` in softmax, `erf` in GELU), written as plain arithmetic
//! the compiler vectorises and spread over the engine's threads: on Small
//! at 518x686 they are 240 M exponentials and 33 M error functions per
//! photo. The same formulas as PyTorch's vectorised CPU kernels: erf is
//! Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), exp a
//! degree-6 polynomial after range reduction (relative error ~1e-7).
//! The loops run under `pulp`'s dispatch, so they are compiled for AVX2
//! and FMA as well and the best the CPU has is chosen at run time.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// e^x for f32, without a libm call (vectorisable); clamped to
/// [-87, 88] (below, ~1e-38 instead of 0: nothing a softmax can tell).
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // x = n ln2 + r, |r| <= ln2 / 2; n rounded by the 1.5 * 2^23 trick.
    let shift = 12_582_912.0f32;
    let n = (x * std::f32::consts::LOG2_E + shift) - shift;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.166_666_67
                    + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    let bits = ((n as i32 + 127) as u32) << 23;
    p * f32::from_bits(bits)
}

#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let r = ((((1.061_405_4 * t - 1.453_152) * t + 1.421_413_8) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    let y = 1.0 - r * exp(-a * a);
    y.copysign(x)
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{op}: f32 only")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{op}: contiguous input only"),
    }
}

/// Rows at a time, so that small tensors stay on one thread.
const CHUNK: usize = 1 << 14;

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "engine-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, "gelu")?;
        let mut out = vec![0f32; x.len()];
        out.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(o, x)| {
                pulp::Arch::new().dispatch(|| {
                    for (o, &v) in o.iter_mut().zip(x) {
                        *o = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
                    }
                })
            });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// GELU with the exact (erf) formula, as transformers' `gelu`.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&Gelu)
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "engine-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = contiguous(s, l, "softmax")?;
        let n = *l.dims().last().unwrap_or(&1);
        let mut out = vec![0f32; x.len()];
        let rows = (CHUNK / n.max(1)).max(1);
        out.par_chunks_mut(rows * n)
            .zip(x.par_chunks(rows * n))
            .for_each(|(o, x)| {
                pulp::Arch::new().dispatch(|| {
                    for (o, x) in o.chunks_mut(n).zip(x.chunks(n)) {
                        softmax_row(o, x)
                    }
                })
            });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

#[inline(always)]
fn softmax_row(o: &mut [f32], x: &[f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for (o, &v) in o.iter_mut().zip(x) {
        *o = exp(v - max);
    }
    // Eight partial sums, so that the sum vectorises too.
    let mut acc = [0f32; 8];
    let mut chunks = o.chunks_exact(8);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let sum = acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
    let inv = 1.0 / sum;
    for o in o.iter_mut() {
        *o *= inv;
    }
}

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&Softmax)
}

/// The largest absolute difference of two tensors of one shape (the unit
/// tests' measure against candle's own operations).
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar())
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_are_close_to_libm() {
        let mut worst_exp = 0f64;
        let mut worst_erf = 0f64;
        for i in -20000..=2000 {
            let x = i as f32 * 0.004;
            let rel = ((exp(x) as f64 - (x as f64).exp()) / (x as f64).exp()).abs();
            worst_exp = worst_exp.max(rel);
        }
        for i in -4000..=4000 {
            let x = i as f32 * 0.002;
            let want = candle_core::cpu::erf::erf_f64(x as f64);
            worst_erf = worst_erf.max((erf(x) as f64 - want).abs());
        }
        assert!(worst_exp < 5e-7, "exp relative error {worst_exp}");
        assert!(worst_erf < 5e-7, "erf absolute error {worst_erf}");
        assert!(exp(-200.0) < 1e-37);
    }

    #[test]
    fn softmax_and_gelu_match_candles() {
        let dev = candle_core::Device::Cpu;
        let x = Tensor::arange(0f32, 3000.0, &dev)
            .unwrap()
            .affine(0.013, -19.0)
            .unwrap()
            .reshape((3, 1000))
            .unwrap();
        let diff = |a: Tensor, b: Tensor| max_abs_diff(&a, &b);
        let s = diff(
            softmax_last_dim(&x).unwrap(),
            candle_nn::ops::softmax_last_dim(&x).unwrap(),
        );
        assert!(s < 1e-7, "softmax {s}");
        let g = diff(gelu(&x).unwrap(), x.gelu_erf().unwrap());
        assert!(g < 2e-6, "gelu {g}");
    }
}
