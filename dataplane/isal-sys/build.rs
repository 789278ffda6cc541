//! Links the system ISA-L (Debian `libisal-dev`: header `/usr/include/isa-l/erasure_code.h`,
//! library `libisal.so`). No pkg-config file ships with the Debian package, so the search path is
//! the default linker path; `ISAL_LIB_DIR` overrides it for a non-standard install.

fn main() {
    println!("cargo:rerun-if-env-changed=ISAL_LIB_DIR");
    if let Ok(dir) = std::env::var("ISAL_LIB_DIR") {
        println!("cargo:rustc-link-search=native={dir}");
    }
    println!("cargo:rustc-link-lib=isal");
}
