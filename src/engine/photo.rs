//! A photo in, a depth map out, as the AI service does around the model:
//! decoded and turned upright (transformers' `load_image` applies the EXIF
//! orientation), converted to RGB, resized by the image processor (Pillow
//! bicubic, aspect ratio kept, multiples of the patch), rescaled and
//! normalised; the predicted depth resized back to the photo's size
//! (bicubic), min-max normalised to 8 bits (a flat map is all 128) and
//! written as a grayscale PNG, brighter nearer.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use super::{arch::Processor, resample, EngineError};

/// Pillow refuses images above twice its `MAX_IMAGE_PIXELS` (89.5 M) as
/// decompression bombs; so do we, before allocating them.
pub const MAX_PIXELS: u64 = 2 * 89_478_485;

/// An upright RGB photo.
pub struct Rgb {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

/// Decodes a photo (JPEG, PNG, WebP, GIF, BMP, TIFF) and applies its EXIF
/// orientation.
pub fn decode(bytes: &[u8]) -> Result<Rgb, EngineError> {
    let bad = |e: &dyn std::fmt::Display| {
        EngineError::BadImage(format!("cannot identify image file: {e}"))
    };
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(&e))?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 4 + (64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| bad(&e))?;
    let (w, h) = decoder.dimensions();
    if w as u64 * h as u64 > MAX_PIXELS {
        return Err(EngineError::BadImage(format!(
            "{w}x{h} pixels is more than {MAX_PIXELS} (a decompression bomb?)"
        )));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| bad(&e))?;
    img.apply_orientation(orientation);
    let rgb = img.into_rgb8();
    Ok(Rgb {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        data: rgb.into_raw(),
    })
}

/// The network's input: `(height, width, 3 x H x W normalised floats)`.
pub struct Pixels {
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

/// The image processor's resize (Pillow bicubic) to the network's size.
pub fn resize(p: &Processor, photo: &Rgb) -> (usize, usize, Vec<u8>) {
    let (h, w) = p.input_size(photo.height, photo.width);
    let data = resample::pil_resize_rgb(&photo.data, photo.width, photo.height, w, h);
    (h, w, data)
}

/// Rescale and normalise, channels first, in the reference's arithmetic
/// (the rescale in f64, then f32).
pub fn normalise(p: &Processor, h: usize, w: usize, rgb: &[u8]) -> Pixels {
    let mut data = vec![0f32; 3 * h * w];
    let (plane0, rest) = data.split_at_mut(h * w);
    let (plane1, plane2) = rest.split_at_mut(h * w);
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        for (c, plane) in [&mut *plane0, &mut *plane1, &mut *plane2]
            .into_iter()
            .enumerate()
        {
            let v = (px[c] as f64 * p.rescale) as f32;
            plane[i] = (v - p.mean[c]) / p.std[c];
        }
    }
    Pixels {
        height: h,
        width: w,
        data,
    }
}

/// The predicted depth (`h` x `w`) resized to the photo's size and
/// normalised to 8 bits.
pub fn depth_to_u8(depth: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<u8> {
    let big = resample::torch_bicubic(depth, 1, h, w, oh, ow);
    let (min, max) = big
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let range = max - min;
    // Flat (the AI service's test is < 1e-10 on its 8-bit map; a flat map
    // resized in floats may wobble in its last bits, which must not become
    // noise stretched to 0-255).
    if !range.is_finite() || range < 1e-10 || range <= 1e-5 * min.abs().max(max.abs()) {
        return vec![128; oh * ow];
    }
    big.iter()
        .map(|&v| (((v - min) / range) * 255.0) as u8)
        .collect()
}

/// An 8-bit grayscale PNG.
pub fn png(gray: Vec<u8>, width: usize, height: usize) -> Result<Vec<u8>, EngineError> {
    let img = image::GrayImage::from_raw(width as u32, height as u32, gray)
        .ok_or_else(|| EngineError::BadImage("depth map size mismatch".into()))?;
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| EngineError::BadImage(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_depth_is_mid_grey_and_ranges_span_0_to_255() {
        assert!(depth_to_u8(&[0.3; 16], 4, 4, 3, 5)
            .iter()
            .all(|&v| v == 128));
        let ramp: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let out = depth_to_u8(&ramp, 4, 4, 4, 4);
        assert_eq!(out[0], 0);
        assert_eq!(out[15], 255);
    }

    #[test]
    fn garbage_is_refused_as_an_image() {
        assert!(matches!(
            decode(b"not a photo"),
            Err(EngineError::BadImage(_))
        ));
    }

    #[test]
    fn exif_orientation_turns_the_photo_upright() {
        // A 4x2 JPEG marked "rotate 90 CW" (orientation 6) decodes as 2x4.
        let img = image::RgbImage::from_pixel(4, 2, image::Rgb([10, 20, 30]));
        let mut jpeg = Vec::new();
        let enc = image::codecs::jpeg::JpegEncoder::new(&mut jpeg);
        let exif: Vec<u8> = [
            b"Exif\0\0MM\0\x2a\0\0\0\x08".as_slice(),
            &[0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        image::ImageEncoder::write_image(enc, img.as_raw(), 4, 2, image::ExtendedColorType::Rgb8)
            .unwrap();
        // APP1 right after SOI.
        let mut with = jpeg[..2].to_vec();
        with.extend_from_slice(&[0xFF, 0xE1]);
        with.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        with.extend_from_slice(&exif);
        with.extend_from_slice(&jpeg[2..]);
        let d = decode(&with).unwrap();
        assert_eq!((d.width, d.height), (2, 4));
        let plain = decode(&jpeg).unwrap();
        assert_eq!((plain.width, plain.height), (4, 2));
    }
}
