//! Multi-head attention as one operation, as PyTorch's CPU
//! `scaled_dot_product_attention` is: for a few queries at a time, their
//! scores against every key, the softmax, and the weighted sum of the
//! values, without a scores tensor for a whole head.
//!
//! Why not candle's matrix products: on a 12 MP photo (1,814 tokens) the
//! scores are 80 MB per layer. Blocks of queries through `matmul` made a
//! fresh 1.8 MB tensor per block (musl's allocator maps and zeroes each
//! anew: 0.9 GB of page faults per photo) and re-packed the keys for every
//! block. Here a task's scores (16 rows) stay under musl's 128 KiB and in
//! the cache, the keys and values are laid out once per layer, and both
//! products go through one small register-tiled kernel written with
//! `pulp`'s safe SIMD (AVX-512, AVX2+FMA or plain, chosen at run time).

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use pulp::{Simd, WithSimd};
use rayon::prelude::*;

use super::ops::softmax_row;

/// Query rows per task (a multiple of the kernels' 4).
const ROWS: usize = 16;
/// Keys and value columns are padded to a multiple of this: twice the
/// widest vector (16 floats), so every kernel step is whole vectors.
const PAD: usize = 32;

struct Attention {
    heads: usize,
}

/// `qkv`: 1 x n x 3d, the queries already scaled by 1/sqrt(d / heads);
/// the result is 1 x n x d, the heads side by side.
pub fn attention(qkv: &Tensor, heads: usize) -> Result<Tensor> {
    qkv.contiguous()?.apply_op1_no_bwd(&Attention { heads })
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "engine-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(v) = s else {
            candle_core::bail!("attention: f32 only")
        };
        let Some((a, b)) = l.contiguous_offsets() else {
            candle_core::bail!("attention: contiguous input only")
        };
        let (batch, n, d3) = l.shape().dims3()?;
        let heads = self.heads;
        if heads == 0 || batch != 1 || n == 0 || d3 % (3 * heads) != 0 {
            candle_core::bail!("attention: {:?} with {heads} heads", l.dims());
        }
        let qkv = &v[a..b];
        let (d, hd) = (d3 / 3, d3 / 3 / heads);
        let (np, hdp) = (n.next_multiple_of(PAD), hd.next_multiple_of(PAD));
        // Per head: the keys transposed (hd x np) and the values (np x hdp),
        // zero-padded.
        let mut kt = vec![0f32; heads * hd * np];
        let mut vs = vec![0f32; heads * np * hdp];
        kt.par_chunks_mut(hd * np)
            .zip(vs.par_chunks_mut(np * hdp))
            .enumerate()
            .for_each(|(h, (kt, vs))| {
                for (j, row) in qkv.chunks(d3).enumerate() {
                    let k = &row[d + h * hd..d + (h + 1) * hd];
                    for (c, &x) in k.iter().enumerate() {
                        kt[c * np + j] = x;
                    }
                    let v = &row[2 * d + h * hd..2 * d + (h + 1) * hd];
                    vs[j * hdp..j * hdp + hd].copy_from_slice(v);
                }
            });
        let mut out = vec![0f32; n * d];
        out.par_chunks_mut(ROWS * d)
            .enumerate()
            .for_each(|(t, out)| {
                let r0 = t * ROWS;
                let rows = out.len() / d;
                let mut q = vec![0f32; ROWS * hd];
                let mut scores = vec![0f32; ROWS * np];
                let mut o = vec![0f32; ROWS * hdp];
                let arch = pulp::Arch::new();
                for h in 0..heads {
                    for r in 0..rows {
                        let row = &qkv[(r0 + r) * d3..(r0 + r + 1) * d3];
                        q[r * hd..(r + 1) * hd].copy_from_slice(&row[h * hd..(h + 1) * hd]);
                    }
                    let kt = &kt[h * hd * np..(h + 1) * hd * np];
                    let vs = &vs[h * np * hdp..(h + 1) * np * hdp];
                    arch.dispatch(Product {
                        a: &q,
                        a_stride: hd,
                        k: hd,
                        b: kt,
                        cols: np,
                        out: &mut scores,
                    });
                    arch.dispatch(|| {
                        for r in 0..rows {
                            softmax_row(&mut scores[r * np..r * np + n]);
                        }
                    });
                    arch.dispatch(Product {
                        a: &scores,
                        a_stride: np,
                        k: n,
                        b: vs,
                        cols: hdp,
                        out: &mut o,
                    });
                    for r in 0..rows {
                        out[r * d + h * hd..r * d + (h + 1) * hd]
                            .copy_from_slice(&o[r * hdp..r * hdp + hd]);
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((1, n, d))))
    }
}

/// `out = a x b` for the rows of `a` (a multiple of 4; row stride `a_stride`, `k`
/// columns read) and `b` of `k` rows by `cols` columns (`cols` a multiple
/// of `PAD`; also `out`'s row stride). Both products of attention are
/// this: the scores (queries by transposed keys) and the weighted sum
/// (probabilities by values). Four rows by two vectors of columns per
/// step: eight accumulators.
struct Product<'a> {
    a: &'a [f32],
    a_stride: usize,
    k: usize,
    b: &'a [f32],
    cols: usize,
    out: &'a mut [f32],
}

impl WithSimd for Product<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Product {
            a,
            a_stride,
            k,
            b,
            cols,
            out,
        } = self;
        let w = 2 * S::F32_LANES;
        for (a, out) in a
            .chunks_exact(4 * a_stride)
            .zip(out.chunks_exact_mut(4 * cols))
        {
            let row = |r: usize| &a[r * a_stride..r * a_stride + k];
            let (a0, a1, a2, a3) = (row(0), row(1), row(2), row(3));
            for c in (0..cols).step_by(w) {
                let mut acc = [simd.splat_f32s(0.0); 8];
                let terms = b
                    .chunks_exact(cols)
                    .zip(a0.iter().zip(a1).zip(a2.iter().zip(a3)));
                for (b, ((&x0, &x1), (&x2, &x3))) in terms {
                    let (v, _) = S::as_simd_f32s(&b[c..c + w]);
                    let (v0, v1) = (v[0], v[1]);
                    for (r, x) in [x0, x1, x2, x3].into_iter().enumerate() {
                        let x = simd.splat_f32s(x);
                        acc[2 * r] = simd.mul_add_e_f32s(x, v0, acc[2 * r]);
                        acc[2 * r + 1] = simd.mul_add_e_f32s(x, v1, acc[2 * r + 1]);
                    }
                }
                for (r, out) in out.chunks_exact_mut(cols).enumerate() {
                    let (o, _) = S::as_mut_simd_f32s(&mut out[c..c + w]);
                    o[0] = acc[2 * r];
                    o[1] = acc[2 * r + 1];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The reference: candle's products and softmax, a whole head at once.
    fn plain(qkv: &Tensor, heads: usize) -> Tensor {
        let (_, n, d3) = qkv.dims3().unwrap();
        let hd = d3 / 3 / heads;
        let t = qkv
            .reshape((1, n, 3, heads, hd))
            .unwrap()
            .permute((2, 0, 3, 1, 4))
            .unwrap();
        let part = |i| t.get(i).unwrap().contiguous().unwrap();
        let (q, k, v) = (part(0), part(1), part(2));
        let p = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t().unwrap()).unwrap()).unwrap();
        p.matmul(&v)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((1, n, d3 / 3))
            .unwrap()
    }

    #[test]
    fn is_attention_for_any_token_count_and_head_size() {
        let dev = Device::Cpu;
        // Small's head size (64) and odd ones; token counts that fill no
        // task, one, and several with a remainder.
        for (n, heads, hd) in [(1, 1, 64), (37, 6, 64), (549, 2, 12), (70, 3, 40)] {
            let qkv = Tensor::randn(0f32, 1.0, (1, n, 3 * heads * hd), &dev).unwrap();
            let ours = attention(&qkv, heads).unwrap();
            let want = plain(&qkv, heads);
            assert_eq!(ours.dims(), want.dims());
            let err = super::super::ops::max_abs_diff(&ours, &want);
            assert!(err < 1e-5, "n {n}, {heads} heads of {hd}: {err}");
        }
        let bad = Tensor::zeros((1, 5, 10), candle_core::DType::F32, &dev).unwrap();
        assert!(attention(&bad, 3).is_err());
    }
}
