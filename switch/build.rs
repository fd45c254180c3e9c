//! The source revision for `switch_build_info`: `git rev-parse` at build time, or
//! `SWITCH_REVISION` from the environment (a build from a tarball), else `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SWITCH_REVISION");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
    let revision = std::env::var("SWITCH_REVISION").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|r| !r.is_empty())
    });
    println!(
        "cargo:rustc-env=SWITCH_REVISION={}",
        revision.as_deref().unwrap_or("unknown")
    );
}
