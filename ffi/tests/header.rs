//! The checked-in `include/cairn.h` equals what cbindgen generates from the current sources.
//!
//! Run with `CAIRN_UPDATE_HEADER=1` to rewrite the header after changing the C API.

use std::path::Path;

#[test]
fn checked_in_header_matches_cbindgen_output() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let header_path = crate_dir.join("include/cairn.h");
    let checked_in = std::fs::read(&header_path).unwrap_or_default();
    if generated == checked_in {
        return;
    }
    if std::env::var_os("CAIRN_UPDATE_HEADER").is_some() {
        std::fs::write(&header_path, &generated).expect("header written");
        return;
    }
    let generated = String::from_utf8_lossy(&generated);
    let checked_in = String::from_utf8_lossy(&checked_in);
    let first_difference = generated
        .lines()
        .zip(checked_in.lines())
        .enumerate()
        .find(|(_, (new, old))| new != old)
        .map(|(line, (new, old))| {
            format!(
                "line {}:\n  generated:  {new}\n  checked in: {old}",
                line + 1
            )
        })
        .unwrap_or_else(|| "the files differ in length".to_owned());
    panic!(
        "ffi/include/cairn.h is stale; regenerate it with \
         `CAIRN_UPDATE_HEADER=1 cargo test -p cairn-ffi --test header` \
         (or `cbindgen --config cbindgen.toml --crate cairn-ffi --output include/cairn.h` in ffi/).\n\
         First difference at {first_difference}"
    );
}
