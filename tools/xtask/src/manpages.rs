//! dvmsd(8) and dvmsctl(8) from the clap definitions (clap_mangen plus a section per
//! subcommand), and dvms.toml(5) from the config schema.

use roff::{Inline, Roff, bold, italic, roman};

use crate::schema::Schema;

/// The journal fields dvmsd's entries carry (tracing-journald: event fields upper-cased and
/// prefixed `F_`), from the `tracing` calls in agent/daemon/src. packaging/journald-test.sh
/// queries F_VM, F_EVENT and F_NODE against a real journald.
pub(crate) const JOURNAL_FIELDS: &[(&str, &str)] = &[
    (
        "F_EVENT",
        "what happened, a fixed name: vm_seen, vm_gone, event_started, plan_chosen, \
         migration_started, migration_done, migration_failed, dissolved, ...",
    ),
    ("F_VM", "the VM an entry is about (its libvirt domain name)"),
    (
        "F_NODE",
        "this host's node name (start-up and ready entries)",
    ),
    ("F_PARTITION", "the partition an entry belongs to"),
    ("F_MIGRATION", "a migration's id"),
    (
        "F_FROM, F_TO",
        "the source and destination hosts of a migration, by node name",
    ),
    ("F_PEER", "another agent's libp2p identity"),
    (
        "F_REASON",
        "why a migration or an event was refused, failed or ended",
    ),
    (
        "F_ERROR",
        "the error of a failed operation, with its causes",
    ),
];

/// dvmsd(8).
pub(crate) fn dvmsd(cmd: clap::Command, version: &str) -> anyhow::Result<String> {
    let mut out = clap_sections(cmd.clone(), version)?;
    let mut page = Roff::new();
    subcommands(&mut page, &cmd);
    section(&mut page, "CONFIGURATION");
    para(
        &mut page,
        "The agent reads one TOML file, `/etc/dvms/dvms.toml` unless --config names another; \
         dvms.toml(5) lists every key. `dvmsd check-config` validates it (the systemd unit runs \
         it before every start). The cluster key file it names must be readable by its owner \
         only: hosts share one cluster key and cannot connect without it.",
    );
    section(&mut page, "LOGGING");
    para(
        &mut page,
        "Logs go to systemd's journal with structured fields when `DVMS_LOG_FORMAT` is \
         `journald`, or `auto` (the default) and `JOURNAL_STREAM` is set, as under the dvmsd \
         unit; otherwise they are plain text on standard error (`plain`) or one JSON object per \
         line (`json`). `DVMS_LOG` sets the filter, default `info,libp2p=warn`. In the journal, \
         the entries have SYSLOG_IDENTIFIER=dvmsd and each event field upper-cased and \
         prefixed with `F_`:",
    );
    for (field, meaning) in JOURNAL_FIELDS {
        page.control("TP", [])
            .text([bold(*field)])
            .text([roman(*meaning)]);
    }
    para(
        &mut page,
        "For example, every decision about one VM: `journalctl -u dvmsd F_VM=vm-0042`; \
         everything one partition did: `journalctl -u dvmsd F_PARTITION=...`.",
    );
    section(&mut page, "ENVIRONMENT");
    for (var, meaning) in [
        (
            "DVMS_LOG",
            "log filter in tracing's EnvFilter syntax (default info,libp2p=warn)",
        ),
        (
            "DVMS_LOG_FORMAT",
            "auto, journald, plain or json (default auto)",
        ),
        (
            "NOTIFY_SOCKET",
            "set by systemd: dvmsd reports READY=1 there once it is up",
        ),
    ] {
        page.control("TP", [])
            .text([bold(var)])
            .text([roman(meaning)]);
    }
    section(&mut page, "FILES");
    for (file, meaning) in [
        (
            "/etc/dvms/dvms.toml",
            "the configuration (a conffile of the dvms package)",
        ),
        (
            "/etc/dvms/cluster.key",
            "the cluster's pre-shared key, mode 0600",
        ),
        (
            "/var/lib/dvms/overlay-identity.key",
            "this host's overlay identity, mode 0600",
        ),
        (
            "/run/dvms/control.sock",
            "the control socket dvmsctl(8) talks to",
        ),
    ] {
        page.control("TP", [])
            .text([italic(file)])
            .text([roman(meaning)]);
    }
    section(&mut page, "EXIT STATUS");
    for (code, meaning) in [
        ("0", "success"),
        ("1", "a runtime failure"),
        ("64", "a usage error on the command line"),
        ("69", "a service the agent needs is unavailable"),
        (
            "78",
            "the configuration (or the cluster key file) is invalid; the message names the key",
        ),
    ] {
        page.control("TP", [])
            .text([bold(code)])
            .text([roman(meaning)]);
    }
    section(&mut page, "SEE ALSO");
    page.text([roman(
        "dvmsctl(8), dvms.toml(5), systemd.exec(5), journalctl(1)",
    )]);
    out.push_str(&body(&page));
    Ok(out)
}

/// dvmsctl(8).
pub(crate) fn dvmsctl(cmd: clap::Command, version: &str) -> anyhow::Result<String> {
    let mut out = clap_sections(cmd.clone(), version)?;
    let mut page = Roff::new();
    subcommands(&mut page, &cmd);
    section(&mut page, "EXIT STATUS");
    for (code, meaning) in [
        ("0", "success"),
        (
            "1",
            "the agent refused the request, or answered something unreadable",
        ),
        ("64", "a usage error on the command line"),
        (
            "69",
            "the agent is not running (its control socket does not answer)",
        ),
    ] {
        page.control("TP", [])
            .text([bold(code)])
            .text([roman(meaning)]);
    }
    section(&mut page, "FILES");
    page.control("TP", [])
        .text([italic("/run/dvms/control.sock")])
        .text([roman(
            "the agent's control socket (control.socket in dvms.toml(5))",
        )]);
    section(&mut page, "SEE ALSO");
    page.text([roman("dvmsd(8), dvms.toml(5)")]);
    out.push_str(&body(&page));
    Ok(out)
}

/// The sections clap_mangen renders (title, name, synopsis, options) and the description.
///
/// clap_mangen's own description would show the doc comment's `code` spans with their
/// backticks, and its subcommands section points at per-subcommand pages (`dvmsd-run(8)`) that
/// are not shipped: the description is rendered here and the subcommands go in COMMANDS.
fn clap_sections(cmd: clap::Command, version: &str) -> anyhow::Result<String> {
    let name = cmd.get_name().to_owned();
    // `about` repeats the program name ("dvmsd: the agent..."); NAME already shows it.
    let about = cmd.get_about().map(ToString::to_string).unwrap_or_default();
    let about = about
        .strip_prefix(&format!("{name}: "))
        .unwrap_or(&about)
        .to_owned();
    let long_about = cmd.get_long_about().map(ToString::to_string);
    let man = clap_mangen::Man::new(cmd.about(about))
        .section("8")
        .manual("System Administration")
        .source(format!("dvms {version}"));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    let mut description = Roff::new();
    if let Some(long_about) = long_about {
        section(&mut description, "DESCRIPTION");
        for paragraph in long_about
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            para(&mut description, paragraph);
        }
    }
    out.extend_from_slice(body(&description).as_bytes());
    man.render_options_section(&mut out)?;
    Ok(String::from_utf8(out)?)
}

/// One sub-section per subcommand: its description and its own options.
fn subcommands(page: &mut Roff, cmd: &clap::Command) {
    let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
    if subs.is_empty() {
        return;
    }
    section(page, "COMMANDS");
    for sub in subs {
        let name = format!("{} {}", cmd.get_name(), sub.get_name());
        page.control("SS", [name.as_str()]);
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            para(page, &about.to_string());
        }
        for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let mut head: Vec<Inline> = Vec::new();
            if let Some(long) = arg.get_long() {
                head.push(bold(format!("--{long}")));
            } else if let Some(short) = arg.get_short() {
                head.push(bold(format!("-{short}")));
            }
            if arg.get_action().takes_values() {
                let value = arg
                    .get_value_names()
                    .and_then(|v| v.first())
                    .map_or_else(|| id.to_uppercase(), ToString::to_string);
                if !head.is_empty() {
                    head.push(roman(" "));
                }
                head.push(italic(value));
            }
            page.control("TP", []).text(head);
            if let Some(help) = arg.get_long_help().or_else(|| arg.get_help()) {
                page.text(inline_code(&help.to_string()));
            }
        }
    }
}

/// dvms.toml(5).
pub(crate) fn config(schema: &Schema, version: &str) -> String {
    let source = format!("dvms {version}");
    let mut page = Roff::new();
    page.control(
        "TH",
        ["DVMS.TOML", "5", "", source.as_str(), "File Formats"],
    );
    section(&mut page, "NAME");
    page.text([roman(
        "dvms.toml - configuration file of dvmsd, the DVMS agent",
    )]);
    section(&mut page, "SYNOPSIS");
    page.text([italic("/etc/dvms/dvms.toml")]);
    section(&mut page, "DESCRIPTION");
    para(
        &mut page,
        "A TOML file read once at start by dvmsd(8). Every key is optional and has the default \
         shown below; the file shipped by the package lists every key commented out with its \
         default. Unknown keys are refused. Durations are written like `500ms`, `10s` or `2m`. \
         `dvmsd check-config` validates the file and the cluster key file it names, and exits \
         with status 78 naming the first bad key.",
    );
    for table in &schema.tables {
        if table.path.is_empty() {
            if table.keys.is_empty() {
                continue;
            }
            section(&mut page, "TOP-LEVEL KEYS");
        } else {
            section(&mut page, &format!("[{}]", table.path));
            for paragraph in &table.doc {
                para(&mut page, paragraph);
            }
        }
        for key in &table.keys {
            page.control("TP", []).text([
                bold(key.name.clone()),
                roman(" = "),
                italic(key.default.to_string()),
            ]);
            for (i, paragraph) in key.doc.iter().enumerate() {
                if i > 0 {
                    page.control("IP", []);
                }
                page.text(inline_code(paragraph));
            }
        }
    }
    section(&mut page, "EXAMPLE");
    para(&mut page, "A host joining a cluster through two others:");
    page.control("nf", []).control("RS", ["4"]);
    for line in [
        "[node]",
        "name = \"hv-017\"",
        "",
        "[overlay]",
        "listen = \"/ip4/0.0.0.0/tcp/7946\"",
        "bootstrap = [\"/ip4/198.51.100.10/tcp/7946\", \"/ip4/198.51.100.11/tcp/7946\"]",
        "site = 1",
        "rack = 4",
    ] {
        page.text([roman(line)]);
    }
    page.control("RE", []).control("fi", []);
    section(&mut page, "FILES");
    page.control("TP", [])
        .text([italic("/etc/dvms/dvms.toml")])
        .text([roman("the file read by the dvmsd unit")]);
    section(&mut page, "SEE ALSO");
    page.text([roman("dvmsd(8), dvmsctl(8)")]);
    page.render()
}

/// The page's lines without the preamble that [`Roff::render`] puts first (clap_mangen's part
/// of the page already has it), apostrophes still rendered as such.
fn body(page: &Roff) -> String {
    let preamble = Roff::new().render();
    let text = page.render();
    text.strip_prefix(preamble.as_str())
        .map_or(text.clone(), str::to_owned)
}

fn section(page: &mut Roff, title: &str) {
    page.control("SH", [title]);
}

/// A paragraph whose `code` spans are set in bold.
fn para(page: &mut Roff, text: &str) {
    page.control("PP", []).text(inline_code(text));
}

/// Text with `code` spans in bold.
fn inline_code(text: &str) -> Vec<Inline> {
    text.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(i, part)| if i % 2 == 1 { bold(part) } else { roman(part) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_code_bolds_the_spans_between_backticks() {
        let parts = inline_code("run `dvmsd check-config` first");
        assert_eq!(
            parts,
            vec![roman("run "), bold("dvmsd check-config"), roman(" first")]
        );
    }
}
