//! Gaussian-splat PLY (as Apple's ml-sharp writes it, or the common 3DGS
//! layout) to KSPLAT, the compressed "SplatBuffer" v0.1 format the VR app's
//! loaders read (`@mkkellogg/gaussian-splats-3d` 0.4.7, Spark 0.1.10), in
//! Rust: no Node at run time.
//!
//! The output is what that library's own generator writes for compression
//! level 2, SH degree 0, alpha threshold 15, one section, 5.0-unit bucket
//! blocks and 256-splat buckets, with three intentional differences:
//! decimation is seeded instead of random, the default scene centre is the
//! centroid of the written splats instead of the origin, and buckets are
//! keyed so that flat scenes cannot merge distant splats (see `bucket.rs`).
//! The layout is written down in `docs/vr-app.md`.

mod bucket;
mod error;
mod numeric;
mod ply;
mod select;
mod writer;

pub use error::PlyError;
pub use ply::read_ply;
pub use writer::{to_ksplat, ALPHA_THRESHOLD, BUCKET_BLOCK_SIZE, BUCKET_SIZE};

/// One gaussian as stored in a 3DGS PLY, before any activation.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Gaussian {
    /// Centre `x, y, z`.
    pub position: [f32; 3],
    /// Natural-log scales `scale_0..2`; the stored scale is `exp` of these.
    pub log_scale: [f32; 3],
    /// Quaternion `rot_0..3` = `w, x, y, z`; need not be normalised.
    pub rotation: [f32; 4],
    /// Opacity before the sigmoid (`opacity`).
    pub opacity_logit: f32,
    /// Degree-0 SH colour coefficients `f_dc_0..2`.
    pub f_dc: [f32; 3],
}

/// Conversion options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Options {
    /// Fraction of input gaussians to keep, chosen by seeded sampling;
    /// exactly `floor(keep_fraction * n)` are kept, in input order, before
    /// the alpha threshold removes faint ones. `1.0` disables decimation.
    /// Values outside [0, 1] are clamped; NaN means 1.0.
    pub keep_fraction: f64,
    /// Seed for the decimation sampler: same seed and input, same bytes.
    pub seed: u64,
    /// Scene centre written to the header and used to order splats. `None`
    /// uses the centroid of the splats that end up in the file.
    pub centre: Option<[f32; 3]>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            keep_fraction: 0.65,
            seed: 0,
            centre: None,
        }
    }
}

/// Reads a PLY and encodes it as KSPLAT in one call.
pub fn convert(ply: &[u8], opts: &Options) -> Result<Vec<u8>, PlyError> {
    Ok(to_ksplat(&read_ply(ply)?, opts))
}

/// Converts the PLY at `src` into a KSPLAT beside the other splats in
/// `dir`, under a temporary name (fsynced): the file, its size, its
/// SHA-256 and how many splats it holds.
pub fn convert_file(
    src: &std::path::Path,
    dir: &std::path::Path,
) -> Result<(crate::media::sink::TempFile, u64, [u8; 32], u32), PlyError> {
    use sha2::Digest;
    use std::io::Write;
    let bytes = std::fs::read(src).map_err(|e| PlyError::Io(e.to_string()))?;
    let out = convert(&bytes, &Options::default())?;
    let splats = u32::from_le_bytes(out[16..20].try_into().unwrap_or([0; 4]));
    let tmp = crate::media::sink::TempFile::new(dir);
    let mut f = std::fs::File::create(tmp.path()).map_err(|e| PlyError::Io(e.to_string()))?;
    f.write_all(&out).map_err(|e| PlyError::Io(e.to_string()))?;
    f.sync_all().map_err(|e| PlyError::Io(e.to_string()))?;
    let sha: [u8; 32] = sha2::Sha256::digest(&out).into();
    Ok((tmp, out.len() as u64, sha, splats))
}
