//! Reading a GraphQL multipart upload. async-graphql spools each file to a temporary file and
//! hands it over as a blocking reader, so the read runs on the blocking pool, never on the
//! async runtime's workers (an upload may be tens of MiB).

use std::io::Read as _;

use async_graphql::UploadValue;

/// The upload's bytes, at most `max + 1` of them: a caller that gets more than `max` knows the
/// file is too large without reading all of it.
pub async fn read_limited(upload: UploadValue, max: usize) -> std::io::Result<Vec<u8>> {
    tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::new();
        upload.into_read().take(max as u64 + 1).read_to_end(&mut bytes)?;
        Ok(bytes)
    })
    .await
    .map_err(std::io::Error::other)?
}
