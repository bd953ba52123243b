//! Precompiled artifacts: a module survives serialization, and every kind
//! of bad artifact is refused with its own named error.

use keel::*;

const WAT: &str = r#"(module
    (memory 1)
    (data (i32.const 16) "artifact")
    (table 2 funcref)
    (elem (i32.const 0) $double $byte)
    (func $double (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
    (func $byte (param i32) (result i32) (i32.load8_u (local.get 0)))
    (func (export "f") (param i32) (result i32)
      (i32.add
        (call_indirect (param i32) (result i32) (local.get 0) (i32.const 0))
        (call_indirect (param i32) (result i32) (i32.const 16) (i32.const 1)))))"#;

/// `f(21)` of a module: 42 plus the byte `a`.
const EXPECTED: i32 = 42 + b'a' as i32;

fn call_f(engine: &Engine, module: &Module) -> i32 {
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, module, &[]).unwrap();
    let f = instance
        .get_typed_func::<i32, i32>(&mut store, "f")
        .unwrap();
    f.call(&mut store, 21).unwrap()
}

fn keyed(key: &str) -> Engine {
    let mut config = Config::new();
    config.artifact_key(key);
    Engine::new(&config).unwrap()
}

fn artifact_error(result: Result<Module>) -> ArtifactError {
    let err = result.expect_err("the artifact must be refused");
    err.downcast_ref::<ArtifactError>()
        .unwrap_or_else(|| panic!("not an artifact error: {err:#}"))
        .clone()
}

/// The trailer's length: checksum, signed flag, HMAC-SHA-256.
const TRAILER: usize = 8 + 1 + 32;

/// Recomputes the checksum after a deliberate edit, as an attacker (or a
/// different build) could.
fn reseal(artifact: &mut [u8]) {
    let body = artifact.len() - TRAILER;
    // XXH3-64 of the XXH3-64s of 128 KiB pieces (see `artifact.rs`).
    let pieces: Vec<u8> = artifact[..body]
        .chunks(128 << 10)
        .flat_map(|piece| twox_hash::XxHash3_64::oneshot(piece).to_le_bytes())
        .collect();
    let checksum = twox_hash::XxHash3_64::oneshot(&pieces);
    artifact[body..body + 8].copy_from_slice(&checksum.to_le_bytes());
}

/// The offset of Keel's version string in an artifact.
fn version_offset(artifact: &[u8]) -> usize {
    let needle = env!("CARGO_PKG_VERSION").as_bytes();
    artifact
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

#[test]
fn a_module_survives_serialization_to_bytes_and_to_a_file() {
    let engine = Engine::default();
    let module = Module::new(&engine, WAT).unwrap();
    let artifact = module.serialize().unwrap();
    assert_eq!(
        Engine::detect_precompiled(&artifact),
        Some(Precompiled::Module)
    );
    // SAFETY: made just above by this engine.
    let loaded = unsafe { Module::deserialize(&engine, &artifact) }.unwrap();
    assert_eq!(call_f(&engine, &loaded), EXPECTED);
    // Serializing what was loaded gives the same bytes.
    assert_eq!(loaded.serialize().unwrap(), artifact);

    let dir = std::env::temp_dir().join(format!("keel-artifact-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.cwasm");
    std::fs::write(&path, engine.precompile_module(WAT.as_bytes()).unwrap()).unwrap();
    assert_eq!(
        Engine::detect_precompiled_file(&path).unwrap(),
        Some(Precompiled::Module)
    );
    // SAFETY: made just above, and not changed while the module lives.
    let mapped = unsafe { Module::deserialize_file(&engine, &path) }.unwrap();
    assert_eq!(call_f(&engine, &mapped), EXPECTED);
    drop(mapped);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn each_kind_of_bad_artifact_gets_its_named_error() {
    let engine = Engine::default();
    let artifact = Module::new(&engine, WAT).unwrap().serialize().unwrap();
    let load = |bytes: &[u8]| {
        // SAFETY: every call below is refused before any of the bytes'
        // code could run; what is tested is that refusal.
        unsafe { Module::deserialize(&engine, bytes) }
    };

    let wasm = wat::parse_str(WAT).unwrap();
    assert_eq!(artifact_error(load(&wasm)), ArtifactError::IsWasm);
    assert_eq!(
        artifact_error(load(b"hello world")),
        ArtifactError::NotAnArtifact
    );
    assert_eq!(
        artifact_error(load(&artifact[..20])),
        ArtifactError::Truncated
    );
    for cut in [artifact.len() - 1, artifact.len() / 2, 100] {
        assert_eq!(
            artifact_error(load(&artifact[..cut])),
            ArtifactError::Checksum,
            "cut at {cut}"
        );
    }
    for at in [9, 60, artifact.len() / 2, artifact.len() - TRAILER - 1] {
        let mut flipped = artifact.clone();
        flipped[at] ^= 0x10;
        assert_eq!(
            artifact_error(load(&flipped)),
            ArtifactError::Checksum,
            "flip at {at}"
        );
    }

    let mut other_version = artifact.clone();
    let at = version_offset(&other_version);
    other_version[at] = b'9';
    reseal(&mut other_version);
    assert!(matches!(
        artifact_error(load(&other_version)),
        ArtifactError::KeelVersion { .. }
    ));

    // An artifact of an earlier format (whose trailer is laid out
    // otherwise) is named as such, not as a bad checksum.
    let mut earlier_format = artifact.clone();
    earlier_format[8] = 6;
    assert_eq!(
        artifact_error(load(&earlier_format)),
        ArtifactError::FormatVersion {
            found: 6,
            expected: 7
        }
    );
    let path = std::env::temp_dir().join(format!("keel-earlier-{}.cwasm", std::process::id()));
    std::fs::write(&path, &earlier_format).unwrap();
    // SAFETY: refused before any of its code could run.
    let from_file = unsafe { Module::deserialize_file(&engine, &path) };
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        artifact_error(from_file),
        ArtifactError::FormatVersion {
            found: 6,
            expected: 7
        }
    );

    let mut other_format = artifact.clone();
    other_format[8] = 0xee;
    reseal(&mut other_format);
    assert!(matches!(
        artifact_error(load(&other_format)),
        ArtifactError::FormatVersion {
            found: 0xee,
            expected: 7
        }
    ));

    // Made by an engine with fuel on: code that counts fuel must not load
    // where the runtime does not expect it, and the error says which
    // setting differs.
    let mut config = Config::new();
    config.consume_fuel(true);
    let fuel_artifact = Engine::new(&config)
        .unwrap()
        .precompile_module(WAT.as_bytes())
        .unwrap();
    match artifact_error(load(&fuel_artifact)) {
        ArtifactError::Fingerprint {
            setting,
            artifact,
            engine,
        } => {
            assert_eq!(
                (setting.as_str(), artifact.as_str(), engine.as_str()),
                ("consume_fuel", "true", "false")
            );
        }
        other => panic!("{other}"),
    }
    let err = load(&fuel_artifact).unwrap_err();
    assert!(format!("{err}").contains("consume_fuel=true"), "{err}");

    // A plain module is not an artifact, nor an artifact a module.
    let err = Module::new(&engine, &artifact).unwrap_err();
    assert!(format!("{err}").contains("Module::deserialize"), "{err}");
    assert_eq!(Engine::detect_precompiled(&wasm), None);
}

#[test]
fn an_authenticated_engine_loads_only_what_its_key_signed() {
    let ours = keyed("our secret");
    let theirs = keyed("another secret");
    let signed = ours.precompile_module(WAT.as_bytes()).unwrap();
    let module = Module::deserialize_authenticated(&ours, &signed).unwrap();
    assert_eq!(call_f(&ours, &module), EXPECTED);

    assert_eq!(
        artifact_error(Module::deserialize_authenticated(&theirs, &signed)),
        ArtifactError::BadSignature
    );
    let unsigned = Engine::default().precompile_module(WAT.as_bytes()).unwrap();
    assert_eq!(
        artifact_error(Module::deserialize_authenticated(&ours, &unsigned)),
        ArtifactError::Unsigned
    );
    assert_eq!(
        artifact_error(Module::deserialize_authenticated(
            &Engine::default(),
            &signed
        )),
        ArtifactError::NoKey
    );
    // Code changed and the checksum recomputed: only the signature can
    // tell, and it does.
    let mut tampered = signed.clone();
    let at = tampered.len() - TRAILER - 1;
    tampered[at] ^= 0xff;
    reseal(&mut tampered);
    assert_eq!(
        artifact_error(Module::deserialize_authenticated(&ours, &tampered)),
        ArtifactError::BadSignature
    );
    // The signature comes before anything else, the format version too.
    let mut earlier_format = signed.clone();
    earlier_format[8] = 4;
    assert_eq!(
        artifact_error(Module::deserialize_authenticated(&ours, &earlier_format)),
        ArtifactError::BadSignature
    );

    let dir = std::env::temp_dir().join(format!("keel-signed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.cwasm");
    std::fs::write(&path, &signed).unwrap();
    let from_file = Module::deserialize_authenticated_file(&ours, &path).unwrap();
    assert_eq!(call_f(&ours, &from_file), EXPECTED);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_damaged_file_is_refused_by_its_checksum_wherever_the_damage_is() {
    // `deserialize_file` reads the artifact while another thread checks
    // its checksum: damage anywhere (header, wasm, tables, text) must come
    // out as the checksum's error, never as a crash or a module.
    let engine = Engine::default();
    let artifact = Module::new(&engine, WAT).unwrap().serialize().unwrap();
    let path = std::env::temp_dir().join(format!("keel-damaged-{}.cwasm", std::process::id()));
    let step = (artifact.len() / 97).max(1);
    for at in (8..artifact.len() - TRAILER).step_by(step) {
        let mut damaged = artifact.clone();
        damaged[at] ^= 0x5a;
        std::fs::write(&path, &damaged).unwrap();
        // SAFETY: refused before any of the bytes' code could run.
        let result = unsafe { Module::deserialize_file(&engine, &path) };
        assert_eq!(artifact_error(result), ArtifactError::Checksum, "byte {at}");
    }
    std::fs::write(&path, &artifact).unwrap();
    // SAFETY: the artifact was just made by this engine.
    unsafe { Module::deserialize_file(&engine, &path) }.unwrap();
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_damaged_signed_file_is_refused_by_its_signature_wherever_the_damage_is() {
    // `deserialize_authenticated_file` reads the file into memory and runs
    // the text where it was read: damage anywhere, and a cut anywhere,
    // must be refused before that.
    let mut config = Config::new();
    config.artifact_key(b"a key for damaged files");
    let engine = Engine::new(&config).unwrap();
    let signed = Module::new(&engine, WAT).unwrap().serialize().unwrap();
    let path =
        std::env::temp_dir().join(format!("keel-damaged-signed-{}.cwasm", std::process::id()));
    let step = (signed.len() / 97).max(1);
    for at in (8..signed.len() - TRAILER).step_by(step) {
        let mut damaged = signed.clone();
        damaged[at] ^= 0x5a;
        std::fs::write(&path, &damaged).unwrap();
        let result = Module::deserialize_authenticated_file(&engine, &path);
        assert_eq!(
            artifact_error(result),
            ArtifactError::BadSignature,
            "byte {at}"
        );
    }
    for cut in [signed.len() - 1, signed.len() / 2, 4096] {
        std::fs::write(&path, &signed[..cut]).unwrap();
        let result = Module::deserialize_authenticated_file(&engine, &path);
        assert!(result.is_err(), "cut at {cut}");
    }
    std::fs::write(&path, &signed).unwrap();
    let module = Module::deserialize_authenticated_file(&engine, &path).unwrap();
    std::fs::remove_file(&path).unwrap();
    // The text runs from the pages it was read into, the file gone.
    assert_eq!(call_f(&engine, &module), EXPECTED);
}

#[test]
fn function_types_of_every_shape_survive_an_artifact() {
    // Loading reads plain function types straight from the bytes: each
    // value type must come out as compiling read it.
    let wat = r#"(module
        (type $t (func (param i32) (result i32)))
        (func (export "a") (param i32 i64 f32 f64) (result v128) v128.const i64x2 0 0)
        (func (export "b") (param funcref externref) (result i32 i64 f64)
            i32.const 0 i64.const 0 f64.const 0)
        (func (export "c") (param (ref null $t) exnref) (result (ref func)) ref.func $d)
        (func $d (export "d")))"#;
    let mut config = Config::new();
    config.wasm_function_references(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, wat).unwrap();
    // SAFETY: made just above by this engine.
    let loaded = unsafe { Module::deserialize(&engine, module.serialize().unwrap()) }.unwrap();
    let types = |m: &Module| {
        m.exports()
            .map(|e| format!("{} {:?}", e.name(), e.ty()))
            .collect::<Vec<_>>()
    };
    assert_eq!(types(&module).len(), 4);
    assert_eq!(types(&module), types(&loaded));
}
