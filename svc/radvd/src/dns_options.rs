//! The two RA options smoltcp does not know, RFC 8106 §5.1 Recursive DNS Server
//! (type 25) and §5.2 DNS Search List (type 31), encoded through smoltcp's
//! checked [`NdiscOption`] buffer like the options it does know, and parsed back
//! (for tests and the fuzz target).
//!
//! ```text
//! RDNSS:  | 25 | len=1+2n | reserved (2) | lifetime (4) | n × IPv6 address |
//! DNSSL:  | 31 | len      | reserved (2) | lifetime (4) | names (RFC 1035 §3.1), zero-padded to 8 |
//! ```

use std::fmt;
use std::net::Ipv6Addr;

use smoltcp::wire::{NdiscOption, NdiscOptionType};

/// Option type of RDNSS (RFC 8106 §5.1).
pub const RDNSS: u8 = 25;
/// Option type of DNSSL (RFC 8106 §5.2).
pub const DNSSL: u8 = 31;

/// Bytes before the option-specific data: type, length, reserved, lifetime.
const HEADER: usize = 8;

/// Why an option could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionError {
    /// A search domain is not a valid DNS name.
    InvalidName(String),
    /// The option would not fit its 8-bit length field (2040 bytes).
    TooLong,
    /// The output buffer is too short.
    BufferTooShort,
    /// The bytes are not this option or are malformed.
    Malformed(&'static str),
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName(n) => write!(f, "invalid domain name {n:?}"),
            Self::TooLong => f.write_str("option longer than 2040 bytes"),
            Self::BufferTooShort => f.write_str("buffer too short"),
            Self::Malformed(why) => write!(f, "malformed option: {why}"),
        }
    }
}

impl std::error::Error for OptionError {}

/// Writes type, length, reserved and lifetime; returns the data part after them.
fn emit_header(buf: &mut [u8], kind: u8, len: usize, lifetime: u32) -> Result<&mut [u8], OptionError> {
    let units = u8::try_from(len / 8).map_err(|_| OptionError::TooLong)?;
    let buf = buf.get_mut(..len).ok_or(OptionError::BufferTooShort)?;
    buf.fill(0);
    let mut opt = NdiscOption::new_unchecked(buf);
    opt.set_option_type(NdiscOptionType::Unknown(kind));
    opt.set_data_len(units);
    let buf = opt.into_inner();
    // Checked now that type and length are in place: the length covers the buffer.
    NdiscOption::new_checked(&*buf).map_err(|_| OptionError::BufferTooShort)?;
    let data = &mut buf[2..];
    data[2..6].copy_from_slice(&lifetime.to_be_bytes());
    Ok(&mut data[6..])
}

/// Reads type, length and lifetime through smoltcp's checked view; returns the
/// lifetime and the data after it.
fn parse_header(bytes: &[u8], kind: u8) -> Result<(u32, &[u8]), OptionError> {
    let opt = NdiscOption::new_checked(bytes).map_err(|_| OptionError::Malformed("length"))?;
    if opt.option_type() != NdiscOptionType::Unknown(kind) {
        return Err(OptionError::Malformed("type"));
    }
    let data = opt.data();
    if data.len() < HEADER - 2 {
        return Err(OptionError::Malformed("too short"));
    }
    let lifetime = u32::from_be_bytes([data[2], data[3], data[4], data[5]]);
    Ok((lifetime, &data[6..]))
}

/// A Recursive DNS Server option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rdnss {
    /// Seconds the servers may be used (RFC 8106 §5.1).
    pub lifetime: u32,
    /// The servers (at least one).
    pub servers: Vec<Ipv6Addr>,
}

impl Rdnss {
    /// Bytes on the wire.
    #[must_use]
    pub fn buffer_len(&self) -> usize {
        HEADER + 16 * self.servers.len()
    }

    /// Writes the option at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, OptionError> {
        if self.servers.is_empty() {
            return Err(OptionError::Malformed("no server"));
        }
        let len = self.buffer_len();
        let data = emit_header(buf, RDNSS, len, self.lifetime)?;
        for (chunk, server) in data.chunks_exact_mut(16).zip(&self.servers) {
            chunk.copy_from_slice(&server.octets());
        }
        Ok(len)
    }

    /// Reads one RDNSS option (exactly its bytes, as a checked option's length says).
    pub fn parse(bytes: &[u8]) -> Result<Self, OptionError> {
        let (lifetime, rest) = parse_header(bytes, RDNSS)?;
        // §5.1: Length is 1 + 2n with n ≥ 1, so the addresses fill the rest exactly.
        if rest.is_empty() || rest.len() % 16 != 0 {
            return Err(OptionError::Malformed("RDNSS length"));
        }
        let servers = rest
            .chunks_exact(16)
            .map(|c| {
                let mut a = [0u8; 16];
                a.copy_from_slice(c);
                Ipv6Addr::from(a)
            })
            .collect();
        Ok(Self { lifetime, servers })
    }
}

/// Whether `name` is a DNS name we can put in a search list: dot-separated
/// labels of 1–63 letters, digits and hyphens, not starting or ending with a
/// hyphen, 253 characters at most; one trailing dot is allowed.
#[must_use]
pub fn is_valid_domain(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A DNS Search List option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnssl {
    /// Seconds the domains may be used (RFC 8106 §5.2).
    pub lifetime: u32,
    /// The domains, without a trailing dot (at least one).
    pub domains: Vec<String>,
}

impl Dnssl {
    /// A search list of valid names (see [`is_valid_domain`]).
    pub fn new(lifetime: u32, domains: &[String]) -> Result<Self, OptionError> {
        if domains.is_empty() {
            return Err(OptionError::Malformed("no domain"));
        }
        let mut out = Vec::with_capacity(domains.len());
        for d in domains {
            if !is_valid_domain(d) {
                return Err(OptionError::InvalidName(d.clone()));
            }
            out.push(d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase());
        }
        let this = Self { lifetime, domains: out };
        if this.buffer_len() > 255 * 8 {
            return Err(OptionError::TooLong);
        }
        Ok(this)
    }

    fn names_len(&self) -> usize {
        // Each name: a length byte per label plus the label, then the root's zero.
        self.domains.iter().map(|d| d.len() + 2).sum()
    }

    /// Bytes on the wire (names padded with zeros to a multiple of 8).
    #[must_use]
    pub fn buffer_len(&self) -> usize {
        (HEADER + self.names_len()).div_ceil(8) * 8
    }

    /// The first name that cannot be sent: not a DNS name (see
    /// [`is_valid_domain`]) or with a trailing dot (parsed labels may hold any byte).
    fn unencodable(&self) -> Option<&String> {
        self.domains.iter().find(|d| !is_valid_domain(d) || d.ends_with('.'))
    }

    /// Whether [`Dnssl::emit`] can encode every name.
    #[must_use]
    pub fn is_encodable(&self) -> bool {
        !self.domains.is_empty() && self.unencodable().is_none()
    }

    /// Writes the option at the start of `buf`; returns its length. Names that
    /// cannot be encoded (see [`Dnssl::is_encodable`]) are refused.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, OptionError> {
        if self.domains.is_empty() {
            return Err(OptionError::Malformed("no domain"));
        }
        if let Some(bad) = self.unencodable() {
            return Err(OptionError::InvalidName(bad.clone()));
        }
        let len = self.buffer_len();
        if len > 255 * 8 {
            return Err(OptionError::TooLong);
        }
        let data = emit_header(buf, DNSSL, len, self.lifetime)?;
        let mut at = 0;
        for domain in &self.domains {
            for label in domain.split('.') {
                let n = label.len().min(63);
                let (Some(slot), Ok(n8)) = (data.get_mut(at..at + 1 + n), u8::try_from(n)) else {
                    return Err(OptionError::InvalidName(domain.clone()));
                };
                slot[0] = n8;
                slot[1..].copy_from_slice(&label.as_bytes()[..n]);
                at += 1 + n;
            }
            // The root label's zero byte is already there (the buffer was zeroed).
            at += 1;
        }
        Ok(len)
    }

    /// Reads one DNSSL option (exactly its bytes).
    pub fn parse(bytes: &[u8]) -> Result<Self, OptionError> {
        let (lifetime, mut rest) = parse_header(bytes, DNSSL)?;
        let mut domains = Vec::new();
        // Names follow one another; a zero byte where a name would start is padding.
        while let Some((&first, _)) = rest.split_first() {
            if first == 0 {
                if rest.iter().any(|&b| b != 0) {
                    return Err(OptionError::Malformed("data after padding"));
                }
                break;
            }
            let mut labels = Vec::new();
            loop {
                let Some((&n, tail)) = rest.split_first() else {
                    return Err(OptionError::Malformed("name runs past the option"));
                };
                rest = tail;
                if n == 0 {
                    break;
                }
                // 0xc0 and above are compression pointers, which §5.2 forbids.
                if n > 63 || usize::from(n) > rest.len() {
                    return Err(OptionError::Malformed("label"));
                }
                let (label, tail) = rest.split_at(usize::from(n));
                labels.push(String::from_utf8_lossy(label).into_owned());
                rest = tail;
            }
            domains.push(labels.join("."));
        }
        if domains.is_empty() {
            return Err(OptionError::Malformed("no domain"));
        }
        Ok(Self { lifetime, domains })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdnss_bytes_are_exact() {
        let opt = Rdnss { lifetime: 1800, servers: vec!["fe80::73:53ff:fe00:cafe".parse().unwrap()] };
        let mut buf = [0xaau8; 32];
        assert_eq!(opt.emit(&mut buf), Ok(24));
        assert_eq!(
            buf[..24],
            [
                25, 3, 0, 0, 0x00, 0x00, 0x07, 0x08, // type, 3×8 bytes, reserved, 1800 s
                0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x00, 0x73, 0x53, 0xff, 0xfe, 0x00, 0xca, 0xfe,
            ]
        );
        assert_eq!(buf[24], 0xaa, "nothing written past the option");
        assert_eq!(Rdnss::parse(&buf[..24]).unwrap(), opt);
    }

    #[test]
    fn rdnss_with_two_servers_is_five_units() {
        let opt = Rdnss { lifetime: u32::MAX, servers: vec![Ipv6Addr::LOCALHOST, "2001:db8::53".parse().unwrap()] };
        let mut buf = [0u8; 40];
        assert_eq!(opt.emit(&mut buf), Ok(40));
        assert_eq!(buf[..8], [25, 5, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(Rdnss::parse(&buf).unwrap(), opt);
    }

    #[test]
    fn dnssl_lan_is_padded_to_sixteen_bytes() {
        let opt = Dnssl::new(1800, &["lan".to_owned()]).unwrap();
        let mut buf = [0xaau8; 16];
        assert_eq!(opt.emit(&mut buf), Ok(16));
        assert_eq!(buf, [31, 2, 0, 0, 0, 0, 0x07, 0x08, 3, b'l', b'a', b'n', 0, 0, 0, 0]);
        assert_eq!(Dnssl::parse(&buf).unwrap(), opt);
    }

    #[test]
    fn dnssl_holds_several_names_with_several_labels() {
        let opt = Dnssl::new(600, &["Home.Example.".to_owned(), "lan".to_owned()]).unwrap();
        assert_eq!(opt.domains, ["home.example", "lan"]);
        let mut buf = vec![0u8; opt.buffer_len()];
        assert_eq!(buf.len(), 32, "8 + 14 + 5 = 27, padded to 32");
        opt.emit(&mut buf).unwrap();
        assert_eq!(
            buf[8..27],
            [4, b'h', b'o', b'm', b'e', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 0, 3, b'l', b'a', b'n', 0]
        );
        assert_eq!(Dnssl::parse(&buf).unwrap(), opt);
    }

    #[test]
    fn invalid_names_and_short_buffers_are_refused() {
        for bad in ["", ".", "a..b", "-lan", "lan-", "la n", "ä.lan", &"a".repeat(64)] {
            assert!(matches!(Dnssl::new(1, &[bad.to_owned()]), Err(OptionError::InvalidName(_))), "{bad:?}");
        }
        assert!(Dnssl::new(1, &[]).is_err());
        let opt = Rdnss { lifetime: 1, servers: vec![Ipv6Addr::LOCALHOST] };
        assert_eq!(opt.emit(&mut [0u8; 23]), Err(OptionError::BufferTooShort));
        assert!(Rdnss { lifetime: 1, servers: vec![] }.emit(&mut [0u8; 64]).is_err());
        // Parsed names may hold any bytes; they are not sent on.
        let odd = Dnssl { lifetime: 1, domains: vec!["a\u{1}.b".into()] };
        assert_eq!(odd.emit(&mut [0u8; 64]), Err(OptionError::InvalidName("a\u{1}.b".into())));
        // Found by the `advert` fuzz target: a parsed label "la." (the dot inside it).
        let dotted = Dnssl::parse(&[31, 2, 0, 0, 0, 0, 7, 8, 3, b'l', b'a', b'.', 0, 0, 0, 0]).unwrap();
        assert_eq!(dotted.domains, ["la."]);
        assert!(!dotted.is_encodable());
        assert!(dotted.emit(&mut [0u8; 64]).is_err());
        assert!(Dnssl { lifetime: 1, domains: vec![] }.emit(&mut [0u8; 64]).is_err());
    }

    #[test]
    fn malformed_options_are_rejected_not_panicking() {
        let cases: &[&[u8]] = &[
            &[],
            &[25, 0, 0, 0, 0, 0, 0, 0],                                        // length 0
            &[25, 2, 0, 0, 0, 0, 0, 1],                                        // length past the bytes
            &[25, 1, 0, 0, 0, 0, 0, 1],                                        // no address
            &[24, 1, 0, 0, 0, 0, 0, 1],                                        // other type
            &[31, 1, 0, 0, 0, 0, 0, 1],                                        // no name
            &[31, 2, 0, 0, 0, 0, 0, 1, 9, b'a', b'b', 0, 0, 0, 0, 0],          // label past the option
            &[31, 2, 0, 0, 0, 0, 0, 1, 3, b'l', b'a', b'n', 0, 0, 7, 0],       // data after padding
            &[31, 2, 0, 0, 0, 0, 0, 1, 0xc0, 12, 0, 0, 0, 0, 0, 0],            // compression pointer
            &[31, 2, 0, 0, 0, 0, 0, 1, 3, b'l', b'a', b'n', 1, b'x', 1, b'y'], // unterminated
        ];
        for bytes in cases {
            assert!(Rdnss::parse(bytes).is_err() && Dnssl::parse(bytes).is_err(), "{bytes:?}");
        }
    }
}
