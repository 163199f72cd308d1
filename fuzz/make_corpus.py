"""Write the seed corpus of fuzz/fuzz_decrypt.c from the conformance vectors (tests/vectors/decrypt.json).

    PYTHONPATH=src python3 fuzz/make_corpus.py OUT_DIR

The input layout (little-endian) is the one ``read_desc`` in fuzz_decrypt.c reads; fuzz/README.md documents
it. Key sets are parsed by uid2fast itself (``parse_keys_json(...).keys._table_args()``), so the tables are
exactly what the Python layer hands the C engine. Seeds:

- mode 0: every distinct (token, client, key set, now) of the vectors, as text (and as bytes / the
  undecodable claim for some), plus a few multi-token batches;
- mode 1 / 2: v2 and v3/v4 plaintexts (master payload, identity or site payload) for the harness to encrypt
  with the table's keys: valid, expired, client-side generated (with and without a matching domain), opted
  out, a 33-byte raw UID, EUID;
- mode 3: every raw UID of the vectors for the v4 encrypt -> decrypt round trip.
Deterministic: the same vectors give the same files (named by content hash).
"""
import base64
import hashlib
import json
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors" / "decrypt.json"

MODE_RAW, MODE_V2, MODE_V3, MODE_ENCRYPT = 0, 1, 2, 3
CLIENT_BITS = {"bidstream": 0, "sharing": 1, "legacy": 3}
OPT_BYTES, OPT_ALT, OPT_TWO_THREADS, OPT_ROW_DOMAINS, OPT_UNDECODABLE = 4, 8, 16, 32, 64
NONE_DOMAIN = 0xFF


def u8(v):
    return struct.pack("<B", v & 0xFF)


def i8(v):
    return struct.pack("<b", v)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def i64(v):
    return struct.pack("<q", max(-(1 << 63), min((1 << 63) - 1, v)))


def be(v, n):
    return (v & ((1 << (8 * n)) - 1)).to_bytes(n, "big")


class Table:
    """A key set as the harness describes it, from EncryptionKeysCollection._table_args()."""

    def __init__(self, args):
        self.args = args
        self.groups = {}
        for k in args["keys"]:
            if k[2] is not None:
                self.groups.setdefault(k[2], len(self.groups))
        self.scope = args["identity_scope"]

    def key(self, key_id):
        return [k for k in self.args["keys"] if k[0] == key_id][-1]

    def keyset_key(self, keyset_id):
        return [k for k in self.args["keys"] if k[2] == keyset_id][-1]

    def encode(self, mode, opts, now_us, domain=None):
        a = self.args
        out = [u8(mode), u8(opts), i64(now_us), i8(a["identity_scope"])]
        cs = a["caller_site_id"]
        out += [u8(0 if cs is None else 1), u32(cs or 0)]
        out += [i8(self.groups.get(a["master_keyset_id"], -1)), i8(self.groups.get(a["default_keyset_id"], -1))]
        out += [i64(a["token_expiry_seconds"]), i64(a["max_sharing_lifetime_seconds"]),
                i64(a["max_bidstream_lifetime_seconds"]), i64(a["allow_clock_skew_seconds"])]
        le = a["latest_expires_us"]
        out += [u8(0 if le is None else 1), i64(le or 0)]
        keys = a["keys"][:8]
        out += [u8(len(self.groups)), u8(len(keys))]
        for key_id, site_id, keyset_id, act, exp, secret in keys:
            out += [u32(key_id), u8(1), i64(site_id), i8(-1 if keyset_id is None else self.groups[keyset_id]),
                    i64(act), i64(exp), u8(len(secret)), bytes(secret)]
        sites, names = [], []
        for site_id, site_names in list(a["site_domains"].items())[:4]:
            first = len(names)
            names += [n.encode() for n in site_names if isinstance(n, str)][: 8 - len(names)]
            sites.append((site_id, first, len(names) - first))
        out.append(u8(len(sites)))
        for site_id, first, count in sites:
            out += [u32(site_id), u8(first), u8(count)]
        out.append(u8(len(names)))
        for n in names:
            out += [u8(len(n)), n]
        if domain is None:
            out.append(u8(NONE_DOMAIN))
        else:
            d = domain.encode()
            out += [u8(len(d)), d]
        return b"".join(out)


def load():
    sys.path.insert(0, str(ROOT / "src"))
    import uid2fast

    data = json.loads(VECTORS.read_text())
    tables, cases = {}, []
    for v in data["vectors"]:
        if v["kind"] == "keyset":
            r = uid2fast.parse_keys_json(v["body"])
            assert r.success, r.reason
            tables[v["name"]] = Table(r.keys._table_args())
        elif v["kind"] == "decrypt":
            cases.append(v)
    return tables, cases


def v2_plain(t, now_ms, *, expires_ms, site_key_id, uid, established_ms, site_id=9000):
    master = t.keyset_key(t.args["master_keyset_id"])
    hdr = b"\x02" + be(master[0], 4) + bytes(range(16))
    m = be(expires_ms, 8) + be(site_key_id, 4) + bytes(range(16, 32))
    ident = be(site_id, 4) + be(len(uid), 4) + uid + be(0, 4) + be(established_ms, 8)
    return u8(len(hdr)) + hdr + u8(len(m)) + m + u8(0) + u8(0) + ident


def v3_plain(t, now_ms, *, version, expires_ms, generated_ms, site_key_id, raw, privacy=0, established_ms=None,
             prefix=None, site_id=9000, tamper=0):
    master = t.keyset_key(t.args["master_keyset_id"])
    if prefix is None:
        prefix = (t.scope << 4) | 3
    hdr = bytes([prefix, version]) + be(master[0], 4)
    m = be(expires_ms, 8) + be(generated_ms, 8) + be(0, 4) + b"\x01" + be(0, 4) + be(0, 4) + be(site_key_id, 4)
    established_ms = now_ms - 86_400_000 if established_ms is None else established_ms
    sp = be(site_id, 4) + be(0, 8) + be(0, 4) + be(privacy, 4) + be(established_ms, 8) + be(generated_ms, 8) + raw
    return (u8(len(hdr)) + hdr + u8(len(m)) + m + bytes(range(12)) + bytes(range(12, 24)) + u8(tamper) + sp)


def encrypt_args(established_ms, *, keyset_group=None, scope=None):
    return (u8(keyset_group is not None) + i8(keyset_group or 0) + u8(scope is not None) + i8(scope or 0) + u8(1)
            + i64(established_ms))


def seeds():
    tables, cases = load()
    out = []
    seen = set()
    # mode 0: the vectors' tokens
    for i, v in enumerate(cases):
        key = (v["token"], v["client"], v["keyset"], v["now_ms"])
        if key in seen:
            continue
        seen.add(key)
        t = tables[v["keyset"]]
        opts = CLIENT_BITS[v["client"]]
        opts |= (OPT_BYTES if i % 3 == 0 else 0) | (OPT_UNDECODABLE if i % 5 == 0 else 0)
        domain = "example.com" if i % 2 else None
        out.append(t.encode(MODE_RAW, opts, v["now_ms"] * 1000, domain) + v["token"].encode())
    # mode 0: batches (one of them split across two threads), per-row domains
    for name, t in tables.items():
        toks = [v["token"].encode() for v in cases if v["keyset"] == name and v["client"] == "bidstream"][:12]
        now_us = cases[0]["now_ms"] * 1000
        out.append(t.encode(MODE_RAW, OPT_ROW_DOMAINS, now_us, "Example.COM") + b"\xff".join(toks))
        out.append(t.encode(MODE_RAW, OPT_TWO_THREADS, now_us) + b"\xff".join(toks[:4]))
    # modes 1 and 2: plaintexts the harness encrypts with the table's keys
    for t in tables.values():
        now_ms = cases[0]["now_ms"]
        now_us = now_ms * 1000
        site_key = t.keyset_key(t.args["default_keyset_id"])[0]
        uid44 = base64.b64encode(bytes(range(32)))
        for client in ("bidstream", "sharing", "legacy"):
            cb = CLIENT_BITS[client]
            out.append(t.encode(MODE_V2, cb, now_us) + v2_plain(t, now_ms, expires_ms=now_ms + 3_600_000,
                                                                site_key_id=site_key, uid=uid44,
                                                                established_ms=now_ms - 86_400_000))
            for version, alt in ((112, 0), (128, OPT_ALT)):
                for privacy, domain in ((0, None), (2, "example.com"), (2, "other.example"), (4, None)):
                    out.append(t.encode(MODE_V3, cb | alt, now_us, domain) + v3_plain(
                        t, now_ms, version=version, expires_ms=now_ms + 3_600_000, generated_ms=now_ms - 60_000,
                        site_key_id=site_key, raw=bytes(range(32)), privacy=privacy))
            out.append(t.encode(MODE_V3, cb | OPT_ALT, now_us) + v3_plain(
                t, now_ms, version=128, expires_ms=now_ms + 3_600_000, generated_ms=now_ms - 60_000,
                site_key_id=site_key, raw=bytes([0x14]) + bytes(range(32))))
        out.append(t.encode(MODE_V2, OPT_BYTES, now_us) + v2_plain(
            t, now_ms, expires_ms=now_ms - 1, site_key_id=site_key, uid="é".encode() * 22, established_ms=now_ms))
        for uid in ("é".encode() * 21 + b"\xc3", b"\xed\xa0\x80" * 4, b"\xf4\x90\x80\x80", b""):
            out.append(t.encode(MODE_V2, CLIENT_BITS["legacy"], now_us) + v2_plain(
                t, now_ms, expires_ms=now_ms + 3_600_000, site_key_id=site_key, uid=uid, established_ms=now_ms))
        for domain in ("Example.COM", "EXAMPLE.COM.", "com.Example.App"):
            out.append(t.encode(MODE_V3, CLIENT_BITS["bidstream"] | OPT_ALT, now_us, domain) + v3_plain(
                t, now_ms, version=128, expires_ms=now_ms + 3_600_000, generated_ms=now_ms - 60_000,
                site_key_id=site_key, raw=bytes(range(32)), privacy=2))
        out.append(t.encode(MODE_RAW, OPT_BYTES, now_us) + b"\xff".join(
            [b"A===", b"AAAAA===", b"Ag==A===", b"AHA=====", b"AIAA-_-_A", b"AIA", b"====AHAA"]))
        out.append(t.encode(MODE_V3, OPT_TWO_THREADS | OPT_ALT, now_us) + v3_plain(
            t, now_ms, version=128, expires_ms=now_ms + 3_600_000, generated_ms=now_ms + 600_000,
            site_key_id=site_key, raw=bytes(range(31))))
    # mode 3: raw UIDs through v4 encryption and back
    raw_uids = sorted({v["raw_uid"] for v in cases if v.get("raw_uid")} | {
        "ywsvDNINiZOVSsfkHpLpSJzXzhr6Jx9Z/4Q0+lsEUvM=", "FGE1nya4/Uy+uOFcALa0r05xfyusJQf9Xm+NV9/Ng31R"})
    for t in tables.values():
        now_ms = cases[0]["now_ms"]
        for j, uid in enumerate(raw_uids):
            opts = CLIENT_BITS["sharing"] | (OPT_TWO_THREADS if j == 0 else 0)
            out.append(t.encode(MODE_ENCRYPT, opts, now_ms * 1000) + encrypt_args(now_ms - 86_400_000)
                       + uid.encode())
        out.append(t.encode(MODE_ENCRYPT, OPT_ALT, now_ms * 1000)
                   + encrypt_args(now_ms, keyset_group=0, scope=t.scope) + raw_uids[0].encode())
    return out


def main(argv):
    if len(argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    dest = pathlib.Path(argv[1])
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    for blob in seeds():
        (dest / hashlib.sha1(blob).hexdigest()).write_bytes(blob)
        n += 1
    print(f"fuzz seeds: {n} inputs in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
