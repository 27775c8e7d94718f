//! Deterministic synthetic splat scenes and PLY writers shared by the
//! integration tests and the benchmark example.
#![allow(dead_code)] // each test binary uses a different subset

use immichvr::assets::ksplat::Gaussian;

/// SplitMix64, duplicated here so tests do not depend on crate internals.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        let unit = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * unit
    }
}

/// A scene that exercises the encoder: a wide scatter spanning many 5-unit
/// blocks plus two dense clusters (full 256-splat buckets), opacity logits
/// on both sides of the alpha-15 cut, colours that clamp, scales from tiny
/// to large, and unnormalised quaternions with either sign of w.
pub fn synthetic_gaussians(n: usize, seed: u64) -> Vec<Gaussian> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|i| {
            let (mid, spread) = match i % 5 {
                0 => ([7.5f32, 2.5, -2.5], 2.0f32),
                1 => ([-12.0, 0.0, 4.0], 1.0),
                _ => ([0.0, 0.0, 0.0], 40.0),
            };
            let position = [0, 1, 2].map(|a| mid[a] + r.range(-0.5, 0.5) * spread);
            let log_scale = [0, 1, 2].map(|_| r.range(-8.0, 2.0));
            let magnitude = r.range(0.3, 3.0);
            let rotation = [0, 1, 2, 3].map(|_| r.range(-1.0, 1.0) * magnitude);
            let opacity_logit = r.range(-6.0, 6.0);
            let f_dc = [0, 1, 2].map(|_| r.range(-3.0, 3.0));
            Gaussian {
                position,
                log_scale,
                rotation,
                opacity_logit,
                f_dc,
            }
        })
        .collect()
}

fn push_f32s(out: &mut Vec<u8>, values: &[f32]) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// PLY exactly as ml-sharp's `save_ply` lays it out (plyfile writer): the
/// vertex element, then one single-property element per metadata item.
pub fn ml_sharp_ply(gaussians: &[Gaussian]) -> Vec<u8> {
    let mut header = String::from("ply\nformat binary_little_endian 1.0\n");
    header += &format!("element vertex {}\n", gaussians.len());
    for name in [
        "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
        "rot_0", "rot_1", "rot_2", "rot_3",
    ] {
        header += &format!("property float {name}\n");
    }
    for (name, count, ty) in [
        ("extrinsic", 16, "float"),
        ("intrinsic", 9, "float"),
        ("image_size", 2, "uint"),
        ("frame", 2, "int"),
        ("disparity", 2, "float"),
        ("color_space", 1, "uchar"),
        ("version", 3, "uchar"),
    ] {
        header += &format!("element {name} {count}\nproperty {ty} {name}\n");
    }
    header += "end_header\n";

    let mut out = header.into_bytes();
    out.reserve(gaussians.len() * 56 + 128);
    for g in gaussians {
        push_f32s(&mut out, &g.position);
        push_f32s(&mut out, &g.f_dc);
        push_f32s(&mut out, &[g.opacity_logit]);
        push_f32s(&mut out, &g.log_scale);
        push_f32s(&mut out, &g.rotation);
    }
    let identity: Vec<f32> = (0..16)
        .map(|i| if i % 5 == 0 { 1.0 } else { 0.0 })
        .collect();
    push_f32s(&mut out, &identity);
    push_f32s(
        &mut out,
        &[1000.0, 0.0, 320.0, 0.0, 1000.0, 240.0, 0.0, 0.0, 1.0],
    );
    for v in [640u32, 480] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [1i32, gaussians.len() as i32] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    push_f32s(&mut out, &[0.1, 0.9]);
    out.push(1); // color_space
    out.extend_from_slice(&[1, 5, 0]); // version
    out
}

/// The common 3DGS training layout: different property order, normals, 45
/// `f_rest_*` coefficients, and no trailing elements.
pub fn inria_ply(gaussians: &[Gaussian]) -> Vec<u8> {
    let mut header = String::from("ply\nformat binary_little_endian 1.0\ncomment 3dgs\n");
    header += &format!("element vertex {}\n", gaussians.len());
    let mut names: Vec<String> = [
        "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend((0..45).map(|i| format!("f_rest_{i}")));
    names.extend(
        [
            "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    for name in &names {
        header += &format!("property float {name}\n");
    }
    header += "end_header\n";
    let mut out = header.into_bytes();
    for g in gaussians {
        push_f32s(&mut out, &g.position);
        push_f32s(&mut out, &[0.0, 0.0, 1.0]);
        push_f32s(&mut out, &g.f_dc);
        push_f32s(&mut out, &[0.25; 45]);
        push_f32s(&mut out, &[g.opacity_logit]);
        push_f32s(&mut out, &g.log_scale);
        push_f32s(&mut out, &g.rotation);
    }
    out
}

// Examples share this file but have no CARGO_TARGET_TMPDIR; only tests need Node.
#[cfg(test)]
pub mod node;
