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

/// Runs with `input` on standard input (not a terminal: the hidden prompts read from it).
fn run_with_input(args: &[&str], input: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_hsm-sim"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sealed_kcv(out: &str) -> &str {
    out.lines()
        .find_map(|l| l.strip_prefix("kcv:    "))
        .unwrap_or("")
}

#[test]
fn key_import_reads_the_clear_key_from_stdin_never_argv() {
    // A fresh (unpublished) double-length key and its check value, from the kcv command.
    let key = "1F2E3D4C5B6A79880F1E2D3C4B5A6978";
    let (_, kcv, _) = run(&["kcv", "--clear", key]);
    let kcv = kcv.trim().to_owned();
    for args in [
        &[
            "key",
            "import",
            "--test-lmk",
            "--usage",
            "zpk",
            "--clear",
            "-",
        ][..],
        &["key", "import", "--test-lmk", "--usage", "zpk"][..],
    ] {
        let (ok, out, err) = run_with_input(args, &format!("{key}\n"));
        assert!(ok, "{args:?}: {err}");
        assert_eq!(sealed_kcv(&out), kcv, "{out}");
        assert!(!out.contains(key) && !err.contains(key), "clear key echoed");
        assert!(!err.contains("command line"), "no argv warning: {err}");
        assert!(!err.contains("published"), "{err}");
    }
    // On the command line it still works, with a warning.
    let (ok, out, err) = run(&[
        "key",
        "import",
        "--test-lmk",
        "--usage",
        "zpk",
        "--clear",
        key,
    ]);
    assert!(ok && sealed_kcv(&out) == kcv, "{err}");
    assert!(err.contains("shows in `ps`"), "{err}");
    // Nothing on standard input: a clear error, not a key of nothing.
    let (ok, _, err) = run_with_input(&["key", "import", "--test-lmk", "--usage", "zpk"], "");
    assert!(!ok && err.contains("standard input ended"), "{err}");
}

#[test]
fn key_import_from_components_shows_each_check_value() {
    // Three components whose XOR is the classic test key 0123…3210 (a published key: the
    // tool says so).
    let c1 = "1111111111111111AAAAAAAAAAAAAAAA";
    let c2 = "22222222222222225555555555555555";
    let key = hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap();
    let c3: Vec<u8> = key
        .iter()
        .zip(hex::decode(c1).unwrap())
        .zip(hex::decode(c2).unwrap())
        .map(|((k, a), b)| k ^ a ^ b)
        .collect();
    let c3 = hex::encode_upper(c3);
    let (ok, out, err) = run_with_input(
        &[
            "key",
            "import",
            "--test-lmk",
            "--usage",
            "tmk",
            "--components",
            "3",
        ],
        &format!("{c1}\n{c2}\n{c3}\n"),
    );
    assert!(ok, "{err}");
    for (i, c) in [c1, c2, c3.as_str()].iter().enumerate() {
        let (_, kcv, _) = run(&["kcv", "--clear", c]);
        let line = format!("component {} of 3 check value: {}", i + 1, kcv.trim());
        assert!(err.contains(&line), "{line} in {err}");
        assert!(!err.contains(c) && !out.contains(c), "component echoed");
    }
    assert!(err.contains("combined key check value: 08D7B4"), "{err}");
    assert_eq!(sealed_kcv(&out), "08D7B4");
    assert!(err.contains("published key"), "{err}");
    // Two components of different lengths: refused.
    let (ok, _, err) = run_with_input(
        &[
            "key",
            "import",
            "--test-lmk",
            "--usage",
            "tmk",
            "--components",
            "2",
        ],
        &format!("{c1}\n0123456789ABCDEF\n"),
    );
    assert!(!ok && err.contains("not the same length"), "{err}");
    // One component is not a ceremony.
    let (ok, _, _) = run(&[
        "key",
        "import",
        "--test-lmk",
        "--usage",
        "tmk",
        "--components",
        "1",
    ]);
    assert!(!ok);
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
