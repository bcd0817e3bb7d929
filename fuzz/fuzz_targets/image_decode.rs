//! The face engine's image decoding (`DecodedImage::decode`) on any bytes, under two sets of limits: oversize or
//! malformed input is refused with `InvalidImage`/`InvalidImageSize`, never a panic; no decode allocates more
//! than the limits allow (a counting allocator measures the peak); a decoded image lies within the limits, has
//! `width × height × 3` bytes, and decodes to the same pixels once re-encoded as PNG.

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};

use libfuzzer_sys::fuzz_target;
use tessera_face::{DecodedImage, FaceError, ImageLimits};

/// Counts the bytes live on the heap and their peak, so that a decode's footprint can be bounded.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Old and new block are both live while the bytes are copied.
            grew(new_size);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Azure's minimum side with a small maximum, so that a lying header is cheap; and tiny images allowed.
const LIMITS: [ImageLimits; 2] = [
    ImageLimits {
        max_bytes: 1 << 20,
        min_side: 36,
        max_side: 512,
        max_pixels: 512 * 384,
    },
    ImageLimits {
        max_bytes: 1 << 20,
        min_side: 1,
        max_side: 128,
        max_pixels: 96 * 96,
    },
];

/// What a decode may hold at its peak beyond what was live before: the decoder's budget
/// (`max_pixels × 8 + 1 MiB`, set in `image.rs`), the RGB copy made from the decoded buffer (`max_pixels × 3`),
/// and 1 MiB for decoder state and the error path.
fn budget(limits: &ImageLimits) -> usize {
    let pixels = usize::try_from(limits.max_pixels).unwrap_or(usize::MAX);
    pixels.saturating_mul(11).saturating_add(2 << 20)
}

fn decode(data: &[u8], limits: &ImageLimits) -> Result<DecodedImage, FaceError> {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = DecodedImage::decode(data, limits);
    let peak = PEAK.load(Ordering::Relaxed) - before;
    assert!(
        peak <= budget(limits),
        "decoding {} bytes under {limits:?} held {peak} bytes at its peak (budget {}): {result:?}",
        data.len(),
        budget(limits)
    );
    result
}

fuzz_target!(|data: &[u8]| {
    for limits in &LIMITS {
        match decode(data, limits) {
            Ok(image) => {
                let (w, h) = (image.width(), image.height());
                assert!((limits.min_side..=limits.max_side).contains(&w), "{w}×{h}");
                assert!((limits.min_side..=limits.max_side).contains(&h), "{w}×{h}");
                assert!(u64::from(w) * u64::from(h) <= limits.max_pixels, "{w}×{h}");
                assert_eq!(image.rgb().len() as u64, u64::from(w) * u64::from(h) * 3);
                assert!(data.len() <= limits.max_bytes);
                assert_eq!(
                    DecodedImage::from_rgb(w, h, image.rgb().to_vec()).as_ref().ok(),
                    Some(&image)
                );
                // Lossless round trip through PNG.
                let mut png = Vec::new();
                image::RgbImage::from_raw(w, h, image.rgb().to_vec())
                    .expect("an RGB buffer of the right size")
                    .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
                    .expect("encode PNG");
                let unlimited = ImageLimits {
                    max_bytes: usize::MAX,
                    ..*limits
                };
                let again = DecodedImage::decode(&png, &unlimited).expect("its own PNG decodes");
                assert_eq!(again, image, "the PNG round trip changed the pixels");
            }
            Err(FaceError::InvalidImage(why) | FaceError::InvalidImageSize(why)) => {
                assert!(!why.is_empty());
            }
            Err(other) => panic!("decode answered {other:?}, not InvalidImage/InvalidImageSize"),
        }
    }
    // A body over the byte limit is refused before it is read.
    if !data.is_empty() {
        let small = ImageLimits {
            max_bytes: data.len() - 1,
            ..LIMITS[0]
        };
        assert!(matches!(
            DecodedImage::decode(data, &small),
            Err(FaceError::InvalidImageSize(_))
        ));
    }
});
