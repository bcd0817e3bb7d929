//! TLS material of `auto` mode: a local CA and a server certificate signed by it, in `<data_dir>/tls`, which
//! clients trust through `ca.pem`.
//!
//! - **Validity is relative to now**: the server certificate is valid from an hour ago for
//!   `certificate_validity_secs` (90 days by default), the CA for ten years.
//! - **Renewal needs no restart**: [`ensure_local_ca`] keeps a certificate that has more than a third of its
//!   validity left, covers the configured names and was signed by the current CA, and issues a new one
//!   otherwise; the server calls it at start and again whenever the certificate nears its renewal time, then
//!   reloads the listener's configuration (`server::renew_certificate`).
//! - **The CA's key is sealed under the master key** (AES-256-GCM, `ca.key.sealed`, bound to its purpose), so that
//!   renewal can sign, and the key is never on disk in the clear: a copy of the data directory without the master
//!   key cannot mint certificates that clients trust. When the sealed key is missing (an installation from before
//!   it was kept) or does not open (another master key), or the CA itself has less than two server lifetimes left,
//!   the CA is issued anew and the start-up log says that clients must trust the new `ca.pem`.

use crate::platform::bootstrap::{StartError, private_dir, write_private};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tessera_core::Timestamp;
use tessera_token::MasterKey;

/// Associated data of the sealed CA key.
const CA_KEY_AAD: &[u8] = b"tessera/local-ca-key";
/// How long a CA lives.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How far back a certificate's validity starts, for clients whose clock is a little behind.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Paths of the generated material.
#[derive(Debug, Clone)]
pub struct LocalCa {
    /// The CA certificate clients should trust.
    pub ca_cert: PathBuf,
    /// The server certificate chain.
    pub server_cert: PathBuf,
    /// The server private key.
    pub server_key: PathBuf,
    /// The CA's private key, sealed under the master key.
    sealed_ca_key: PathBuf,
}

/// What [`ensure_local_ca`] found or made.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The files.
    pub files: LocalCa,
    /// When the server certificate stops being valid.
    pub not_after: Timestamp,
    /// When it is due for renewal: a third of its validity before `not_after`.
    pub renew_at: Timestamp,
    /// Whether a new server certificate was written.
    pub renewed: bool,
    /// Why the CA was issued anew, when it was (clients must trust the new `ca.pem`).
    pub new_ca: Option<&'static str>,
}

/// Makes sure a local CA and a current server certificate exist under `dir` at `now`; `names` are DNS names or
/// IP addresses the certificate covers besides `localhost`, `127.0.0.1` and `::1`.
pub fn ensure_local_ca(
    dir: &Path,
    names: &[String],
    master: &MasterKey,
    now: Timestamp,
    validity: Duration,
) -> Result<Issued, StartError> {
    let files = LocalCa {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        sealed_ca_key: dir.join("ca.key.sealed"),
    };
    private_dir(dir)?;
    let fail = |e: rcgen::Error| StartError(format!("cannot generate TLS certificates: {e}"));
    let mut sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    sans.extend(names.iter().cloned());

    let (ca_pem, ca_key, new_ca) = match existing_ca(&files, master, now, validity) {
        Ok(ca) => (ca.0, ca.1, None),
        Err(reason) => {
            let (pem, key) = new_ca_cert(now).map_err(fail)?;
            let sealed = master
                .seal(CA_KEY_AAD, key.serialize_pem().as_bytes())
                .map_err(|e| StartError(format!("cannot seal the local CA key: {e}")))?;
            replace(&files.sealed_ca_key, &sealed, true)?;
            replace(&files.ca_cert, pem.as_bytes(), false)?;
            (pem, key, reason)
        }
    };

    let renew = |not_after: Timestamp| Timestamp::from_millis(not_after.millis() - millis(validity) / 3);
    if new_ca.is_none()
        && let Some(not_after) = current_server_cert(&files, &ca_pem, &sans)
        && now < renew(not_after)
    {
        return Ok(Issued {
            files,
            not_after,
            renew_at: renew(not_after),
            renewed: false,
            new_ca,
        });
    }
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key).map_err(fail)?;
    let server_key = KeyPair::generate().map_err(fail)?;
    let mut params = CertificateParams::new(sans).map_err(fail)?;
    params.distinguished_name.push(DnType::CommonName, "Tessera");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = offset(now, -millis(BACKDATE))?;
    let not_after = Timestamp::from_millis(now.millis() + millis(validity));
    params.not_after = offset(not_after, 0)?;
    let server_cert = params.signed_by(&server_key, &issuer).map_err(fail)?;
    replace(&files.server_key, server_key.serialize_pem().as_bytes(), true)?;
    replace(
        &files.server_cert,
        format!("{}{ca_pem}", server_cert.pem()).as_bytes(),
        false,
    )?;
    Ok(Issued {
        files,
        not_after,
        renew_at: renew(not_after),
        renewed: true,
        new_ca,
    })
}

/// The kept CA (its PEM and key), or why a new one is needed (`None`: there was none, a first start).
fn existing_ca(
    files: &LocalCa,
    master: &MasterKey,
    now: Timestamp,
    validity: Duration,
) -> Result<(String, KeyPair), Option<&'static str>> {
    let Ok(pem) = std::fs::read_to_string(&files.ca_cert) else {
        return Err(None);
    };
    let Ok(sealed) = std::fs::read(&files.sealed_ca_key) else {
        return Err(Some(
            "its key was not kept (an installation from before keys were sealed)",
        ));
    };
    let key = master
        .open(CA_KEY_AAD, &sealed)
        .ok()
        .and_then(|key| String::from_utf8(key).ok())
        .and_then(|key| KeyPair::from_pem(&key).ok())
        .ok_or(Some("its sealed key does not open with this master key"))?;
    let lives_on =
        not_after_of(pem.as_bytes()).is_some_and(|end| end.millis() > now.millis() + 2 * millis(validity));
    if !lives_on {
        return Err(Some("it expires within two server certificate lifetimes"));
    }
    Ok((pem, key))
}

/// A new CA certificate and its key, valid from `now` for [`CA_VALIDITY`].
fn new_ca_cert(now: Timestamp) -> Result<(String, KeyPair), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "Tessera local CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = offset(now, -millis(BACKDATE)).map_err(|_| rcgen::Error::Time)?;
    params.not_after = offset(Timestamp::from_millis(now.millis() + millis(CA_VALIDITY)), 0)
        .map_err(|_| rcgen::Error::Time)?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key))
}

/// The server certificate's expiry, if it exists, was issued after `ca_pem` was (its chain ends with it), and
/// covers exactly `sans`.
fn current_server_cert(files: &LocalCa, ca_pem: &str, sans: &[String]) -> Option<Timestamp> {
    let chain = std::fs::read_to_string(&files.server_cert).ok()?;
    if !files.server_key.exists() || !chain.ends_with(ca_pem) {
        return None;
    }
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let mut covered: Vec<String> = cert
        .subject_alternative_name()
        .ok()??
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some((*dns).to_owned()),
            x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                4 => <[u8; 4]>::try_from(*ip)
                    .ok()
                    .map(|b| std::net::IpAddr::from(b).to_string()),
                16 => <[u8; 16]>::try_from(*ip)
                    .ok()
                    .map(|b| std::net::IpAddr::from(b).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let mut wanted: Vec<String> = sans.to_vec();
    covered.sort();
    wanted.sort();
    wanted.dedup();
    (covered == wanted).then(|| Timestamp::from_secs(cert.validity().not_after.timestamp()))
}

/// The expiry of the first certificate in `pem`.
fn not_after_of(pem: &[u8]) -> Option<Timestamp> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    Some(Timestamp::from_secs(cert.validity().not_after.timestamp()))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `at` plus `delta_ms`, as a certificate time (whole seconds).
fn offset(at: Timestamp, delta_ms: i64) -> Result<time::OffsetDateTime, StartError> {
    time::OffsetDateTime::from_unix_timestamp((at.millis() + delta_ms).div_euclid(1000))
        .map_err(|e| StartError(format!("a certificate time out of range: {e}")))
}

/// Writes `path` anew through a temporary file and a rename, so that a reader never sees half of it;
/// `private` files are the owner's alone.
fn replace(path: &Path, contents: &[u8], private: bool) -> Result<(), StartError> {
    let temporary = path.with_extension("new");
    let _ = std::fs::remove_file(&temporary);
    if private {
        write_private(&temporary, contents)?;
    } else {
        std::fs::write(&temporary, contents)
            .map_err(|e| StartError(format!("cannot write {}: {e}", temporary.display())))?;
    }
    std::fs::rename(&temporary, path)
        .map_err(|e| StartError(format!("cannot replace {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600;

    fn at(days: i64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000 + days * DAY)
    }

    #[test]
    fn certificates_are_valid_from_now_renewed_in_time_and_the_ca_key_stays_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let master = MasterKey::from_base64(&MasterKey::generate_base64().unwrap()).unwrap();
        let validity = Duration::from_secs(90 * DAY as u64);
        let names = vec!["sts.example.com".to_owned()];
        let read = |name: &str| std::fs::read(tls.join(name)).unwrap();

        let first = ensure_local_ca(&tls, &names, &master, at(0), validity).unwrap();
        assert!(
            first.renewed && first.new_ca.is_none(),
            "a first start is no re-issue"
        );
        assert_eq!(first.not_after, at(90));
        assert_eq!(first.renew_at, at(60));
        assert_eq!(not_after_of(&read("server.pem")), Some(at(90)));
        let sealed = read("ca.key.sealed");
        assert!(
            !String::from_utf8_lossy(&sealed).contains("PRIVATE KEY"),
            "the CA key is sealed"
        );
        let (ca, server) = (read("ca.pem"), read("server.pem"));

        // Kept while more than a third is left; renewed under the same CA after that.
        let kept = ensure_local_ca(&tls, &names, &master, at(59), validity).unwrap();
        assert!(!kept.renewed);
        assert_eq!(read("server.pem"), server);
        let renewed = ensure_local_ca(&tls, &names, &master, at(61), validity).unwrap();
        assert!(renewed.renewed && renewed.new_ca.is_none());
        assert_eq!(renewed.not_after, at(151));
        assert_ne!(read("server.pem"), server);
        assert_eq!(read("ca.pem"), ca, "the CA clients trust stays");

        // New names: a new certificate that covers them.
        let more = vec!["sts.example.com".to_owned(), "*.acs.example.com".to_owned()];
        assert!(
            ensure_local_ca(&tls, &more, &master, at(62), validity)
                .unwrap()
                .renewed
        );
        assert!(
            !ensure_local_ca(&tls, &more, &master, at(63), validity)
                .unwrap()
                .renewed
        );

        // Another master key cannot open the CA key: a new CA, said so.
        let other = MasterKey::from_base64(&MasterKey::generate_base64().unwrap()).unwrap();
        let reissued = ensure_local_ca(&tls, &more, &other, at(64), validity).unwrap();
        assert!(reissued.new_ca.is_some_and(|why| why.contains("master key")));
        assert_ne!(read("ca.pem"), ca);
        // An installation without a kept CA key, as before: a new CA too.
        std::fs::remove_file(tls.join("ca.key.sealed")).unwrap();
        let old = ensure_local_ca(&tls, &more, &other, at(65), validity).unwrap();
        assert!(old.new_ca.is_some_and(|why| why.contains("not kept")));
        // And a CA near its own end.
        let late = ensure_local_ca(&tls, &more, &other, at(65 + 3600), validity).unwrap();
        assert!(late.new_ca.is_some_and(|why| why.contains("expires")));
    }
}
