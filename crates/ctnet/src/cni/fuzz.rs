//! Fuzzing the CNI decoders (see `crate::fuzz`): the network configuration on stdin as
//! ADD reads it before it touches the engine, and an IPAM plugin's result.

use ctnet_engine::model::{parse_ip, MacAddr};
use ctnet_kernel::IfName;
use serde_json::Value;

use super::types::{NetConf, SUPPORTED_VERSIONS};
use super::{
    configured_subnets, delegated_ipam, ipam_addresses, network_name, port_spec,
    unsupported_capabilities, Failure,
};
use crate::fuzz::{corpus_dir, mutate_json, no_panic, random_value, settings};

/// Everything ADD decides from its input before the engine is opened, in its order.
fn decode(input: &str) -> Result<(), Failure> {
    let _ = serde_json::from_str::<Value>(input);
    let conf: NetConf = serde_json::from_str(input).map_err(|e| {
        Failure::new(
            6,
            "the network configuration on stdin is not valid JSON for ctnet",
            e.to_string(),
        )
    })?;
    let _ = SUPPORTED_VERSIONS.contains(&conf.cni_version.as_str());
    network_name(&conf)?;
    configured_subnets(&conf)?;
    let _ = delegated_ipam(&conf);
    unsupported_capabilities(&conf)?;
    if let Some(bridge) = conf.bridge.as_deref() {
        IfName::new(bridge).map_err(ctnet_engine::Error::from)?;
    }
    for ip in &conf.runtime_config.ips {
        parse_ip(
            "runtimeConfig.ips",
            ip.split('/').next().unwrap_or(ip),
            None,
        )?;
    }
    for mapping in &conf.runtime_config.port_mappings {
        port_spec(mapping)?;
    }
    if let Some(mac) = conf.runtime_config.mac.as_deref() {
        MacAddr::parse("runtimeConfig.mac", mac)?;
    }
    if let Some(prev) = &conf.prev_result {
        let _ = ipam_addresses(prev);
    }
    Ok(())
}

#[test]
fn cni_configuration_decoding_never_panics_and_refuses_clearly() {
    let seeds = corpus_dir("cni");
    for seed in &seeds {
        if let Err(f) = decode(seed) {
            panic!("corpus entry {seed}: {} {}", f.msg, f.details);
        }
    }
    let (mut rng, iterations) = settings("cni config");
    let mut accepted = 0;
    for _ in 0..iterations {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate_json(&mut rng, seed);
        match no_panic("CNI decode", &input, || decode(&input)) {
            Ok(()) => accepted += 1,
            Err(f) => assert!(
                !f.msg.trim().is_empty() && !f.details.trim().is_empty(),
                "unclear CNI refusal of {input:?}: msg {:?}, details {:?}",
                f.msg,
                f.details
            ),
        }
    }
    eprintln!("fuzz cni config: {accepted} of {iterations} accepted");
}

#[test]
fn ipam_result_parsing_never_panics() {
    let seeds = corpus_dir("cni-result");
    let (mut rng, iterations) = settings("cni result");
    for _ in 0..iterations {
        let value = if rng.chance(4) {
            random_value(&mut rng, 4)
        } else {
            let seed = &seeds[rng.below(seeds.len())];
            let text = mutate_json(&mut rng, seed);
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        no_panic("IPAM result", &value.to_string(), || ipam_addresses(&value));
    }
}
