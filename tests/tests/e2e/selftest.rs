//! `motcua selftest`, as a technician runs it on a fresh box.

use motcua_e2e::run;

#[test]
fn selftest_passes_every_step() {
    let r = run("motcua", ["selftest", "--records", "200"]);
    assert!(r.ok, "{r:?}");
    assert!(!r.stdout.contains("FAIL"), "{r:?}");
    assert!(r.stdout.contains("selftest: 6 of 6 steps passed"), "{r:?}");
    assert!(r.stdout.contains("200 envelopes"), "{r:?}");
}
