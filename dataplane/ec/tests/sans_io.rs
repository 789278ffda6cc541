//! The crate is a sans-I/O core: it must not depend on an async runtime or do I/O itself, so the
//! gateway can drive it from monoio and the healer from anything else.

#[test]
fn no_runtime_dependencies() {
    let manifest = include_str!("../Cargo.toml");
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] table")
        .split("\n[")
        .next()
        .unwrap_or_default();
    for forbidden in [
        "tokio",
        "glommio",
        "monoio",
        "async-std",
        "futures",
        "smol",
        "mio",
    ] {
        let listed = dependencies.lines().any(|line| {
            let name = line
                .split(['=', '.', ' '])
                .next()
                .unwrap_or_default()
                .trim();
            name == forbidden
        });
        assert!(
            !listed,
            "cairn-ec must stay runtime-free, but depends on {forbidden}"
        );
    }
}
