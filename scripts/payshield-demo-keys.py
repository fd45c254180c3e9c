#!/usr/bin/env python3
"""The demo keys (test data, switch/demo.toml) as payShield test-LMK cryptograms, with their
check values, and the demo cards' IBM 3624 offsets: what switch/demo-payshield.toml holds.

    python3 scripts/payshield-demo-keys.py

Keys are parity-adjusted first (a payShield refuses a key of even parity; DES ignores the
parity bits, so the adjusted key encrypts exactly as the original).
"""
import importlib.util
import os

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("ref", os.path.join(here, "payshield-vectors.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)  # also rewrites the vector fixture, identically

KEYS = [
    ("tmk", "002", "0123456789ABCDEFFEDCBA9876543210"),
    ("pvk", "002", "13345779133457791334577913345779"),
    ("zpk", "001", "A1B2C3D4E5F60718293A4B5C6D7E8F91"),
    ("zak", "008", "0E1F2C3D4A5B68798697A4B5C2D3E0F1"),
]
pvk = None
for name, code, clear in KEYS:
    k = ref.odd(bytes.fromhex(clear))
    if name == "pvk":
        pvk = k
    print(f'{name}_lmk = "{ref.lmk_enc(code, k, "U")}"')
    print(f'{name}_check = "{ref.kcv(k)[:6]}"')


def validation(pan):
    body = pan[:-1]
    return body[-12:].rjust(12, "0") + "FFFF"


for pan, pin in [
    ("6222021000000000017", "123456"),
    ("6222021000000000025", "123456"),
    ("6222021000000000033", "123456"),
    ("6250941000000009", "654321"),
    ("8800000000000001", "888888"),
]:
    print(pan, "offset", ref.ibm_offset(pvk, pin, "0123456789012345", validation(pan), len(pin)))
