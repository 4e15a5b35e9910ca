//! Blob storage for uploaded files (profile photos): a local folder by default, behind a small
//! trait so that an object store (S3 and the like) can replace it.

use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tokio::io::AsyncWriteExt as _;

/// Longest key, in bytes (all key characters are ASCII).
const MAX_KEY_LEN: usize = 200;

/// Where blobs live. Keys are flat strings, as in an object store; `/` only groups them.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` under `key`, replacing any previous content. Readers see either the old
    /// content or the new, never a partial write.
    async fn put(&self, key: &BlobKey, bytes: Vec<u8>) -> anyhow::Result<()>;
    /// The content under `key`, or `None` if nothing is stored there.
    async fn get(&self, key: &BlobKey) -> anyhow::Result<Option<Vec<u8>>>;
    /// Removes `key`; removing a missing key is not an error.
    async fn delete(&self, key: &BlobKey) -> anyhow::Result<()>;
    /// Removes every key that starts with `prefix`, e.g. `photos/<account>/<photo>/` for all
    /// renditions of one photo. Like an object store, it matches strings, not folders:
    /// `photos/a` also removes `photos/ab/…`. An empty prefix is refused.
    async fn delete_prefix(&self, prefix: &str) -> anyhow::Result<()>;
}

/// The store the services share.
pub type SharedBlobStore = Arc<dyn BlobStore>;

/// A validated blob key: 1 to 200 characters of `a-z 0-9 . _ - /`, in non-empty `/`-separated
/// segments that do not start with `.`.
///
/// That rules out absolute paths, `..` and `.` (so the local store never leaves its folder),
/// hidden files (its temporary files start with `.`) and anything an object store would escape.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn new(key: impl Into<String>) -> anyhow::Result<Self> {
        let key = key.into();
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            bail!("blob key {key:?} must have 1 to {MAX_KEY_LEN} characters");
        }
        if let Some(bad) = key.chars().find(|&c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-' | '/')) {
            bail!("blob key {key:?} contains {bad:?}; only a-z, 0-9, '.', '_', '-' and '/' are allowed");
        }
        if key.split('/').any(|segment| segment.is_empty() || segment.starts_with('.')) {
            bail!("blob key {key:?} has an empty segment or one starting with '.'");
        }
        Ok(BlobKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BlobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobKey({:?})", self.0)
    }
}

/// Blobs as files under one folder, a key's `/` segments as subfolders.
///
/// Unlike an object store, a key cannot also be the folder of another (`a/b` and `a/b/c`);
/// the second `put` fails.
#[derive(Debug)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// Uses `root`, creating it if needed.
    pub fn new(root: impl Into<PathBuf>) -> anyhow::Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).with_context(|| format!("creating the blob folder {}", root.display()))?;
        Ok(LocalBlobStore { root })
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.as_str())
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Vec<u8>) -> anyhow::Result<()> {
        let path = self.path(key);
        let (Some(folder), Some(name)) = (path.parent(), path.file_name()) else {
            bail!("blob key {key} has no file name");
        };
        tokio::fs::create_dir_all(folder).await.with_context(|| format!("creating the folder of blob {key}"))?;
        // Same folder, so the rename stays on one file system and is atomic. The leading dot
        // keeps it out of any key's way; the uuid keeps concurrent writers apart.
        let temp = folder.join(format!(".{}.{}.tmp", name.to_string_lossy(), uuid::Uuid::new_v4().simple()));
        let written = async {
            let mut file = tokio::fs::File::create(&temp).await?;
            file.write_all(&bytes).await?;
            // On disk before the rename, so a crash cannot leave an empty file under the key.
            file.sync_all().await?;
            tokio::fs::rename(&temp, &path).await
        }
        .await;
        if let Err(err) = written {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(err).with_context(|| format!("writing blob {key}"));
        }
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> anyhow::Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path(key)).await {
            Ok(bytes) => Ok(Some(bytes)),
            // A folder (only a prefix of other keys) or a path through a file holds no blob.
            Err(err) if is_absent(&err) => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading blob {key}")),
        }
    }

    async fn delete(&self, key: &BlobKey) -> anyhow::Result<()> {
        match tokio::fs::remove_file(self.path(key)).await {
            Err(err) if !is_absent(&err) => Err(err).with_context(|| format!("deleting blob {key}")),
            _ => Ok(()),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> anyhow::Result<()> {
        // `photos/a` is folder `photos`, names starting with `a`; `photos/a/` is all of
        // folder `photos/a`.
        let (folder, start) = match prefix.rsplit_once('/') {
            Some((folder, start)) => (Some(BlobKey::new(folder).with_context(|| format!("blob prefix {prefix:?}"))?), start),
            None => (None, prefix),
        };
        if !start.is_empty() {
            BlobKey::new(start).with_context(|| format!("blob prefix {prefix:?}"))?;
        }
        let folder = match &folder {
            Some(folder) => self.path(folder),
            None if start.is_empty() => bail!("refusing to delete every blob (empty prefix)"),
            None => self.root.clone(),
        };
        let mut entries = match tokio::fs::read_dir(&folder).await {
            Ok(entries) => entries,
            Err(err) if is_absent(&err) => return Ok(()),
            Err(err) => return Err(err).with_context(|| format!("listing blobs under {prefix:?}")),
        };
        while let Some(entry) = entries.next_entry().await.with_context(|| format!("listing blobs under {prefix:?}"))? {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Temporary files of writes in progress are not blobs; their writer cleans up.
            if name.starts_with('.') || !name.starts_with(start) {
                continue;
            }
            remove(&entry.path()).await.with_context(|| format!("deleting blobs under {prefix:?}"))?;
        }
        Ok(())
    }
}

/// Removes a blob file, or a folder of blobs with everything in it. Gone already is fine.
async fn remove(path: &Path) -> std::io::Result<()> {
    let removed = match tokio::fs::symlink_metadata(path).await {
        Ok(meta) if meta.is_dir() => tokio::fs::remove_dir_all(path).await,
        Ok(_) => tokio::fs::remove_file(path).await,
        Err(err) => Err(err),
    };
    match removed {
        Err(err) if !is_absent(&err) => Err(err),
        _ => Ok(()),
    }
}

fn is_absent(err: &std::io::Error) -> bool {
    matches!(err.kind(), ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(key: &str) -> BlobKey {
        BlobKey::new(key).unwrap()
    }

    fn store() -> (tempfile::TempDir, SharedBlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBlobStore::new(dir.path().join("blobs")).unwrap();
        (dir, Arc::new(store))
    }

    /// Every file under `root`, as keys, sorted.
    fn files_under(root: &Path) -> Vec<String> {
        fn walk(root: &Path, folder: &Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out.sort();
        out
    }

    #[test]
    fn creating_the_store_creates_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b/blobs");
        LocalBlobStore::new(&root).unwrap();
        assert!(root.is_dir());
    }

    #[tokio::test]
    async fn a_stored_blob_reads_back_until_it_is_deleted() {
        let (_dir, store) = store();
        let photo = key("photos/0c4f/512.jpg");

        store.put(&photo, b"jpeg bytes".to_vec()).await.unwrap();
        assert_eq!(store.get(&photo).await.unwrap().as_deref(), Some(&b"jpeg bytes"[..]));

        store.delete(&photo).await.unwrap();
        assert_eq!(store.get(&photo).await.unwrap(), None);
    }

    #[tokio::test]
    async fn storing_again_replaces_the_content_and_leaves_no_temporary_file() {
        let (dir, store) = store();
        let photo = key("photos/0c4f/64.png");

        store.put(&photo, b"first".to_vec()).await.unwrap();
        store.put(&photo, b"second".to_vec()).await.unwrap();

        assert_eq!(store.get(&photo).await.unwrap().as_deref(), Some(&b"second"[..]));
        assert_eq!(files_under(&dir.path().join("blobs")), ["photos/0c4f/64.png"]);
    }

    #[tokio::test]
    async fn a_missing_key_reads_as_none() {
        let (_dir, store) = store();
        store.put(&key("photos/a/512.jpg"), vec![1]).await.unwrap();

        assert_eq!(store.get(&key("photos/b/512.jpg")).await.unwrap(), None);
        assert_eq!(store.get(&key("photos/a")).await.unwrap(), None, "a folder is not a blob");
        assert_eq!(store.get(&key("photos/a/512.jpg/x")).await.unwrap(), None, "nor a path through a blob");
    }

    #[tokio::test]
    async fn deleting_a_missing_key_is_fine() {
        let (_dir, store) = store();
        store.delete(&key("photos/none/512.jpg")).await.unwrap();
    }

    #[test]
    fn keys_that_could_leave_the_store_are_refused() {
        for bad in ["..", "../etc/passwd", "photos/../../x", "photos/./x", "/etc/passwd", "photos//x", "photos/x/"] {
            assert!(BlobKey::new(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn keys_outside_the_allowed_alphabet_or_length_are_refused() {
        let too_long = "a".repeat(MAX_KEY_LEN + 1);
        for bad in ["", "Photos/x", "photos\\x", "photos/x y", "photos/é", ".hidden", "photos/.tmp", &too_long] {
            assert!(BlobKey::new(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn ordinary_keys_are_accepted() {
        let longest = "a".repeat(MAX_KEY_LEN);
        for good in ["a", "photos/0194f3c2-7b1a-7c3e/512.jpg", "x_y-z.v2.tar.gz", &longest] {
            assert_eq!(BlobKey::new(good).unwrap().as_str(), good);
        }
    }

    #[tokio::test]
    async fn deleting_a_prefix_removes_every_key_under_it_and_nothing_else() {
        let (dir, store) = store();
        for name in ["photos/a/512.jpg", "photos/a/64.jpg", "photos/ab/512.jpg", "photos/b/512.jpg", "other"] {
            store.put(&key(name), vec![1]).await.unwrap();
        }

        store.delete_prefix("photos/a/").await.unwrap();

        assert_eq!(files_under(&dir.path().join("blobs")), ["other", "photos/ab/512.jpg", "photos/b/512.jpg"]);
    }

    #[tokio::test]
    async fn a_prefix_matches_key_strings_like_an_object_store() {
        let (dir, store) = store();
        for name in ["photos/a/512.jpg", "photos/ab/512.jpg", "photos/b/512.jpg", "photos-old/x"] {
            store.put(&key(name), vec![1]).await.unwrap();
        }

        store.delete_prefix("photos/a").await.unwrap();
        assert_eq!(files_under(&dir.path().join("blobs")), ["photos-old/x", "photos/b/512.jpg"]);

        store.delete_prefix("photos").await.unwrap();
        assert!(files_under(&dir.path().join("blobs")).is_empty());
    }

    #[tokio::test]
    async fn deleting_a_prefix_nothing_matches_is_fine() {
        let (_dir, store) = store();
        store.delete_prefix("photos/none/").await.unwrap();
        store.delete_prefix("nothing").await.unwrap();
    }

    #[tokio::test]
    async fn an_empty_or_escaping_prefix_is_refused() {
        let (dir, store) = store();
        store.put(&key("photos/a/512.jpg"), vec![1]).await.unwrap();

        for bad in ["", "/", "../", "../blobs", "/etc/", "photos/../", "photos//"] {
            assert!(store.delete_prefix(bad).await.is_err(), "{bad:?} was accepted");
        }
        assert_eq!(files_under(&dir.path().join("blobs")), ["photos/a/512.jpg"]);
    }
}
