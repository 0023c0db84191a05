//! Running the Debian tools mkimage relies on (syslinux, mkfs.ext4, debugfs),
//! with their stderr in the error when they fail.

use std::process::{Command, Output, Stdio};

use crate::error::{Error, Result};

fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        text.push(' ');
        text.push_str(&a.to_string_lossy());
    }
    text
}

/// Runs `cmd` to completion (stdin closed), failing with its stderr.
///
/// # Errors
/// When it cannot start or exits non-zero.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let command = describe(cmd);
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| Error::Tool {
        command: command.clone(),
        status: "cannot start".into(),
        stderr: if e.kind() == std::io::ErrorKind::NotFound {
            "not installed (ci/setup installs it)".into()
        } else {
            e.to_string()
        },
    })?;
    if !out.status.success() {
        return Err(Error::Tool {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out)
}
