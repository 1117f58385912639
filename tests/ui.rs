//! Compile tests of `#[route_read]` and `#[route_write]`: what must compile
//! (`ui/pass`) and the errors for what must not (`ui/fail`, one case per file
//! with its `.stderr`). Regenerate the expected output with
//! `TRYBUILD=overwrite cargo test --test ui`, then read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
