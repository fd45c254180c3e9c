//! `codec`: dialect tools.
//!
//! ```text
//! codec import-jpos PACKAGER.xml [--name NAME] > dialect.toml   jPOS GenericPackager → dialect
//! codec export-jpos DIALECT > packager.xml                      dialect → jPOS GenericPackager
//! codec show DIALECT                                            a dialect as a TOML file
//! ```
//!
//! DIALECT is a built-in name (`cup-pos`, `iso87-ascii`, `iso87-binary`) or a dialect file
//! (TOML, or JSON when it ends in `.json`). What could not be carried over is listed on
//! stderr, one line each.

use std::process::ExitCode;

use codec::jpos;
use codec::spec::DialectDef;

const USAGE: &str = "usage:
  codec import-jpos PACKAGER.xml [--name NAME]   a jPOS GenericPackager as a dialect (TOML on stdout)
  codec export-jpos DIALECT                      a dialect as a jPOS GenericPackager (XML on stdout)
  codec show DIALECT                             a dialect as a TOML file
DIALECT: cup-pos, iso87-ascii, iso87-binary, or a dialect file (.toml, .json)";

fn dialect_def(name: &str) -> Result<DialectDef, String> {
    let (text, json) = match codec::Dialect::builtin_source(name) {
        Some(t) => (t.to_owned(), false),
        None => (
            std::fs::read_to_string(name)
                .map_err(|e| format!("{name}: not a built-in dialect, and not readable: {e}"))?,
            name.ends_with(".json"),
        ),
    };
    let def: DialectDef = if json {
        serde_json::from_str(&text).map_err(|e| format!("{name}: {e}"))?
    } else {
        toml::from_str(&text).map_err(|e| format!("{name}: {e}"))?
    };
    // Checked as a dialect before anything is written from it.
    codec::Dialect::from_def(def.clone()).map_err(|e| format!("{name}: {e}"))?;
    Ok(def)
}

fn run(args: &[String]) -> Result<(), String> {
    let note = |notes: &[String]| {
        for n in notes {
            eprintln!("note: {n}");
        }
    };
    match args {
        [cmd, path, rest @ ..] if cmd == "import-jpos" => {
            let name = match rest {
                [] => std::path::Path::new(path)
                    .file_stem()
                    .map_or("imported".into(), |s| s.to_string_lossy().into_owned()),
                [flag, n] if flag == "--name" => n.clone(),
                _ => return Err(USAGE.into()),
            };
            let xml = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            let got = jpos::import(&xml, &name).map_err(|e| format!("{path}: {e}"))?;
            let text = jpos::to_toml(&got.out);
            codec::Dialect::from_toml(&text)
                .map_err(|e| format!("{path}: the dialect read does not load: {e}"))?;
            print!("{text}");
            note(&got.notes);
            Ok(())
        }
        [cmd, dialect] if cmd == "export-jpos" => {
            let written = jpos::export(&dialect_def(dialect)?);
            print!("{}", written.out);
            note(&written.notes);
            Ok(())
        }
        [cmd, dialect] if cmd == "show" => {
            print!("{}", jpos::to_toml(&dialect_def(dialect)?));
            Ok(())
        }
        [flag] if flag == "--version" || flag == "-V" => {
            println!("codec {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
