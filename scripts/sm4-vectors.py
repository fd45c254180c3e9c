#!/usr/bin/env python3
"""SM4 vectors for hsm-sim's tests, from an implementation independent of this repository:
the `gmssl` package from PyPI (pip install gmssl). Writes hsm-sim/tests/fixtures/sm4.json.

Each vector: a key, its check value (SM4 of 16 zero bytes, first 8 bytes), a PIN block (PIN
and PAN fields of ISO 9564 format 0 widened to 16 bytes) clear and under the key, the
UnionPay POS MAC of some data (16-byte XOR fold, hex expansion, SM4(H1) ^ H2, SM4 again,
first 8 hex characters) and its SM4 CBC-MAC (GB/T 15852.1 algorithm 1: zero IV, zero padding,
the last block). Deterministic: the inputs come from a seeded generator.
"""
import json
import random
import sys

from gmssl.sm4 import CryptSM4, SM4_DECRYPT, SM4_ENCRYPT


def sm4(key: bytes, block: bytes, mode=SM4_ENCRYPT) -> bytes:
    c = CryptSM4()
    c.set_key(key, mode)
    return bytes(c.one_round(c.sk, list(block)))


def pin_block(pin: str, pan: str) -> bytes:
    field = ("0" + format(len(pin), "X") + pin).ljust(32, "F")
    acct = pan[:-1][-12:]
    pan_field = acct.rjust(32, "0")
    return bytes(a ^ b for a, b in zip(bytes.fromhex(field), bytes.fromhex(pan_field)))


def pos_mac(key: bytes, data: bytes) -> bytes:
    x = bytearray(16)
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16].ljust(16, b"\0")
        x = bytearray(a ^ b for a, b in zip(x, chunk))
    h = bytes(x).hex().upper().encode()
    t = bytes(a ^ b for a, b in zip(sm4(key, h[:16]), h[16:]))
    r = sm4(key, t)
    return r.hex().upper()[:8].encode()


def cbc_mac(key: bytes, data: bytes) -> bytes:
    acc = bytes(16)
    blocks = [data[i:i + 16].ljust(16, b"\0") for i in range(0, len(data), 16)] or [bytes(16)]
    for b in blocks:
        acc = sm4(key, bytes(x ^ y for x, y in zip(acc, b)))
    return acc


def luhn_pan(rng: random.Random, n: int) -> str:
    body = "62" + "".join(str(rng.randrange(10)) for _ in range(n - 3))
    total = 0
    for i, d in enumerate(reversed(body)):
        v = int(d) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return body + str((10 - total % 10) % 10)


def main() -> None:
    rng = random.Random(32907)
    vectors = []
    for i in range(16):
        key = bytes(rng.randrange(256) for _ in range(16))
        pin = "".join(str(rng.randrange(10)) for _ in range(rng.choice([4, 6, 6, 8, 12])))
        pan = luhn_pan(rng, rng.choice([16, 17, 19]))
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 70)))
        clear = pin_block(pin, pan)
        vectors.append({
            "key": key.hex().upper(),
            "check_value": sm4(key, bytes(16))[:8].hex().upper(),
            "pin": pin,
            "pan": pan,
            "pin_block_clear": clear.hex().upper(),
            "pin_block": sm4(key, clear).hex().upper(),
            "data": data.hex().upper(),
            "mac": pos_mac(key, data).decode(),
            "cbc_mac": cbc_mac(key, data).hex().upper(),
        })
    doc = {
        "source": "scripts/sm4-vectors.py with gmssl (PyPI), seed 32907: TEST DATA",
        "vectors": vectors,
    }
    with open("hsm-sim/tests/fixtures/sm4.json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
