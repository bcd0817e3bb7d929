//! `cargo bench -p tessera-face`: the engine and the identification index, each against a floor measured in the
//! same run (the machines are shared and noisy, so the ratios are the figures to compare).
//!
//! - detect + embed per face on `obama3.jpg` (one face), against decoding the same image alone, on tract and (built
//!   with `--features onnxruntime`) on ONNX Runtime;
//! - exact identification (`GroupIndex::search`, top 10) over 1k, 10k and 100k enrolled persons with synthetic unit
//!   templates, against one plain pass summing the same matrix (the memory-bandwidth floor).

use std::hint::black_box;
use std::time::{Duration, Instant};

use tessera_face::{Backend, DecodedImage, EMBEDDING_LEN, Engine, GroupIndex, ImageLimits, models};
use uuid::Uuid;

/// Times `f` `runs` times; returns (p50, p99).
fn percentiles(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], times[(runs * 99 / 100).min(runs - 1)])
}

fn row(what: &str, (p50, p99): (Duration, Duration), floor: Duration) {
    println!(
        "{what:<50} p50 {:>10.3} ms  p99 {:>10.3} ms  {:>7.1}× floor",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        p50.as_secs_f64() / floor.as_secs_f64()
    );
}

/// A deterministic unit vector (xorshift), so that runs compare.
fn template(seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut values: Vec<f32> = (0..EMBEDDING_LEN)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    values.iter_mut().for_each(|v| *v /= norm);
    values
}

fn main() {
    let fixtures = tessera_testkit::face_fixtures();
    let files = models::fetch(&fixtures.models_dir).expect("fetching the face models");
    let bytes = std::fs::read(&fixtures.obama3).expect("reading obama3.jpg");
    let limits = ImageLimits::default();
    let mut backends = vec![Backend::Tract];
    if cfg!(feature = "onnxruntime") {
        let library = models::fetch_onnxruntime(&fixtures.models_dir).expect("fetching ONNX Runtime");
        backends.push(Backend::OnnxRuntime { library });
    }

    println!(
        "\ntessera-face bench ({} threads available)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let decode = percentiles(30, || {
        black_box(DecodedImage::decode(&bytes, &limits).expect("decode"));
    });
    row("floor: decode obama3.jpg", decode, decode.0);
    for backend in &backends {
        let engine = Engine::load(&files, backend).expect("loading the engine");
        let full = percentiles(30, || {
            let image = DecodedImage::decode(&bytes, &limits).expect("decode");
            let faces = engine.detect(&image, 0.7).expect("detect");
            for face in &faces {
                black_box(engine.embed(&image, face).expect("embed"));
            }
        });
        row(
            &format!("decode + detect + embed (1 face), {}", backend.name()),
            full,
            decode.0,
        );
    }

    for persons in [1_000u64, 10_000, 100_000] {
        let index = GroupIndex::build(
            EMBEDDING_LEN,
            (0..persons).map(|n| (Uuid::from_u128(u128::from(n)), template(n))),
        )
        .expect("templates of the right length");
        let flat: Vec<f32> = (0..persons).flat_map(template).collect();
        let floor = percentiles(50, || {
            black_box(flat.iter().sum::<f32>());
        });
        let query = template(u64::MAX);
        let search = percentiles(50, || {
            black_box(index.search(&query, 10, 0.0));
        });
        row(&format!("floor: sum {persons} templates"), floor, floor.0);
        row(
            &format!("identify top 10 among {persons} persons"),
            search,
            floor.0,
        );
    }
}
