//! Profile photo processing: checks that an upload is a real image of a sane size, then re-encodes
//! it as square renditions that carry none of the original's metadata (EXIF, GPS, ICC, comments).
//!
//! Pure and CPU-bound: callers run [`process`] in `spawn_blocking`.

use std::io::Cursor;

use anyhow::anyhow;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use crate::error::{Error, Result};

/// The input field every refusal names.
const FIELD: &str = "file";
const MIB: u64 = 1024 * 1024;
const NOT_AN_IMAGE: &str = "not a PNG, JPEG, WebP or GIF image";
const DAMAGED: &str = "the image is damaged or truncated";
/// Opaque renditions are JPEG at this quality: no visible artefacts at avatar sizes.
const JPEG_QUALITY: u8 = 85;
/// The widest pixel these four formats decode to: 16-bit RGBA (PNG).
const MAX_BYTES_PER_PIXEL: u64 = 8;

/// Side lengths, in pixels, of the square renditions served, largest first.
pub const SIZES: [u32; 2] = [512, 64];

// `process` resamples each size from the previous, larger rendition.
const _: () = assert!(SIZES[0] > SIZES[1]);

/// The stored size nearest to `wanted` (on a tie, the larger: scaling down looks better).
pub fn nearest_size(wanted: u32) -> u32 {
    SIZES.iter().copied().min_by_key(|s| (s.abs_diff(wanted), std::cmp::Reverse(*s))).unwrap_or(SIZES[0])
}

/// How large an upload may be. Checked before anything is decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhotoLimits {
    /// Size of the uploaded file, in bytes.
    pub max_bytes: usize,
    /// Width × height, as declared by the image header.
    pub max_pixels: u64,
    /// Longest side, in pixels.
    pub max_dimension: u32,
}

impl Default for PhotoLimits {
    fn default() -> Self {
        PhotoLimits { max_bytes: 5 * 1024 * 1024, max_pixels: 40_000_000, max_dimension: 10_000 }
    }
}

/// One square rendition of a photo, ready to store and serve.
#[derive(Clone, Debug)]
pub struct Rendition {
    /// Width and height, one of [`SIZES`].
    pub size: u32,
    pub bytes: Vec<u8>,
    /// `image/png` if the photo has transparent pixels, else `image/jpeg`.
    pub content_type: &'static str,
    /// `png` or `jpg`, matching `content_type`.
    pub extension: &'static str,
}

/// Turns an uploaded file into one [`Rendition`] per entry of [`SIZES`], in that order.
///
/// The format is sniffed from the bytes, never taken from a file name or claimed type. The
/// photo is turned upright (EXIF orientation), centre-cropped to a square and scaled to exactly
/// each size, smaller sources included, so every rendition's dimensions are predictable. All
/// renditions of one photo share one format. Every refusal is [`Error::Invalid`] on `file`.
pub fn process(data: &[u8], limits: &PhotoLimits) -> Result<Vec<Rendition>> {
    if data.is_empty() {
        return Err(Error::invalid(FIELD, format!("the file is empty; send an image of at most {}", megabytes(limits))));
    }
    if data.len() > limits.max_bytes {
        return Err(Error::invalid(FIELD, format!("the image must be at most {}", megabytes(limits))));
    }
    let square = {
        let image = decode(data, limits)?;
        let side = image.width().min(image.height());
        image.crop_imm((image.width() - side) / 2, (image.height() - side) / 2, side, side)
    };
    let (mut source, format) = to_8_bit(square);

    let mut renditions = Vec::with_capacity(SIZES.len());
    for size in SIZES {
        let resized = source.resize_exact(size, size, FilterType::Lanczos3);
        renditions.push(format.encode(&resized, size)?);
        // Scaling the next, smaller size from this one is far cheaper than from a 40 MP
        // original and looks the same; after an upscale, the original is the better source.
        if size < source.width() {
            source = resized;
        }
    }
    Ok(renditions)
}

/// Sniffs, checks the declared size, then decodes, turned upright.
fn decode(data: &[u8], limits: &PhotoLimits) -> Result<DynamicImage> {
    let mut reader = ImageReader::new(Cursor::new(data))
        .with_guessed_format()
        .map_err(|err| Error::Internal(anyhow!(err).context("sniffing a photo's format")))?;
    let reader_format = match reader.format() {
        Some(format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Gif)) => format,
        _ => return Err(Error::invalid(FIELD, NOT_AN_IMAGE)),
    };
    // Second guard, inside the decoders, should a header lie about the size.
    let max_alloc = limits.max_pixels.saturating_mul(MAX_BYTES_PER_PIXEL).saturating_add(64 * MIB).min(512 * MIB);
    let mut decoder_limits = Limits::default();
    decoder_limits.max_image_width = Some(limits.max_dimension);
    decoder_limits.max_image_height = Some(limits.max_dimension);
    decoder_limits.max_alloc = Some(max_alloc);
    reader.limits(decoder_limits);

    // Creating the decoder reads only the header.
    let mut decoder = reader.into_decoder().map_err(|err| refusal(err, limits))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(Error::invalid(FIELD, DAMAGED));
    }
    // A few KB can declare 100000 × 100000 pixels: refuse before allocating for them.
    if width > limits.max_dimension
        || height > limits.max_dimension
        || u64::from(width) * u64::from(height) > limits.max_pixels
        || decoder.total_bytes() > max_alloc
    {
        return Err(too_large(limits));
    }
    // Must be read before `from_decoder` consumes the decoder. A malformed EXIF block is no
    // reason to refuse the photo: it is then shown as stored.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    if reader_format == ImageFormat::Jpeg && !jpeg_is_complete(data) {
        return Err(Error::invalid(FIELD, DAMAGED));
    }
    // GIF and animated WebP: the first frame.
    let mut image = DynamicImage::from_decoder(decoder).map_err(|err| refusal(err, limits))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Whether an end-of-image marker follows the first scan. The JPEG decoder behind `image`
/// accepts a truncated file and fills the missing part with grey, so this is checked here.
///
/// The header segments are skipped by their lengths, not searched: an EXIF thumbnail carries
/// an end marker of its own. Scan data cannot contain one (it escapes every 0xFF byte), and
/// data appended after the end (as in motion photos) does no harm.
fn jpeg_is_complete(data: &[u8]) -> bool {
    let mut at = 2; // after SOI
    loop {
        match data.get(at..at + 2) {
            Some([0xFF, 0xFF]) => at += 1, // fill byte
            Some([0xFF, 0xDA]) => break,   // SOS: the first scan
            Some([0xFF, 0xD0..=0xD7 | 0x01]) => at += 2,
            Some([0xFF, 0xD9]) | None => return false,
            Some([0xFF, _]) => match data.get(at + 2..at + 4) {
                Some(&[high, low]) if u16::from_be_bytes([high, low]) >= 2 => {
                    at += 2 + usize::from(u16::from_be_bytes([high, low]));
                }
                _ => return false,
            },
            Some(_) => return false,
        }
    }
    data[at..].windows(2).any(|pair| pair == [0xFF, 0xD9])
}

/// How the renditions of one photo are encoded.
#[derive(Clone, Copy)]
enum OutputFormat {
    Png,
    Jpeg,
}

/// Converts to 8-bit RGB, or RGBA when some pixel is actually transparent: an alpha channel
/// that is opaque everywhere (every GIF decodes with one) would only make the files larger.
fn to_8_bit(image: DynamicImage) -> (DynamicImage, OutputFormat) {
    if !image.color().has_alpha() {
        return (DynamicImage::ImageRgb8(image.into_rgb8()), OutputFormat::Jpeg);
    }
    let rgba = image.into_rgba8();
    if rgba.pixels().any(|pixel| pixel.0[3] < u8::MAX) {
        (DynamicImage::ImageRgba8(rgba), OutputFormat::Png)
    } else {
        (DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(rgba).into_rgb8()), OutputFormat::Jpeg)
    }
}

impl OutputFormat {
    /// Encodes from pixels alone: no metadata is written.
    fn encode(self, image: &DynamicImage, size: u32) -> Result<Rendition> {
        let mut bytes = Vec::new();
        let (written, content_type, extension) = match self {
            OutputFormat::Png => (image.write_with_encoder(PngEncoder::new(&mut bytes)), "image/png", "png"),
            OutputFormat::Jpeg => (image.write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)), "image/jpeg", "jpg"),
        };
        written.map_err(|err| Error::Internal(anyhow!(err).context(format!("encoding a {size} px photo rendition"))))?;
        Ok(Rendition { size, bytes, content_type, extension })
    }
}

fn refusal(err: ImageError, limits: &PhotoLimits) -> Error {
    match err {
        ImageError::Limits(_) => too_large(limits),
        ImageError::Unsupported(_) => {
            Error::invalid(FIELD, "the image uses a variant of its format that is not supported; save it as PNG or JPEG")
        }
        _ => Error::invalid(FIELD, DAMAGED),
    }
}

fn too_large(limits: &PhotoLimits) -> Error {
    Error::invalid(
        FIELD,
        format!(
            "the image may have at most {} megapixels and {} pixels per side",
            one_decimal(limits.max_pixels as f64 / 1e6),
            limits.max_dimension
        ),
    )
}

fn megabytes(limits: &PhotoLimits) -> String {
    format!("{} MB", one_decimal(limits.max_bytes as f64 / MIB as f64))
}

/// `5` for 5.0, `0.5` for 0.5: no trailing `.0`.
fn one_decimal(value: f64) -> String {
    ((value * 10.0).round() / 10.0).to_string()
}

#[cfg(test)]
mod tests {
    use image::{Delay, Frame, GenericImageView, Rgb, RgbImage, Rgba, RgbaImage};

    use super::*;

    #[test]
    fn the_nearest_stored_size_is_chosen_and_a_tie_goes_to_the_larger() {
        for (wanted, chosen) in [(1, 64), (48, 64), (100, 64), (287, 64), (288, 512), (300, 512), (512, 512), (4096, 512)] {
            assert_eq!(nearest_size(wanted), chosen, "{wanted}");
        }
    }

    const RED: Rgb<u8> = Rgb([220, 20, 20]);
    const BLUE: Rgb<u8> = Rgb([20, 20, 220]);

    /// A gradient, so that encoders have real content to compress.
    fn picture(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]))
    }

    fn encoded(image: impl Into<DynamicImage>, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        image.into().write_to(&mut bytes, format).expect("encoding a test image");
        bytes.into_inner()
    }

    fn process_default(data: &[u8]) -> Result<Vec<Rendition>> {
        process(data, &PhotoLimits::default())
    }

    #[track_caller]
    fn assert_refused(result: Result<Vec<Rendition>>) {
        match result {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, FIELD),
            Err(other) => panic!("expected a refusal on `file`, got {} ({})", other.code(), other.message()),
            Ok(_) => panic!("expected a refusal on `file`, the upload was accepted"),
        }
    }

    /// Every size once, in order, each exactly square and of the format it claims.
    #[track_caller]
    fn assert_square_renditions(renditions: &[Rendition], content_type: &str) {
        assert_eq!(renditions.iter().map(|r| r.size).collect::<Vec<_>>(), SIZES);
        for rendition in renditions {
            assert_eq!(rendition.content_type, content_type);
            let expected = if content_type == "image/png" { ImageFormat::Png } else { ImageFormat::Jpeg };
            assert_eq!(image::guess_format(&rendition.bytes).ok(), Some(expected));
            assert_eq!(ImageFormat::from_extension(rendition.extension), Some(expected));
            let decoded = image::load_from_memory(&rendition.bytes).expect("a rendition decodes");
            assert_eq!(decoded.dimensions(), (rendition.size, rendition.size));
        }
    }

    #[track_caller]
    fn assert_near(actual: Rgb<u8>, expected: Rgb<u8>) {
        let close = actual.0.iter().zip(expected.0).all(|(a, e)| a.abs_diff(e) <= 40);
        assert!(close, "expected about {expected:?}, got {actual:?}");
    }

    fn pixel(rendition: &Rendition, x: u32, y: u32) -> Rgb<u8> {
        image::load_from_memory(&rendition.bytes).expect("a rendition decodes").to_rgb8().get_pixel(x, y).to_owned()
    }

    /// A JPEG whose APP1 segment, right after SOI, holds an EXIF block with an orientation tag
    /// and a GPS position, as phones write them.
    fn jpeg_with_exif(image: RgbImage, orientation: u16) -> Vec<u8> {
        // Little-endian TIFF: header, IFD0 (orientation, GPS pointer), GPS IFD, latitude.
        let mut tiff = Vec::new();
        tiff.extend_from_slice(b"II*\0");
        tiff.extend_from_slice(&8u32.to_le_bytes());
        let entry = |tiff: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: [u8; 4]| {
            tiff.extend_from_slice(&tag.to_le_bytes());
            tiff.extend_from_slice(&kind.to_le_bytes());
            tiff.extend_from_slice(&count.to_le_bytes());
            tiff.extend_from_slice(&value);
        };
        const SHORT: u16 = 3;
        const LONG: u16 = 4;
        const ASCII: u16 = 2;
        const RATIONAL: u16 = 5;
        const BYTE: u16 = 1;
        let gps_ifd = 8 + 2 + 2 * 12 + 4;
        let latitude = gps_ifd + 2 + 3 * 12 + 4;
        tiff.extend_from_slice(&2u16.to_le_bytes());
        let [o0, o1] = orientation.to_le_bytes();
        entry(&mut tiff, 0x0112, SHORT, 1, [o0, o1, 0, 0]);
        entry(&mut tiff, 0x8825, LONG, 1, (gps_ifd as u32).to_le_bytes());
        tiff.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(tiff.len(), gps_ifd);
        tiff.extend_from_slice(&3u16.to_le_bytes());
        entry(&mut tiff, 0x0000, BYTE, 4, [2, 3, 0, 0]); // GPSVersionID
        entry(&mut tiff, 0x0001, ASCII, 2, *b"N\0\0\0"); // GPSLatitudeRef
        entry(&mut tiff, 0x0002, RATIONAL, 3, (latitude as u32).to_le_bytes()); // GPSLatitude
        tiff.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(tiff.len(), latitude);
        for (numerator, denominator) in [(48u32, 1u32), (51, 1), (2964, 100)] {
            tiff.extend_from_slice(&numerator.to_le_bytes());
            tiff.extend_from_slice(&denominator.to_le_bytes());
        }

        let jpeg = encoded(image, ImageFormat::Jpeg);
        assert_eq!(jpeg[..2], [0xFF, 0xD8]);
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend_from_slice(&u16::try_from(2 + 6 + tiff.len()).unwrap().to_be_bytes());
        app1.extend_from_slice(b"Exif\0\0");
        app1.extend_from_slice(&tiff);
        [&jpeg[..2], &app1, &jpeg[2..]].concat()
    }

    /// A PNG with nothing but a valid header (correct CRCs) that declares the given size.
    fn png_header_only(width: u32, height: u32) -> Vec<u8> {
        let chunk = |kind: &[u8; 4], data: &[u8]| {
            let mut crc = crc32fast::Hasher::new();
            crc.update(kind);
            crc.update(data);
            [&u32::try_from(data.len()).unwrap().to_be_bytes()[..], kind, data, &crc.finalize().to_be_bytes()].concat()
        };
        // Bit depth 8, RGBA, deflate, adaptive filtering, not interlaced.
        let ihdr = [&width.to_be_bytes()[..], &height.to_be_bytes(), &[8, 6, 0, 0, 0]].concat();
        [&b"\x89PNG\r\n\x1a\n"[..], &chunk(b"IHDR", &ihdr), &chunk(b"IEND", &[])].concat()
    }

    #[test]
    fn a_png_becomes_a_square_rendition_at_every_size() {
        let renditions = process_default(&encoded(picture(300, 200), ImageFormat::Png)).unwrap();
        assert_square_renditions(&renditions, "image/jpeg");
    }

    #[test]
    fn a_jpeg_becomes_a_square_rendition_at_every_size() {
        let renditions = process_default(&encoded(picture(200, 300), ImageFormat::Jpeg)).unwrap();
        assert_square_renditions(&renditions, "image/jpeg");
    }

    #[test]
    fn a_webp_becomes_a_square_rendition_at_every_size() {
        let renditions = process_default(&encoded(picture(300, 200), ImageFormat::WebP)).unwrap();
        assert_square_renditions(&renditions, "image/jpeg");
    }

    #[test]
    fn a_gif_becomes_a_square_rendition_at_every_size() {
        let renditions = process_default(&encoded(picture(300, 200), ImageFormat::Gif)).unwrap();
        assert_square_renditions(&renditions, "image/jpeg");
    }

    #[test]
    fn a_photo_smaller_than_a_rendition_is_scaled_up_to_exactly_its_size() {
        let renditions = process_default(&encoded(picture(40, 30), ImageFormat::Png)).unwrap();
        assert_square_renditions(&renditions, "image/jpeg");
    }

    #[test]
    fn the_centre_of_a_landscape_photo_is_kept() {
        // Left and right quarters blue, the middle half red: the centred square is all red.
        let photo = RgbImage::from_fn(400, 200, |x, _| if (100..300).contains(&x) { RED } else { BLUE });
        let renditions = process_default(&encoded(photo, ImageFormat::Png)).unwrap();
        for (x, y) in [(5, 5), (506, 5), (5, 506), (506, 506), (256, 256)] {
            assert_near(pixel(&renditions[0], x, y), RED);
        }
    }

    #[test]
    fn a_transparent_png_stays_png() {
        let photo = RgbaImage::from_fn(120, 80, |x, _| if x < 60 { Rgba([0, 0, 0, 0]) } else { Rgba([200, 10, 10, 255]) });
        let renditions = process_default(&encoded(photo, ImageFormat::Png)).unwrap();
        assert_square_renditions(&renditions, "image/png");
        let decoded = image::load_from_memory(&renditions[0].bytes).unwrap().to_rgba8();
        assert_eq!(decoded.get_pixel(0, 256).0[3], 0, "the left edge stays transparent");
        assert_eq!(decoded.get_pixel(511, 256).0[3], 255);
    }

    #[test]
    fn an_alpha_channel_that_is_opaque_everywhere_gives_jpeg() {
        let photo = DynamicImage::ImageRgb8(picture(100, 100)).into_rgba8();
        let renditions = process_default(&encoded(photo, ImageFormat::Png)).unwrap();
        assert_square_renditions(&renditions, "image/jpeg");
    }

    #[test]
    fn only_the_first_frame_of_an_animated_gif_is_used() {
        let frame = |colour: Rgb<u8>| {
            let rgba = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 64, colour)).into_rgba8();
            Frame::from_parts(rgba, 0, 0, Delay::from_numer_denom_ms(100, 1))
        };
        let mut gif = Vec::new();
        image::codecs::gif::GifEncoder::new(&mut gif).encode_frames([frame(RED), frame(BLUE)]).unwrap();

        let renditions = process_default(&gif).unwrap();

        assert_near(pixel(&renditions[0], 256, 256), RED);
    }

    #[test]
    fn exif_and_its_gps_position_are_not_carried_into_any_rendition() {
        let upload = jpeg_with_exif(picture(300, 200), 1);
        assert!(upload.windows(4).any(|w| w == b"Exif"), "the upload carries EXIF");

        let renditions = process_default(&upload).unwrap();

        for rendition in &renditions {
            assert!(!rendition.bytes.windows(4).any(|w| w == b"Exif"), "{} px rendition carries EXIF", rendition.size);
        }
    }

    #[test]
    fn an_exif_rotated_photo_is_turned_upright_before_cropping() {
        // Stored 200 × 100, left half red; orientation 6 means "rotate 90° clockwise to view".
        // Upright it is 100 × 200 with the red half on top, so the centred square is red above,
        // blue below. Ignoring the orientation would give red left, blue right instead.
        let stored = RgbImage::from_fn(200, 100, |x, _| if x < 100 { RED } else { BLUE });

        let renditions = process_default(&jpeg_with_exif(stored, 6)).unwrap();

        let large = &renditions[0];
        assert_near(pixel(large, 100, 100), RED);
        assert_near(pixel(large, 400, 100), RED);
        assert_near(pixel(large, 100, 400), BLUE);
        assert_near(pixel(large, 400, 400), BLUE);
    }

    #[test]
    fn a_text_file_named_png_is_refused() {
        assert_refused(process_default(b"name,email\nalice,alice@example.com\n"));
    }

    #[test]
    fn an_image_in_another_format_is_refused() {
        // A TIFF header: a real image format, but not one of the four accepted.
        assert_refused(process_default(&[&b"II*\0\x08\0\0\0"[..], &[0; 64]].concat()));
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert_refused(process_default(&[]));
    }

    #[test]
    fn a_file_over_the_byte_limit_is_refused() {
        let upload = encoded(picture(300, 200), ImageFormat::Png);
        let limits = PhotoLimits { max_bytes: upload.len() - 1, ..PhotoLimits::default() };
        assert_refused(process(&upload, &limits));

        let limits = PhotoLimits { max_bytes: upload.len(), ..PhotoLimits::default() };
        assert!(process(&upload, &limits).is_ok(), "exactly at the limit is fine");
    }

    #[test]
    fn the_default_byte_limit_is_5_mb() {
        assert_refused(process_default(&vec![0; 5 * 1024 * 1024 + 1]));
    }

    #[test]
    fn a_valid_image_with_too_many_pixels_is_refused() {
        let upload = encoded(picture(300, 200), ImageFormat::Png);
        assert_refused(process(&upload, &PhotoLimits { max_pixels: 300 * 200 - 1, ..PhotoLimits::default() }));
        assert!(process(&upload, &PhotoLimits { max_pixels: 300 * 200, ..PhotoLimits::default() }).is_ok());
    }

    #[test]
    fn a_valid_image_with_a_side_over_the_limit_is_refused() {
        let upload = encoded(picture(300, 200), ImageFormat::Jpeg);
        assert_refused(process(&upload, &PhotoLimits { max_dimension: 299, ..PhotoLimits::default() }));
    }

    #[test]
    fn a_tiny_png_declaring_100000_by_100000_pixels_is_refused_from_its_header() {
        // 40 GB once decoded; the file is 57 bytes.
        assert_refused(process_default(&png_header_only(100_000, 100_000)));
        // Within the per-side limit, but 81 megapixels.
        assert_refused(process_default(&png_header_only(9_000, 9_000)));
    }

    #[test]
    fn a_truncated_jpeg_is_refused() {
        let jpeg = encoded(picture(300, 200), ImageFormat::Jpeg);
        assert_refused(process_default(&jpeg[..jpeg.len() / 2]));
    }

    #[test]
    fn a_truncated_png_webp_or_gif_is_refused() {
        for format in [ImageFormat::Png, ImageFormat::WebP, ImageFormat::Gif] {
            let upload = encoded(picture(300, 200), format);
            assert_refused(process_default(&upload[..upload.len() / 2]));
        }
    }

    #[test]
    fn a_jpeg_with_data_after_its_end_is_accepted() {
        // Motion photos append a video after the picture.
        let upload = [encoded(picture(300, 200), ImageFormat::Jpeg), b"ftypmp42 video".to_vec()].concat();
        assert_square_renditions(&process_default(&upload).unwrap(), "image/jpeg");
    }

    #[test]
    fn mangled_uploads_are_refused_or_decoded_but_never_panic() {
        // `decode` is what reads hostile bytes; resampling and encoding only see its pixels
        // (and running them hundreds of times is slow in an unoptimised build).
        for format in [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP, ImageFormat::Gif] {
            let original = encoded(picture(48, 32), format);
            for cut in (1..original.len()).step_by(original.len() / 60 + 1) {
                let mut flipped = original.clone();
                flipped[cut] ^= 0x5A;
                for upload in [&original[..cut], &flipped[..]] {
                    if let Err(err) = decode(upload, &PhotoLimits::default()) {
                        assert_eq!(err.code(), "BAD_USER_INPUT", "{format:?} cut at {cut}: {}", err.message());
                    }
                }
            }
        }
    }
}
