"""Converts tests/vectors/decrypt.json into the plain text csrc/tests/engine_vectors.c reads, so the C engine
can be checked on a machine (or under an emulator) that has no Python for it.

    python scripts/arm64_vectors.py OUT.txt      (run from the repository root, with PYTHONPATH=src)

Each keyset becomes the arguments of uid2_table_new exactly as the Cython wrapper builds them (from
KeyContainer._table_args()); each decrypt vector becomes one CASE line (the keyset, the client type, now in
microseconds, the token as hex). A SUCCESS vector also carries the uid the official SDK returned, which the
driver checks on its own, with the status the Python suite expects (tests/test_vectors.py's _expected: the
SDK's answer adjusted where uid2fast deliberately differs), as far as the C level decides it: "R" where the
SDK raised (legacy decrypt raises for every status but SUCCESS: the driver checks the status is not SUCCESS),
and INVALID_PAYLOAD also matches MALFORMED (the Python layer reports that one as INVALID_PAYLOAD outside the
legacy call). Every other field is compared between builds (see scripts/arm64_check.sh).

    TABLE <n_keys> <n_groups> <n_sites> <n_names> <scope> <caller_state> <caller_site> <master_group>
          <default_group> <token_expiry_s> <max_sharing_s> <max_bidstream_s> <skew_s> <has_latest> <latest_us>
    KEY <id> <id_is_u32> <site_id> <group> <activates_us> <expires_us> <secret_hex>
    SITE <site_id> <first_name> <n_names>
    NAME <utf8_hex>
    CASE <table_index> <client> <now_us> <token_hex> <expected_status or R> <expected_uid or ->
"""
import json
import pathlib
import re
import sys

import uid2fast as U
from tests.test_vectors import _expected

CLIENTS = {"sharing": 1, "bidstream": 2, "legacy": 3}
U32 = 1 << 32
I64 = (1 << 63) - 1


# the C engine's status codes, by name (one `UID2_STATUS_NAME = value,` per line in the header)
_HEADER = pathlib.Path("csrc/uid2_engine.h").read_text()
STATUS = {m[0]: int(m[1]) for m in re.findall(r"UID2_STATUS_(\w+) = (\d+)", _HEADER)}


def sat(v):
    return max(-I64 - 1, min(I64, int(v)))


def hexs(b):
    return b.hex() if b else "-"


def table_lines(args):
    keys = args["keys"]
    groups = {}
    for k in keys:
        if k[2] is not None:
            groups.setdefault(k[2], len(groups))
    sites, names = [], []
    for s, v in {int(s): list(v) for s, v in args["site_domains"].items()}.items():
        if 0 <= s < U32:
            first = len(names)
            names.extend(n.encode() for n in v if isinstance(n, str))
            sites.append((s, first, len(names) - first))
    caller = args["caller_site_id"]
    state, site = (0, 0) if caller is None else (1, caller) if isinstance(caller, int) and 0 <= caller < U32 else (2, 0)
    latest = args["latest_expires_us"]
    out = [" ".join(str(x) for x in (
        "TABLE", len(keys), len(groups), len(sites), len(names), sat(args["identity_scope"]), state, site,
        groups.get(args["master_keyset_id"], -1), groups.get(args["default_keyset_id"], -1),
        sat(args["token_expiry_seconds"]), sat(args["max_sharing_lifetime_seconds"]),
        sat(args["max_bidstream_lifetime_seconds"]), sat(args["allow_clock_skew_seconds"]),
        0 if latest is None else 1, 0 if latest is None else sat(latest)))]
    for key_id, site_id, keyset_id, act, exp, secret in keys:
        u32 = isinstance(key_id, int) and 0 <= key_id < U32
        out.append(" ".join(str(x) for x in (
            "KEY", key_id if u32 else 0, int(u32), sat(site_id), -1 if keyset_id is None else groups[keyset_id],
            sat(act), sat(exp), hexs(bytes(secret)))))
    out += ["SITE %d %d %d" % s for s in sites]
    out += ["NAME %s" % hexs(n) for n in names]
    return out


def main(path):
    data = json.loads(pathlib.Path("tests/vectors/decrypt.json").read_text())
    lines, index = [], {}
    for v in data["vectors"]:
        if v["kind"] == "keyset":
            r = U.parse_keys_json(v["body"])
            assert r.success, r.reason
            index[v["name"]] = len(index)
            lines += table_lines(r.keys._table_args())
    n = 0
    for v in data["vectors"]:
        if v["kind"] != "decrypt":
            continue
        token = v["token"]
        assert isinstance(token, str) and token.isascii(), "the driver takes ASCII str tokens only"
        exp = _expected(v)[0]
        res = exp.get("result")
        status = "R" if res is None else str(STATUS[res["status"]])
        uid = None if res is None else res["uid"]
        lines.append("CASE %d %d %d %s %s %s" % (index[v["keyset"]], CLIENTS[v["client"]], v["now_ms"] * 1000,
                                                 hexs(token.encode()), status, uid or "-"))
        n += 1
    pathlib.Path(path).write_text("\n".join(lines) + "\n")
    print("%d tables, %d cases -> %s" % (len(index), n, path))


if __name__ == "__main__":
    main(sys.argv[1])
