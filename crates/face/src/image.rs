//! Decoding untrusted image bytes under limits, and the RGB image the engine works on.
//!
//! Only JPEG, PNG, BMP and GIF are compiled in (Azure Face's formats). The limits are checked twice: the header's
//! dimensions are read first and refused before any pixel buffer exists, and the decoder itself runs under
//! `image::Limits` so that a file whose header lies still cannot allocate more than the limits allow.

use std::io::Cursor;

use image::{ImageFormat, ImageReader};

use crate::FaceError;

/// What [`DecodedImage::decode`] accepts. The defaults are Azure Face's: at most 6 MiB, sides from 36 to 4096.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest accepted body, bytes.
    pub max_bytes: usize,
    /// Smallest accepted width and height, pixels.
    pub min_side: u32,
    /// Largest accepted width and height, pixels.
    pub max_side: u32,
    /// Largest accepted width × height.
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        Self {
            max_bytes: 6 * 1024 * 1024,
            min_side: 36,
            max_side: 4096,
            max_pixels: 4096 * 4096,
        }
    }
}

/// A decoded image: 8-bit RGB, row-major, no padding.
#[derive(Clone, PartialEq, Eq)]
pub struct DecodedImage {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl std::fmt::Debug for DecodedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedImage")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

impl DecodedImage {
    /// Decodes a JPEG, PNG, BMP or GIF (its first frame) body within `limits`.
    ///
    /// # Errors
    ///
    /// [`FaceError::InvalidImage`] for an empty, unknown or corrupt body; [`FaceError::InvalidImageSize`] for a
    /// body or image outside `limits`, refused before the pixels are allocated.
    pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<Self, FaceError> {
        if bytes.is_empty() {
            return Err(FaceError::InvalidImage("the body is empty".into()));
        }
        if bytes.len() > limits.max_bytes {
            return Err(FaceError::InvalidImageSize(format!(
                "the image is {} bytes; at most {} are accepted",
                bytes.len(),
                limits.max_bytes
            )));
        }
        let reader = || -> Result<ImageReader<Cursor<&[u8]>>, FaceError> {
            let reader = ImageReader::new(Cursor::new(bytes))
                .with_guessed_format()
                .map_err(|e| FaceError::InvalidImage(e.to_string()))?;
            match reader.format() {
                Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Bmp | ImageFormat::Gif) => {
                    Ok(reader)
                }
                _ => Err(FaceError::InvalidImage(
                    "not a JPEG, PNG, BMP or GIF image".into(),
                )),
            }
        };

        // The header alone: nothing the size of the image is allocated yet.
        let (width, height) = reader()?
            .into_dimensions()
            .map_err(|e| FaceError::InvalidImage(e.to_string()))?;
        check_dimensions(width, height, limits)?;

        let mut decoder_limits = image::Limits::default();
        decoder_limits.max_image_width = Some(limits.max_side);
        decoder_limits.max_image_height = Some(limits.max_side);
        // The decoded buffer (up to 16-bit RGBA for a PNG) plus the decoders' own working memory.
        decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(1 << 20));
        let mut reader = reader()?;
        reader.limits(decoder_limits);
        let decoded = reader.decode().map_err(|e| match e {
            image::ImageError::Limits(l) => FaceError::InvalidImageSize(l.to_string()),
            other => FaceError::InvalidImage(other.to_string()),
        })?;
        let rgb = decoded.into_rgb8();
        let (width, height) = rgb.dimensions();
        check_dimensions(width, height, limits)?;
        Ok(Self {
            width,
            height,
            rgb: rgb.into_raw(),
        })
    }

    /// An image from raw 8-bit RGB pixels (row-major, `width * height * 3` bytes), e.g. for tests.
    ///
    /// # Errors
    ///
    /// [`FaceError::InvalidImage`] when the buffer's length does not match; no size limits apply.
    pub fn from_rgb(width: u32, height: u32, rgb: Vec<u8>) -> Result<Self, FaceError> {
        if width == 0 || height == 0 || rgb.len() as u64 != u64::from(width) * u64::from(height) * 3 {
            return Err(FaceError::InvalidImage(format!(
                "{} bytes are not {width}×{height} RGB pixels",
                rgb.len()
            )));
        }
        Ok(Self { width, height, rgb })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The pixels: 8-bit RGB, row-major.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }
}

fn check_dimensions(width: u32, height: u32, limits: &ImageLimits) -> Result<(), FaceError> {
    let sides = limits.min_side..=limits.max_side;
    if !sides.contains(&width) || !sides.contains(&height) {
        return Err(FaceError::InvalidImageSize(format!(
            "the image is {width}×{height} pixels; each side must be from {} to {}",
            limits.min_side, limits.max_side
        )));
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(FaceError::InvalidImageSize(format!(
            "the image has {} pixels; at most {} are accepted",
            u64::from(width) * u64::from(height),
            limits.max_pixels
        )));
    }
    Ok(())
}
