//! The `hsm-sim` ceremony binary: outputs and error messages.

use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hsm-sim"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn kcv_of_a_clear_key() {
    let (ok, out, _) = run(&["kcv", "--clear", "0123456789ABCDEFFEDCBA9876543210"]);
    assert!(ok);
    assert_eq!(out.trim(), "08D7B4");
    let (ok, out, _) = run(&[
        "kcv",
        "--clear",
        "2B7E151628AED2A6ABF7158809CF4F3C",
        "--alg",
        "aes128",
    ]);
    assert!(ok);
    assert_eq!(out.trim(), "7AD386");
}

#[test]
fn clear_errors() {
    let cases: [(&[&str], &str); 5] = [
        (&["kcv", "--clear", "01234XYZ"], "not hex"),
        (
            &["kcv", "--clear", "0123456789ABCDEF01"],
            "DES keys are 8, 16 or 24 bytes",
        ),
        (&["kcv", "--clear", "012"], "odd number of hex characters"),
        (
            &["key", "generate", "--test-lmk", "--usage", "pin"],
            "unknown key usage \"pin\"",
        ),
        (
            &[
                "key",
                "import",
                "--test-lmk",
                "--usage",
                "tmk",
                "--alg",
                "aes256",
                "--clear",
                "0123456789ABCDEF",
            ],
            "is 32 bytes",
        ),
    ];
    for (args, want) in cases {
        let (ok, _, err) = run(args);
        assert!(!ok, "{args:?} succeeded");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("backtrace"), "{err}");
    }
}

#[test]
fn lmk_file_generate_and_inspect() {
    let dir = std::env::temp_dir().join(format!("hsm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lmk = dir.join("lmk.hex");
    let _ = std::fs::remove_file(&lmk);
    let lmk_s = lmk.to_str().unwrap();
    let (ok, out, err) = run(&["lmk", "new", "--out", lmk_s]);
    assert!(ok, "{err}");
    let check = out
        .lines()
        .find_map(|l| l.strip_prefix("check value: "))
        .unwrap()
        .to_owned();
    // Never overwrites.
    let (ok, _, err) = run(&["lmk", "new", "--out", lmk_s]);
    assert!(!ok && err.contains("never overwritten"), "{err}");
    let (ok, out, _) = run(&["lmk", "check", "--lmk", lmk_s]);
    assert!(ok && out.contains(&check));

    let (ok, out, err) = run(&[
        "key",
        "import",
        "--lmk",
        lmk_s,
        "--usage",
        "tmk",
        "--clear",
        "0123456789ABCDEFFEDCBA9876543210",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("kcv:    08D7B4"), "{out}");
    let sealed = out
        .lines()
        .find_map(|l| l.strip_prefix("sealed: "))
        .unwrap()
        .to_owned();
    assert!(
        !out.contains("0123456789ABCDEFFEDCBA9876543210"),
        "clear key echoed"
    );
    let (ok, out, _) = run(&["key", "inspect", "--lmk", lmk_s, "--sealed", &sealed]);
    assert!(ok && out.contains("usage:  TMK"), "{out}");
    // Under the demo LMK the same record does not open.
    let (ok, _, err) = run(&["key", "inspect", "--test-lmk", "--sealed", &sealed]);
    assert!(!ok && err.contains("does not open"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
