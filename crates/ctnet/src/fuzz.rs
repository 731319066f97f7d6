//! Bounded fuzzing of every parser that reads outside input, run as unit tests so CI runs
//! it (`cargo fuzz` needs a nightly compiler). Inputs are the seed corpus in
//! `tests/corpus/`, mutated by a small deterministic generator (byte flips, insertions,
//! deletions, splices, tokens known to upset parsers, and for JSON the replacement of a
//! value by another of any type), plus wholly random text. The property: no panic, and
//! every refusal a clear error (an object, a cause and a fix).
//!
//! `CTNET_FUZZ_ITERATIONS` (default [`DEFAULT_ITERATIONS`] per parser) and
//! `CTNET_FUZZ_SEED` (printed by each run) reproduce or extend a run.
//! This file holds the generator and the engine's text parsers (`-p`, subnets, names,
//! addresses); the CNI and netavark decoders are fuzzed beside their code
//! (`cni/fuzz.rs`, `netavark/fuzz.rs`), where their private functions are in reach.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use ctnet_engine::model::{parse_ip, MacAddr, Subnet};
use ctnet_engine::{Error, NetworkName, PortSpec};
use ctnet_kernel::IfName;
use serde_json::Value;

/// Inputs tried per parser when `CTNET_FUZZ_ITERATIONS` is unset.
pub const DEFAULT_ITERATIONS: usize = 20_000;

/// Text known to reach corners: numbers at and past the edges, separators, empty and
/// huge values, non-ASCII, NUL, a kernel name template.
const TOKENS: &[&str] = &[
    "0",
    "-1",
    "65535",
    "65536",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999",
    "1e999",
    "-0",
    "255.255.255.255",
    "0.0.0.0",
    "::",
    "::1",
    "[",
    "]",
    ":",
    "::::",
    "/",
    "/0",
    "/33",
    "/129",
    "-",
    ",",
    "%d",
    "\u{0}",
    "é",
    "\u{202e}",
    "\"",
    "\\",
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "tcp",
    "udp",
    "sctp",
];

/// xorshift64*: small, deterministic, good enough to pick mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn token(&mut self) -> &'static str {
        TOKENS[self.below(TOKENS.len())]
    }
}

/// The seed and iteration count of this run, from the environment or fresh.
pub fn settings(name: &str) -> (Rng, usize) {
    let seed = std::env::var("CTNET_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let iterations = std::env::var("CTNET_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_ITERATIONS);
    eprintln!("fuzz {name}: {iterations} inputs, CTNET_FUZZ_SEED={seed}");
    (Rng::new(seed), iterations)
}

/// The seed corpus files under `tests/corpus/<dir>`.
pub fn corpus_dir(dir: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", path.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("corpus file"))
        .collect();
    assert!(!texts.is_empty(), "corpus {} is empty", path.display());
    texts
}

/// The lines of the seed corpus file `tests/corpus/<file>`.
pub fn corpus_lines(file: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", path.display()))
        .lines()
        .map(str::to_string)
        .collect()
}

/// A text mutated by one to four edits: byte-level, so it may stop being UTF-8 (then it
/// is made valid by replacement, as the front ends' readers would see it).
pub fn mutate_text(rng: &mut Rng, seed: &str) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(7) {
            0 if !bytes.is_empty() => {
                let i = at.min(bytes.len() - 1);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => bytes.insert(at, rng.next() as u8),
            2 if at < bytes.len() => {
                let end = (at + 1 + rng.below(8)).min(bytes.len());
                bytes.drain(at..end);
            }
            3 => {
                let token = rng.token().as_bytes();
                bytes.splice(at..at, token.iter().copied());
            }
            4 if at < bytes.len() => {
                // Repeat a slice: long values, nested brackets.
                let end = (at + 1 + rng.below(16)).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                for _ in 0..1 + rng.below(64) {
                    bytes.splice(at..at, piece.iter().copied());
                }
            }
            5 => bytes.truncate(at),
            _ => {
                let i = at.min(bytes.len());
                let digit = b'0' + rng.below(10) as u8;
                bytes.insert(i, digit);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Text of random bytes from a small alphabet that parsers care about.
pub fn random_text(rng: &mut Rng) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdef.:/[]-,%x{}\" tcpud";
    (0..rng.below(40))
        .map(|_| ALPHABET[rng.below(ALPHABET.len())] as char)
        .collect()
}

/// A random JSON value, at most `depth` levels deep.
pub fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.chance(2)),
        2 => serde_json::json!(rng.next() as i64 >> rng.below(64)),
        3 => Value::String(rng.token().to_string()),
        4 => Value::String(random_text(rng)),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(4))
                .map(|_| (rng.token().to_string(), random_value(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// A JSON document with one value somewhere inside replaced, removed or added: the
/// decoder then meets wrong types and values in every field, not only broken syntax.
pub fn mutate_json(rng: &mut Rng, seed: &str) -> String {
    let Ok(mut value) = serde_json::from_str::<Value>(seed) else {
        return mutate_text(rng, seed);
    };
    for _ in 0..1 + rng.below(3) {
        mutate_value(rng, &mut value);
    }
    if rng.chance(4) {
        mutate_text(rng, &value.to_string())
    } else {
        value.to_string()
    }
}

fn mutate_value(rng: &mut Rng, value: &mut Value) {
    match value {
        Value::Object(map) if !map.is_empty() && !rng.chance(4) => {
            let key = map
                .keys()
                .nth(rng.below(map.len()))
                .cloned()
                .expect("non-empty");
            match rng.below(5) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(rng.token().to_string(), random_value(rng, 2));
                }
                _ => mutate_value(rng, map.get_mut(&key).expect("present")),
            }
        }
        Value::Array(items) if !items.is_empty() && !rng.chance(4) => {
            let i = rng.below(items.len());
            match rng.below(4) {
                0 => {
                    items.remove(i);
                }
                1 => items.push(items[i].clone()),
                _ => mutate_value(rng, &mut items[i]),
            }
        }
        Value::String(s) if rng.chance(2) => *s = mutate_text(rng, s),
        Value::Number(_) if rng.chance(2) => {
            *value = serde_json::from_str(rng.token()).unwrap_or(Value::Null);
        }
        _ => *value = random_value(rng, 2),
    }
}

/// Runs `f` on `input`, failing the test with the input if it panics.
pub fn no_panic<T>(what: &str, input: &str, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| panic!("{what} panicked on input {input:?}"))
}

/// A refusal must say what, why and what to do.
pub fn assert_clear(what: &str, input: &str, e: &Error) {
    assert!(
        !e.object.trim().is_empty() && !e.cause.trim().is_empty() && !e.fix.trim().is_empty(),
        "{what}: unclear refusal of {input:?}: object {:?}, cause {:?}, fix {:?}",
        e.object,
        e.cause,
        e.fix
    );
}

/// An input for a text parser: a mutated seed, or now and then random text.
fn text_input(rng: &mut Rng, seeds: &[String]) -> String {
    if rng.chance(8) {
        random_text(rng)
    } else {
        let seed = &seeds[rng.below(seeds.len())];
        mutate_text(rng, seed)
    }
}

#[test]
fn publish_parser_never_panics_and_refuses_clearly() {
    let seeds = corpus_lines("ports.txt");
    for seed in &seeds {
        PortSpec::parse(seed).unwrap_or_else(|e| panic!("corpus entry {seed:?}: {e}"));
    }
    let (mut rng, iterations) = settings("-p");
    let mut accepted = 0;
    for _ in 0..iterations {
        let input = text_input(&mut rng, &seeds);
        match no_panic("-p", &input, || PortSpec::parse(&input)) {
            Ok(_) => accepted += 1,
            Err(e) => assert_clear("-p", &input, &e),
        }
    }
    eprintln!("fuzz -p: {accepted} of {iterations} accepted");
}

#[test]
fn subnet_parser_never_panics_refuses_clearly_and_round_trips() {
    let seeds = corpus_lines("subnets.txt");
    let (mut rng, iterations) = settings("subnet");
    let mut accepted = 0;
    for _ in 0..iterations {
        let input = text_input(&mut rng, &seeds);
        match no_panic("subnet", &input, || Subnet::parse(&input)) {
            Ok(subnet) => {
                accepted += 1;
                // What is accepted is canonical: its text reads back as itself.
                let again = Subnet::parse(&subnet.to_string())
                    .unwrap_or_else(|e| panic!("{input:?} gave {subnet}, refused again: {e}"));
                assert_eq!(again, subnet, "{input:?}");
            }
            Err(e) => assert_clear("subnet", &input, &e),
        }
    }
    eprintln!("fuzz subnet: {accepted} of {iterations} accepted");
}

#[test]
fn name_address_and_mac_parsers_never_panic_and_refuse_clearly() {
    let seeds: Vec<String> = [
        "blue",
        "ctnet0",
        "172.18.0.10",
        "fd00:1::10",
        "02:42:ac:11:00:02",
    ]
    .map(String::from)
    .to_vec();
    let (mut rng, iterations) = settings("names");
    for _ in 0..iterations {
        let input = text_input(&mut rng, &seeds);
        if let Err(e) = no_panic("network name", &input, || NetworkName::new(&input)) {
            assert_clear("network name", &input, &e);
        }
        if let Err(e) = no_panic("address", &input, || parse_ip("address", &input, None)) {
            assert_clear("address", &input, &e);
        }
        if let Err(e) = no_panic("mac", &input, || MacAddr::parse("mac", &input)) {
            assert_clear("mac", &input, &e);
        }
        if let Err(e) = no_panic("ifname", &input, || IfName::new(&input)) {
            assert_clear("interface name", &input, &Error::from(e));
        }
    }
}

#[test]
fn the_generator_is_deterministic_per_seed() {
    let mut a = Rng::new(42);
    let mut b = Rng::new(42);
    let seed = "{\"a\":[1,2,{\"b\":\"c\"}]}";
    for _ in 0..100 {
        assert_eq!(mutate_json(&mut a, seed), mutate_json(&mut b, seed));
    }
}
