//! The commented conffile `/etc/dvms/dvms.toml`: every table, every key commented out with its
//! default and its documentation.

use std::fmt::Write;

use crate::schema::Schema;

/// Width of the comment text.
const WIDTH: usize = 88;

/// Renders the conffile. Uncommenting any line gives back the default, so the file as shipped
/// and every single-key edit of it are valid configs.
pub(crate) fn render(schema: &Schema) -> String {
    let mut out = String::from(
        "# /etc/dvms/dvms.toml: the configuration of dvmsd, the DVMS agent of this host.\n\
         #\n\
         # Every key is listed below with its default value, commented out: uncomment a key to\n\
         # change it. Unknown keys are refused. Before restarting the agent, check the file:\n\
         #     dvmsd check-config && systemctl restart dvmsd\n\
         # Reference: dvms.toml(5). Generated from the agent's config schema by\n\
         # `cargo run -p dvms-xtask -- man`; do not edit the copy in the source tree by hand.\n",
    );
    for table in &schema.tables {
        if table.path.is_empty() && table.keys.is_empty() {
            continue;
        }
        out.push('\n');
        if !table.path.is_empty() {
            comment(&mut out, &table.doc, "");
            let _ = writeln!(out, "[{}]", table.path);
        }
        for key in &table.keys {
            comment(&mut out, &key.doc, "");
            let _ = writeln!(out, "#{} = {}", key.name, key.default);
        }
    }
    out
}

/// Writes `paragraphs` as `# ` comment lines wrapped at [`WIDTH`].
fn comment(out: &mut String, paragraphs: &[String], indent: &str) {
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(out, "{indent}#");
        }
        for line in wrap(paragraph, WIDTH) {
            let _ = writeln!(out, "{indent}# {line}");
        }
    }
}

/// Greedy word wrap.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::RAW_CONFIG_SOURCE;

    fn schema() -> Schema {
        let path = format!("{}/../../{RAW_CONFIG_SOURCE}", env!("CARGO_MANIFEST_DIR"));
        Schema::from_source(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn shipped_file_is_the_default_config_and_uncommenting_every_key_too() {
        let text = render(&schema());
        let shipped = dvms_agent::config::parse(std::path::Path::new("dvms.toml"), &text).unwrap();
        assert_eq!(shipped, dvms_agent::config::RawConfig::default());

        let uncommented: String = text
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert_ne!(uncommented, text, "some key must have been uncommented");
        let all =
            dvms_agent::config::parse(std::path::Path::new("dvms.toml"), &uncommented).unwrap();
        assert_eq!(all, dvms_agent::config::RawConfig::default());
    }

    #[test]
    fn wrap_keeps_words_and_width() {
        let lines = wrap("aaa bbb ccc ddd", 7);
        assert_eq!(lines, ["aaa bbb", "ccc ddd"]);
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            ["averyveryverylongword", "x"]
        );
    }
}
