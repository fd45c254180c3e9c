//! Loads the vector files in `tests/fixtures/`.

use std::collections::BTreeMap;

use codec::{Dialect, Message, decode, framing};
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Vectors {
    pub vector: Vec<Vector>,
}

#[derive(Deserialize)]
pub struct Vector {
    pub name: String,
    #[allow(dead_code)]
    pub source: String,
    pub dialect: String,
    pub framing: String,
    pub hex: String,
    pub expect: BTreeMap<String, String>,
}

impl Vector {
    pub fn dialect(&self) -> &'static Dialect {
        Dialect::builtin(&self.dialect).unwrap()
    }

    /// The whole capture, length indicator included.
    pub fn bytes(&self) -> Vec<u8> {
        let compact: String = self.hex.split_whitespace().collect();
        hex::decode(compact).unwrap()
    }

    /// The message without its length indicator.
    pub fn body(&self) -> Vec<u8> {
        let all = self.bytes();
        let framing = match self.framing.as_str() {
            "u16" => codec::Framing::U16,
            "ascii4" => codec::Framing::Ascii4,
            _ => codec::Framing::None,
        };
        let (body, rest) = framing::split(framing, &all).unwrap();
        assert!(rest.is_empty(), "{}: bytes after the message", self.name);
        body.to_vec()
    }

    pub fn decode<'a>(&self, body: &'a [u8]) -> Message<'a> {
        decode(self.dialect(), body).unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }
}

#[derive(Deserialize)]
pub struct Malformed {
    pub malformed: Vec<Bad>,
}

#[derive(Deserialize)]
pub struct Bad {
    pub name: String,
    #[allow(dead_code)]
    pub source: String,
    pub dialect: String,
    pub hex: String,
    pub part: String,
    pub kind: String,
}

pub fn vectors() -> Vec<Vector> {
    let v: Vectors = toml::from_str(include_str!("../fixtures/messages.toml")).unwrap();
    v.vector
}

pub fn malformed() -> Vec<Bad> {
    let v: Malformed = toml::from_str(include_str!("../fixtures/malformed.toml")).unwrap();
    v.malformed
}

pub fn vector(name: &str) -> Vector {
    vectors().into_iter().find(|v| v.name == name).unwrap()
}
