//! The example clusterer meets the `topic-clusterer` contract and resolves by name, next to the
//! built-in plugins, in a binary that links it.
use my_clusterer as _;
use siren_cli as _; // links the built-in plugins, as the `my-siren` binary does
use siren_core::registry::build;
use siren_core::traits::TopicClusterer;

#[test]
fn farthest_first_passes_the_contract_and_resolves_by_name() {
    let c = build::<dyn TopicClusterer>("example.farthest-first", &Default::default()).unwrap();
    siren_core::testkit::clusterer_contract(c.as_ref()).unwrap();
    assert!(build::<dyn TopicClusterer>("kmeans", &Default::default()).is_ok(), "built-ins are linked too");
}
