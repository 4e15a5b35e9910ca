//! The SDL at the root never drifts from the code.

#[test]
fn schema_graphql_is_what_the_code_defines() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).expect("schema.graphql exists");
    let generated = concierge::graphql::sdl();
    assert!(committed == generated, "schema.graphql is stale: run `cargo run -- schema > schema.graphql` and commit it");
}

#[test]
fn the_binary_prints_the_same_schema() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_concierge")).arg("schema").output().expect("binary runs");
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), concierge::graphql::sdl());
}
