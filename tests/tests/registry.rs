//! The registry: every built-in name resolves, unknown names list the valid ones.

use siren_core::registry::{self, build};
use siren_core::traits::{ComputeDevice, RatingBaseline, TopicClusterer};
use siren_plugins as _;

#[test]
fn every_built_in_name_resolves() {
    let slots = registry::all_slots().expect("no duplicate names");
    let mut expected: Vec<(&str, Vec<&str>)> = siren_plugins::BUILT_IN
        .iter()
        .map(|(s, names)| (*s, names.to_vec()))
        .collect();
    let mut devices = vec!["auto", "flex"];
    if cfg!(feature = "wgpu") {
        devices.push("wgpu");
    }
    if cfg!(feature = "tch") {
        devices.extend(["tch-cpu", "tch-cuda"]);
    }
    // The backends crate registers devices; make sure it is linked.
    assert!(siren_backends::compiled_in().contains(&"flex"));
    expected.push(("device", devices));
    for (slot, names) in expected {
        let info = slots
            .iter()
            .find(|s| s.slot == slot)
            .unwrap_or_else(|| panic!("slot {slot} missing"));
        let got: Vec<&str> = info.plugins.iter().map(|p| p.name).collect();
        for n in names {
            assert!(got.contains(&n), "{slot} `{n}` not linked; have {got:?}");
        }
    }
}

#[test]
fn all_slots_are_declared() {
    let slots: Vec<&str> = registry::all_slots()
        .unwrap()
        .iter()
        .map(|s| s.slot)
        .collect();
    for s in [
        "device",
        "dataset",
        "rating-baseline",
        "text-encoder",
        "topic-clusterer",
        "topic-namer",
        "sketch-builder",
        "backbone",
        "lora-targets",
        "reward",
        "policy-trainer",
        "internalizer",
        "alignment-loss",
    ] {
        assert!(slots.contains(&s), "slot {s} not declared");
    }
}

#[test]
fn unknown_names_list_the_valid_ones() {
    let e = build::<dyn RatingBaseline>("median", &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        e,
        "unknown rating-baseline `median`; valid names: baseline-only, constant, global-mean, \
         item-avg, mf, user-avg"
    );
    let e = build::<dyn TopicClusterer>("dbscan", &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("unknown topic-clusterer `dbscan`; valid names:"),
        "{e}"
    );
    let e = build::<dyn ComputeDevice>("tpu", &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("auto, flex"), "{e}");
}

#[test]
fn unknown_params_name_the_key_and_slot() {
    let params: toml::Table = toml::from_str("factorz = 8").unwrap();
    let e = build::<dyn RatingBaseline>("mf", &params)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("rating-baseline `mf`"), "{e}");
    assert!(e.contains("unknown field `factorz`"), "{e}");
}

#[test]
fn device_specs_take_an_index() {
    let (name, params) = siren_backends::parse_spec("tch-cuda:1").unwrap();
    assert_eq!(name, "tch-cuda");
    assert_eq!(params["index"].as_integer(), Some(1));
    assert!(siren_backends::parse_spec("wgpu:x").is_err());
    let e = siren_backends::open("flex:1").err().unwrap().to_string();
    assert!(e.contains("unknown field `index`"), "{e}");
}

#[test]
fn rewards_meet_the_contract() {
    use siren_core::traits::Reward;
    for name in ["regression", "binary"] {
        let r = siren_core::registry::build::<dyn Reward>(name, &Default::default()).unwrap();
        siren_core::testkit::reward_contract(r.as_ref()).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn stages_pass_the_run_device_to_plugins_that_take_one() {
    use siren_core::registry::build_on;
    use siren_core::traits::TextEncoder;
    // The tiny BERT fixture has weights but no tokenizer: loading opens the device first.
    let dir = siren_tests::repo_root().join("tests/fixtures/encoders/bert");
    let mut params = siren_core::config::Params::new();
    params.insert("model".into(), dir.display().to_string().into());
    let encode = |p: &siren_core::config::Params, run_device: &str| {
        build_on::<dyn TextEncoder>("bert", p, run_device)
            .unwrap()
            .encode(&["x".into()])
            .unwrap_err()
            .to_string()
    };
    // `bert` takes a device: it gets the run's...
    let e = encode(&params, "no-such-device");
    assert!(e.contains("no-such-device"), "{e}");
    // ...unless its params name one.
    params.insert("device".into(), "flex".into());
    let e = encode(&params, "no-such-device");
    assert!(
        !e.contains("no-such-device") && e.contains("tokenizer.json"),
        "{e}"
    );
    // `hashing` has no device param: nothing is added (it would be an unknown key).
    let none = siren_core::config::Params::new();
    build_on::<dyn TextEncoder>("hashing", &none, "flex").unwrap();
}
