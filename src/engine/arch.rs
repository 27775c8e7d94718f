//! A Depth Anything V2 model's shape: its architecture (the transformers
//! `config.json` of a `-hf` checkpoint, or the published one for a key)
//! and its image processor (`preprocessor_config.json`), and from them
//! every tensor a weights file must hold, by its transformers name.

use std::path::Path;

use serde_json::Value;

use super::EngineError;

/// The architecture of one checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Arch {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub mlp_hidden: usize,
    pub patch: usize,
    /// Side of the square the position embeddings were trained for (in patches).
    pub grid: usize,
    /// Backbone layers (1-based, as transformers' `out_indices`) whose
    /// outputs feed the neck.
    pub out_indices: Vec<usize>,
    pub neck: Vec<usize>,
    pub fusion: usize,
    pub head_hidden: usize,
    pub eps: f64,
    /// `metric` checkpoints end with a sigmoid times this; relative ones
    /// with a ReLU.
    pub metric_max_depth: Option<f64>,
}

/// How a photo becomes the network's input.
#[derive(Debug, Clone, PartialEq)]
pub struct Processor {
    /// Target height and width before the aspect ratio is kept.
    pub size: (usize, usize),
    pub multiple: usize,
    pub keep_aspect_ratio: bool,
    pub rescale: f64,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for Processor {
    /// As published with every `depth-anything/Depth-Anything-V2-*-hf`.
    fn default() -> Self {
        Processor {
            size: (518, 518),
            multiple: 14,
            keep_aspect_ratio: true,
            rescale: 1.0 / 255.0,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }
}

impl Arch {
    /// The published architecture of `small`, `base` or `large`.
    pub fn published(key: &str) -> Option<Arch> {
        let (hidden, layers, heads, out, neck, fusion): (_, _, _, &[usize], &[usize], _) = match key
        {
            "small" => (384, 12, 6, &[3, 6, 9, 12], &[48, 96, 192, 384], 64),
            "base" => (768, 12, 12, &[3, 6, 9, 12], &[96, 192, 384, 768], 128),
            "large" => (1024, 24, 16, &[5, 12, 18, 24], &[256, 512, 1024, 1024], 256),
            _ => return None,
        };
        Some(Arch {
            hidden,
            layers,
            heads,
            mlp_hidden: hidden * 4,
            patch: 14,
            grid: 518 / 14,
            out_indices: out.to_vec(),
            neck: neck.to_vec(),
            fusion,
            head_hidden: 32,
            eps: 1e-6,
            metric_max_depth: None,
        })
    }

    /// Reads a transformers `DepthAnythingConfig` (`config.json`).
    pub fn from_config(v: &Value) -> Result<Arch, EngineError> {
        let bad = |what: &str| EngineError::BadModel(format!("config.json: {what}"));
        let b = v
            .get("backbone_config")
            .ok_or_else(|| bad("no backbone_config"))?;
        let int = |o: &Value, k: &str, default: Option<usize>| -> Result<usize, EngineError> {
            match o.get(k) {
                Some(x) => x.as_u64().map(|n| n as usize).ok_or_else(|| bad(k)),
                None => default.ok_or_else(|| bad(&format!("no {k}"))),
            }
        };
        let ints = |o: &Value, k: &str| -> Result<Vec<usize>, EngineError> {
            o.get(k)
                .and_then(Value::as_array)
                .ok_or_else(|| bad(&format!("no {k}")))?
                .iter()
                .map(|x| x.as_u64().map(|n| n as usize).ok_or_else(|| bad(k)))
                .collect()
        };
        for (o, k, want) in [
            (b, "hidden_act", "gelu"),
            (b, "model_type", "dinov2"),
            (v, "model_type", "depth_anything"),
        ] {
            if let Some(got) = o.get(k).and_then(Value::as_str) {
                if got != want {
                    return Err(bad(&format!("{k} {got} (only {want} is supported)")));
                }
            }
        }
        for k in ["use_swiglu_ffn", "reshape_hidden_states"] {
            if b.get(k).and_then(Value::as_bool) == Some(true) {
                return Err(bad(&format!("{k} is not supported")));
            }
        }
        if b.get("apply_layernorm").and_then(Value::as_bool) == Some(false) {
            return Err(bad("apply_layernorm false is not supported"));
        }
        let factors: Vec<f64> = v
            .get("reassemble_factors")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_else(|| vec![4.0, 2.0, 1.0, 0.5]);
        if factors != [4.0, 2.0, 1.0, 0.5] {
            return Err(bad("reassemble_factors other than [4, 2, 1, 0.5]"));
        }
        if v.get("head_in_index").and_then(Value::as_i64).unwrap_or(-1) != -1 {
            return Err(bad("head_in_index other than -1"));
        }
        let hidden = int(b, "hidden_size", Some(768))?;
        let mlp_ratio = b.get("mlp_ratio").and_then(Value::as_f64).unwrap_or(4.0);
        let patch = int(b, "patch_size", Some(14))?;
        let image = int(b, "image_size", Some(518))?;
        let metric = v.get("depth_estimation_type").and_then(Value::as_str) == Some("metric");
        let arch = Arch {
            hidden,
            layers: int(b, "num_hidden_layers", Some(12))?,
            heads: int(b, "num_attention_heads", Some(12))?,
            mlp_hidden: (hidden as f64 * mlp_ratio) as usize,
            patch,
            grid: image / patch.max(1),
            out_indices: ints(b, "out_indices")?,
            neck: ints(v, "neck_hidden_sizes")?,
            fusion: int(v, "fusion_hidden_size", Some(64))?,
            head_hidden: int(v, "head_hidden_size", Some(32))?,
            eps: b
                .get("layer_norm_eps")
                .and_then(Value::as_f64)
                .unwrap_or(1e-6),
            metric_max_depth: metric
                .then(|| v.get("max_depth").and_then(Value::as_f64).unwrap_or(1.0)),
        };
        if int(v, "reassemble_hidden_size", Some(hidden))? != hidden {
            return Err(bad(
                "reassemble_hidden_size differs from the backbone's hidden_size",
            ));
        }
        arch.check()?;
        Ok(arch)
    }

    fn check(&self) -> Result<(), EngineError> {
        let bad = |what: &str| Err(EngineError::BadModel(format!("config.json: {what}")));
        if self.heads == 0 || !self.hidden.is_multiple_of(self.heads) {
            return bad("hidden_size is not a multiple of num_attention_heads");
        }
        if self.out_indices.len() != 4 || self.neck.len() != 4 {
            return bad("four out_indices and four neck_hidden_sizes are needed");
        }
        if self.out_indices.iter().any(|&i| i == 0 || i > self.layers) {
            return bad("out_indices outside the backbone's layers");
        }
        if self.patch == 0 || self.grid == 0 || self.fusion < 2 {
            return bad("patch_size, image_size or fusion_hidden_size is zero");
        }
        Ok(())
    }

    /// Every tensor the model reads, with its shape (transformers names).
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f) = (self.hidden, self.fusion);
        let mut t: Vec<(String, Vec<usize>)> = Vec::new();
        let mut add = |name: String, shape: &[usize]| t.push((name, shape.to_vec()));
        let e = "backbone.embeddings";
        add(format!("{e}.cls_token"), &[1, 1, d]);
        add(
            format!("{e}.position_embeddings"),
            &[1, self.grid * self.grid + 1, d],
        );
        add(
            format!("{e}.patch_embeddings.projection.weight"),
            &[d, 3, self.patch, self.patch],
        );
        add(format!("{e}.patch_embeddings.projection.bias"), &[d]);
        for i in 0..self.layers {
            let l = format!("backbone.encoder.layer.{i}");
            for n in ["norm1", "norm2"] {
                add(format!("{l}.{n}.weight"), &[d]);
                add(format!("{l}.{n}.bias"), &[d]);
            }
            for n in ["query", "key", "value"] {
                add(format!("{l}.attention.attention.{n}.weight"), &[d, d]);
                add(format!("{l}.attention.attention.{n}.bias"), &[d]);
            }
            add(format!("{l}.attention.output.dense.weight"), &[d, d]);
            add(format!("{l}.attention.output.dense.bias"), &[d]);
            add(format!("{l}.layer_scale1.lambda1"), &[d]);
            add(format!("{l}.layer_scale2.lambda1"), &[d]);
            add(format!("{l}.mlp.fc1.weight"), &[self.mlp_hidden, d]);
            add(format!("{l}.mlp.fc1.bias"), &[self.mlp_hidden]);
            add(format!("{l}.mlp.fc2.weight"), &[d, self.mlp_hidden]);
            add(format!("{l}.mlp.fc2.bias"), &[d]);
        }
        add("backbone.layernorm.weight".into(), &[d]);
        add("backbone.layernorm.bias".into(), &[d]);
        for (i, &c) in self.neck.iter().enumerate() {
            let r = format!("neck.reassemble_stage.layers.{i}");
            add(format!("{r}.projection.weight"), &[c, d, 1, 1]);
            add(format!("{r}.projection.bias"), &[c]);
            match i {
                0 => add(format!("{r}.resize.weight"), &[c, c, 4, 4]),
                1 => add(format!("{r}.resize.weight"), &[c, c, 2, 2]),
                3 => add(format!("{r}.resize.weight"), &[c, c, 3, 3]),
                _ => {}
            }
            if i != 2 {
                add(format!("{r}.resize.bias"), &[c]);
            }
            add(format!("neck.convs.{i}.weight"), &[f, c, 3, 3]);
        }
        for i in 0..4 {
            let l = format!("neck.fusion_stage.layers.{i}");
            add(format!("{l}.projection.weight"), &[f, f, 1, 1]);
            add(format!("{l}.projection.bias"), &[f]);
            // The first layer's residual_layer1 is in the checkpoints but
            // never used (it has no residual input): not required.
            let units: &[&str] = if i == 0 {
                &["residual_layer2"]
            } else {
                &["residual_layer1", "residual_layer2"]
            };
            for u in units {
                for c in ["convolution1", "convolution2"] {
                    add(format!("{l}.{u}.{c}.weight"), &[f, f, 3, 3]);
                    add(format!("{l}.{u}.{c}.bias"), &[f]);
                }
            }
        }
        add("head.conv1.weight".into(), &[f / 2, f, 3, 3]);
        add("head.conv1.bias".into(), &[f / 2]);
        add("head.conv2.weight".into(), &[self.head_hidden, f / 2, 3, 3]);
        add("head.conv2.bias".into(), &[self.head_hidden]);
        add("head.conv3.weight".into(), &[1, self.head_hidden, 1, 1]);
        add("head.conv3.bias".into(), &[1]);
        t
    }
}

impl Processor {
    /// Reads a transformers `preprocessor_config.json`; what it leaves out
    /// is the published default. Only the bicubic resample is supported.
    pub fn from_config(v: &Value) -> Result<Processor, EngineError> {
        let bad = |what: &str| EngineError::BadModel(format!("preprocessor_config.json: {what}"));
        let d = Processor::default();
        if let Some(r) = v.get("resample").and_then(Value::as_u64) {
            if r != 3 {
                return Err(bad("only the bicubic resample (3) is supported"));
            }
        }
        for k in ["do_resize", "do_rescale", "do_normalize"] {
            if v.get(k).and_then(Value::as_bool) == Some(false) {
                return Err(bad(&format!("{k} false is not supported")));
            }
        }
        if v.get("do_pad").and_then(Value::as_bool) == Some(true) {
            return Err(bad("do_pad true is not supported"));
        }
        let three = |k: &str, def: [f32; 3]| -> Result<[f32; 3], EngineError> {
            match v.get(k).and_then(Value::as_array) {
                None => Ok(def),
                Some(a) if a.len() == 3 => {
                    let mut out = [0f32; 3];
                    for (o, x) in out.iter_mut().zip(a) {
                        *o = x.as_f64().ok_or_else(|| bad(k))? as f32;
                    }
                    Ok(out)
                }
                Some(_) => Err(bad(k)),
            }
        };
        let size = match v.get("size") {
            None => d.size,
            Some(s) => {
                let h = s.get("height").and_then(Value::as_u64);
                let w = s.get("width").and_then(Value::as_u64);
                match (h, w) {
                    (Some(h), Some(w)) if h > 0 && w > 0 => (h as usize, w as usize),
                    _ => return Err(bad("size needs a height and a width")),
                }
            }
        };
        Ok(Processor {
            size,
            multiple: v
                .get("ensure_multiple_of")
                .and_then(Value::as_u64)
                .map_or(d.multiple, |m| m.max(1) as usize),
            keep_aspect_ratio: v
                .get("keep_aspect_ratio")
                .and_then(Value::as_bool)
                .unwrap_or(d.keep_aspect_ratio),
            rescale: v
                .get("rescale_factor")
                .and_then(Value::as_f64)
                .unwrap_or(d.rescale),
            mean: three("image_mean", d.mean)?,
            std: three("image_std", d.std)?,
        })
    }

    /// The network's input size for a photo of `h` x `w`, as transformers'
    /// DPT image processor computes it: the scale closest to 1 of the two,
    /// then each side rounded (half to even, as Python's `round`) to a
    /// multiple.
    pub fn input_size(&self, h: usize, w: usize) -> (usize, usize) {
        let (th, tw) = self.size;
        let mut sh = th as f64 / h as f64;
        let mut sw = tw as f64 / w as f64;
        if self.keep_aspect_ratio {
            if (1.0 - sw).abs() < (1.0 - sh).abs() {
                sh = sw;
            } else {
                sw = sh;
            }
        }
        let m = self.multiple as f64;
        let constrain = |v: f64| -> usize {
            let x = (v / m).round_ties_even() * m;
            // A side never rounds to nothing (transformers would fail there).
            (x as usize).max(self.multiple)
        };
        (constrain(sh * h as f64), constrain(sw * w as f64))
    }
}

/// Reads `name` beside the weights, if it is there.
pub fn read_json(dir: &Path, name: &str) -> Result<Option<Value>, EngineError> {
    match std::fs::read(dir.join(name)) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| EngineError::BadModel(format!("{name}: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sizes_follow_the_dpt_image_processor() {
        let p = Processor::default();
        // A 12 MP photo, landscape and portrait: the short side becomes 518.
        assert_eq!(p.input_size(3000, 4000), (518, 686));
        assert_eq!(p.input_size(4000, 3000), (686, 518));
        // Smaller than 518 both ways: the side closest to it is fitted.
        assert_eq!(p.input_size(200, 300), (350, 518));
        assert_eq!(p.input_size(518, 518), (518, 518));
        // Python rounds half to even: 7.5 -> 8, 6.5 -> 6.
        let q = Processor {
            size: (140, 140),
            ..Processor::default()
        };
        assert_eq!(q.input_size(48, 64), (112, 140));
        assert_eq!(q.input_size(91, 140), (84, 140));
    }

    #[test]
    fn published_small_lists_its_tensors() {
        let a = Arch::published("small").unwrap();
        let t = a.tensors();
        let get = |n: &str| t.iter().find(|(k, _)| k == n).map(|(_, s)| s.clone());
        assert_eq!(
            get("backbone.embeddings.position_embeddings"),
            Some(vec![1, 1370, 384])
        );
        assert_eq!(
            get("neck.reassemble_stage.layers.3.resize.weight"),
            Some(vec![384, 384, 3, 3])
        );
        assert_eq!(get("head.conv2.weight"), Some(vec![32, 32, 3, 3]));
        let params: usize = t.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        // 24.8 M without the unused residual unit and mask token.
        assert!((24_000_000..25_500_000).contains(&params), "{params}");
    }
}
