//! The DINOv2 backbone of Depth Anything V2, with the checkpoint's own
//! fine-tuned weights: patch embedding, position embeddings interpolated
//! to the photo's patch grid, and the pre-norm transformer layers. Names
//! are transformers', so the published `-hf` safetensors load as is.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use super::{
    arch::Arch,
    attention,
    clock::Clock,
    conv::Conv,
    ops::{self, Per},
    resample,
};

pub(super) fn layer_norm(vb: VarBuilder, d: usize, eps: f64) -> Result<LayerNorm> {
    Ok(LayerNorm::new(
        vb.get(d, "weight")?,
        vb.get(d, "bias")?,
        eps,
    ))
}

/// A linear layer whose bias is added in place to its product's output.
struct Dense {
    /// `out x in`, as stored.
    weight: Tensor,
    bias: Vec<f32>,
}

impl Dense {
    /// `scale`: one factor per output, folded into the weights (the layer
    /// scales and attention's `1/sqrt(d)`, which would otherwise each take
    /// a pass and a tensor of their own).
    fn new(weight: Tensor, bias: Tensor, scale: Option<&Tensor>) -> Result<Self> {
        let (weight, bias) = match scale {
            Some(s) => (
                weight.broadcast_mul(&s.unsqueeze(1)?)?,
                bias.broadcast_mul(s)?,
            ),
            None => (weight, bias),
        };
        Ok(Dense {
            weight,
            bias: bias.to_dtype(DType::F32)?.to_vec1()?,
        })
    }

    fn load(vb: VarBuilder, din: usize, dout: usize, scale: Option<&Tensor>) -> Result<Self> {
        Dense::new(vb.get((dout, din), "weight")?, vb.get(dout, "bias")?, scale)
    }

    /// `x`: 1 x n x in.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, n, din) = x.dims3()?;
        let y = x.reshape((b * n, din))?.matmul(&self.weight.t()?)?;
        ops::add_bias_in_place(&y, &self.bias, Per::Column, false)?;
        y.reshape((b, n, self.bias.len()))
    }
}

/// One DINOv2 layer: pre-norm attention and MLP, each scaled (layer scale)
/// before its residual. Query, key and value are one matrix product.
struct Layer {
    norm1: LayerNorm,
    qkv: Dense,
    /// The attention's output projection, layer scale 1 folded in.
    proj: Dense,
    norm2: LayerNorm,
    fc1: Dense,
    /// Layer scale 2 folded in.
    fc2: Dense,
    heads: usize,
}

impl Layer {
    fn new(vb: VarBuilder, a: &Arch) -> Result<Self> {
        let d = a.hidden;
        let att = vb.pp("attention.attention");
        let (mut ws, mut bs) = (Vec::new(), Vec::new());
        for n in ["query", "key", "value"] {
            ws.push(att.pp(n).get((d, d), "weight")?);
            bs.push(att.pp(n).get(d, "bias")?);
        }
        // The queries carry attention's 1/sqrt(head size).
        let q_scale = 1.0 / ((d / a.heads) as f64).sqrt();
        let ones = Tensor::ones(d, bs[0].dtype(), bs[0].device())?;
        let scale = Tensor::cat(&[(&ones * q_scale)?, ones.clone(), ones], 0)?;
        let qkv = Dense::new(Tensor::cat(&ws, 0)?, Tensor::cat(&bs, 0)?, Some(&scale))?;
        let ls1 = vb.pp("layer_scale1").get(d, "lambda1")?;
        let ls2 = vb.pp("layer_scale2").get(d, "lambda1")?;
        Ok(Layer {
            norm1: layer_norm(vb.pp("norm1"), d, a.eps)?,
            qkv,
            proj: Dense::load(vb.pp("attention.output.dense"), d, d, Some(&ls1))?,
            norm2: layer_norm(vb.pp("norm2"), d, a.eps)?,
            fc1: Dense::load(vb.pp("mlp.fc1"), d, a.mlp_hidden, None)?,
            fc2: Dense::load(vb.pp("mlp.fc2"), a.mlp_hidden, d, Some(&ls2))?,
            heads: a.heads,
        })
    }

    /// Attention, through the output projection and layer scale.
    fn attention(&self, x: &Tensor) -> Result<Tensor> {
        let o = attention::attention(&self.qkv.forward(x)?, self.heads)?;
        self.proj.forward(&o)
    }

    fn forward(&self, x: &Tensor, clock: &mut Clock) -> Result<Tensor> {
        // Each residual sum is written into the branch's fresh output.
        let a = self.attention(&self.norm1.forward(x)?)?;
        ops::add_in_place(&a, x)?;
        clock.lap("attention");
        let h = self.fc1.forward(&self.norm2.forward(&a)?)?;
        clock.lap("fc1");
        ops::gelu_in_place(&h)?;
        clock.lap("gelu");
        let m = self.fc2.forward(&h)?;
        ops::add_in_place(&m, &a)?;
        clock.lap("fc2");
        Ok(m)
    }
}

pub(super) struct Backbone {
    patch: Conv,
    patch_size: usize,
    cls: Tensor,
    /// The patch position embeddings as `grid x grid` planes (`d` of them).
    pos_planes: Vec<f32>,
    pos_cls: Tensor,
    grid: usize,
    hidden: usize,
    layers: Vec<Layer>,
    norm: LayerNorm,
    out: Vec<usize>,
}

impl Backbone {
    pub(super) fn new(vb: VarBuilder, a: &Arch) -> Result<Self> {
        let d = a.hidden;
        let e = vb.pp("embeddings");
        let pos = e.get((1, a.grid * a.grid + 1, d), "position_embeddings")?;
        let pos_cls = pos.narrow(1, 0, 1)?;
        let pos_planes = pos
            .narrow(1, 1, a.grid * a.grid)?
            .squeeze(0)?
            .t()?
            .contiguous()?
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1()?;
        let layers = (0..a.layers)
            .map(|i| Layer::new(vb.pp(format!("encoder.layer.{i}")), a))
            .collect::<Result<Vec<_>>>()?;
        Ok(Backbone {
            patch: Conv::new(
                e.pp("patch_embeddings.projection"),
                3,
                d,
                a.patch,
                0,
                a.patch,
                true,
            )?,
            patch_size: a.patch,
            cls: e.get((1, 1, d), "cls_token")?,
            pos_planes,
            pos_cls,
            grid: a.grid,
            hidden: d,
            layers,
            norm: layer_norm(vb.pp("layernorm"), d, a.eps)?,
            out: a.out_indices.clone(),
        })
    }

    /// Position embeddings for `ph x pw` patches: as trained when that is
    /// the trained square, else resized bicubically as transformers does.
    fn positions(&self, ph: usize, pw: usize, dev: &Device) -> Result<Tensor> {
        let d = self.hidden;
        let planes = if ph == self.grid && pw == self.grid {
            self.pos_planes.clone()
        } else {
            resample::torch_bicubic(&self.pos_planes, d, self.grid, self.grid, ph, pw)
        };
        let patch = Tensor::from_vec(planes, (d, ph * pw), dev)?
            .t()?
            .unsqueeze(0)?;
        Tensor::cat(&[&self.pos_cls, &patch.to_dtype(self.pos_cls.dtype())?], 1)
    }

    /// The normalised outputs of the layers the neck reads, cls token included.
    pub(super) fn forward(
        &self,
        pixels: &Tensor,
        stop: &dyn Fn() -> bool,
        clock: &mut Clock,
    ) -> Result<Vec<Tensor>> {
        let (b, _, h, w) = pixels.dims4()?;
        let (ph, pw) = (h / self.patch_size, w / self.patch_size);
        let x = self
            .patch
            .forward(pixels)?
            .flatten_from(2)?
            .transpose(1, 2)?;
        let cls = self.cls.expand((b, 1, self.hidden))?;
        let mut x = Tensor::cat(&[&cls, &x], 1)?.broadcast_add(&self.positions(
            ph,
            pw,
            pixels.device(),
        )?)?;
        clock.lap("embeddings");
        let mut out = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            if stop() {
                candle_core::bail!("cancelled");
            }
            x = layer.forward(&x, clock)?;
            if self.out.contains(&(i + 1)) {
                out.push(self.norm.forward(&x)?);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A layer (query blocks, scales folded into the weights, residuals
    /// and GELU in place) computes what the reference's plain formulas do
    /// with the checkpoint's own weights.
    #[test]
    fn a_layer_is_the_reference_layer() {
        let dev = Device::Cpu;
        let (n, d, heads) = (549, 24, 2);
        let a = Arch {
            hidden: d,
            heads,
            mlp_hidden: 4 * d,
            ..Arch::published("small").unwrap()
        };
        let mut t = HashMap::new();
        let mut put = |name: &str, shape: &[usize]| {
            t.insert(
                name.to_string(),
                Tensor::randn(0f32, 0.3, shape, &dev).unwrap(),
            );
        };
        for n in ["query", "key", "value"] {
            put(&format!("attention.attention.{n}.weight"), &[d, d]);
            put(&format!("attention.attention.{n}.bias"), &[d]);
        }
        put("attention.output.dense.weight", &[d, d]);
        put("attention.output.dense.bias", &[d]);
        for n in ["norm1", "norm2"] {
            put(&format!("{n}.weight"), &[d]);
            put(&format!("{n}.bias"), &[d]);
        }
        put("layer_scale1.lambda1", &[d]);
        put("layer_scale2.lambda1", &[d]);
        put("mlp.fc1.weight", &[4 * d, d]);
        put("mlp.fc1.bias", &[4 * d]);
        put("mlp.fc2.weight", &[d, 4 * d]);
        put("mlp.fc2.bias", &[d]);
        let layer = Layer::new(VarBuilder::from_tensors(t.clone(), DType::F32, &dev), &a).unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, n, d), &dev).unwrap();
        let ours = layer.forward(&x, &mut Clock::new()).unwrap();

        // The reference: plain formulas, all queries at once, candle's ops.
        let w = |name: &str| t[name].clone();
        let lin = |x: &Tensor, p: &str| {
            x.broadcast_matmul(&w(&format!("{p}.weight")).t().unwrap())
                .unwrap()
                .broadcast_add(&w(&format!("{p}.bias")))
                .unwrap()
        };
        let norm = |x: &Tensor, p: &str| {
            let (g, b) = (w(&format!("{p}.weight")), w(&format!("{p}.bias")));
            candle_nn::ops::layer_norm(x, &g, &b, a.eps as f32).unwrap()
        };
        let hd = d / heads;
        let split = |x: Tensor| {
            x.reshape((1, n, heads, hd))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
        };
        let h = norm(&x, "norm1");
        let q = (split(lin(&h, "attention.attention.query")) / (hd as f64).sqrt()).unwrap();
        let k = split(lin(&h, "attention.attention.key"));
        let v = split(lin(&h, "attention.attention.value"));
        let p = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t().unwrap()).unwrap()).unwrap();
        let o = p
            .matmul(&v)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((1, n, d))
            .unwrap();
        let att = lin(&o, "attention.output.dense")
            .broadcast_mul(&w("layer_scale1.lambda1"))
            .unwrap();
        let x1 = (&x + att).unwrap();
        let m = lin(
            &lin(&norm(&x1, "norm2"), "mlp.fc1").gelu_erf().unwrap(),
            "mlp.fc2",
        )
        .broadcast_mul(&w("layer_scale2.lambda1"))
        .unwrap();
        let want = (x1 + m).unwrap();
        let err = ops::max_abs_diff(&ours, &want);
        assert!(err < 1e-5, "{err}");
    }
}
