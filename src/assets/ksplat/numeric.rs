//! Scalar conversions, each written to give bit-identical results to the
//! JavaScript the reference generator runs (`@mkkellogg/gaussian-splats-3d`
//! 0.4.7 on three.js). All maths is done in `f64` because that is what a JS
//! `Number` is; rounding to `f32`/`f16`/`u8` happens only where JS stores into
//! a typed array.

/// Degree-0 spherical-harmonic basis constant (`1 / (2 * sqrt(pi))`).
pub(crate) const SH_C0: f64 = 0.282_094_791_773_878_14;

/// Largest finite half-float; three.js clamps to it instead of producing inf.
const HALF_MAX: f64 = 65504.0;

/// `Math.round`: nearest integer, ties towards +infinity. Rust's `round`
/// sends ties away from zero, which differs for negative halves (-2.5).
pub(crate) fn js_round(v: f64) -> f64 {
    let floor = v.floor();
    if v - floor >= 0.5 {
        floor + 1.0
    } else {
        floor
    }
}

/// Half-float bits exactly as three.js `DataUtils.toHalfFloat` makes them:
/// clamp to +-65504, round to f32 (Float32Array store), then TRUNCATE the
/// mantissa. Truncation (not round-to-nearest) is what the reference writer
/// does, and matching it keeps our bytes identical to upstream's.
pub(crate) fn half_bits(v: f64) -> u16 {
    // `clamp` passes NaN through unchanged, as JS Math.min/max do.
    let clamped = if v.is_nan() {
        v
    } else {
        v.clamp(-HALF_MAX, HALF_MAX)
    };
    let bits = (clamped as f32).to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32 - 127;
    let mantissa = bits & 0x007f_ffff;
    let magnitude = if exp < -24 {
        // Below the smallest subnormal: flushes to (signed) zero.
        0
    } else if exp < -14 {
        // Subnormal half: implicit leading one shifted into the mantissa.
        (0x0400u32 >> (-exp - 14)) + (mantissa >> (-exp - 1))
    } else if exp <= 15 {
        (((exp + 15) as u32) << 10) + (mantissa >> 13)
    } else if exp < 128 {
        // Unreachable after the clamp, kept so the function is total.
        0x7c00
    } else {
        // NaN keeps a (truncated) payload; the +0x200 quiet bit survives.
        0x7c00 + (mantissa >> 13)
    };
    sign | magnitude as u16
}

/// Decodes a half-float, for tests that check what a reader will see.
#[cfg(test)]
pub(crate) fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0f32 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let mantissa = f32::from(h & 0x03ff);
    match exp {
        0 => sign * mantissa * 2f32.powi(-24),
        31 if mantissa == 0.0 => sign * f32::INFINITY,
        31 => f32::NAN,
        _ => sign * (1.0 + mantissa / 1024.0) * 2f32.powi(exp - 15),
    }
}

/// Colour channel byte from a DC SH coefficient. The reference PLY parser
/// FLOORS (not rounds) `(0.5 + SH_C0 * f_dc) * 255` and clamps to 0..=255.
pub(crate) fn colour_byte(f_dc: f32) -> u8 {
    let v = ((0.5 + SH_C0 * f64::from(f_dc)) * 255.0).floor();
    // NaN -> 0 matches Uint8ClampedArray; `as` saturates the rest.
    v.clamp(0.0, 255.0) as u8
}

/// Alpha byte from an opacity logit: `floor(sigmoid(x) * 255)`, floored like
/// the reference parser so the alpha threshold drops the same splats.
pub(crate) fn alpha_byte(opacity_logit: f32) -> u8 {
    let v = ((1.0 / (1.0 + (-f64::from(opacity_logit)).exp())) * 255.0).floor();
    v.clamp(0.0, 255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_round_ties_go_up() {
        assert_eq!(js_round(2.5), 3.0);
        assert_eq!(js_round(-2.5), -2.0);
        assert_eq!(js_round(-2.6), -3.0);
        assert_eq!(js_round(0.499_999_999_999_999_94), 0.0);
    }

    #[test]
    fn half_matches_three_truncation() {
        assert_eq!(half_bits(1.0), 0x3c00);
        assert_eq!(half_bits(-2.0), 0xc000);
        assert_eq!(half_bits(0.0), 0);
        assert_eq!(half_bits(-0.0), 0x8000);
        assert_eq!(half_bits(65504.0), 0x7bff);
        assert_eq!(half_bits(1e9), 0x7bff, "clamped, not infinity");
        assert_eq!(half_bits(-1e9), 0xfbff);
        // 1 + 2047/2048 truncates to 1 + 1023/1024 instead of rounding up to 2.
        assert_eq!(half_bits(1.0 + 2047.0 / 2048.0), 0x3fff);
        // Smallest subnormal and something below it.
        assert_eq!(half_bits(2f64.powi(-24)), 0x0001);
        assert_eq!(half_bits(2f64.powi(-26)), 0x0000);
        assert_eq!(half_bits(2f64.powi(-15)), 0x0200);
        assert_eq!(half_bits(f64::NAN) & 0x7c00, 0x7c00);
        assert_ne!(half_bits(f64::NAN) & 0x03ff, 0);
    }

    #[test]
    fn half_round_trip_error_is_below_one_ulp() {
        let mut v = 1e-4f64;
        while v < 60000.0 {
            let back = f64::from(half_to_f32(half_bits(v)));
            assert!((v - back).abs() / v < 1.0 / 1024.0, "{v} -> {back}");
            v *= 1.037;
        }
    }

    #[test]
    fn colour_and_alpha_floor_and_clamp() {
        assert_eq!(colour_byte(0.0), 127); // 127.5 floors
        assert_eq!(colour_byte(10.0), 255);
        assert_eq!(colour_byte(-10.0), 0);
        assert_eq!(colour_byte(f32::NAN), 0);
        assert_eq!(alpha_byte(0.0), 127);
        assert_eq!(alpha_byte(40.0), 255);
        assert_eq!(alpha_byte(-40.0), 0);
        assert_eq!(alpha_byte(f32::NAN), 0);
        // Logit whose sigmoid*255 is just under 15 stays under the threshold.
        let logit = (14.99f64 / 255.0 / (1.0 - 14.99 / 255.0)).ln() as f32;
        assert_eq!(alpha_byte(logit), 14);
    }
}
