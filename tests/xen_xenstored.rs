//! hvmlite's xenstore domain (`apps/xenstored`) on the real Xen 4.17
//! host, started as Xen's tools start one (`init-xenstore-domain`):
//! Xen's own `test-xenstore` against it, the usual guests served by it,
//! domains coming and going with nothing left behind, and hostile guests
//! refused while the others are served.

mod common;
use common::xen_host::{self, Scenario, Xenstore};
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(400);

fn xs_domain() -> Xenstore {
    Xenstore::domain(&app("xenstored"), 4)
}

/// Every test of test-xenstore, then its random mode for 60 s.
#[test]
fn test_xenstore_passes_against_the_xenstore_domain() {
    let s = Scenario::new(
        r#"test-xenstore -l
test-xenstore > /tmp/tx.out 2>&1
echo "test-xenstore rc=$?"
cat /tmp/tx.out
test-xenstore -r 60 > /tmp/txr.out 2>&1
echo "test-xenstore -r 60 rc=$?"
tail -n 20 /tmp/txr.out
"#,
    )
    .xenstore(xs_domain());
    let r = xen_host::run("xsd-test-xenstore", &s, T);
    let d = r.dump();
    assert_eq!(r.rc, Some(0), "{d}");
    let sc = r.scenario();
    assert!(sc.contains(&"test-xenstore rc=0"), "{d}");
    assert!(sc.contains(&"test-xenstore -r 60 rc=0"), "{d}");
}
