//! Queue thumbnails: the overview scaled down once and kept beside it, so that a page of the queue sends a few
//! KiB per case instead of every full overview.

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{ImageFormat, ImageReader, Limits};

/// Width in pixels: twice the queue's 160 CSS pixels, for high-density screens.
pub const THUMB_WIDTH: u32 = 320;

/// The largest overview decoded for a thumbnail; the boxes send 1280x720 or 1920x1080 with a data bar.
const MAX_SIDE: u32 = 8192;

#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("the overview does not decode as a JPEG: {0}")]
    Decode(#[source] image::ImageError),
    #[error("the thumbnail does not encode: {0}")]
    Encode(#[source] image::ImageError),
}

/// A JPEG at most THUMB_WIDTH wide, aspect kept, from an overview JPEG. Decoding is bounded (sides, memory):
/// the overview came from a box and is hostile until decoded.
pub fn thumbnail(jpeg: &[u8]) -> Result<Vec<u8>, ThumbnailError> {
    let mut reader = ImageReader::with_format(std::io::Cursor::new(jpeg), ImageFormat::Jpeg);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(256 << 20);
    reader.limits(limits);
    let picture = reader.decode().map_err(ThumbnailError::Decode)?;
    let small = if picture.width() > THUMB_WIDTH {
        picture.resize(THUMB_WIDTH, u32::MAX, FilterType::Triangle)
    } else {
        picture
    };
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 80).encode_image(&small.to_rgb8()).map_err(ThumbnailError::Encode)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let picture =
            image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90).encode_image(&picture).expect("encode");
        out
    }

    #[test]
    fn a_thumbnail_is_320_wide_with_the_overviews_aspect_and_much_smaller() {
        let overview = jpeg(1280, 800);
        let thumb = thumbnail(&overview).expect("thumbnail");
        let decoded = image::load_from_memory(&thumb).expect("a JPEG");
        assert_eq!((decoded.width(), decoded.height()), (320, 200));
        assert!(thumb.len() * 5 < overview.len(), "{} of {}", thumb.len(), overview.len());
    }

    #[test]
    fn a_small_overview_is_not_enlarged_and_garbage_is_an_error_not_a_panic() {
        let decoded = image::load_from_memory(&thumbnail(&jpeg(200, 100)).expect("thumbnail")).expect("a JPEG");
        assert_eq!((decoded.width(), decoded.height()), (200, 100));
        for bad in [&b""[..], b"\xFF\xD8\xFF\xE0\0\x10JFIF", b"not a picture at all"] {
            assert!(matches!(thumbnail(bad), Err(ThumbnailError::Decode(_))));
        }
    }
}
