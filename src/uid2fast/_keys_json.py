"""The keys JSON writer: the ``body`` of a ``/v2/key/sharing`` or ``/v2/key/bidstream`` response.

The parser is :func:`uid2fast.refresh_keys_util.parse_keys_json`; this is its inverse, and the only place
that writes the format (docs/keys-and-envelope.md#keys-json). Users: :func:`uid2fast.keyfile.keys_body` (a key
file from a key set), :class:`uid2fast.testing.LocalOperator` (its key endpoints) and the benchmarks.
"""
from __future__ import annotations

import base64
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

__all__ = ["keys_json_body"]

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
