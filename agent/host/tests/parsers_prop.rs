//! The parsers never panic on arbitrary input (files are read while the kernel or the lab
//! rewrites them), and names survive libvirt's and systemd's encodings.

use dvms_host::names::{
    machine_name, parse_machine_dir, parse_qemu_args, scope_dir_name, unescape_unit,
};
use dvms_host::parse;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(text in "\\PC{0,200}") {
        let _ = parse::parse_cpu_stat_usage_usec(&text);
        let _ = parse::parse_single(&text, "x");
        let _ = parse::parse_keyed(&text, "inactive_file");
        let _ = parse::parse_schedstat(&text);
        let _ = parse::parse_psi(&text);
        let _ = parse::parse_cpu_list_count(&text);
        let _ = parse::parse_cpu_max_milli(&text);
        let _ = parse::parse_meminfo_kb(&text, "MemTotal");
        let _ = parse::first_pid(&text);
        let _ = parse_machine_dir(&text);
        let _ = unescape_unit(&text);
        let args: Vec<&str> = text.split(' ').collect();
        let _ = parse_qemu_args(&args);
    }

    #[test]
    fn kernel_shaped_lines_cut_anywhere_are_rejected_or_exact(
        usage in 0u64..u64::MAX / 2,
        cut in 0usize..40,
    ) {
        let full = format!("usage_usec {usage}\nuser_usec 1\nsystem_usec 2\n");
        let cut = cut.min(full.len());
        // A prefix of the file either lacks the line or has it whole: never a smaller value.
        if let Ok(v) = parse::parse_cpu_stat_usage_usec(&full[..cut]) {
            prop_assert_eq!(v, usage);
        }
    }

    #[test]
    fn scope_names_decode_to_the_machine_name(id in 0u32..100_000, name in "[ -~]{1,80}") {
        let machine = machine_name(id, &name);
        let dir = scope_dir_name(id, &name);
        let parsed = parse_machine_dir(&dir);
        if machine.len() > format!("qemu-{id}-").len() {
            let p = parsed.unwrap();
            prop_assert_eq!(p.id, id);
            prop_assert_eq!(format!("qemu-{id}-{}", p.name), machine);
        } else {
            // Nothing of the name survived libvirt's sanitising.
            prop_assert!(parsed.is_none());
        }
    }
}
