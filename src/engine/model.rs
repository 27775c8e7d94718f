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

use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

use super::{arch::Arch, backbone::Backbone, clock::Clock, conv::Conv, ops};

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
        let y = self.conv1.forward_relu(x, true, false)?;
        let y = self.conv2.forward_relu(&y, true, false)?;
        ops::add_in_place(&y, x)?;
        Ok(y)
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
            let u = unit.forward(&r)?;
            ops::add_in_place(&u, &x)?;
            x = u;
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
        let x = self.head2.forward_relu(&x, false, true)?;
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
