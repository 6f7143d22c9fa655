//! The config schema: every table and key of `/etc/dvms/dvms.toml`, its default and its doc.
//!
//! Defaults come from `dvms_agent::config::RawConfig::default()` (what the agent really uses);
//! the text comes from the doc comments of the raw config structs, read from their source with
//! `syn`. Both must agree key for key, and every key must be documented: anything else is an
//! error, so a key added to the agent without a doc fails `man --check` in CI.

use std::collections::HashMap;

use anyhow::{Context, bail};

/// Where the raw config structs live, relative to the workspace root.
pub(crate) const RAW_CONFIG_SOURCE: &str = "agent/daemon/src/config/raw.rs";

/// The root struct of the config file.
const ROOT: &str = "RawConfig";

/// Every table of the file, in file order (a table's keys, then its sub-tables).
#[derive(Debug)]
pub(crate) struct Schema {
    pub(crate) tables: Vec<Table>,
}

/// One `[table]`.
#[derive(Debug)]
pub(crate) struct Table {
    /// Dotted path, e.g. `actuator.lab`.
    pub(crate) path: String,
    /// Paragraphs of its documentation.
    pub(crate) doc: Vec<String>,
    pub(crate) keys: Vec<Key>,
}

/// One key of a table.
#[derive(Debug)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) doc: Vec<String>,
    pub(crate) default: toml::Value,
}

/// A struct of the source: its fields in order.
struct StructDef {
    fields: Vec<FieldDef>,
}

struct FieldDef {
    name: String,
    doc: Vec<String>,
    /// Last path segment of the field's type (`RawLab`, `String`, `Vec`...).
    type_name: String,
}

impl Schema {
    /// Builds the schema from the source text of [`RAW_CONFIG_SOURCE`].
    pub(crate) fn from_source(source: &str) -> anyhow::Result<Schema> {
        let file = syn::parse_file(source).context("cannot parse the config source")?;
        let structs = collect_structs(&file);
        let defaults = toml::Value::try_from(dvms_agent::config::RawConfig::default())
            .context("cannot serialise RawConfig::default()")?;
        let toml::Value::Table(defaults) = defaults else {
            bail!("RawConfig::default() does not serialise to a table");
        };
        let mut tables = Vec::new();
        walk(&structs, ROOT, "", Vec::new(), &defaults, &mut tables)?;
        Ok(Schema { tables })
    }
}

fn collect_structs(file: &syn::File) -> HashMap<String, StructDef> {
    let mut out = HashMap::new();
    for item in &file.items {
        let syn::Item::Struct(s) = item else { continue };
        let syn::Fields::Named(named) = &s.fields else {
            continue;
        };
        let fields = named
            .named
            .iter()
            .filter_map(|f| {
                let name = f.ident.as_ref()?.to_string();
                Some(FieldDef {
                    name,
                    doc: doc_paragraphs(&f.attrs),
                    type_name: type_name(&f.ty),
                })
            })
            .collect();
        out.insert(s.ident.to_string(), StructDef { fields });
    }
    out
}

/// Walks struct `name` at dotted `path`, pushing its table then its sub-tables.
fn walk(
    structs: &HashMap<String, StructDef>,
    name: &str,
    path: &str,
    doc: Vec<String>,
    defaults: &toml::Table,
    tables: &mut Vec<Table>,
) -> anyhow::Result<()> {
    let Some(def) = structs.get(name) else {
        bail!("struct {name} not found in {RAW_CONFIG_SOURCE}");
    };
    let here = tables.len();
    tables.push(Table {
        path: path.to_owned(),
        doc,
        keys: Vec::new(),
    });
    let mut subtables = Vec::new();
    for field in &def.fields {
        let dotted = if path.is_empty() {
            field.name.clone()
        } else {
            format!("{path}.{}", field.name)
        };
        if field.doc.is_empty() {
            bail!("config key {dotted} has no doc comment in {RAW_CONFIG_SOURCE}");
        }
        let Some(default) = defaults.get(&field.name) else {
            bail!("config key {dotted} is missing from RawConfig::default() (renamed or skipped?)");
        };
        if structs.contains_key(&field.type_name) {
            let toml::Value::Table(sub) = default else {
                bail!("config table {dotted} does not serialise to a table");
            };
            subtables.push((field, dotted, sub));
        } else {
            tables[here].keys.push(Key {
                name: field.name.clone(),
                doc: field.doc.clone(),
                default: default.clone(),
            });
        }
    }
    for key in defaults.keys() {
        if !def.fields.iter().any(|f| &f.name == key) {
            bail!("RawConfig::default() has key {key} under [{path}] that {name} does not declare");
        }
    }
    for (field, dotted, sub) in subtables {
        walk(
            structs,
            &field.type_name,
            &dotted,
            field.doc.clone(),
            sub,
            tables,
        )?;
    }
    Ok(())
}

/// The doc comment as paragraphs (blank comment lines separate them).
fn doc_paragraphs(attrs: &[syn::Attribute]) -> Vec<String> {
    let mut paragraphs = Vec::new();
    let mut current = String::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        let syn::Meta::NameValue(nv) = &attr.meta else {
            continue;
        };
        let syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) = &nv.value
        else {
            continue;
        };
        let line = s.value();
        let line = line.trim();
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

fn type_name(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .map(|s| s.ident.to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docs_nested_tables_and_refuses_undocumented_keys() {
        let schema = Schema::from_source(
            &std::fs::read_to_string(format!(
                "{}/../../{RAW_CONFIG_SOURCE}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        let paths: Vec<&str> = schema.tables.iter().map(|t| t.path.as_str()).collect();
        assert_eq!(paths[0], "");
        assert!(
            paths.contains(&"node") && paths.contains(&"actuator.lab"),
            "{paths:?}"
        );
        let actuator = paths.iter().position(|p| *p == "actuator").unwrap();
        let lab = paths.iter().position(|p| *p == "actuator.lab").unwrap();
        assert!(actuator < lab, "a table comes before its sub-table");
        let node = schema.tables.iter().find(|t| t.path == "node").unwrap();
        let state_dir = node.keys.iter().find(|k| k.name == "state_dir").unwrap();
        assert_eq!(
            state_dir.default,
            toml::Value::String("/var/lib/dvms".into())
        );
        assert!(!state_dir.doc.is_empty());

        let undocumented = "pub struct RawConfig { pub node: RawNode }\n\
                            pub struct RawNode { pub name: String }";
        let err = Schema::from_source(undocumented).unwrap_err().to_string();
        assert!(err.contains("node has no doc comment"), "{err}");
    }
}
