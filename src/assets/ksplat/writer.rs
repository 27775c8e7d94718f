//! KSPLAT (SplatBuffer v0.1) writer: compression level 2, SH degree 0, one
//! section, as `@mkkellogg/gaussian-splats-3d` 0.4.7 lays it out:
//!
//! ```text
//! [main header 4096] [section header 1024 x sections]
//! per section: [u32 length per partially filled bucket]
//!              [f32 x3 centre per bucket (full first, then partial)]
//!              [24-byte splat record x splats, bucket by bucket]
//! record: u16 x3 centre offset | f16 x3 scale | f16 x4 rotation (w,x,y,z)
//!         | u8 x4 RGBA
//! ```

use super::bucket::{self, Bucket, Buckets};
use super::numeric::{alpha_byte, colour_byte, half_bits, js_round};
use super::select::Selection;
use super::{Gaussian, Options};

pub(crate) const HEADER_BYTES: usize = 4096;
pub(crate) const SECTION_HEADER_BYTES: usize = 1024;
pub(crate) const BYTES_PER_SPLAT: usize = 24;
pub(crate) const BUCKET_BYTES: usize = 12;
pub(crate) const COMPRESSION_LEVEL: u16 = 2;
/// Side of a bucket's cubic block (library default `BucketBlockSize`).
pub const BUCKET_BLOCK_SIZE: f32 = 5.0;
/// Splats per full bucket (library default `BucketSize`).
pub const BUCKET_SIZE: u32 = 256;
/// Centre offsets map [-block/2, block/2] onto 0..=2*RANGE.
pub(crate) const SCALE_RANGE: u32 = 32767;
/// Splats whose alpha byte is below this are dropped (0-255 scale).
pub const ALPHA_THRESHOLD: u8 = 15;
/// Level-2 SH range written to the header. With SH degree 0 no coefficient is
/// stored, so the reference falls back to its default +-1.5.
const SH_RANGE: f32 = 1.5;

/// Same expression as the reference (`range / (block * 0.5)`) so the f64
/// factor, and hence every rounded offset, is bit-identical.
const POSITION_SCALE: f64 = SCALE_RANGE as f64 / (BUCKET_BLOCK_SIZE as f64 * 0.5);

/// Splats that survive decimation, the alpha threshold and the finite
/// position check, in original order.
fn surviving(gaussians: &[Gaussian], opts: &Options) -> (Vec<u32>, bool) {
    let selection = Selection::new(gaussians.len(), opts.keep_fraction, opts.seed);
    let any_selected = selection.len() > 0;
    let kept = selection
        .filter(|&i| {
            let g = &gaussians[i];
            // A non-finite centre cannot be bucketed (upstream would poison
            // its bounding box); it is not renderable either, so drop it.
            alpha_byte(g.opacity_logit) >= ALPHA_THRESHOLD
                && g.position.iter().all(|v| v.is_finite())
        })
        .map(|i| u32::try_from(i).expect("more than u32::MAX splats cannot be stored in KSPLAT"))
        .collect();
    (kept, any_selected)
}

fn centroid(gaussians: &[Gaussian], indices: &[u32]) -> [f32; 3] {
    if indices.is_empty() {
        return [0.0; 3];
    }
    let mut sum = [0f64; 3];
    for &i in indices {
        for (s, p) in sum.iter_mut().zip(gaussians[i as usize].position) {
            *s += f64::from(p);
        }
    }
    sum.map(|s| (s / indices.len() as f64) as f32)
}

/// Unit quaternion in stored order. The reference normalises twice in f64
/// (once when parsing, once when writing); doing the same keeps the last bit
/// identical. Degenerate input becomes the identity rather than upstream's
/// accidental 180-degree turn.
fn normalised_rotation(q: [f32; 4]) -> [f64; 4] {
    let mut q = q.map(f64::from);
    for _ in 0..2 {
        let len = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]).sqrt();
        if len == 0.0 || !len.is_finite() {
            return [1.0, 0.0, 0.0, 0.0];
        }
        let inv = 1.0 / len;
        q = q.map(|c| c * inv);
    }
    q
}

fn put_u16(out: &mut [u8], at: usize, v: u16) {
    out[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut [u8], at: usize, v: u32) {
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_f32(out: &mut [u8], at: usize, v: f32) {
    out[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes one 24-byte record.
fn write_record(out: &mut [u8], g: &Gaussian, bucket_centre: [f64; 3]) {
    let max_q = f64::from(2 * SCALE_RANGE + 1);
    for (axis, (&p, &c)) in g.position.iter().zip(&bucket_centre).enumerate() {
        let q = js_round((f64::from(p) - c) * POSITION_SCALE) + f64::from(SCALE_RANGE);
        put_u16(out, axis * 2, q.clamp(0.0, max_q) as u16);
    }
    for (axis, &s) in g.log_scale.iter().enumerate() {
        put_u16(out, 6 + axis * 2, half_bits(f64::from(s).exp()));
    }
    for (k, c) in normalised_rotation(g.rotation).into_iter().enumerate() {
        put_u16(out, 12 + k * 2, half_bits(c));
    }
    out[20] = colour_byte(g.f_dc[0]);
    out[21] = colour_byte(g.f_dc[1]);
    out[22] = colour_byte(g.f_dc[2]);
    out[23] = alpha_byte(g.opacity_logit);
}

fn u32_of(n: usize) -> u32 {
    u32::try_from(n).expect("KSPLAT sizes are u32; output would exceed 4 GiB")
}

fn write_main_header(out: &mut [u8], sections: u32, splats: u32, centre: [f32; 3]) {
    out[0] = 0; // major version
    out[1] = 1; // minor version
    put_u32(out, 4, sections); // max section count
    put_u32(out, 8, sections); // section count
    put_u32(out, 12, splats); // max splat count
    put_u32(out, 16, splats); // splat count
    put_u16(out, 20, COMPRESSION_LEVEL);
    put_f32(out, 24, centre[0]);
    put_f32(out, 28, centre[1]);
    put_f32(out, 32, centre[2]);
    put_f32(out, 36, -SH_RANGE);
    put_f32(out, 40, SH_RANGE);
}

fn write_section_header(out: &mut [u8], splats: u32, buckets: &Buckets, storage_bytes: u32) {
    put_u32(out, 0, splats);
    put_u32(out, 4, splats);
    put_u32(out, 8, BUCKET_SIZE);
    put_u32(out, 12, u32_of(buckets.len()));
    put_f32(out, 16, BUCKET_BLOCK_SIZE);
    put_u16(out, 20, BUCKET_BYTES as u16);
    put_u32(out, 24, SCALE_RANGE);
    put_u32(out, 28, storage_bytes);
    put_u32(out, 32, u32_of(buckets.full.len()));
    put_u32(out, 36, u32_of(buckets.partial.len()));
    put_u16(out, 40, 0); // SH degree
}

fn write_section(out: &mut [u8], gaussians: &[Gaussian], buckets: &Buckets) {
    let mut at = 0;
    for bucket in &buckets.partial {
        put_u32(out, at, u32_of(bucket.members.len()));
        at += 4;
    }
    for bucket in buckets.iter() {
        for axis in 0..3 {
            put_f32(out, at, bucket.centre[axis] as f32);
            at += 4;
        }
    }
    let records = out[at..].chunks_exact_mut(BYTES_PER_SPLAT);
    let members = buckets
        .iter()
        .flat_map(|b: &Bucket| b.members.iter().map(move |&i| (i, b.centre)));
    for (record, (index, centre)) in records.zip(members) {
        write_record(record, &gaussians[index as usize], centre);
    }
}

/// Encodes gaussians as a KSPLAT file. See [`Options`] for decimation and
/// the scene centre.
///
/// # Panics
/// Only if the result cannot be described by the format's u32 fields: an
/// input longer than `u32::MAX`, or more than about 178 million surviving
/// splats (a section over 4 GiB; a ~10 GB PLY at `keep_fraction` 1.0).
/// ml-sharp scenes are around a million gaussians.
pub fn to_ksplat(gaussians: &[Gaussian], opts: &Options) -> Vec<u8> {
    let (mut order, any_selected) = surviving(gaussians, opts);
    let centre = opts.centre.unwrap_or_else(|| centroid(gaussians, &order));
    bucket::sort_by_distance(gaussians, &mut order, centre);
    let buckets = bucket::build(
        gaussians,
        &order,
        f64::from(BUCKET_BLOCK_SIZE),
        BUCKET_SIZE as usize,
    );

    // Upstream makes no section at all when nothing reaches the partitioner,
    // but an empty section when everything was removed by the alpha test.
    let sections = usize::from(any_selected);
    let section_bytes = if any_selected {
        buckets.partial.len() * 4 + buckets.len() * BUCKET_BYTES + order.len() * BYTES_PER_SPLAT
    } else {
        0
    };
    let data_start = HEADER_BYTES + sections * SECTION_HEADER_BYTES;
    let mut out = vec![0u8; data_start + section_bytes];
    let splats = u32_of(order.len());
    write_main_header(&mut out, u32_of(sections), splats, centre);
    if any_selected {
        write_section_header(
            &mut out[HEADER_BYTES..data_start],
            splats,
            &buckets,
            u32_of(section_bytes),
        );
        write_section(&mut out[data_start..], gaussians, &buckets);
    }
    out
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
