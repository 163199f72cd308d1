"""The keys JSON: the ``body`` of a ``/v2/key/sharing`` or ``/v2/key/bidstream`` response, parsed and written.

The one home of the format (docs/keys-and-envelope.md#keys-json), reader and writer side by side.

- :func:`parse_keys_json` (also ``uid2fast.parse_keys_json`` and ``uid2fast.refresh_keys_util.parse_keys_json``,
  the official module's name) reads a body into a :class:`RefreshResponse`. Unknown fields are ignored,
  ``token_expiry_seconds`` may be a string, ``site_data`` is read (docs/differences.md#domain-check) and the
  legacy ``/key/latest`` array body is accepted (docs/differences.md#key-latest-body). Users: every client's
  refresh, the key-file loader, Spark executors.
- :func:`keys_json_body` writes one, the parser's inverse. Users: :func:`uid2fast.keyfile.keys_body` (a key
  file from a key set), :class:`uid2fast.testing.LocalOperator` (its key endpoints) and the benchmarks.
"""
from __future__ import annotations

import base64
import datetime as dt
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from ._keyset_check import check_body
from .identity_scope import IdentityScope
from .keys import EncryptionKey, EncryptionKeysCollection
from .refresh_response import RefreshResponse

__all__ = ["keys_json_body", "parse_keys_json"]


# -- reading -----------------------------------------------------------------------------------------------
def _make_dt(timestamp: Any) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.timezone.utc)


def _parse_key(key: Any) -> EncryptionKey:
    return EncryptionKey(
        key["id"],
        key.get("site_id", -1),
        _make_dt(key["created"]),
        _make_dt(key["activates"]),
        _make_dt(key["expires"]),
        base64.b64decode(key["secret"]),
        key.get("keyset_id"),
    )


def parse_keys_collection(resp_body: Any) -> EncryptionKeysCollection:
    """The key set of a keys body; raises (ValueError, KeyError, TypeError...) on a malformed one."""
    # Every setting and key checked for type and range first: a broken key set fails the refresh (the
    # last good one stays in use) instead of making every later decrypt fail.
    check_body(resp_body)
    if isinstance(resp_body, list):  # legacy /key/latest body: a bare array of keys
        legacy = EncryptionKeysCollection([_parse_key(k) for k in resp_body])
        legacy._identity_scope_stated = False
        return legacy
    if not isinstance(resp_body, dict):
        raise ValueError(f"keys body must be an object or an array, not {type(resp_body).__name__}")
    identity_scope = IdentityScope.EUID if resp_body.get("identity_scope") == "EUID" else IdentityScope.UID2
    raw_keys = resp_body["keys"]
    if raw_keys is None:
        raw_keys = []
    keys = [_parse_key(k) for k in raw_keys]
    site_data = resp_body.get("site_data")  # checked by check_body: null or the array form (Java, .NET)
    collection = EncryptionKeysCollection(
        keys, identity_scope, resp_body.get("caller_site_id"), resp_body.get("master_keyset_id"),
        resp_body.get("default_keyset_id"), resp_body.get("token_expiry_seconds"),
        resp_body.get("max_sharing_lifetime_seconds"), resp_body.get("max_bidstream_lifetime_seconds"),
        resp_body.get("allow_clock_skew_seconds"), site_data=site_data,
    )
    collection._identity_scope_stated = resp_body.get("identity_scope") is not None
    return collection


def error_reason(exc: BaseException) -> str:
    """The ``reason`` of a failed refresh: a readable string (docs/differences.md#refresh-reason: the official
    reason is a tuple of ``exc.args``)."""
    text = str(exc)
    if isinstance(exc, KeyError):
        return f"missing field {text} in keys response"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def parse_keys_json(resp_body: Any) -> RefreshResponse:
    """Parse the ``body`` of a keys response into a RefreshResponse (never raises)."""
    try:
        return RefreshResponse.make_success(parse_keys_collection(resp_body))
    except Exception as exc:  # noqa: BLE001 - any malformed body is a failed refresh, as upstream
        return RefreshResponse.make_error(error_reason(exc))


# -- writing -----------------------------------------------------------------------------------------------

# Key-set settings in the order the operator writes them; each is written only when given (not None).
_SETTINGS = ("caller_site_id", "master_keyset_id", "default_keyset_id", "token_expiry_seconds",
             "max_sharing_lifetime_seconds", "max_bidstream_lifetime_seconds", "allow_clock_skew_seconds")


def keys_json_body(keys: Iterable[Mapping[str, Any]], *, identity_scope: str = "UID2",
                   site_data: Optional[Mapping[int, Sequence[str]]] = None, **settings: Any) -> Dict[str, Any]:
    """A keys JSON body.

    Parameters
    ----------
    keys : iterable of mappings
        Each with ``id``, ``created``, ``activates``, ``expires`` (epoch seconds, int or float), ``secret``
        (bytes) and optionally ``site_id`` (written unless None or -1) and ``keyset_id`` (unless None).
    identity_scope : {"UID2", "EUID"}
    site_data : mapping of site id to names, optional
        Written as the operator's list form, sites in id order, sites without names left out.
    **settings
        ``caller_site_id``, ``master_keyset_id``, ``default_keyset_id``, ``token_expiry_seconds``,
        ``max_sharing_lifetime_seconds``, ``max_bidstream_lifetime_seconds``, ``allow_clock_skew_seconds``:
        each written as given when not None.
    """
    unknown = set(settings) - set(_SETTINGS)
    if unknown:
        raise TypeError(f"unknown key-set setting(s): {sorted(unknown)}")
    if identity_scope not in ("UID2", "EUID"):
        raise ValueError(f"identity_scope must be 'UID2' or 'EUID', got {identity_scope!r}")
    body: Dict[str, Any] = {"identity_scope": identity_scope}
    for name in _SETTINGS:
        if settings.get(name) is not None:
            body[name] = settings[name]
    out: List[Dict[str, Any]] = []
    for k in keys:
        item: Dict[str, Any] = {"id": k["id"], "created": k["created"], "activates": k["activates"],
                                "expires": k["expires"], "secret": base64.b64encode(bytes(k["secret"])).decode()}
        if k.get("site_id") is not None and k["site_id"] != -1:
            item["site_id"] = k["site_id"]
        if k.get("keyset_id") is not None:
            item["keyset_id"] = k["keyset_id"]
        out.append(item)
    body["keys"] = out
    listed = [{"id": int(site), "domain_names": list(names)}
              for site, names in sorted((site_data or {}).items()) if names]
    if listed:
        body["site_data"] = listed
    return body
