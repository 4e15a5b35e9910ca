//! This gateway process's identity as the holder of leases (a mailbox's sync, a calendar
//! account's). It is kept in `instance.id` in the data folder, so a gateway restarted after a
//! crash is the same holder and takes its own leases back at once, instead of waiting for them
//! to run out while its mailboxes show a stale status.
//!
//! The file is locked for as long as the process runs. A second live process on the same data
//! folder (a copied volume, a replica started twice) cannot take the lock and gets an identity
//! of its own for this run, so two processes never share one: a lease still means one syncer.
//! A killed process's lock goes with it.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::Path;

use anyhow::Context as _;
use uuid::Uuid;

/// The identity, and the lock that keeps it this process's alone.
#[derive(Debug)]
pub struct Instance {
    id: Uuid,
    /// Held open (and locked) for the life of the process; None for an identity of this run.
    _lock: Option<File>,
}

impl Instance {
    /// The identity kept in `data_dir` (created on first start), or a new one for this run
    /// when another live process holds it.
    pub fn claim(data_dir: &Path) -> anyhow::Result<Instance> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create {}", data_dir.display()))?;
        let path = data_dir.join("instance.id");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let id = Uuid::new_v4();
                tracing::warn!(
                    path = %path.display(),
                    %id,
                    "another running gateway uses this data folder; this one takes an identity of its own for this run"
                );
                return Ok(Instance { id, _lock: None });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e).with_context(|| format!("cannot lock {}", path.display())),
        }
        let mut text = String::new();
        file.read_to_string(&mut text).with_context(|| format!("cannot read {}", path.display()))?;
        let id = match Uuid::parse_str(text.trim()) {
            Ok(id) => id,
            Err(_) => {
                let id = Uuid::new_v4();
                file.set_len(0)?;
                file.rewind()?;
                file.write_all(id.to_string().as_bytes())?;
                file.sync_all()?;
                id
            }
        };
        Ok(Instance { id, _lock: Some(file) })
    }

    /// An identity for this run only (tests that build services without a data folder).
    pub fn ephemeral() -> Instance {
        Instance { id: Uuid::new_v4(), _lock: None }
    }

    pub fn id(&self) -> Uuid {
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_kept_and_never_shared_by_two_live_holders() {
        let dir = tempfile::tempdir().unwrap();
        let first = Instance::claim(dir.path()).unwrap();
        // A second holder while the first lives: an identity of its own.
        let second = Instance::claim(dir.path()).unwrap();
        assert_ne!(first.id(), second.id());
        let kept = first.id();
        drop(second);
        drop(first);
        // Once the holder is gone (exited, or killed), the next start is the same holder.
        let again = Instance::claim(dir.path()).unwrap();
        assert_eq!(again.id(), kept);
        // A damaged file is replaced by a new identity.
        drop(again);
        std::fs::write(dir.path().join("instance.id"), "not a uuid").unwrap();
        let fresh = Instance::claim(dir.path()).unwrap();
        assert_ne!(fresh.id(), kept);
        assert_eq!(std::fs::read_to_string(dir.path().join("instance.id")).unwrap(), fresh.id().to_string());
    }
}
