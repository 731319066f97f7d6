//! Fuzzing netavark's decoder (see `crate::fuzz`): the network options on stdin as setup
//! reads them before it touches the engine.

use ctnet_engine::model::{parse_ip, MacAddr};
use ctnet_engine::Error;
use ctnet_kernel::IfName;

use super::{network_spec, port_specs, NetworkOptions};
use crate::fuzz::{assert_clear, corpus_dir, mutate_json, no_panic, settings};

/// Everything setup decides from its input before the engine acts, in its order.
/// `None`: the JSON did not decode (serde's message says where and why).
fn decode(input: &str) -> Option<Result<(), Error>> {
    let opts: NetworkOptions = serde_json::from_str(input).ok()?;
    Some((|| {
        port_specs(opts.port_mappings.as_deref().unwrap_or_default())?;
        for (name, info) in &opts.network_info {
            network_spec(name, info)?;
        }
        for per in opts.networks.values() {
            for ip in per.static_ips.iter().flatten() {
                parse_ip("static_ips", ip, None)?;
            }
            IfName::new(&per.interface_name)?;
            if let Some(mac) = per.static_mac.as_deref() {
                MacAddr::parse("static_mac", mac)?;
            }
        }
        Ok(())
    })())
}

#[test]
fn netavark_options_decoding_never_panics_and_refuses_clearly() {
    let seeds = corpus_dir("netavark");
    for seed in &seeds {
        match decode(seed) {
            Some(Ok(())) => {}
            other => panic!("corpus entry {seed}: {other:?}"),
        }
    }
    let (mut rng, iterations) = settings("netavark");
    let (mut accepted, mut undecodable) = (0, 0);
    for _ in 0..iterations {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate_json(&mut rng, seed);
        match no_panic("netavark decode", &input, || decode(&input)) {
            None => undecodable += 1,
            Some(Ok(())) => accepted += 1,
            Some(Err(e)) => assert_clear("netavark", &input, &e),
        }
    }
    eprintln!(
        "fuzz netavark: {accepted} accepted, {undecodable} not JSON options, of {iterations}"
    );
}
