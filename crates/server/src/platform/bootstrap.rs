//! First-start and every-start preparation: the master key, the admin key and the signing keys.

use crate::platform::config::Config;
use std::io::Write;
use std::path::Path;
use tessera_core::secret::KeyHash;
use tessera_store::Store;
use tessera_token::MasterKey;

/// Setting that holds the hash of a generated admin key.
const ADMIN_KEY_SETTING: &str = "admin_key_sha256";

/// A start-up failure, said plainly.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// The master key: from the configuration, or (SQLite only, enforced by config validation) from
/// `<data_dir>/master.key`, generated with mode 0600 on first start.
pub fn master_key(config: &Config) -> Result<MasterKey, StartError> {
    if let Some(k) = &config.master_key {
        return MasterKey::from_base64(k.expose())
            .map_err(|_| StartError("TESSERA_MASTER_KEY must be 32 bytes, base64-encoded".into()));
    }
    let path = config.data_dir.join("master.key");
    if !path.exists() {
        let key = MasterKey::generate_base64().map_err(|e| StartError(e.to_string()))?;
        write_private(&path, key.as_bytes())?;
        eprintln!(
            "tessera: generated a master key at {} (it seals the signing keys; back it up, or set TESSERA_MASTER_KEY)",
            path.display()
        );
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| StartError(format!("cannot read master key {}: {e}", path.display())))?;
    MasterKey::from_base64(&text).map_err(|_| {
        StartError(format!(
            "{} does not hold a base64 32-byte master key",
            path.display()
        ))
    })
}

/// Makes `dir` a directory only its owner may enter (0700): created so, or narrowed if it exists with group or
/// other access (it holds the database, the master key and the TLS key). Never widened; a directory this process
/// may not narrow is a start-up error.
pub fn private_dir(dir: &Path) -> Result<(), StartError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.is_dir() {
        return std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StartError(format!("cannot create the directory {}: {e}", dir.display())));
    }
    let mode = std::fs::metadata(dir)
        .map_err(|e| StartError(format!("cannot read {}: {e}", dir.display())))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700)).map_err(|e| {
        StartError(format!(
            "{} is open to other users (mode {mode:03o}) and cannot be made private: {e}; run `chmod 700` on it",
            dir.display()
        ))
    })?;
    tracing::warn!(dir = %dir.display(), was = format!("{mode:03o}"), "narrowed to owner-only access");
    Ok(())
}

/// Writes `contents` to a new file readable only by its owner.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), StartError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StartError(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| StartError(format!("cannot write {}: {e}", path.display())))
}

/// The admin key's hash: from `TESSERA_ADMIN_KEY`, else the one generated at first start; generated, stored as
/// a hash and printed exactly once if there is none.
pub async fn admin_key(config: &Config, store: &dyn Store) -> Result<KeyHash, StartError> {
    if let Some(k) = &config.admin_key {
        return Ok(KeyHash::of(k.expose()));
    }
    let db = |e: tessera_store::StoreError| StartError(format!("database: {e}"));
    if let Some(stored) = store.setting(ADMIN_KEY_SETTING).await.map_err(db)? {
        return KeyHash::from_hex(&stored)
            .ok_or_else(|| StartError("stored admin key hash is corrupt".into()));
    }
    let key = crate::platform::secrets::new_secret("tsa_").map_err(|e| StartError(e.to_string()))?;
    if store
        .insert_setting_if_absent(ADMIN_KEY_SETTING, &KeyHash::of(&key).to_hex())
        .await
        .map_err(db)?
    {
        eprintln!(
            "tessera: generated the admin key (shown once, keep it safe; set TESSERA_ADMIN_KEY to choose your own):\n\n    {key}\n"
        );
    }
    let stored = store
        .setting(ADMIN_KEY_SETTING)
        .await
        .map_err(db)?
        .unwrap_or_default();
    KeyHash::from_hex(&stored).ok_or_else(|| StartError("stored admin key hash is corrupt".into()))
}
