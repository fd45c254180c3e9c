#!/usr/bin/env python3
"""Independent reference for hsm-sim's payShield host commands.

Computes, with the `cryptography` package's TDES and nothing from this repository, what a
payShield on the published test LMK set answers to a list of commands, and writes them to
hsm-sim/tests/fixtures/payshield.json (command body -> expected response body, without the
header). The Rust tests send each command to `hsm-sim serve` and compare.

    python3 scripts/payshield-vectors.py
"""
import json
import os
import warnings

warnings.filterwarnings("ignore")
try:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

LMK = [bytes.fromhex(x) for x in """
01010101010101017902CD1FD36EF8BA 20202020202020203131313131313131 40404040404040405151515151515151
61616161616161617070707070707070 80808080808080809191919191919191 A1A1A1A1A1A1A1A1B0B0B0B0B0B0B0B0
C1C1010101010101D0D0010101010101 E0E0010101010101F1F1010101010101 1C587F1C13924FEF0101010101010101
01010101010101010101010101010101 02020202020202020404040404040404 07070707070707071010101010101010
13131313131313131515151515151515 16161616161616161919191919191919 1A1A1A1A1A1A1A1A1C1C1C1C1C1C1C1C
23232323232323232525252525252525 26262626262626262929292929292929 2A2A2A2A2A2A2A2A2C2C2C2C2C2C2C2C
2F2F2F2F2F2F2F2F3131313131313131 01010101010101010101010101010101""".split()]
VARIANTS = [0, 0xA6, 0x5A, 0x6A, 0xDE, 0x2B, 0x50, 0x74, 0x9C, 0xFA]
PAIR = {"00": 2, "01": 3, "02": 7, "03": 8, "08": 13}


def tdes(key, block, enc=True):
    if len(key) == 8:
        key = key * 3
    c = Cipher(TripleDES(key), modes.ECB())
    op = c.encryptor() if enc else c.decryptor()
    return op.update(block) + op.finalize()


def lmk_key(code):
    """(pair bytes with the key type variant applied) for a 3-character key type code."""
    k = bytearray(LMK[PAIR[code[1:]]])
    k[0] ^= VARIANTS[int(code[0])]
    return k


def under(kek, key, scheme, enc=True):
    parts = [key[i:i + 8] for i in range(0, len(key), 8)]
    sv = {"U": [0xA6, 0x5A], "T": [0x6A, 0xDE, 0x2B]}.get(scheme, [0, 0, 0])
    out = b""
    for i, p in enumerate(parts):
        k = bytearray(kek)
        if len(k) > 8:
            k[8] ^= sv[i]
        out += tdes(bytes(k), p, enc)
    return out


def odd(key):
    return bytes((b & 0xFE) | (bin(b & 0xFE).count("1") % 2 == 0) for b in key)


def lmk_enc(code, key, scheme):
    return (scheme if scheme in "UTXY" else "") + under(lmk_key(code), key, scheme).hex().upper()


def kcv(key):
    return tdes(key, bytes(8)).hex().upper()


def pin_block(pin, fmt, account):
    if fmt == "01":
        p = bytes.fromhex(("%X%X" % (0, len(pin)) + pin).ljust(16, "F"))
        a = bytes.fromhex("0000" + account)
        return bytes(x ^ y for x, y in zip(p, a))
    if fmt == "03":
        return bytes.fromhex(pin.ljust(16, "F"))
    raise ValueError(fmt)


def decimalise(block, table):
    return "".join(table[int(c, 16)] for c in block.hex())


def ibm_offset(pvk, pin, table, validation, check):
    nat = decimalise(tdes(pvk, bytes.fromhex(validation)), table)[:check]
    return "".join(str((int(p) - int(n)) % 10) for p, n in zip(pin[:check], nat))


def visa_decimalise(block, n):
    h = block.hex().upper()
    d = [c for c in h if c.isdigit()] + [str(int(c, 16) - 10) for c in h if not c.isdigit()]
    return "".join(d[:n])


def pvv(pvk, account, pvki, pin):
    tsp = account[-11:] + str(pvki) + pin[:4]
    return visa_decimalise(tdes(pvk, bytes.fromhex(tsp)), 4)


def cvv(cvk, pan, exp, svc):
    data = (pan + exp + svc).ljust(32, "0")
    b1, b2 = bytes.fromhex(data[:16]), bytes.fromhex(data[16:])
    r = tdes(cvk[:8], b1)
    r = tdes(cvk[:8], bytes(x ^ y for x, y in zip(r, b2)))
    r = tdes(cvk[8:], r, False)
    r = tdes(cvk[:8], r)
    return visa_decimalise(r, 3)


def cbc(key, data):
    acc = bytes(8)
    for i in range(0, len(data), 8):
        acc = tdes(key, bytes(x ^ y for x, y in zip(acc, data[i:i + 8])))
    return acc


def pad1(d):
    return d + bytes(-len(d) % 8) if d else bytes(8)


def pad2(d):
    d = d + b"\x80"
    return d + bytes(-len(d) % 8)


def retail(key, data):
    acc = bytes(8)
    for i in range(0, len(data), 8):
        acc = tdes(key[:8], bytes(x ^ y for x, y in zip(acc, data[i:i + 8])))
    return tdes(key[:8], tdes(key[8:], acc, False))


V = []


def vec(name, cmd, resp):
    V.append({"name": name, "command": cmd, "response": resp})


# Keys (test data).
tpk = odd(bytes.fromhex("0B681FC20E62C734"))  # the TPK of the published BU/CA vector
tpk2 = odd(bytes.fromhex("1C2D3E4F5A6B7C8D9EAFB0C1D2E3F405"))
zpk = odd(bytes.fromhex("89ABCDEF0123456776543210FEDCBA98"))
zpk2 = odd(bytes.fromhex("4C5D6E7F8091A2B3C4D5E6F708192A3B"))
pvk = odd(bytes.fromhex("5E4D3C2B1A0F9E8D"))
pvk2 = odd(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
cvk = odd(bytes.fromhex("0123456789ABCDEFFEDCBA9876543210"))
tak = odd(bytes.fromhex("6A7B8C9DAEBFC0D1"))
zak = odd(bytes.fromhex("1F2E3D4C5B6A79880F1E2D3C4B5A6978"))
zmk = odd(bytes.fromhex("A1B2C3D4E5F60718293A4B5C6D7E8F90"))
table = "0123456789012345"
account = "400000123456"
pan = "4000001234562"

TPK, TPK2 = lmk_enc("002", tpk, "Z"), lmk_enc("002", tpk2, "U")
ZPK, ZPK2 = lmk_enc("001", zpk, "U"), lmk_enc("001", zpk2, "X")
PVK, PVK2 = lmk_enc("002", pvk, "Z"), lmk_enc("002", pvk2, "U")
CVK_PAIR = under(lmk_key("402"), cvk[:8], "Z").hex().upper() + under(lmk_key("402"), cvk[8:], "Z").hex().upper()
CVK_U = lmk_enc("402", cvk, "U")
TAK, ZAK = lmk_enc("003", tak, "Z"), lmk_enc("008", zak, "U")
ZMK = lmk_enc("000", zmk, "U")

vec("NC", "NC", "ND00" + tdes(LMK[0], bytes(8)).hex().upper() + "0007-E000")
vec("BU published", "BU0200406FBB23A5214DF", "BV000035BBE340A4B763")
vec("BU double TPK", "BU021" + TPK2, "BV00" + kcv(tpk2))
vec("BU ZAK FF", "BUFF1" + ZAK + ";008", "BV00" + kcv(zak))
vec("BU length flag wrong", "BU020" + TPK2, "BV27")
vec("BU bad flag", "BU027" + TPK, "BV05")
vec("CA published", "CA0406FBB23A5214DFBAB32D775A38E4AB12DC80B186C30902B00303550000025321",
    "CB0004F7808F2CBEC6316803")

for pin, fmt_in, fmt_out in [("1234", "01", "01"), ("987654", "01", "03"), ("123456789012", "03", "01")]:
    blk = tdes(tpk2, pin_block(pin, fmt_in, account)).hex().upper()
    out = tdes(zpk, pin_block(pin, fmt_out, account)).hex().upper()
    vec(f"CA {fmt_in}->{fmt_out} len {len(pin)}",
        f"CA{TPK2}{ZPK}12{blk}{fmt_in}{fmt_out}{account}", f"CB00{len(pin):02d}{out}{fmt_out}")
    zblk = tdes(zpk, pin_block(pin, fmt_in, account)).hex().upper()
    out2 = tdes(zpk2, pin_block(pin, fmt_out, account)).hex().upper()
    vec(f"CC {fmt_in}->{fmt_out} len {len(pin)}",
        f"CC{ZPK}{ZPK2}12{zblk}{fmt_in}{fmt_out}{account}", f"CD00{len(pin):02d}{out2}{fmt_out}")
blk6 = tdes(tpk2, pin_block("987654", "01", account)).hex().upper()
vec("CA longer than max", f"CA{TPK2}{ZPK}04{blk6}0101{account}", "CB24")
vec("CA bad format", f"CA{TPK2}{ZPK}12{blk6}0299{account}", "CB23")
vec("CA PIN block of another account", f"CA{TPK2}{ZPK}12{blk6}0101400000654321", "CB20")

# IBM 3624: validation data = 12 account digits + FFFF (no N), and with N.
for pin in ["1234", "987654", "5739210"]:
    check = len(pin)
    validation = account + "FFFF"
    off = ibm_offset(pvk, pin, table, validation, check)
    blk = tdes(tpk, pin_block(pin, "01", account)).hex().upper()
    vec(f"DA ok len {check}", f"DA{TPK}{PVK}{check:02d}{blk}01{check:02d}{account}{table}{account}{off.ljust(12, 'F')}", "DB00")
    bad = str((int(off[-1]) + 1) % 10)
    vec(f"DA wrong len {check}", f"DA{TPK}{PVK}{check:02d}{blk}01{check:02d}{account}{table}{account}{(off[:-1] + bad).ljust(12, 'F')}", "DB01")
    zblk = tdes(zpk, pin_block(pin, "01", account)).hex().upper()
    vec(f"EA ok len {check}", f"EA{ZPK}{PVK}{check:02d}{zblk}01{check:02d}{account}{table}{account}{off.ljust(12, 'F')}", "EB00")
vd = "40000012345N"  # 11 characters and N: the account's last 5 digits make 16
validation = vd[:11] + account[-5:]
off = ibm_offset(pvk2, "2468", table, validation, 4)
blk = tdes(tpk2, pin_block("2468", "01", account)).hex().upper()
vec("DA with N in validation data", f"DA{TPK2}{PVK2}04{blk}0104{account}{table}{vd}{off}FFFFFFFF", "DB00")
blk7 = tdes(tpk, pin_block("1234567", "01", account)).hex().upper()
off4 = ibm_offset(pvk, "1234", table, account + "FFFF", 4)
vec("DA longer PIN than max", f"DA{TPK}{PVK}04{blk7}0104{account}{table}{account}{off4}FFFFFFFF", "DB24")
vec("DA longer PIN, checked digits only", f"DA{TPK}{PVK}12{blk7}0104{account}{table}{account}{off4}FFFFFFFF", "DB00")

# Visa PVV.
for pin in ["1234", "0000", "876543"]:
    v = pvv(pvk2, account, 1, pin)
    blk = tdes(tpk, pin_block(pin, "01", account)).hex().upper()
    pair = under(lmk_key("002"), pvk2[:8], "Z").hex().upper() + under(lmk_key("002"), pvk2[8:], "Z").hex().upper()
    vec(f"DC ok {pin}", f"DC{TPK}{pair}{blk}01{account}1{v}", "DD00")
    vec(f"DC tagged PVK {pin}", f"DC{TPK}{PVK2}{blk}01{account}1{v}", "DD00")
    wrong = str((int(v[0]) + 5) % 10) + v[1:]
    vec(f"DC wrong {pin}", f"DC{TPK}{PVK2}{blk}01{account}1{wrong}", "DD01")
    zblk = tdes(zpk, pin_block(pin, "01", account)).hex().upper()
    vec(f"EC ok {pin}", f"EC{ZPK}{PVK2}{zblk}01{account}1{v}", "ED00")

# CVV.
for p, e, s in [("4123456789012345", "8701", "101"), ("5555444433332222", "2512", "000")]:
    c = cvv(cvk, p, e, s)
    vec(f"CW {p[-4:]}", f"CW{CVK_PAIR}{p};{e}{s}", f"CX00{c}")
    vec(f"CW tagged {p[-4:]}", f"CW{CVK_U}{p};{e}{s}", f"CX00{c}")
    vec(f"CY ok {p[-4:]}", f"CY{CVK_PAIR}{c}{p};{e}{s}", "CZ00")
    vec(f"CY wrong {p[-4:]}", f"CY{CVK_PAIR}{(int(c) + 1) % 1000:03d}{p};{e}{s}", "CZ01")

# MACs.
msg = b"0200 sale 6222021000000000017 amount 000000012345"
vec("MA", "MA" + TAK + msg.decode(), "MB00" + cbc(tak, pad1(msg))[:4].hex().upper())
vec("MC ok", "MC" + TAK + cbc(tak, pad1(msg))[:4].hex().upper() + msg.decode(), "MD00")
vec("MC wrong", "MC" + TAK + "00000000" + msg.decode(), "MD01")
for alg, pad, size in [("1", "1", "0"), ("1", "2", "1"), ("3", "1", "1"), ("3", "2", "0")]:
    d = pad1(msg) if pad == "1" else pad2(msg)
    m = cbc(zak, d) if alg == "1" else retail(zak, d)
    m = m[:4] if size == "0" else m
    body = f"00{size}{alg}{pad}008{ZAK}{len(msg):04X}{msg.decode()}"
    vec(f"M6 alg {alg} pad {pad} size {size}", "M6" + body, "M700" + m.hex().upper())
    vec(f"M8 ok alg {alg} pad {pad}", "M8" + body + m.hex().upper(), "M900")
    vec(f"M8 wrong alg {alg} pad {pad}", "M8" + body + ("0" * len(m.hex())), "M901")
hexmsg = msg.hex().upper()
m = cbc(tak, pad1(msg))
vec("M6 hex input", f"M601111003{TAK}{len(hexmsg):04X}{hexmsg}", "M700" + m.hex().upper())
vec("M6 hex input, length in bytes", f"M601111003{TAK}{len(msg):04X}{hexmsg}", "M700" + m.hex().upper())
vec("M8 hex input, length in bytes", f"M801111003{TAK}{len(msg):04X}{hexmsg}{m.hex().upper()}", "M900")

# Import / export under a ZMK.
key = odd(bytes.fromhex("3B4C5D6E7F8091A2B3C4D5E6F708192A"))
for scheme in ["U", "X"]:
    under_zmk = scheme + under(zmk, key, scheme).hex().upper()
    vec(f"A6 ZPK {scheme}", f"A6001{ZMK}{under_zmk}U", "A700" + lmk_enc("001", key, "U") + kcv(key)[:6])
    vec(f"A8 ZPK {scheme}", f"A8001{ZMK}{lmk_enc('001', key, 'U')}{scheme}", "A900" + under_zmk + kcv(key)[:6])
vec("A6 bad parity", f"A6001{ZMK}X{under(zmk, key[:15] + bytes([key[15] ^ 1]), 'X').hex().upper()}U", "A711")

vec("unknown", "ZX", "ZY68")
vec("short CA", "CA" + TPK, "CB15")
vec("bad key type", "A0099XU", "A104")

out = os.path.join(os.path.dirname(__file__), "..", "hsm-sim", "tests", "fixtures", "payshield.json")
with open(out, "w") as f:
    json.dump({"source": "scripts/payshield-vectors.py (independent Python reference, test LMK, test keys)",
               "vectors": V}, f, indent=1)
print(len(V), "vectors ->", os.path.normpath(out))
