//! openraft's storage conformance suite against the LMDB group storage.

use cairn_meta_state::Role;
use cairn_raft::store::{DEFAULT_MAP_SIZE_BYTES, LogStore, StateMachineStore, open_group_storage};
use cairn_raft::types::{StorageError, TypeConfig};
use openraft::StorageIOError;
use openraft::testing::{StoreBuilder, Suite};

/// Builds a fresh store in its own temporary directory; the directory is the guard.
struct LmdbStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for LmdbStoreBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().map_err(|error| StorageIOError::write(&error))?;
        let (log_store, state_machine) =
            open_group_storage(dir.path(), Role::Combined, DEFAULT_MAP_SIZE_BYTES)
                .map_err(|error| StorageIOError::write(&error))?;
        Ok((dir, log_store, state_machine))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    if let Err(error) = Suite::test_all(LmdbStoreBuilder) {
        panic!("storage suite failed: {error}");
    }
}
