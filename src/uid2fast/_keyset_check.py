"""Type and range checks for a key set, shared by everything that reads one.

The keys parser (``_keys_json``: every client's refresh, the key-file loader, Spark executors) runs
:func:`check_body` before building a collection, so a key set with a broken setting or key is a failed
refresh with a reason and the last good key set stays in use. The engines' key-table build runs
:func:`collection_problem` on collections built by hand, so decrypt and encrypt return
``NOT_INITIALIZED`` for an unusable collection instead of raising.

Ranges: ids are 32-bit (as in the token layouts, signed or unsigned), durations are seconds from 0 to 10**12 (so that
``now + duration`` in microseconds fits 64 bits), timestamps are epoch seconds from 0 to the end of year 9999.
Numeric settings may be decimal strings, as the official SDK's tests send them, and an empty string for an
id means none; nothing else is converted.
Messages name the setting and, for non-secret values, a short repr; a key's secret is never shown.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
from typing import Any, Optional

__all__ = ["check_body", "check_key", "collection_problem", "setting_int"]

# Ids are 32-bit in the token layouts, read signed (site ids) or unsigned (key ids): either reading is accepted.
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 32 - 1
MAX_SECONDS = 10 ** 12
MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z
#: The reason given for a key set without keys (the CLI recognises it to say what to do).
NO_KEYS = "the key set has no keys"
_DECIMAL = re.compile(r"[+-]?[0-9]{1,19}")

#: The numeric settings of a key set and their ranges.
SETTINGS = (
    ("caller_site_id", INT32_MIN, INT32_MAX),
    ("master_keyset_id", INT32_MIN, INT32_MAX),
    ("default_keyset_id", INT32_MIN, INT32_MAX),
    ("token_expiry_seconds", 0, MAX_SECONDS),
    ("max_sharing_lifetime_seconds", 0, MAX_SECONDS),
    ("max_bidstream_lifetime_seconds", 0, MAX_SECONDS),
    ("allow_clock_skew_seconds", 0, MAX_SECONDS),
)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def setting_int(name: str, value: Any, lo: int, hi: int) -> Optional[int]:
    """``value`` as an int in ``lo..hi`` (None stays None).

    Raises
    ------
    ValueError
        Not an integer (a bool, a float with a fraction, a string that is not decimal digits) or out of range.
    """
    if value is None:
        return None
    if value == "" and name.endswith("_id"):
        return None  # an empty id is "none", as the official SDK reads it (no default keyset, no site)
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, not a bool")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise ValueError(f"{name} must be an integer, got {_show(value)}")
    if not lo <= number <= hi:
        raise ValueError(f"{name} {_show(number)} is out of range {lo}..{hi}")
    return number


def _timestamp(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be epoch seconds, got {_show(value)}")
    if not 0 <= value <= MAX_EPOCH:
        raise ValueError(f"{name} {_show(value)} is out of range 0..{MAX_EPOCH}")


def check_key(key: Any, index: int) -> None:
    """Check one key object of a keys body (``id``, ``site_id``, ``keyset_id``, times, ``secret``)."""
    where = f"keys[{index}]"
    if not isinstance(key, dict):
        raise ValueError(f"{where} must be an object, not {type(key).__name__}")
    for field in ("id", "created", "activates", "expires", "secret"):
        if field not in key:
            raise ValueError(f"{where} has no {field!r}")
    if isinstance(key["id"], bool) or not isinstance(key["id"], int):
        raise ValueError(f"{where}.id must be an integer, got {_show(key['id'])}")
    setting_int(f"{where}.id", key["id"], INT32_MIN, INT32_MAX)
    for field in ("site_id", "keyset_id"):
        value = key.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{where}.{field} must be an integer, got {_show(value)}")
        setting_int(f"{where}.{field}", value, INT32_MIN, INT32_MAX)
    for field in ("created", "activates", "expires"):
        _timestamp(f"{where}.{field}", key[field])
    secret = key["secret"]
    if not isinstance(secret, str):
        raise ValueError(f"{where}.secret must be a base64 string, not {type(secret).__name__}")
    try:
        raw = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}.secret is not valid base64 (not shown)") from None
    if len(raw) != 32:
        raise ValueError(f"{where}.secret must be 32 bytes, not {len(raw)}")


def _check_site_data(site_data: Any) -> None:
    if site_data is None:
        return
    if not isinstance(site_data, list):
        raise ValueError(f"site_data must be an array, not {type(site_data).__name__}")
    for i, site in enumerate(site_data):
        if not isinstance(site, dict) or "id" not in site:
            raise ValueError(f"site_data[{i}] must be an object with an id")
        setting_int(f"site_data[{i}].id", site["id"], INT32_MIN, INT32_MAX)
        for field in ("domain_names", "app_names"):
            names = site.get(field)
            if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
                raise ValueError(f"site_data[{i}].{field} must be an array of strings")


def check_body(body: Any) -> None:
    """Check a keys body (the object, or the legacy bare array of keys) before it is parsed.

    Raises
    ------
    ValueError
        The first problem found: a setting of the wrong type or out of range, a malformed key, an unknown
        identity scope, malformed ``site_data``, or no keys at all.
    """
    if isinstance(body, list):
        keys = body
    elif isinstance(body, dict):
        scope = body.get("identity_scope")
        if scope is not None and scope not in ("UID2", "EUID"):
            raise ValueError(f"identity_scope must be \"UID2\" or \"EUID\", got {_show(scope)}")
        for name, lo, hi in SETTINGS:
            setting_int(name, body.get(name), lo, hi)
        _check_site_data(body.get("site_data"))
        if "keys" not in body:
            raise ValueError("missing field 'keys' in keys response")
        keys = body["keys"]
        if keys is not None and not isinstance(keys, list):
            raise ValueError(f"keys must be an array, not {type(keys).__name__}")
    else:
        raise ValueError(f"keys body must be an object or an array, not {type(body).__name__}")
    if not keys:
        raise ValueError(NO_KEYS)
    for i, key in enumerate(keys):
        check_key(key, i)


def collection_problem(keys: Any) -> Optional[str]:
    """Why an :class:`~uid2fast.keys.EncryptionKeysCollection` cannot be used by the engines, or None.

    Checks the settings as the parser does, and each key's id, site and keyset ids, and times (aware
    datetimes within range).
    """
    getters = {
        "caller_site_id": keys.get_caller_site_id, "master_keyset_id": keys.get_master_keyset_id,
        "default_keyset_id": keys.get_default_keyset_id, "token_expiry_seconds": keys.get_token_expiry_seconds,
        "max_sharing_lifetime_seconds": keys.get_max_sharing_lifetime_seconds,
        "max_bidstream_lifetime_seconds": keys.get_max_bidstream_lifetime_seconds,
        "allow_clock_skew_seconds": keys.get_allow_clock_skew_seconds,
    }
    try:
        for name, lo, hi in SETTINGS:
            value = getters[name]()
            if name.startswith("max_") and isinstance(value, int) and value > hi:
                continue  # "no limit" (sys.maxsize when absent): the engines clamp it
            setting_int(name, value, lo, hi)
        for key in keys._all_keys:
            for name in ("key_id", "site_id", "keyset_id"):
                value = getattr(key, name)
                if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ValueError(f"key {name} must be an integer, got {_show(value)}")
                setting_int(f"key {name}", value, INT32_MIN, INT32_MAX)
            for name in ("activates", "expires"):
                when = getattr(key, name)
                if not isinstance(when, dt.datetime) or when.tzinfo is None:
                    raise ValueError(f"key {name} must be a timezone-aware datetime")
    except ValueError as exc:
        return str(exc)
    return None
