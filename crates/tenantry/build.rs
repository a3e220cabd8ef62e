//! Stamps the binary with its git commit and the WIT packages it serves, for
//! `tenantry --version`. Never fails: a build from a tarball (no git, no `wit/`)
//! says "unknown".

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=TENANTRY_GIT_COMMIT={commit}");
    // Rebuild the stamp when HEAD moves (a commit, a checkout). Only files that
    // exist: cargo reruns a build script on every build for a missing one.
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watch.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watch {
        if let Some(p) = git(&["rev-parse", "--git-path", &name])
            && Path::new(&p).exists()
        {
            println!("cargo:rerun-if-changed={p}");
        }
    }

    // The current package and every frozen one the host still serves.
    let packages: Vec<String> = ["../../wit/plugin.wit", "../../wit/0.1.0/plugin.wit"]
        .iter()
        .map(|rel| {
            let wit = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
            println!("cargo:rerun-if-changed={}", wit.display());
            std::fs::read_to_string(&wit)
                .ok()
                .and_then(|text| {
                    text.lines().find_map(|l| {
                        l.trim()
                            .strip_prefix("package ")
                            .map(|p| p.trim_end_matches(';').trim().to_string())
                    })
                })
                .unwrap_or_else(|| "unknown".into())
        })
        .collect();
    println!(
        "cargo:rustc-env=TENANTRY_WIT_PACKAGE={}",
        packages.join(", ")
    );
}
