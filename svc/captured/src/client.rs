//! The host side of `mkimage capture`: streams `/capture.pcapng` from the
//! router to a writer (standard output piped into Wireshark), flushing after
//! every read so packets show up as they are captured.

use std::fmt;
use std::io::{self, Read, Write};
use std::time::Duration;

use runtime::http_client;

/// captured's port.
pub const PORT: u16 = 5022;
/// The server writes statistics every 10 s when idle; a minute of silence means it is gone.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// What to ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamOptions {
    /// Only this interface (`uplink0`, `lan0`, a comma-separated list, or `all`).
    pub iface: Option<String>,
    /// Replay at most this many buffered packets (0: live only).
    pub replay: Option<u32>,
}

impl StreamOptions {
    /// The request path with its query.
    #[must_use]
    pub fn path(&self) -> String {
        let mut query = Vec::new();
        if let Some(i) = &self.iface {
            let escaped: String = i
                .bytes()
                .map(|b| match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b',' => char::from(b).to_string(),
                    _ => format!("%{b:02X}"),
                })
                .collect();
            query.push(format!("iface={escaped}"));
        }
        if let Some(n) = self.replay {
            query.push(format!("replay={n}"));
        }
        if query.is_empty() {
            crate::request::CAPTURE_PATH.to_owned()
        } else {
            format!("{}?{}", crate::request::CAPTURE_PATH, query.join("&"))
        }
    }
}

/// Why the stream ended badly.
#[derive(Debug)]
pub enum ClientError {
    /// Connecting, sending or reading failed.
    Io(io::Error),
    /// The password was refused (401).
    Unauthorized,
    /// Another answer than 200, with its body.
    Status(u16, String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Unauthorized => write!(f, "the router refused the password (401)"),
            Self::Status(code, body) => write!(f, "the router answered {code}: {}", body.trim()),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Streams the capture from `addr` (`host` or `host:port`, default port
/// 5022) into `out` until the router ends it or `out` is closed (Wireshark
/// quit: that is a normal end). Returns the bytes written.
pub fn stream(addr: &str, password: &str, options: &StreamOptions, out: &mut dyn Write) -> Result<u64, ClientError> {
    let mut ex = http_client::request(addr, PORT, password, "GET", &options.path(), None, READ_TIMEOUT)?;
    match ex.head.status {
        200 => {}
        401 => return Err(ClientError::Unauthorized),
        code => return Err(ClientError::Status(code, ex.body.text(4096).unwrap_or_default())),
    }
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0u64;
    loop {
        let n = match ex.body.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        match out.write_all(&buf[..n]).and_then(|()| out.flush()) {
            Ok(()) => total += n as u64,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(total),
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_carries_the_options() {
        assert_eq!(StreamOptions::default().path(), "/capture.pcapng");
        let o = StreamOptions { iface: Some("uplink0".into()), replay: Some(10) };
        assert_eq!(o.path(), "/capture.pcapng?iface=uplink0&replay=10");
        let o = StreamOptions { iface: Some("a&b".into()), replay: None };
        assert_eq!(o.path(), "/capture.pcapng?iface=a%26b");
    }
}
