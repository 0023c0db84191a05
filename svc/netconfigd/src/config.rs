//! netconfigd's inputs, read and validated once into runtime types:
//!
//! | file | format | strictness |
//! |---|---|---|
//! | `<perm>/interfaces.json` | router7's ([`runtime::perm::Interfaces`]) | unknown fields are warnings |
//! | `<perm>/portforwardings.json` | router7's `{"forwardings":[{proto,port,dest_addr,dest_port}]}` | unknown fields are warnings |
//! | `<perm>/netconfigd/config.json` | ours: [`ConfigFile`] (firewall openings) | unknown fields are errors |
//!
//! Every error names the file and where in it: line and column for JSON that
//! does not parse (or a field we do not know in our own file), the entry and
//! field (`forwardings[2].port`) for values that parse but make no sense.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use runtime::netif::parse_mac;
use runtime::perm::{Interfaces, parse_cidr};
use runtime::statefile::{self, StateError};
use serde::Deserialize;
use serde_json::Value;

/// A configuration problem, with the file and the place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// `line:column` or `entry[i].field`.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.location, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    fn at(file: &Path, location: impl Into<String>, message: impl Into<String>) -> Self {
        Self { file: file.to_owned(), location: location.into(), message: message.into() }
    }

    fn from_state(file: &Path, e: StateError) -> Self {
        match e {
            StateError::Corrupt { line, column, message, .. } => {
                // serde_json appends " at line L column C"; the location says it already.
                let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
                Self::at(file, format!("{line}:{column}"), message)
            }
            other => Self::at(file, "0", other.to_string()),
        }
    }
}

/// A MAC address.
pub type Mac = [u8; 6];

/// An address with its prefix length, as configured (host bits kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length.
    pub len: u8,
}

impl Cidr {
    /// The network: host bits cleared.
    #[must_use]
    pub fn network(self) -> Self {
        Self { addr: mask(self.addr, self.len), len: self.len }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// `addr` with all but the first `len` bits cleared.
#[must_use]
pub fn mask(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len.min(32))) };
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len.min(128))) };
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

fn cidr(text: &str) -> Result<Cidr, String> {
    parse_cidr(text).map(|(addr, len)| Cidr { addr, len }).ok_or_else(|| format!("{text:?} is not an address/prefix"))
}

/// A route of interfaces.json's `extra_routes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraRoute {
    /// Destination network (host bits cleared, as router7's ParseCIDR did).
    pub destination: Cidr,
    /// Next hop; `None` for on-link.
    pub gateway: Option<IpAddr>,
}

/// One validated interfaces.json entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// MAC to match the NIC by.
    pub hardware_addr: Option<Mac>,
    /// MAC to set (also matched).
    pub spoof_hardware_addr: Option<Mac>,
    /// Name to give it.
    pub name: String,
    /// Its address.
    pub addr: Option<Cidr>,
    /// More addresses.
    pub extra_addrs: Vec<Cidr>,
    /// Routes through it.
    pub extra_routes: Vec<ExtraRoute>,
    /// MTU to set.
    pub mtu: Option<u32>,
}

/// A validated bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Its name.
    pub name: String,
    /// Members by MAC; the first one's MAC is the bridge's at creation.
    pub members: Vec<Mac>,
}

/// interfaces.json, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetConfig {
    /// The interfaces.
    pub interfaces: Vec<InterfaceConfig>,
    /// The bridges.
    pub bridges: Vec<BridgeConfig>,
}

impl NetConfig {
    /// The entry named `name`.
    #[must_use]
    pub fn by_name(&self, name: &str) -> Option<&InterfaceConfig> {
        self.interfaces.iter().find(|i| i.name == name)
    }
}

fn valid_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 || name == "." || name == ".." {
        return Err(format!("{name:?} is not an interface name (1 to 15 bytes)"));
    }
    if name.bytes().any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0) {
        return Err(format!("{name:?} is not an interface name (no '/', ':' or spaces)"));
    }
    Ok(())
}

fn mac_field(text: &str) -> Result<Option<Mac>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    parse_mac(text).map(Some).ok_or_else(|| format!("{text:?} is not a MAC address"))
}

/// Validates interfaces.json; returns it and warnings (unknown fields, FEC).
pub fn validate_interfaces(file: &Path, raw: &Interfaces) -> Result<(NetConfig, Vec<String>), ConfigError> {
    let mut warnings: Vec<String> =
        raw.unknown_fields().into_iter().map(|f| format!("{}: unknown field {f} ignored", file.display())).collect();
    let mut out = NetConfig::default();
    for (i, d) in raw.interfaces.iter().enumerate() {
        let err = |field: &str, m: String| ConfigError::at(file, format!("interfaces[{i}].{field}"), m);
        valid_ifname(&d.name).map_err(|m| err("name", m))?;
        let hardware_addr = mac_field(&d.hardware_addr).map_err(|m| err("hardware_addr", m))?;
        let spoof_hardware_addr = mac_field(&d.spoof_hardware_addr).map_err(|m| err("spoof_hardware_addr", m))?;
        let addr = if d.addr.is_empty() { None } else { Some(cidr(&d.addr).map_err(|m| err("addr", m))?) };
        let mut extra_addrs = Vec::new();
        for (j, a) in d.extra_addrs.iter().enumerate() {
            extra_addrs.push(cidr(a).map_err(|m| err(&format!("extra_addrs[{j}]"), m))?);
        }
        let mut extra_routes = Vec::new();
        for (j, r) in d.extra_routes.iter().enumerate() {
            let destination = cidr(&r.destination).map_err(|m| err(&format!("extra_routes[{j}].destination"), m))?;
            let gateway = if r.gateway.is_empty() {
                None
            } else {
                let gw: IpAddr = r.gateway.parse().map_err(|_| {
                    err(&format!("extra_routes[{j}].gateway"), format!("{:?} is not an address", r.gateway))
                })?;
                if gw.is_ipv4() != destination.addr.is_ipv4() {
                    return Err(err(
                        &format!("extra_routes[{j}].gateway"),
                        "gateway and destination differ in family".into(),
                    ));
                }
                Some(gw)
            };
            extra_routes.push(ExtraRoute { destination: destination.network(), gateway });
        }
        let mtu = match d.mtu {
            0 => None,
            m @ 68..=65535 => Some(m),
            m => return Err(err("mtu", format!("{m} is not an MTU (68 to 65535)"))),
        };
        if !d.fec.is_empty() {
            warnings.push(format!("{}: interfaces[{i}].fec is not supported; ignored", file.display()));
        }
        if out.interfaces.iter().any(|o: &InterfaceConfig| o.name == d.name) {
            return Err(err("name", format!("{:?} is configured twice", d.name)));
        }
        out.interfaces.push(InterfaceConfig {
            hardware_addr,
            spoof_hardware_addr,
            name: d.name.clone(),
            addr,
            extra_addrs,
            extra_routes,
            mtu,
        });
    }
    for (i, b) in raw.bridges.iter().enumerate() {
        let err = |field: &str, m: String| ConfigError::at(file, format!("bridges[{i}].{field}"), m);
        valid_ifname(&b.name).map_err(|m| err("name", m))?;
        let mut members = Vec::new();
        for (j, m) in b.interface_hardware_addrs.iter().enumerate() {
            let mac = mac_field(m)
                .and_then(|o| o.ok_or_else(|| "empty MAC address".to_owned()))
                .map_err(|e| err(&format!("interface_hardware_addrs[{j}]"), e))?;
            members.push(mac);
        }
        out.bridges.push(BridgeConfig { name: b.name.clone(), members });
    }
    Ok((out, warnings))
}

/// Reads and validates interfaces.json; `Ok(None)` when it does not exist.
pub fn load_interfaces(file: &Path) -> Result<Option<(NetConfig, Vec<String>)>, ConfigError> {
    match statefile::read_json::<Interfaces>(file) {
        Ok(None) => Ok(None),
        Ok(Some(raw)) => validate_interfaces(file, &raw).map(Some),
        Err(e) => Err(ConfigError::from_state(file, e)),
    }
}

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// TCP
    Tcp,
    /// UDP
    Udp,
}

impl Proto {
    /// The IP protocol number.
    #[must_use]
    pub fn number(self) -> u8 {
        match self {
            Self::Tcp => 6,
            Self::Udp => 17,
        }
    }

    /// `tcp` or `udp`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// A port or an inclusive range of ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    /// First port.
    pub min: u16,
    /// Last port (equal to `min` for one port).
    pub max: u16,
}

impl PortRange {
    /// Number of ports.
    #[must_use]
    pub fn len(self) -> u32 {
        u32::from(self.max) - u32::from(self.min) + 1
    }

    /// Always false: a range holds at least one port.
    #[must_use]
    pub fn is_empty(self) -> bool {
        false
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max { write!(f, "{}", self.min) } else { write!(f, "{}-{}", self.min, self.max) }
    }
}

/// Parses `8080` or `8000-8010` (router7's syntax); ports are 1 to 65535.
pub fn parse_ports(text: &str) -> Result<PortRange, String> {
    let one = |t: &str| -> Result<u16, String> {
        let t = t.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{text:?} is not a port (e.g. 8080) or a port range (e.g. 8080-8090)"));
        }
        match t.parse::<u32>() {
            Ok(p @ 1..=65535) => Ok(u16::try_from(p).unwrap_or(u16::MAX)),
            _ => Err(format!("port {t} is out of range (1 to 65535)")),
        }
    };
    let (min, max) = match text.split_once('-') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let p = one(text)?;
            (p, p)
        }
    };
    if min > max {
        return Err(format!("port range {text:?} ends before it starts"));
    }
    Ok(PortRange { min, max })
}

/// A port given as a JSON string (router7) or number (friendlier).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortText(pub String);

impl<'de> Deserialize<'de> for PortText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Self(s)),
            Value::Number(n) => Ok(Self(n.to_string())),
            other => Err(serde::de::Error::custom(format!("a port must be a string or a number, not {other}"))),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ForwardingsFile {
    #[serde(default)]
    forwardings: Vec<ForwardingEntry>,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
struct ForwardingEntry {
    #[serde(default)]
    proto: String,
    #[serde(default)]
    port: PortText,
    #[serde(default)]
    dest_addr: String,
    #[serde(default)]
    dest_port: PortText,
    #[serde(flatten)]
    unknown: BTreeMap<String, Value>,
}

/// One validated port forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    /// The protocols (router7's `"tcp,udp"` gives both).
    pub protos: Vec<Proto>,
    /// Ports on the router's uplink address.
    pub ports: PortRange,
    /// The LAN host.
    pub dest_addr: Ipv4Addr,
    /// Its ports.
    pub dest_ports: PortRange,
}

fn parse_protos(text: &str) -> Result<Vec<Proto>, String> {
    let mut out = Vec::new();
    for p in text.split(',') {
        let p = match p.trim() {
            "" | "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => return Err(format!("unknown proto {other:?}, expected \"tcp\" or \"udp\"")),
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Validates portforwardings.json's text.
pub fn parse_forwardings(file: &Path, bytes: &[u8]) -> Result<(Vec<PortForward>, Vec<String>), ConfigError> {
    let raw: ForwardingsFile = statefile::parse_json(file, bytes).map_err(|e| ConfigError::from_state(file, e))?;
    let mut warnings: Vec<String> =
        raw.unknown.keys().map(|k| format!("{}: unknown field {k} ignored", file.display())).collect();
    let mut out = Vec::new();
    for (i, f) in raw.forwardings.iter().enumerate() {
        let err = |field: &str, m: String| ConfigError::at(file, format!("forwardings[{i}].{field}"), m);
        warnings.extend(
            f.unknown.keys().map(|k| format!("{}: forwardings[{i}].{k}: unknown field ignored", file.display())),
        );
        let protos = parse_protos(&f.proto).map_err(|m| err("proto", m))?;
        let ports = parse_ports(&f.port.0).map_err(|m| err("port", m))?;
        // router7 required dest_port; an empty one here means "the same port".
        let dest_ports = if f.dest_port.0.is_empty() {
            ports
        } else {
            parse_ports(&f.dest_port.0).map_err(|m| err("dest_port", m))?
        };
        if dest_ports.len() != 1 && dest_ports.len() != ports.len() {
            return Err(err("dest_port", format!("range {dest_ports} must be one port or as long as {ports}")));
        }
        let dest_addr: Ipv4Addr =
            f.dest_addr.parse().map_err(|_| err("dest_addr", format!("{:?} is not an IPv4 address", f.dest_addr)))?;
        if dest_addr.is_unspecified() || dest_addr.is_broadcast() || dest_addr.is_multicast() {
            return Err(err("dest_addr", format!("{dest_addr} is not a host address")));
        }
        out.push(PortForward { protos, ports, dest_addr, dest_ports });
    }
    Ok((out, warnings))
}

/// Reads portforwardings.json; a missing file means none.
pub fn load_forwardings(file: &Path) -> Result<(Vec<PortForward>, Vec<String>), ConfigError> {
    match statefile::read(file) {
        Ok(None) => Ok((Vec::new(), Vec::new())),
        Ok(Some(bytes)) => parse_forwardings(file, &bytes),
        Err(e) => Err(ConfigError::from_state(file, e)),
    }
}

/// `<perm>/netconfigd/config.json`: netconfigd's own settings. Absent means
/// no openings: the uplink reaches only what the firewall always lets in.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The firewall's configurable parts.
    #[serde(default)]
    pub firewall: FirewallFile,
}

/// The `firewall` object of config.json.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallFile {
    /// Ports of the router itself opened to the uplink.
    #[serde(default)]
    pub input: Vec<InputOpeningFile>,
    /// IPv6 hosts and ports of the LAN opened to the uplink.
    #[serde(default)]
    pub forward6: Vec<Forward6OpeningFile>,
}

/// `{"proto","port","from"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputOpeningFile {
    /// `tcp` or `udp`.
    pub proto: String,
    /// A port or range.
    pub port: PortText,
    /// Only from this network (v4 or v6); all sources when absent.
    #[serde(default)]
    pub from: Option<String>,
}

/// `{"proto","port","dest_addr"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forward6OpeningFile {
    /// `tcp` or `udp`.
    pub proto: String,
    /// A port or range.
    pub port: PortText,
    /// The LAN host (an IPv6 address) or network (`…/64`).
    pub dest_addr: String,
}

/// An opening of the router's own ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputOpening {
    /// The protocol.
    pub proto: Proto,
    /// The ports.
    pub ports: PortRange,
    /// Only from this network.
    pub from: Option<Cidr>,
}

/// An opening towards a LAN host over IPv6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward6Opening {
    /// The protocol.
    pub proto: Proto,
    /// The ports.
    pub ports: PortRange,
    /// The host or network.
    pub dest: Cidr,
}

/// The firewall settings, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FirewallConfig {
    /// Input openings.
    pub input: Vec<InputOpening>,
    /// IPv6 forward openings.
    pub forward6: Vec<Forward6Opening>,
}

fn one_proto(text: &str) -> Result<Proto, String> {
    match text {
        "tcp" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        other => Err(format!("unknown proto {other:?}, expected \"tcp\" or \"udp\"")),
    }
}

/// Validates config.json's text (strict: unknown fields are errors).
pub fn parse_config(file: &Path, bytes: &[u8]) -> Result<FirewallConfig, ConfigError> {
    let raw: ConfigFile = statefile::parse_json(file, bytes).map_err(|e| ConfigError::from_state(file, e))?;
    let mut out = FirewallConfig::default();
    for (i, o) in raw.firewall.input.iter().enumerate() {
        let err = |field: &str, m: String| ConfigError::at(file, format!("firewall.input[{i}].{field}"), m);
        let proto = one_proto(&o.proto).map_err(|m| err("proto", m))?;
        let ports = parse_ports(&o.port.0).map_err(|m| err("port", m))?;
        let from = match &o.from {
            None => None,
            Some(t) => Some(cidr(t).map_err(|m| err("from", m))?.network()),
        };
        out.input.push(InputOpening { proto, ports, from });
    }
    for (i, o) in raw.firewall.forward6.iter().enumerate() {
        let err = |field: &str, m: String| ConfigError::at(file, format!("firewall.forward6[{i}].{field}"), m);
        let proto = one_proto(&o.proto).map_err(|m| err("proto", m))?;
        let ports = parse_ports(&o.port.0).map_err(|m| err("port", m))?;
        let dest = cidr(&o.dest_addr).map_err(|m| err("dest_addr", m))?;
        if dest.addr.is_ipv4() {
            return Err(err(
                "dest_addr",
                format!("{} is not an IPv6 address (IPv4 uses portforwardings.json)", o.dest_addr),
            ));
        }
        out.forward6.push(Forward6Opening { proto, ports, dest: dest.network() });
    }
    Ok(out)
}

/// Reads config.json; a missing file means the defaults.
pub fn load_config(file: &Path) -> Result<FirewallConfig, ConfigError> {
    match statefile::read(file) {
        Ok(None) => Ok(FirewallConfig::default()),
        Ok(Some(bytes)) => parse_config(file, &bytes),
        Err(e) => Err(ConfigError::from_state(file, e)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// router7's TestNetconfig interfaces.json.
    pub(crate) const GOLDEN_INTERFACES: &str = r#"{
  "interfaces":[
    {"hardware_addr": "02:73:53:00:ca:fe", "name": "uplink0"},
    {"hardware_addr": "02:73:53:00:b0:0c", "spoof_hardware_addr": "02:73:53:00:b0:aa",
     "name": "lan0", "addr": "192.168.42.1/24", "mtu": 1492},
    {"name": "wg0", "addr": "fe80::1/64", "extra_addrs": ["10.22.100.1/24"],
     "extra_routes": [{"destination": "2a02:168:4a00:22::/64", "gateway": "fe80::2"}]}
  ]
}"#;

    fn interfaces(text: &str) -> Result<(NetConfig, Vec<String>), ConfigError> {
        let raw: Interfaces = serde_json::from_str(text).unwrap();
        validate_interfaces(Path::new("/perm/interfaces.json"), &raw)
    }

    #[test]
    fn validates_router7s_golden_interfaces() {
        let (cfg, warnings) = interfaces(GOLDEN_INTERFACES).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let lan = cfg.by_name("lan0").unwrap();
        assert_eq!(lan.hardware_addr, Some([2, 0x73, 0x53, 0, 0xb0, 0x0c]));
        assert_eq!(lan.spoof_hardware_addr, Some([2, 0x73, 0x53, 0, 0xb0, 0xaa]));
        assert_eq!(lan.mtu, Some(1492));
        assert_eq!(lan.addr.unwrap().to_string(), "192.168.42.1/24");
        let wg = cfg.by_name("wg0").unwrap();
        assert_eq!(wg.extra_routes[0].destination.to_string(), "2a02:168:4a00:22::/64");
        assert_eq!(wg.extra_routes[0].gateway, Some("fe80::2".parse().unwrap()));
    }

    #[test]
    fn bad_interface_values_name_the_entry_and_field() {
        let cases = [
            (r#"{"interfaces":[{"name":"lan0","addr":"192.168.42.1/33"}]}"#, "interfaces[0].addr"),
            (
                r#"{"interfaces":[{"name":"x"},{"name":"lan0","extra_addrs":["10.0.0.1/8","bad"]}]}"#,
                "interfaces[1].extra_addrs[1]",
            ),
            (r#"{"interfaces":[{"name":"lan0","hardware_addr":"02:73:53:00:b0"}]}"#, "interfaces[0].hardware_addr"),
            (r#"{"interfaces":[{"name":"lan0","mtu":20}]}"#, "interfaces[0].mtu"),
            (r#"{"interfaces":[{"name":"a-name-far-too-long"}]}"#, "interfaces[0].name"),
            (
                r#"{"interfaces":[{"name":"lan0","extra_routes":[{"destination":"10.0.0.0/8","gateway":"fe80::1"}]}]}"#,
                "interfaces[0].extra_routes[0].gateway",
            ),
            (
                r#"{"bridges":[{"name":"br0","interface_hardware_addrs":["zz"]}]}"#,
                "bridges[0].interface_hardware_addrs[0]",
            ),
            (r#"{"interfaces":[{"name":"lan0"},{"name":"lan0"}]}"#, "interfaces[1].name"),
        ];
        for (text, location) in cases {
            let e = interfaces(text).unwrap_err();
            assert_eq!(e.location, location, "{text}: {e}");
            assert!(e.to_string().starts_with(&format!("/perm/interfaces.json:{location}: ")), "{e}");
        }
    }

    #[test]
    fn unknown_interface_fields_are_warnings_not_errors() {
        let (_, warnings) = interfaces(r#"{"interfaces":[{"name":"lan0","colour":"blue"}],"extra":1}"#).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings.iter().any(|w| w.contains("interfaces[0].colour")));
    }

    #[test]
    fn a_corrupt_file_is_reported_with_line_and_column() {
        let dir = std::env::temp_dir().join(format!("netconfigd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("interfaces.json");
        std::fs::write(&path, "{\n  \"interfaces\": [\n    {\"name\": \"lan0\",}\n  ]\n}\n").unwrap();
        let e = load_interfaces(&path).unwrap_err();
        assert_eq!(e.location, "3:21", "{e}");
        assert!(load_interfaces(&dir.join("missing.json")).unwrap().is_none(), "missing means wait");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// router7's TestNetconfig portforwardings.json, plus a "tcp,udp" list.
    pub(crate) const GOLDEN_FORWARDINGS: &str = r#"{
  "forwardings":[
    {"port": "8080", "dest_addr": "192.168.42.23", "dest_port": "9999"},
    {"port": "8040-8060", "dest_addr": "192.168.42.99", "dest_port": "8040-8060"},
    {"proto": "udp", "port": "53", "dest_addr": "192.168.42.99", "dest_port": "53"},
    {"proto": "tcp,udp", "port": 5060, "dest_addr": "192.168.42.5"}
  ]
}"#;

    #[test]
    fn parses_router7s_forwardings_with_ranges_and_lists() {
        let (fw, warnings) = parse_forwardings(Path::new("pf.json"), GOLDEN_FORWARDINGS.as_bytes()).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(fw[0].protos, [Proto::Tcp], "an empty proto is tcp, as in router7");
        assert_eq!(fw[1].ports, PortRange { min: 8040, max: 8060 });
        assert_eq!(fw[2].protos, [Proto::Udp]);
        assert_eq!(fw[3].protos, [Proto::Tcp, Proto::Udp]);
        assert_eq!(fw[3].dest_ports, PortRange { min: 5060, max: 5060 }, "no dest_port: the same port");
    }

    #[test]
    fn bad_forwardings_name_the_entry_and_field() {
        let cases = [
            (r#"{"forwardings":[{"port":"70000","dest_addr":"192.168.42.2"}]}"#, "forwardings[0].port", "out of range"),
            (r#"{"forwardings":[{"port":"0","dest_addr":"192.168.42.2"}]}"#, "forwardings[0].port", "out of range"),
            (r#"{"forwardings":[{"port":"90-80","dest_addr":"192.168.42.2"}]}"#, "forwardings[0].port", "ends before"),
            (
                r#"{"forwardings":[{"port":"80","dest_addr":"192.168.42.2"},{"port":"81","dest_addr":"x"}]}"#,
                "forwardings[1].dest_addr",
                "IPv4",
            ),
            (
                r#"{"forwardings":[{"proto":"sctp","port":"80","dest_addr":"192.168.42.2"}]}"#,
                "forwardings[0].proto",
                "sctp",
            ),
            (
                r#"{"forwardings":[{"port":"80-90","dest_addr":"192.168.42.2","dest_port":"1-2"}]}"#,
                "forwardings[0].dest_port",
                "as long",
            ),
        ];
        for (text, location, words) in cases {
            let e = parse_forwardings(Path::new("pf.json"), text.as_bytes()).unwrap_err();
            assert_eq!(e.location, location, "{text}: {e}");
            assert!(e.message.contains(words), "{e}");
        }
    }

    #[test]
    fn config_json_rejects_unknown_fields_with_their_position() {
        let text = "{\n  \"firewall\": {\n    \"input\": [{\"proto\": \"tcp\", \"port\": 22, \"color\": 1}]\n  }\n}";
        let e = parse_config(Path::new("/perm/netconfigd/config.json"), text.as_bytes()).unwrap_err();
        assert!(e.message.contains("unknown field `color`"), "{e}");
        assert_eq!(e.location, "3:50", "{e}");
        let e = parse_config(Path::new("c.json"), br#"{"firewal":{}}"#).unwrap_err();
        assert!(e.message.contains("unknown field `firewal`"), "{e}");
    }

    #[test]
    fn config_json_openings_are_validated() {
        let text = r#"{"firewall":{
            "input":[{"proto":"tcp","port":"22"},{"proto":"udp","port":"53","from":"203.0.113.7/24"}],
            "forward6":[{"proto":"tcp","port":443,"dest_addr":"2a02:168:4a00::10"}]}}"#;
        let cfg = parse_config(Path::new("c.json"), text.as_bytes()).unwrap();
        assert_eq!(cfg.input[1].from.unwrap().to_string(), "203.0.113.0/24", "host bits cleared");
        assert_eq!(cfg.forward6[0].dest.to_string(), "2a02:168:4a00::10/128");
        let bad = [
            (r#"{"firewall":{"input":[{"proto":"tcp","port":"65536"}]}}"#, "firewall.input[0].port"),
            (r#"{"firewall":{"input":[{"proto":"icmp","port":"1"}]}}"#, "firewall.input[0].proto"),
            (r#"{"firewall":{"input":[{"proto":"tcp","port":"1","from":"10.0.0.0/40"}]}}"#, "firewall.input[0].from"),
            (
                r#"{"firewall":{"forward6":[{"proto":"tcp","port":"1","dest_addr":"192.168.42.2"}]}}"#,
                "firewall.forward6[0].dest_addr",
            ),
        ];
        for (text, location) in bad {
            let e = parse_config(Path::new("c.json"), text.as_bytes()).unwrap_err();
            assert_eq!(e.location, location, "{e}");
        }
        assert_eq!(parse_config(Path::new("c.json"), b"{}").unwrap(), FirewallConfig::default());
    }
}
