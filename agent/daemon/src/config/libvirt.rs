//! `[actuator.libvirt]`, validated: the settings of the libvirt actuator.
//!
//! The values become fields of `dvms-libvirt`'s `migrate` request (docs/libvirt.md), so they
//! are checked here with the request's own rules ([`dvms_libvirt::protocol::Request::validate`]):
//! a config `dvmsd check-config` accepts never yields a request `dvms-libvirt` refuses.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use dvms_libvirt::protocol::{Destination, Request, RequestError, VERSION};

use super::{ConfigError, RawLibvirt};

/// Most entries accepted in `actuator.libvirt.addresses`.
pub(crate) const MAX_ADDRESSES: usize = 4096;

/// The libvirt actuator's validated settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LibvirtSettings {
    /// `actuator.libvirt.binary`.
    pub binary: PathBuf,
    /// `actuator.libvirt.connect`.
    pub connect: String,
    /// `actuator.libvirt.dest_uri`.
    pub dest_uri: String,
    /// `actuator.libvirt.migrate_uri`; `None` when empty.
    pub migrate_uri: Option<String>,
    /// `actuator.libvirt.addresses`: node name to address.
    pub addresses: BTreeMap<String, String>,
    /// `actuator.libvirt.bandwidth_mib_s`; `None` when 0.
    pub bandwidth_mib_s: Option<u64>,
    /// `actuator.libvirt.max_downtime_ms`; `None` when 0.
    pub max_downtime_ms: Option<u64>,
    /// `actuator.libvirt.timeout`.
    pub timeout: Duration,
    /// `actuator.libvirt.allow_unsafe`.
    pub allow_unsafe: bool,
    /// `actuator.libvirt.inventory_period`.
    pub inventory_period: Duration,
}

impl LibvirtSettings {
    /// The address of destination `name`: its `addresses` entry, else the name itself.
    pub fn address_of<'a>(&'a self, name: &'a str) -> &'a str {
        self.addresses.get(name).map_or(name, String::as_str)
    }

    /// The `migrate` request for `vm` to destination `to`, with `timeout` (already the shorter
    /// of this section's and the protocol's).
    pub fn migrate_request(&self, vm: &str, to: &str, timeout: Duration) -> Request {
        let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        Request::Migrate {
            version: VERSION,
            connect: self.connect.clone(),
            vm: vm.to_owned(),
            destination: Destination {
                name: to.to_owned(),
                address: self.address_of(to).to_owned(),
            },
            dest_uri_template: self.dest_uri.clone(),
            migrate_uri_template: self.migrate_uri.clone(),
            bandwidth_mib_s: self.bandwidth_mib_s,
            max_downtime_ms: self.max_downtime_ms,
            timeout_ms: timeout_ms.clamp(
                dvms_libvirt::protocol::MIN_TIMEOUT_MS,
                dvms_libvirt::protocol::MAX_TIMEOUT_MS,
            ),
            allow_unsafe: self.allow_unsafe,
        }
    }

    /// Validates `[actuator.libvirt]`; `duration` parses a duration key within bounds.
    pub(crate) fn from_raw(
        raw: &RawLibvirt,
        duration: impl Fn(&str, &str, Duration, Duration) -> Result<Duration, ConfigError>,
    ) -> Result<LibvirtSettings, ConfigError> {
        let key = |k: &str| format!("actuator.libvirt.{k}");
        if !raw.binary.starts_with('/') {
            return Err(ConfigError::invalid(
                &key("binary"),
                &raw.binary,
                "an absolute path",
            ));
        }
        if raw.addresses.len() > MAX_ADDRESSES {
            return Err(ConfigError::invalid(
                &key("addresses"),
                format!("{} entries", raw.addresses.len()),
                format!("at most {MAX_ADDRESSES} entries"),
            ));
        }
        let mut addresses = BTreeMap::new();
        for entry in &raw.addresses {
            let (name, address) = entry.split_once('=').ok_or_else(|| {
                ConfigError::invalid(
                    &key("addresses"),
                    entry,
                    "name=address entries such as h01=192.0.2.1",
                )
            })?;
            let (name, address) = (name.trim(), address.trim());
            if !super::typed_valid_name(name) || addresses.contains_key(name) {
                return Err(ConfigError::invalid(
                    &key("addresses"),
                    entry,
                    "a valid node name, listed once, before the =",
                ));
            }
            addresses.insert(name.to_owned(), address.to_owned());
        }
        let ms = Duration::from_millis;
        let settings = LibvirtSettings {
            binary: PathBuf::from(&raw.binary),
            connect: raw.connect.clone(),
            dest_uri: raw.dest_uri.clone(),
            migrate_uri: (!raw.migrate_uri.is_empty()).then(|| raw.migrate_uri.clone()),
            addresses,
            bandwidth_mib_s: (raw.bandwidth_mib_s != 0).then_some(raw.bandwidth_mib_s),
            max_downtime_ms: (raw.max_downtime_ms != 0).then_some(raw.max_downtime_ms),
            timeout: duration(&key("timeout"), &raw.timeout, ms(1000), ms(86_400_000))?,
            allow_unsafe: raw.allow_unsafe,
            inventory_period: duration(
                &key("inventory_period"),
                &raw.inventory_period,
                ms(100),
                ms(3_600_000),
            )?,
        };
        // Every destination gives a request dvms-libvirt accepts (a sample one when none is
        // listed): the request's own checks name the field, mapped back to the key here.
        let mut names: Vec<&str> = settings.addresses.keys().map(String::as_str).collect();
        if names.is_empty() {
            names.push("h00");
        }
        for name in names {
            let req = settings.migrate_request("vm", name, settings.timeout);
            if let Err(e) = req.validate() {
                let (k, value) = match &e {
                    RequestError::Field { field, .. } => match *field {
                        "connect" => ("connect", raw.connect.clone()),
                        "dest_uri_template" => ("dest_uri", raw.dest_uri.clone()),
                        "migrate_uri_template" => ("migrate_uri", raw.migrate_uri.clone()),
                        "bandwidth_mib_s" => ("bandwidth_mib_s", raw.bandwidth_mib_s.to_string()),
                        "max_downtime_ms" => ("max_downtime_ms", raw.max_downtime_ms.to_string()),
                        "destination.address" => {
                            ("addresses", settings.address_of(name).to_owned())
                        }
                        _ => ("addresses", name.to_owned()),
                    },
                    _ => ("connect", raw.connect.clone()),
                };
                return Err(ConfigError::invalid(&key(k), value, e));
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dur(key: &str, text: &str, min: Duration, max: Duration) -> Result<Duration, ConfigError> {
        let d = humantime::parse_duration(text)
            .map_err(|_| ConfigError::invalid(key, text, "duration"))?;
        if d < min || d > max {
            return Err(ConfigError::invalid(key, text, "range"));
        }
        Ok(d)
    }

    fn key_of(e: ConfigError) -> String {
        match e {
            ConfigError::Invalid { key, .. } => key,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn defaults_are_valid_and_fill_a_valid_request() {
        let s = LibvirtSettings::from_raw(&RawLibvirt::default(), dur).unwrap();
        assert_eq!(s.bandwidth_mib_s, None);
        assert_eq!(s.migrate_uri, None);
        let req = s.migrate_request("vm-1", "h01", Duration::from_secs(30));
        assert_eq!(req.validate(), Ok(()));
        let text = serde_json::to_value(&req).unwrap();
        assert_eq!(text["destination"]["address"], "h01");
        assert_eq!(text["timeout_ms"], 30_000);
    }

    #[test]
    fn addresses_map_destinations_and_bad_values_name_their_key() {
        let raw = RawLibvirt {
            addresses: vec!["h01=169.254.107.2".into(), "h02 = host2.example".into()],
            bandwidth_mib_s: 100,
            migrate_uri: "tcp://{address}".into(),
            ..RawLibvirt::default()
        };
        let s = LibvirtSettings::from_raw(&raw, dur).unwrap();
        assert_eq!(s.address_of("h01"), "169.254.107.2");
        assert_eq!(s.address_of("h02"), "host2.example");
        assert_eq!(s.address_of("h03"), "h03");
        let bad = [
            RawLibvirt {
                addresses: vec!["h01".into()],
                ..RawLibvirt::default()
            },
            RawLibvirt {
                addresses: vec!["h01=a b".into()],
                ..RawLibvirt::default()
            },
            RawLibvirt {
                addresses: vec!["h01=1.2.3.4".into(), "h01=1.2.3.5".into()],
                ..RawLibvirt::default()
            },
        ];
        for raw in bad {
            assert_eq!(
                key_of(LibvirtSettings::from_raw(&raw, dur).unwrap_err()),
                "actuator.libvirt.addresses"
            );
        }
        let cases = [
            (
                RawLibvirt {
                    dest_uri: "qemu+tcp://{port}/system".into(),
                    ..RawLibvirt::default()
                },
                "actuator.libvirt.dest_uri",
            ),
            (
                RawLibvirt {
                    bandwidth_mib_s: 2_000_000,
                    ..RawLibvirt::default()
                },
                "actuator.libvirt.bandwidth_mib_s",
            ),
            (
                RawLibvirt {
                    binary: "dvms-libvirt".into(),
                    ..RawLibvirt::default()
                },
                "actuator.libvirt.binary",
            ),
            (
                RawLibvirt {
                    timeout: "10ms".into(),
                    ..RawLibvirt::default()
                },
                "actuator.libvirt.timeout",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(
                key_of(LibvirtSettings::from_raw(&raw, dur).unwrap_err()),
                want
            );
        }
    }
}
