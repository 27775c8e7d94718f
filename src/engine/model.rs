//! Depth Anything V2 (Hugging Face transformers'
//! `DepthAnythingForDepthEstimation`, the model the AI service runs), on
//! candle: a DINOv2 backbone with the checkpoint's own fine-tuned weights,
//! the DPT neck (reassemble, fusion) and the depth head.
//!
//! Our own module rather than `candle-transformers`' `depth_anything_v2`
//! and `dinov2`, which do not compute the reference's depth map (max error
//! 72 on a range of 91 with the same weights): they upsample with nearest
//! neighbour where the reference is bilinear (`align_corners=True` in the
//! fusion and the head), pad the head's last 1x1 convolution by 1 (a
//! 520x520 map with a constant border), use LayerNorm eps 1e-5 (1e-6
//! here) and tanh-approximated GELU (exact erf here), take only square
//! 518x518 inputs (here any multiple of the patch: the photo's aspect
//! ratio is kept, and the position embeddings are interpolated bicubically
//! as transformers does), and their example pairs the head with the
//! original DINOv2 weights instead of the checkpoint's fine-tuned backbone.
//! Names are transformers', so the published `-hf` safetensors load as is.

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{LayerNorm, Linear, VarBuilder};

use super::{arch::Arch, conv::Conv, ops, resample};

fn conv(
    vb: VarBuilder,
    cin: usize,
    cout: usize,
    k: usize,
    pad: usize,
    stride: usize,
    bias: bool,
) -> Result<Conv> {
    Conv::new(vb, cin, cout, k, pad, stride, bias)
}

fn layer_norm(vb: VarBuilder, d: usize, eps: f64) -> Result<LayerNorm> {
    Ok(LayerNorm::new(
        vb.get(d, "weight")?,
        vb.get(d, "bias")?,
        eps,
    ))
}

/// Queries whose attention is computed together (a 256 x n block of
/// scores is 1.8 MB at 518x686).
const QUERY_BLOCK: usize = 256;

/// One DINOv2 layer: pre-norm attention and MLP, each scaled (layer scale)
/// before its residual. Query, key and value are one matrix product.
struct Layer {
    norm1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    ls1: Tensor,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    ls2: Tensor,
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
        let qkv = Linear::new(Tensor::cat(&ws, 0)?, Some(Tensor::cat(&bs, 0)?));
        Ok(Layer {
            norm1: layer_norm(vb.pp("norm1"), d, a.eps)?,
            qkv,
            proj: candle_nn::linear(d, d, vb.pp("attention.output.dense"))?,
            ls1: vb.pp("layer_scale1").get(d, "lambda1")?,
            norm2: layer_norm(vb.pp("norm2"), d, a.eps)?,
            fc1: candle_nn::linear(d, a.mlp_hidden, vb.pp("mlp.fc1"))?,
            fc2: candle_nn::linear(a.mlp_hidden, d, vb.pp("mlp.fc2"))?,
            ls2: vb.pp("layer_scale2").get(d, "lambda1")?,
            heads: a.heads,
        })
    }

    fn attention(&self, x: &Tensor) -> Result<Tensor> {
        let (b, n, d) = x.dims3()?;
        let hd = d / self.heads;
        let qkv = self
            .qkv
            .forward(x)?
            .reshape((b, n, 3, self.heads, hd))?
            .permute((2, 0, 3, 1, 4))?;
        let scale = 1.0 / (hd as f64).sqrt();
        let q = (qkv.get(0)?.contiguous()? * scale)?;
        let kt = qkv.get(1)?.transpose(2, 3)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        // One head and QUERY_BLOCK queries at a time: the scores of all
        // heads at once would be heads x n x n floats (80 MB for Small on a
        // 12 MP photo); a block's stay in the cache, and its buffers are
        // small enough to be reused by the allocator, not mapped anew.
        let mut out = Vec::with_capacity(self.heads);
        for h in 0..self.heads {
            let (q, kt, v) = (q.narrow(1, h, 1)?, kt.narrow(1, h, 1)?, v.narrow(1, h, 1)?);
            let mut blocks = Vec::with_capacity(n.div_ceil(QUERY_BLOCK));
            let mut r = 0;
            while r < n {
                let len = QUERY_BLOCK.min(n - r);
                let scores = q.narrow(2, r, len)?.matmul(&kt)?;
                let p = ops::softmax_last_dim(&scores)?;
                blocks.push(p.matmul(&v)?);
                r += len;
            }
            out.push(Tensor::cat(&blocks, 2)?);
        }
        let o = Tensor::cat(&out, 1)?.transpose(1, 2)?.reshape((b, n, d))?;
        self.proj.forward(&o)
    }

    fn forward(&self, x: &Tensor, clock: &mut Clock) -> Result<Tensor> {
        let a = self.attention(&self.norm1.forward(x)?)?;
        let x = (x + a.broadcast_mul(&self.ls1)?)?;
        clock.lap("attention");
        let h = self.fc1.forward(&self.norm2.forward(&x)?)?;
        clock.lap("fc1");
        let h = ops::gelu(&h)?;
        clock.lap("gelu");
        let m = self.fc2.forward(&h)?;
        let x = (x + m.broadcast_mul(&self.ls2)?)?;
        clock.lap("fc2");
        Ok(x)
    }
}

struct Backbone {
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
    fn new(vb: VarBuilder, a: &Arch) -> Result<Self> {
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
            patch: conv(
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
    fn forward(
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

/// A kernel-equals-stride transposed convolution (the reassemble stage's
/// x4 and x2) as one matrix product and a pixel shuffle: no overlaps, so
/// exactly the same sums, without a scatter over the output.
struct Unpatch {
    weight: Tensor,
    bias: Tensor,
    k: usize,
    cout: usize,
}

impl Unpatch {
    fn new(vb: VarBuilder, c: usize, k: usize) -> Result<Self> {
        let w = vb.get((c, c, k, k), "weight")?;
        Ok(Unpatch {
            weight: w.reshape((c, c * k * k))?,
            bias: vb.get(c, "bias")?.reshape((1, c, 1, 1))?,
            k,
            cout: c,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, cin, h, w) = x.dims4()?;
        let (k, c) = (self.k, self.cout);
        let cols = x
            .flatten_from(2)?
            .transpose(1, 2)?
            .reshape((b * h * w, cin))?;
        let y = cols.matmul(&self.weight)?; // (b h w) x (c k k)
        let y = y
            .reshape((b, h, w, c, k, k))?
            .permute((0, 3, 1, 4, 2, 5))?
            .reshape((b, c, h * k, w * k))?;
        y.broadcast_add(&self.bias)
    }
}

enum Resize {
    Up(Unpatch),
    Same,
    Down(Conv),
}

struct ResidualUnit {
    conv1: Conv,
    conv2: Conv,
}

impl ResidualUnit {
    fn new(vb: VarBuilder, f: usize) -> Result<Self> {
        Ok(ResidualUnit {
            conv1: conv(vb.pp("convolution1"), f, f, 3, 1, 1, true)?,
            conv2: conv(vb.pp("convolution2"), f, f, 3, 1, 1, true)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.conv1.forward(&x.relu()?)?;
        let y = self.conv2.forward(&y.relu()?)?;
        y + x
    }
}

struct Fusion {
    res1: Option<ResidualUnit>,
    res2: ResidualUnit,
    projection: Conv,
}

impl Fusion {
    fn forward(
        &self,
        x: &Tensor,
        residual: Option<&Tensor>,
        size: Option<(usize, usize)>,
    ) -> Result<Tensor> {
        let mut x = x.clone();
        if let (Some(r), Some(unit)) = (residual, &self.res1) {
            let (_, _, h, w) = x.dims4()?;
            let r = if r.dims() != x.dims() {
                r.upsample_bilinear2d(h, w, false)?
            } else {
                r.clone()
            };
            x = (x + unit.forward(&r)?)?;
        }
        let x = self.res2.forward(&x)?;
        let (_, _, h, w) = x.dims4()?;
        let (th, tw) = size.unwrap_or((h * 2, w * 2));
        self.projection
            .forward(&x.upsample_bilinear2d(th, tw, true)?)
    }
}

/// The whole model.
pub struct DepthAnything {
    backbone: Backbone,
    project: Vec<Conv>,
    resize: Vec<Resize>,
    convs: Vec<Conv>,
    fusion: Vec<Fusion>,
    head1: Conv,
    head2: Conv,
    head3: Conv,
    metric_max_depth: Option<f64>,
    patch: usize,
}

impl DepthAnything {
    pub fn new(vb: VarBuilder, a: &Arch) -> Result<Self> {
        let (d, f) = (a.hidden, a.fusion);
        let backbone = Backbone::new(vb.pp("backbone"), a)?;
        let (mut project, mut resize, mut convs) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &c) in a.neck.iter().enumerate() {
            let r = vb.pp(format!("neck.reassemble_stage.layers.{i}"));
            project.push(conv(r.pp("projection"), d, c, 1, 0, 1, true)?);
            resize.push(match i {
                0 => Resize::Up(Unpatch::new(r.pp("resize"), c, 4)?),
                1 => Resize::Up(Unpatch::new(r.pp("resize"), c, 2)?),
                2 => Resize::Same,
                _ => Resize::Down(conv(r.pp("resize"), c, c, 3, 1, 2, true)?),
            });
            convs.push(conv(
                vb.pp(format!("neck.convs.{i}")),
                c,
                f,
                3,
                1,
                1,
                false,
            )?);
        }
        let fusion = (0..4)
            .map(|i| {
                let l = vb.pp(format!("neck.fusion_stage.layers.{i}"));
                Ok(Fusion {
                    res1: if i == 0 {
                        None
                    } else {
                        Some(ResidualUnit::new(l.pp("residual_layer1"), f)?)
                    },
                    res2: ResidualUnit::new(l.pp("residual_layer2"), f)?,
                    projection: conv(l.pp("projection"), f, f, 1, 0, 1, true)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let h = vb.pp("head");
        Ok(DepthAnything {
            backbone,
            project,
            resize,
            convs,
            fusion,
            head1: conv(h.pp("conv1"), f, f / 2, 3, 1, 1, true)?,
            head2: conv(h.pp("conv2"), f / 2, a.head_hidden, 3, 1, 1, true)?,
            head3: conv(h.pp("conv3"), a.head_hidden, 1, 1, 0, 1, true)?,
            metric_max_depth: a.metric_max_depth,
            patch: a.patch,
        })
    }

    /// `pixels` (1 x 3 x H x W, H and W multiples of the patch) to the
    /// predicted depth (1 x H x W). `stop` is asked between layers.
    pub fn forward(&self, pixels: &Tensor, stop: &dyn Fn() -> bool) -> Result<Tensor> {
        let (b, _, h, w) = pixels.dims4()?;
        let (ph, pw) = (h / self.patch, w / self.patch);
        let mut clock = Clock::new();
        let hidden = self.backbone.forward(pixels, stop, &mut clock)?;
        let mut features = Vec::with_capacity(4);
        for (i, x) in hidden.iter().enumerate() {
            let d = x.dim(D::Minus1)?;
            let x = x
                .narrow(1, 1, ph * pw)?
                .reshape((b, ph, pw, d))?
                .permute((0, 3, 1, 2))?
                .contiguous()?;
            let x = self.project[i].forward(&x)?;
            let x = match &self.resize[i] {
                Resize::Up(u) => u.forward(&x)?,
                Resize::Same => x,
                Resize::Down(c) => c.forward(&x)?,
            };
            features.push(self.convs[i].forward(&x)?);
        }
        clock.lap("reassemble");
        if stop() {
            candle_core::bail!("cancelled");
        }
        // Deepest first; each step is brought to the next one's size.
        let mut fused: Option<Tensor> = None;
        for (i, layer) in self.fusion.iter().enumerate() {
            let here = &features[3 - i];
            let size = if i < 3 {
                let (_, _, nh, nw) = features[2 - i].dims4()?;
                Some((nh, nw))
            } else {
                None
            };
            fused = Some(match fused {
                None => layer.forward(here, None, size)?,
                Some(prev) => layer.forward(&prev, Some(here), size)?,
            });
        }
        let x = fused.expect("four fusion layers");
        clock.lap("fusion");
        let x = self.head1.forward(&x)?;
        clock.lap("head conv1");
        let x = x.upsample_bilinear2d(ph * self.patch, pw * self.patch, true)?;
        clock.lap("head upsample");
        let x = self.head2.forward(&x)?.relu()?;
        clock.lap("head conv2");
        let x = self.head3.forward(&x)?;
        let x = match self.metric_max_depth {
            None => x.relu()?,
            Some(m) => (candle_nn::ops::sigmoid(&x)? * m)?,
        };
        clock.lap("head conv3");
        clock.report(h, w);
        x.squeeze(1)
    }
}

/// Where a forward pass spends its time, summed per stage, logged at debug
/// level (`RUST_LOG=immichvr::engine=debug`); free when that is off.
struct Clock {
    on: bool,
    at: std::time::Instant,
    stages: Vec<(&'static str, f64)>,
}

impl Clock {
    fn new() -> Self {
        Clock {
            on: tracing::enabled!(tracing::Level::DEBUG),
            at: std::time::Instant::now(),
            stages: Vec::new(),
        }
    }

    fn lap(&mut self, stage: &'static str) {
        if !self.on {
            return;
        }
        let s = self.at.elapsed().as_secs_f64();
        self.at = std::time::Instant::now();
        match self.stages.iter_mut().find(|(n, _)| *n == stage) {
            Some((_, t)) => *t += s,
            None => self.stages.push((stage, s)),
        }
    }

    fn report(&self, h: usize, w: usize) {
        if self.on {
            let stages: Vec<String> = self
                .stages
                .iter()
                .map(|(n, t)| format!("{n} {:.0} ms", t * 1000.0))
                .collect();
            tracing::debug!(height = h, width = w, "forward pass: {}", stages.join(", "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Query blocks give the same attention as all queries at once.
    #[test]
    fn blocked_attention_is_attention() {
        let dev = Device::Cpu;
        let (n, d, heads) = (QUERY_BLOCK * 2 + 37, 24, 2);
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
        let vb = VarBuilder::from_tensors(t, DType::F32, &dev);
        let layer = Layer::new(vb, &a).unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, n, d), &dev).unwrap();
        let ours = layer.attention(&x).unwrap();
        // Plain attention, all queries at once, candle's softmax.
        let hd = d / heads;
        let qkv = layer
            .qkv
            .forward(&x)
            .unwrap()
            .reshape((1, n, 3, heads, hd))
            .unwrap()
            .permute((2, 0, 3, 1, 4))
            .unwrap();
        let q = (qkv.get(0).unwrap().contiguous().unwrap() / (hd as f64).sqrt()).unwrap();
        let k = qkv.get(1).unwrap().contiguous().unwrap();
        let v = qkv.get(2).unwrap().contiguous().unwrap();
        let p = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t().unwrap()).unwrap()).unwrap();
        let o = p
            .matmul(&v)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((1, n, d))
            .unwrap();
        let want = layer.proj.forward(&o).unwrap();
        let err = ops::max_abs_diff(&ours, &want);
        assert!(err < 1e-5, "{err}");
    }
}
