//! TLS material. In `auto` mode a local CA and a server certificate signed by it are generated into
//! `<data_dir>/tls` on first start and reused afterwards; clients trust `ca.pem`. The CA's private key is never
//! written anywhere: once the server certificate is signed it is dropped, so nobody can later mint another
//! certificate under the CA that clients were told to trust. (Delete the directory to start over.)

use crate::bootstrap::{StartError, private_dir, write_private};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// Paths of the generated material.
#[derive(Debug, Clone)]
pub struct LocalCa {
    /// The CA certificate clients should trust.
    pub ca_cert: PathBuf,
    /// The server certificate chain.
    pub server_cert: PathBuf,
    /// The server private key.
    pub server_key: PathBuf,
}

/// Makes sure a local CA and server certificate exist under `dir`; names are DNS names or IP addresses that the
/// certificate covers in addition to `localhost`, `127.0.0.1` and `::1`.
pub fn ensure_local_ca(dir: &Path, names: &[String]) -> Result<LocalCa, StartError> {
    let files = LocalCa {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    };
    private_dir(dir)?;
    if files.server_cert.exists() && files.server_key.exists() && files.ca_cert.exists() {
        return Ok(files);
    }
    let fail = |e: rcgen::Error| StartError(format!("cannot generate TLS certificates: {e}"));

    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Tessera local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(fail)?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let mut sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    sans.extend(names.iter().cloned());
    let server_key = KeyPair::generate().map_err(fail)?;
    let mut params = CertificateParams::new(sans).map_err(fail)?;
    params.distinguished_name.push(DnType::CommonName, "Tessera");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_after = rcgen::date_time_ymd(2028, 1, 1);
    let server_cert = params.signed_by(&server_key, &issuer).map_err(fail)?;

    for path in [&files.ca_cert, &files.server_cert, &files.server_key] {
        let _ = std::fs::remove_file(path);
    }
    write_private(&files.server_key, server_key.serialize_pem().as_bytes())?;
    std::fs::write(
        &files.server_cert,
        format!("{}{}", server_cert.pem(), ca_cert.pem()),
    )
    .map_err(|e| StartError(format!("cannot write {}: {e}", files.server_cert.display())))?;
    std::fs::write(&files.ca_cert, ca_cert.pem())
        .map_err(|e| StartError(format!("cannot write {}: {e}", files.ca_cert.display())))?;
    Ok(files)
}
