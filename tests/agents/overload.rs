//! Overloads are resolved by real agents migrating through the lab.

use std::time::Duration;

use dvms_testkit::{Lab, LabSpec, serial};

/// h00 runs 6 busy VMs on 4 cores (5.4 cores of demand); the 7 other hosts are light. The
/// agents must move VMs off h00 until no host is overloaded, losing and duplicating none.
#[test]
fn overload_is_resolved_without_losing_a_vm() {
    let _one = serial();
    let mut lab = Lab::new(LabSpec::default());
    for v in 0..6 {
        lab.add_vm(0, &format!("vm-00{v:02}"), 1, 1024, 900);
    }
    for h in 1..8 {
        for v in 0..3 {
            lab.add_vm(h, &format!("vm-{h:02}{v:02}"), 1, 1024, 300);
        }
    }
    lab.start_all();
    assert_eq!(lab.overloaded(), vec!["h00".to_string()]);
    lab.wait("no host overloaded", Duration::from_secs(180), |lab| {
        lab.overloaded().is_empty().then_some(())
    });
    let audit = lab.hv.audit().expect("audit");
    assert!(
        audit.lost.is_empty() && audit.duplicated.is_empty(),
        "{audit:?}"
    );
    // The fix was the agents' doing: h00's agent ran migrations that succeeded.
    let s = lab.agents[0].status().expect("h00 answers");
    assert!(s.stats.migrations_ok >= 1, "{s:?}");
    // Every VM is accounted for exactly once.
    let total: usize = lab.hv.hosts().iter().map(|h| h.vms).sum();
    assert_eq!(total, 6 + 7 * 3);
}
