//! dhcp6 binary (placeholder while the shell is written).
#![forbid(unsafe_code)]
fn main() {}
