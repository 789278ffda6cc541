//! The routing module under wasmtime: loading (with an ABI check), one sandboxed call per
//! routing decision, and replacement at run time.
//!
//! Model: the compiled module (an `InstancePre`) sits behind an `RwLock<Arc<_>>`; a call clones
//! the `Arc` and instantiates it in a fresh `Store` with a fuel budget and a memory cap, so a
//! trap, an exhausted budget or a corrupted guest heap ends that one call and nothing else.
//! [`RoutingModule::reload`] compiles and checks the new module before swapping the pointer:
//! calls in flight finish on the module they started with, new calls see the new one, and
//! connections are never touched.
//!
//! Invariants: a module is only ever installed after its `cairn_abi_version()` returned
//! [`cairn_edge_routing::ABI_VERSION`] and its exports had the documented types; a call never
//! runs longer than `fuel` wasm instructions (roughly) nor grows memory past `memory_bytes`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use cairn_edge_routing::{ABI_VERSION, Decision, RequestRecord, abi};
use wasmtime::{
    Config, Engine, Instance, InstancePre, Linker, Memory, Module, Store, StoreLimits,
    StoreLimitsBuilder, Trap, TypedFunc,
};

/// Largest decision record the host accepts from a guest.
const MAX_DECISION_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("cannot load routing module {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("routing module {path} speaks ABI version {found}, this edge speaks {expected}")]
    AbiVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("routing module ran out of fuel (its instruction budget)")]
    OutOfFuel,
    #[error("routing module trapped: {0}")]
    Trap(String),
    #[error("routing module broke the ABI: {0}")]
    Abi(String),
}

struct StoreState {
    limits: StoreLimits,
}

struct Loaded {
    pre: InstancePre<StoreState>,
    path: PathBuf,
    generation: u64,
}

/// Limits of one routing call.
#[derive(Debug, Clone, Copy)]
pub struct ModuleLimits {
    /// Fuel per call (about one unit per wasm instruction).
    pub fuel: u64,
    /// Cap on the guest's linear memory.
    pub memory_bytes: usize,
}

pub struct RoutingModule {
    engine: Engine,
    limits: ModuleLimits,
    current: RwLock<Arc<Loaded>>,
    generations: AtomicU64,
}

/// The typed exports of one instance.
struct Exports {
    memory: Memory,
    alloc: TypedFunc<u32, u32>,
    route: TypedFunc<(u32, u32), u64>,
}

impl RoutingModule {
    /// Compiles and checks the module at `path` (`.wasm`, or `.wat` text).
    pub fn load(path: &Path, limits: ModuleLimits) -> Result<RoutingModule, ModuleError> {
        let mut config = Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config).map_err(|error| ModuleError::Load {
            path: path.to_owned(),
            message: error.to_string(),
        })?;
        let pre = compile_checked(&engine, path, limits)?;
        Ok(RoutingModule {
            engine,
            limits,
            current: RwLock::new(Arc::new(Loaded {
                pre,
                path: path.to_owned(),
                generation: 1,
            })),
            generations: AtomicU64::new(1),
        })
    }

    /// Replaces the module with the one at `path` (the current path when `None`) and returns the
    /// new generation. On any error the running module stays.
    pub fn reload(&self, path: Option<&Path>) -> Result<u64, ModuleError> {
        let path = match path {
            Some(path) => path.to_owned(),
            None => self.loaded().path.clone(),
        };
        let pre = compile_checked(&self.engine, &path, self.limits)?;
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        let loaded = Arc::new(Loaded {
            pre,
            path,
            generation,
        });
        *self
            .current
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = loaded;
        Ok(generation)
    }

    /// The generation (1 for the first module, +1 per successful reload) and path in use.
    pub fn current(&self) -> (u64, PathBuf) {
        let loaded = self.loaded();
        (loaded.generation, loaded.path.clone())
    }

    fn loaded(&self) -> Arc<Loaded> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(|poison| poison.into_inner()),
        )
    }

    /// One routing decision in a fresh sandbox.
    pub fn route(&self, request: &RequestRecord) -> Result<Decision, ModuleError> {
        let loaded = self.loaded();
        let (mut store, instance) = instantiate(&self.engine, &loaded.pre, self.limits)?;
        let exports = exports(&mut store, &instance)?;
        let record = abi::encode_request(request);
        let length = u32::try_from(record.len())
            .map_err(|_| ModuleError::Abi("request record larger than 4 GiB".into()))?;
        let pointer = exports.alloc.call(&mut store, length).map_err(call_error)?;
        exports
            .memory
            .write(&mut store, pointer as usize, &record)
            .map_err(|error| {
                ModuleError::Abi(format!("cairn_alloc returned an invalid buffer: {error}"))
            })?;
        let location = exports
            .route
            .call(&mut store, (pointer, length))
            .map_err(call_error)?;
        let (decision_pointer, decision_length) = (location >> 32, location & 0xffff_ffff);
        if decision_length > MAX_DECISION_BYTES {
            return Err(ModuleError::Abi(format!(
                "decision record of {decision_length} bytes"
            )));
        }
        let mut bytes = vec![0; decision_length as usize];
        exports
            .memory
            .read(&store, decision_pointer as usize, &mut bytes)
            .map_err(|error| ModuleError::Abi(format!("decision record out of bounds: {error}")))?;
        abi::decode_decision(&bytes).map_err(|error| ModuleError::Abi(error.to_string()))
    }
}

fn compile_checked(
    engine: &Engine,
    path: &Path,
    limits: ModuleLimits,
) -> Result<InstancePre<StoreState>, ModuleError> {
    let load_error = |message: String| ModuleError::Load {
        path: path.to_owned(),
        message,
    };
    let module = Module::from_file(engine, path).map_err(|error| load_error(error.to_string()))?;
    // No imports: the guest gets nothing from the host but its inputs.
    let linker = Linker::<StoreState>::new(engine);
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|error| load_error(error.to_string()))?;
    let (mut store, instance) = instantiate(engine, &pre, limits)?;
    exports(&mut store, &instance).map_err(|error| load_error(error.to_string()))?;
    let version = instance
        .get_typed_func::<(), u32>(&mut store, "cairn_abi_version")
        .map_err(|error| load_error(format!("export cairn_abi_version: {error}")))?
        .call(&mut store, ())
        .map_err(|error| load_error(format!("cairn_abi_version(): {error}")))?;
    if version != ABI_VERSION {
        return Err(ModuleError::AbiVersion {
            path: path.to_owned(),
            found: version,
            expected: ABI_VERSION,
        });
    }
    Ok(pre)
}

fn instantiate(
    engine: &Engine,
    pre: &InstancePre<StoreState>,
    limits: ModuleLimits,
) -> Result<(Store<StoreState>, Instance), ModuleError> {
    let mut store = Store::new(
        engine,
        StoreState {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(1)
                .memories(1)
                .tables(1)
                .build(),
        },
    );
    store.limiter(|state| &mut state.limits);
    store
        .set_fuel(limits.fuel)
        .map_err(|error| ModuleError::Abi(error.to_string()))?;
    let instance = pre.instantiate(&mut store).map_err(call_error)?;
    Ok((store, instance))
}

fn exports(store: &mut Store<StoreState>, instance: &Instance) -> Result<Exports, ModuleError> {
    let memory = instance
        .get_memory(&mut *store, "memory")
        .ok_or_else(|| ModuleError::Abi("no exported memory \"memory\"".into()))?;
    let alloc = instance
        .get_typed_func::<u32, u32>(&mut *store, "cairn_alloc")
        .map_err(|error| ModuleError::Abi(format!("export cairn_alloc: {error}")))?;
    let route = instance
        .get_typed_func::<(u32, u32), u64>(&mut *store, "cairn_route")
        .map_err(|error| ModuleError::Abi(format!("export cairn_route: {error}")))?;
    Ok(Exports {
        memory,
        alloc,
        route,
    })
}

fn call_error(error: wasmtime::Error) -> ModuleError {
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => ModuleError::OutOfFuel,
        Some(trap) => ModuleError::Trap(trap.to_string()),
        None => ModuleError::Trap(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module in WAT that honours the ABI but whose `cairn_route` body is `route_body`.
    pub(crate) fn wat_module(route_body: &str) -> String {
        format!(
            r#"(module
  (memory (export "memory") 1)
  (func (export "cairn_abi_version") (result i32) i32.const 1)
  (func (export "cairn_alloc") (param i32) (result i32) i32.const 1024)
  (func (export "cairn_route") (param i32 i32) (result i64) {route_body})
  ;; A NeedBucketRegion decision for bucket "abc" at offset 16.
  (data (i32.const 16) "\01\00\00\00\02\03\00\00\00abc"))"#
        )
    }

    fn limits() -> ModuleLimits {
        ModuleLimits {
            fuel: 100_000,
            memory_bytes: 1 << 20,
        }
    }

    fn write(directory: &Path, name: &str, text: &str) -> PathBuf {
        let path = directory.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const ANSWER: &str = "i64.const 0x100000000C"; // pointer 16, length 12

    #[test]
    fn a_conforming_module_answers_and_a_looping_or_trapping_one_fails_only_its_call() {
        let directory = tempfile::tempdir().unwrap();
        let good = write(directory.path(), "good.wat", &wat_module(ANSWER));
        let looping = write(
            directory.path(),
            "loop.wat",
            &wat_module("(loop $forever (br $forever)) i64.const 0"),
        );
        let trapping = write(directory.path(), "trap.wat", &wat_module("unreachable"));
        let module = RoutingModule::load(&good, limits()).unwrap();
        let request = RequestRecord::default();
        let expected = Decision::NeedBucketRegion {
            bucket: "abc".into(),
        };
        assert_eq!(module.route(&request).unwrap(), expected);

        assert_eq!(module.reload(Some(&looping)).unwrap(), 2);
        assert!(matches!(
            module.route(&request),
            Err(ModuleError::OutOfFuel)
        ));
        assert!(matches!(
            module.route(&request),
            Err(ModuleError::OutOfFuel)
        ));

        assert_eq!(module.reload(Some(&trapping)).unwrap(), 3);
        assert!(matches!(module.route(&request), Err(ModuleError::Trap(_))));

        assert_eq!(module.reload(Some(&good)).unwrap(), 4);
        assert_eq!(module.route(&request).unwrap(), expected);
        assert_eq!(module.current(), (4, good));
    }

    #[test]
    fn modules_breaking_the_abi_are_refused_and_the_running_one_stays() {
        let directory = tempfile::tempdir().unwrap();
        let good = write(directory.path(), "good.wat", &wat_module(ANSWER));
        let module = RoutingModule::load(&good, limits()).unwrap();
        let wrong_version = write(
            directory.path(),
            "v2.wat",
            &wat_module(ANSWER).replace("(result i32) i32.const 1)", "(result i32) i32.const 2)"),
        );
        assert!(matches!(
            module.reload(Some(&wrong_version)),
            Err(ModuleError::AbiVersion { found: 2, .. })
        ));
        let no_route = write(
            directory.path(),
            "noroute.wat",
            &wat_module(ANSWER).replace("\"cairn_route\"", "\"other\""),
        );
        assert!(matches!(
            module.reload(Some(&no_route)),
            Err(ModuleError::Load { .. })
        ));
        assert!(matches!(
            module.reload(Some(&directory.path().join("missing.wasm"))),
            Err(ModuleError::Load { .. })
        ));
        // A decision pointing outside memory is an ABI error, not a crash.
        let out_of_bounds = write(
            directory.path(),
            "oob.wat",
            &wat_module("i64.const 0x7fff0000000000ff"),
        );
        module.reload(Some(&out_of_bounds)).unwrap();
        assert!(matches!(
            module.route(&RequestRecord::default()),
            Err(ModuleError::Abi(_))
        ));
        module.reload(Some(&good)).unwrap();
        assert_eq!(module.current().0, 3);
    }

    /// The module built by edge-wasm/build-wasm.sh (`CAIRN_EDGE_WASM` overrides the path).
    pub(crate) fn built_module_path() -> PathBuf {
        let path = std::env::var_os("CAIRN_EDGE_WASM").map_or_else(
            || Path::new(env!("CARGO_MANIFEST_DIR")).join("../build/cairn_edge_routing.wasm"),
            PathBuf::from,
        );
        assert!(
            path.exists(),
            "the routing module {} is missing: build it with edge-wasm/build-wasm.sh \
             (or point CAIRN_EDGE_WASM at a built module)",
            path.display()
        );
        path
    }

    #[test]
    fn the_built_module_decides_exactly_like_the_native_code() {
        use cairn_edge_routing::{BucketEntry, Policy, RegionEntry, route};
        // The Rust module starts with 17 pages (1 MiB of stack, its data): the edge's default cap.
        let limits = ModuleLimits {
            fuel: 10_000_000,
            memory_bytes: 16 << 20,
        };
        let module = RoutingModule::load(&built_module_path(), limits).unwrap();
        let base = RequestRecord {
            method: "GET".into(),
            host: "127.0.0.1:8443".into(),
            path: "/photos/a%20b".into(),
            policy: Policy {
                virtual_host_suffixes: vec!["s3.localhost".into()],
                default_region: "eu".into(),
                cache_ttl_ms: 1_500,
            },
            regions: vec![RegionEntry {
                name: "eu".into(),
                endpoint: "e".into(),
            }],
            buckets: vec![BucketEntry {
                bucket: "photos".into(),
                region: Some("eu".into()),
            }],
            ..RequestRecord::default()
        };
        let mut cases = vec![base.clone()];
        for (method, host, path) in [
            ("PUT", "localhost", "/new-bucket/k"),
            ("GET", "photos.s3.localhost", "/x"),
            ("TRACE", "localhost", "/photos/k"),
            ("GET", "localhost", "/Bad_Name/k"),
            ("GET", "localhost", "/"),
            ("GET", "localhost", "/photos/%zz"),
        ] {
            let mut case = base.clone();
            case.method = method.into();
            case.host = host.into();
            case.path = path.into();
            cases.push(case);
        }
        let mut ranged = base.clone();
        ranged.headers.push(("range".into(), "bytes=0-9".into()));
        cases.push(ranged);
        let mut big = base.clone();
        big.query = "x".repeat(200_000);
        cases.push(big);
        // Many calls: each runs in a fresh instance, nothing accumulates.
        for _ in 0..50 {
            for case in &cases {
                assert_eq!(module.route(case).unwrap(), route(case), "{case:?}");
            }
        }
    }

    #[test]
    fn memory_growth_past_the_cap_is_refused() {
        let directory = tempfile::tempdir().unwrap();
        let greedy = write(
            directory.path(),
            "greedy.wat",
            &wat_module(
                "(if (i32.eq (memory.grow (i32.const 100)) (i32.const -1)) \
                 (then (return (i64.const 0x100000000C)))) unreachable",
            ),
        );
        let module = RoutingModule::load(&greedy, limits()).unwrap();
        // 100 more pages (6.4 MiB) exceed the 1 MiB cap: memory.grow answers -1 and the module
        // answers normally; had the grow succeeded, it would trap.
        assert_eq!(
            module.route(&RequestRecord::default()).unwrap(),
            Decision::NeedBucketRegion {
                bucket: "abc".into()
            }
        );
    }
}
