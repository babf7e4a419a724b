//! The three long-lived secrets (the proxy's access token, the OAuth client secret, the target
//! API key) in the OS keychain, with a private file as the fallback where no keychain answers.
//!
//! OAuth access tokens fetched from the token server are not kept here: they live in memory
//! and are fetched again after a restart. Every call here may block on the keychain (a D-Bus
//! round trip, or a password prompt): callers run it off the async threads.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

/// The keychain service name every secret is stored under.
pub const SERVICE: &str = "local-llm-proxy";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SecretKind {
    AccessToken,
    OAuthClientSecret,
    TargetApiKey,
}

impl SecretKind {
    pub const ALL: [Self; 3] = [
        Self::AccessToken,
        Self::OAuthClientSecret,
        Self::TargetApiKey,
    ];

    /// The keychain account (and the key in the fallback file).
    pub fn account(self) -> &'static str {
        match self {
            Self::AccessToken => "access-token",
            Self::OAuthClientSecret => "oauth-client-secret",
            Self::TargetApiKey => "target-api-key",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// No keychain service answers (no Secret Service on the session bus, a locked keychain
    /// that cannot be opened): the fallback file takes over.
    #[error("no keychain is available: {0}")]
    Unavailable(String),
    /// The keychain answered but refused this operation.
    #[error("the keychain refused: {0}")]
    Refused(String),
    #[error("cannot use the secrets file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Somewhere secrets can be kept.
pub trait SecretBackend: Send + Sync {
    fn get(&self, kind: SecretKind) -> Result<Option<String>, SecretError>;
    fn set(&self, kind: SecretKind, value: &str) -> Result<(), SecretError>;
    fn delete(&self, kind: SecretKind) -> Result<(), SecretError>;
}

type EntryFactory = dyn Fn(&str) -> keyring::Result<keyring::Entry> + Send + Sync;

/// The OS keychain through `keyring`: macOS Keychain, Windows Credential Manager, Secret
/// Service (GNOME Keyring, KWallet) on Linux.
pub struct Keychain {
    entry: Box<EntryFactory>,
}

impl Keychain {
    pub fn os() -> Self {
        Self {
            entry: Box::new(|account| keyring::Entry::new(SERVICE, account)),
        }
    }

    /// A keychain whose entries come from `entry` (tests inject failing mock credentials).
    pub fn with_entries(
        entry: impl Fn(&str) -> keyring::Result<keyring::Entry> + Send + Sync + 'static,
    ) -> Self {
        Self {
            entry: Box::new(entry),
        }
    }

    fn entry(&self, kind: SecretKind) -> Result<keyring::Entry, SecretError> {
        (self.entry)(kind.account()).map_err(classify)
    }
}

/// Which keyring errors mean "there is no usable keychain" rather than "this one failed".
fn classify(err: keyring::Error) -> SecretError {
    match err {
        keyring::Error::NoStorageAccess(_) | keyring::Error::PlatformFailure(_) => {
            SecretError::Unavailable(err.to_string())
        }
        other => SecretError::Refused(other.to_string()),
    }
}

impl SecretBackend for Keychain {
    fn get(&self, kind: SecretKind) -> Result<Option<String>, SecretError> {
        match self.entry(kind)?.get_password() {
            Ok(value) => Ok(Some(value)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(classify(err)),
        }
    }

    fn set(&self, kind: SecretKind, value: &str) -> Result<(), SecretError> {
        self.entry(kind)?.set_password(value).map_err(classify)
    }

    fn delete(&self, kind: SecretKind) -> Result<(), SecretError> {
        match self.entry(kind)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(err) => Err(classify(err)),
        }
    }
}

/// A JSON file readable by the user alone (0600): where secrets go when no keychain answers.
pub struct SecretsFile {
    path: PathBuf,
    /// Serializes read-modify-write cycles within the process.
    lock: Mutex<()>,
}

impl SecretsFile {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, source: std::io::Error) -> SecretError {
        SecretError::File {
            path: self.path.clone(),
            source,
        }
    }

    fn read(&self) -> Result<BTreeMap<String, String>, SecretError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| self.error(e.into())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(err) => Err(self.error(err)),
        }
    }

    fn write(&self, secrets: &BTreeMap<String, String>) -> Result<(), SecretError> {
        if secrets.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(self.error(err)),
                _ => Ok(()),
            };
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        }
        let bytes = serde_json::to_vec(secrets).map_err(|e| self.error(e.into()))?;
        // Created private and renamed into place: the secrets are never readable by others,
        // not even for a moment, and a crash leaves the old file whole.
        let temporary = self.path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary).map_err(|e| self.error(e))?;
        #[cfg(unix)]
        {
            // The mode above applies only when the file is created.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| self.error(e))?;
        }
        file.write_all(&bytes).map_err(|e| self.error(e))?;
        file.sync_all().map_err(|e| self.error(e))?;
        std::fs::rename(&temporary, &self.path).map_err(|e| self.error(e))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SecretBackend for SecretsFile {
    fn get(&self, kind: SecretKind) -> Result<Option<String>, SecretError> {
        let _guard = self.lock();
        Ok(self.read()?.remove(kind.account()))
    }

    fn set(&self, kind: SecretKind, value: &str) -> Result<(), SecretError> {
        let _guard = self.lock();
        let mut secrets = self.read()?;
        secrets.insert(kind.account().to_owned(), value.to_owned());
        self.write(&secrets)
    }

    fn delete(&self, kind: SecretKind) -> Result<(), SecretError> {
        let _guard = self.lock();
        let mut secrets = self.read()?;
        if secrets.remove(kind.account()).is_some() {
            self.write(&secrets)?;
        }
        Ok(())
    }
}

/// Where secrets are being kept, for the window and the server events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Storage {
    Keychain,
    /// The fallback file, and why the keychain could not be used.
    File {
        path: String,
        reason: String,
    },
}

/// The keychain first; the file when the keychain is unavailable. The switch is made once and
/// reported once (`take_warning`), then every call goes to the file for the rest of the run.
pub struct SecretStore {
    keychain: Box<dyn SecretBackend>,
    file: SecretsFile,
    fallback: Mutex<Option<String>>,
    warning_taken: AtomicBool,
}

impl SecretStore {
    pub fn new(keychain: Box<dyn SecretBackend>, file: SecretsFile) -> Self {
        Self {
            keychain,
            file,
            fallback: Mutex::new(None),
            warning_taken: AtomicBool::new(false),
        }
    }

    pub fn storage(&self) -> Storage {
        match &*self.fallback.lock().unwrap_or_else(PoisonError::into_inner) {
            None => Storage::Keychain,
            Some(reason) => Storage::File {
                path: self.file.path().display().to_string(),
                reason: reason.clone(),
            },
        }
    }

    /// The fallback warning, the first time it is asked for after the switch; `None` after.
    pub fn take_warning(&self) -> Option<String> {
        let Storage::File { path, reason } = self.storage() else {
            return None;
        };
        if self.warning_taken.swap(true, Ordering::Relaxed) {
            return None;
        }
        Some(format!(
            "{reason}. Secrets are kept in {path} instead, readable only by you. \
             Install or unlock a keychain (GNOME Keyring, KWallet) to keep them there."
        ))
    }

    fn using_file(&self) -> bool {
        self.fallback
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Runs `op` on the keychain, switching to the file for good if the keychain is unavailable.
    fn with_backend<T>(
        &self,
        op: impl Fn(&dyn SecretBackend) -> Result<T, SecretError>,
    ) -> Result<T, SecretError> {
        if !self.using_file() {
            match op(self.keychain.as_ref()) {
                Err(SecretError::Unavailable(reason)) => {
                    tracing::warn!(%reason, "keychain unavailable; using the secrets file");
                    *self.fallback.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
                }
                other => return other,
            }
        }
        op(&self.file)
    }

    pub fn get(&self, kind: SecretKind) -> Result<Option<String>, SecretError> {
        let found = self.with_backend(|backend| backend.get(kind))?;
        if found.is_some() || self.using_file() {
            return Ok(found);
        }
        // A secret saved while the keychain was away moves into it now that it answers.
        let Some(value) = self.file.get(kind).ok().flatten() else {
            return Ok(None);
        };
        if self.keychain.set(kind, &value).is_ok() {
            let _ = self.file.delete(kind);
        }
        Ok(Some(value))
    }

    pub fn set(&self, kind: SecretKind, value: &str) -> Result<(), SecretError> {
        self.with_backend(|backend| backend.set(kind, value))
    }

    pub fn delete(&self, kind: SecretKind) -> Result<(), SecretError> {
        self.with_backend(|backend| backend.delete(kind))?;
        if !self.using_file() {
            let _ = self.file.delete(kind);
        }
        Ok(())
    }
}

/// Secrets in memory only: for tests, where keyring's own mock will not do (its entries share
/// nothing, so a value set through one is not found through the next).
#[derive(Default)]
pub struct MemoryBackend {
    values: Mutex<BTreeMap<SecretKind, String>>,
}

impl SecretBackend for MemoryBackend {
    fn get(&self, kind: SecretKind) -> Result<Option<String>, SecretError> {
        let values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(values.get(&kind).cloned())
    }

    fn set(&self, kind: SecretKind, value: &str) -> Result<(), SecretError> {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values.insert(kind, value.to_owned());
        Ok(())
    }

    fn delete(&self, kind: SecretKind) -> Result<(), SecretError> {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        values.remove(&kind);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring::mock::MockCredential;

    /// A keychain whose every entry fails with `error()`.
    fn failing_keychain(error: fn() -> keyring::Error) -> Keychain {
        Keychain::with_entries(move |_| {
            let credential = MockCredential::default();
            credential.set_error(error());
            Ok(keyring::Entry::new_with_credential(Box::new(credential)))
        })
    }

    fn no_storage() -> keyring::Error {
        keyring::Error::NoStorageAccess(Box::new(std::io::Error::other(
            "org.freedesktop.secrets was not provided by any .service files",
        )))
    }

    fn store(keychain: Box<dyn SecretBackend>, dir: &Path) -> SecretStore {
        SecretStore::new(keychain, SecretsFile::new(dir.join("secrets.json")))
    }

    #[test]
    fn the_default_keyring_store_is_a_real_one_not_the_mock() {
        // Without a platform feature keyring silently uses its mock, which keeps nothing.
        let entry = keyring::Entry::new(SERVICE, "feature-check").unwrap();
        assert!(
            entry
                .get_credential()
                .downcast_ref::<MockCredential>()
                .is_none(),
            "keyring has no platform store: check its features in Cargo.toml"
        );
    }

    /// A memory backend stands in for the OS keychain: this checks the store's routing to its
    /// primary backend, not the keychain itself (that is e2e/desktop's).
    #[test]
    fn values_round_trip_through_the_primary_backend_and_never_touch_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(Box::<MemoryBackend>::default(), dir.path());
        assert_eq!(store.get(SecretKind::TargetApiKey).unwrap(), None);
        store.set(SecretKind::TargetApiKey, "sk-123").unwrap();
        store.set(SecretKind::AccessToken, "llm-proxy-abc").unwrap();
        assert_eq!(
            store.get(SecretKind::TargetApiKey).unwrap().as_deref(),
            Some("sk-123")
        );
        store.delete(SecretKind::TargetApiKey).unwrap();
        assert_eq!(store.get(SecretKind::TargetApiKey).unwrap(), None);
        assert_eq!(store.storage(), Storage::Keychain);
        assert!(store.take_warning().is_none());
        assert!(!dir.path().join("secrets.json").exists());
    }

    #[test]
    fn an_unavailable_keychain_falls_back_to_a_private_file_and_warns_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(Box::new(failing_keychain(no_storage)), dir.path());
        store
            .set(SecretKind::OAuthClientSecret, "client-secret-value")
            .unwrap();
        assert_eq!(
            store.get(SecretKind::OAuthClientSecret).unwrap().as_deref(),
            Some("client-secret-value")
        );
        let Storage::File { path, reason } = store.storage() else {
            panic!("expected the file fallback");
        };
        assert!(path.ends_with("secrets.json"));
        assert!(reason.contains("org.freedesktop.secrets"), "{reason}");
        let warning = store.take_warning().unwrap();
        assert!(warning.contains("secrets.json"), "{warning}");
        assert!(!warning.contains("client-secret-value"));
        assert!(store.take_warning().is_none(), "warned twice");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secrets.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A later run (a new store over the same file) finds the secret again.
        let again = store_again(dir.path());
        assert_eq!(
            again.get(SecretKind::OAuthClientSecret).unwrap().as_deref(),
            Some("client-secret-value")
        );
        // Deleting the last secret removes the file.
        again.delete(SecretKind::OAuthClientSecret).unwrap();
        assert!(!dir.path().join("secrets.json").exists());
    }

    fn store_again(dir: &Path) -> SecretStore {
        store(Box::new(failing_keychain(no_storage)), dir)
    }

    #[test]
    fn a_platform_failure_also_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(
            Box::new(failing_keychain(|| {
                keyring::Error::PlatformFailure(Box::new(std::io::Error::other(
                    "Unable to autolaunch a dbus-daemon without $DISPLAY",
                )))
            })),
            dir.path(),
        );
        store.set(SecretKind::AccessToken, "llm-proxy-1").unwrap();
        assert!(matches!(store.storage(), Storage::File { .. }));
    }

    #[test]
    fn a_refusal_is_an_error_not_a_silent_switch() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(
            Box::new(failing_keychain(|| {
                keyring::Error::TooLong("password".into(), 2560)
            })),
            dir.path(),
        );
        let err = store.set(SecretKind::TargetApiKey, "x").unwrap_err();
        assert!(matches!(err, SecretError::Refused(_)), "{err:?}");
        assert_eq!(store.storage(), Storage::Keychain);
        assert!(!dir.path().join("secrets.json").exists());
    }

    /// A secret saved to the file while the keychain failed moves into the primary backend (a
    /// memory backend standing in for the keychain) once one answers.
    #[test]
    fn a_secret_left_in_the_file_moves_into_the_primary_backend_once_it_answers() {
        let dir = tempfile::tempdir().unwrap();
        store_again(dir.path())
            .set(SecretKind::TargetApiKey, "sk-moved")
            .unwrap();
        let store = store(Box::<MemoryBackend>::default(), dir.path());
        assert_eq!(
            store.get(SecretKind::TargetApiKey).unwrap().as_deref(),
            Some("sk-moved")
        );
        assert!(!dir.path().join("secrets.json").exists(), "not moved");
        assert_eq!(
            store.get(SecretKind::TargetApiKey).unwrap().as_deref(),
            Some("sk-moved")
        );
    }
}
