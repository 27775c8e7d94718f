//! The two element-wise steps that candle computes one value at a time
//! with libm (`exp` in softmax, `erf` in GELU), written as plain arithmetic
//! the compiler vectorises and spread over the engine's threads: on Small
//! at 518x686 they are 240 M exponentials and 33 M error functions per
//! photo. The same formulas as PyTorch's vectorised CPU kernels: erf is
//! Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), exp a
//! degree-6 polynomial after range reduction (relative error ~1e-7).
//! The loops run under `pulp`'s dispatch, so they are compiled for AVX2
//! and FMA as well and the best the CPU has is chosen at run time. Also
//! here: the in-place steps (bias, sums) that spare the model a tensor.

use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout, Result, Tensor};
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

fn contiguous_mut<'a>(s: &'a mut CpuStorage, l: &Layout, op: &str) -> Result<&'a mut [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{op}: f32 only")
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&mut v[a..b]),
        None => candle_core::bail!("{op}: contiguous tensor only"),
    }
}

/// Values at a time, so that small tensors stay on one thread.
const CHUNK: usize = 1 << 14;

// The operations below rewrite their tensor in place. Each is applied to
// a tensor the model has just made (a product's output) and nobody else
// holds: a new tensor as large for every step is what made the static
// build slow. musl's allocator maps every block above 128 KiB anew and
// unmaps it on free, so each fresh output was paid again in page faults
// (5.4 GB of them per 12 MP photo, 1.33 M faults, 3.5 s of system time).

struct Gelu;

impl InplaceOp1 for Gelu {
    fn name(&self) -> &'static str {
        "engine-gelu"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
        let x = contiguous_mut(s, l, "gelu")?;
        x.par_chunks_mut(CHUNK).for_each(|x| {
            pulp::Arch::new().dispatch(|| {
                for v in x.iter_mut() {
                    *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
                }
            })
        });
        Ok(())
    }
}

/// GELU with the exact (erf) formula, as transformers' `gelu`, in place:
/// `x` must be contiguous and its storage the caller's alone.
pub fn gelu_in_place(x: &Tensor) -> Result<()> {
    x.inplace_op1(&Gelu)
}

#[inline(always)]
pub(super) fn softmax_row(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for v in x.iter_mut() {
        *v = exp(*v - max);
    }
    // Eight partial sums, so that the sum vectorises too.
    let mut acc = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    let sum = acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>();
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// Where a bias goes: one value per row of the last two dimensions (a
/// convolution's `cout x pixels`) or per column (a linear layer's
/// `tokens x features`).
#[derive(Clone, Copy)]
pub enum Per {
    Row,
    Column,
}

struct AddBias<'a> {
    bias: &'a [f32],
    per: Per,
    relu: bool,
}

impl InplaceOp1 for AddBias<'_> {
    fn name(&self) -> &'static str {
        "engine-add-bias"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
        let (b, relu) = (self.bias, self.relu);
        let dims = l.dims();
        let x = contiguous_mut(s, l, "bias")?;
        let line = match self.per {
            Per::Column => b.len(),
            Per::Row => *dims.last().unwrap_or(&1),
        };
        let fits = match self.per {
            Per::Column => dims.last() == Some(&b.len()),
            Per::Row => dims.len() >= 2 && dims[dims.len() - 2] == b.len(),
        };
        if !fits || line == 0 {
            candle_core::bail!("bias of {} for a tensor of {dims:?}", b.len());
        }
        let rows = (CHUNK / line).max(1);
        x.par_chunks_mut(rows * line)
            .enumerate()
            .for_each(|(c, x)| {
                for (r, x) in x.chunks_mut(line).enumerate() {
                    let row = c * rows + r;
                    match self.per {
                        Per::Row => {
                            let v = b[row % b.len()];
                            x.iter_mut().for_each(|o| *o += v);
                        }
                        Per::Column => x.iter_mut().zip(b).for_each(|(o, v)| *o += v),
                    }
                    if relu {
                        x.iter_mut().for_each(|o| *o = o.max(0.0));
                    }
                }
            });
        Ok(())
    }
}

/// Adds `bias` to `x` in place (as [`gelu_in_place`]), then ReLU if asked.
pub fn add_bias_in_place(x: &Tensor, bias: &[f32], per: Per, relu: bool) -> Result<()> {
    x.inplace_op1(&AddBias { bias, per, relu })
}

struct Add;

impl InplaceOp2 for Add {
    fn name(&self) -> &'static str {
        "engine-add"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        if l1.dims() != l2.dims() {
            candle_core::bail!("add: {:?} and {:?}", l1.dims(), l2.dims());
        }
        let y = contiguous(s2, l2, "add")?;
        let x = contiguous_mut(s1, l1, "add")?;
        x.par_chunks_mut(CHUNK)
            .zip(y.par_chunks(CHUNK))
            .for_each(|(x, y)| x.iter_mut().zip(y).for_each(|(o, v)| *o += v));
        Ok(())
    }
}

/// `x += y` (as [`gelu_in_place`]); both contiguous and of one shape.
pub fn add_in_place(x: &Tensor, y: &Tensor) -> Result<()> {
    x.inplace_op2(y, &Add)
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
    fn in_place_steps_match_candles() {
        let dev = candle_core::Device::Cpu;
        let x = Tensor::arange(0f32, 3000.0, &dev)
            .unwrap()
            .affine(0.013, -19.0)
            .unwrap()
            .reshape((3, 1000))
            .unwrap();
        let diff = |a: &Tensor, b: Tensor| max_abs_diff(a, &b);
        let mut rows: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        rows.chunks_mut(1000).for_each(softmax_row);
        let s = Tensor::from_vec(rows, (3, 1000), &dev).unwrap();
        let d = diff(&s, candle_nn::ops::softmax_last_dim(&x).unwrap());
        assert!(d < 1e-7, "softmax {d}");
        let g = x.copy().unwrap();
        gelu_in_place(&g).unwrap();
        let d = diff(&g, x.gelu_erf().unwrap());
        assert!(d < 2e-6, "gelu {d}");

        let rows: Vec<f32> = vec![0.5, -40.0, 2.0];
        let cols: Vec<f32> = (0..1000).map(|i| i as f32 * 0.01).collect();
        let r = x.copy().unwrap();
        add_bias_in_place(&r, &rows, Per::Row, true).unwrap();
        let want = x
            .broadcast_add(
                &Tensor::new(rows.as_slice(), &dev)
                    .unwrap()
                    .reshape((3, 1))
                    .unwrap(),
            )
            .unwrap()
            .relu()
            .unwrap();
        assert_eq!(diff(&r, want), 0.0);
        let c = x.copy().unwrap();
        add_bias_in_place(&c, &cols, Per::Column, false).unwrap();
        let want = x
            .broadcast_add(&Tensor::new(cols.as_slice(), &dev).unwrap())
            .unwrap();
        assert_eq!(diff(&c, want), 0.0);
        // A bias that does not fit is an error, not a wrong answer.
        assert!(add_bias_in_place(&c, &rows, Per::Column, false).is_err());
        assert!(add_bias_in_place(&c, &cols, Per::Row, false).is_err());

        let a = x.copy().unwrap();
        add_in_place(&a, &r).unwrap();
        assert_eq!(diff(&a, (&x + &r).unwrap()), 0.0);
        assert!(add_in_place(&a, &x.t().unwrap()).is_err());
    }
}
