//! The OS account running the CLI: the local operator of DESIGN §9.
//!
//! Taken from the process's real user id and /etc/passwd rather than `$USER`,
//! which any caller can set.

use std::os::unix::fs::MetadataExt;

pub fn current() -> String {
    let Ok(meta) = std::fs::metadata("/proc/self") else {
        return "unknown".into();
    };
    let uid = meta.uid();
    if let Ok(passwd) = std::fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let mut parts = line.split(':');
            let (Some(name), _, Some(id)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if id.parse::<u32>().ok() == Some(uid) {
                return name.to_owned();
            }
        }
    }
    format!("uid{uid}")
}
