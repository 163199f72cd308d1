"""Key files: the ``body`` of a ``/v2/key/bidstream`` or ``/v2/key/sharing`` response, saved as JSON.

A key file holds key secrets, so :func:`save_keys` creates it with mode 0600 (never wider, not even for
an instant: the file is opened with ``os.open(..., 0o600)``) under a temporary name in the target
directory and renames it into place once complete, so a reader never sees half a file.

>>> save_keys(body, "keys.json")  # doctest: +SKIP
>>> keys = load_keys("keys.json")  # doctest: +SKIP
>>> uid2fast.decrypt_tokens(tokens, keys)  # doctest: +SKIP
"""
import json
import os
import sys
from typing import Any, Dict, Union

from ._keys_json import keys_json_body, parse_keys_json
from ._time import to_us
from .identity_scope import IdentityScope
from .keys import EncryptionKeysCollection

__all__ = ["load_keys", "save_keys", "keys_body", "parse_keys_body"]

PathLike = Union[str, "os.PathLike[str]"]


def _unwrap(doc: Any) -> Any:
    # Accept the whole decrypted response ({"body": ..., "status": "success"}) as well as its body.
    if isinstance(doc, dict) and "body" in doc and "keys" not in doc:
        return doc["body"]
    return doc


def parse_keys_body(body: Any, source: str = "keys") -> EncryptionKeysCollection:
    """An :class:`EncryptionKeysCollection` from a keys body (dict, or its JSON text).

    Raises
    ------
    ValueError
        When the body is not a keys object; the message names ``source`` and never contains a secret.
    """
    if isinstance(body, (str, bytes, bytearray)):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise ValueError(f"{source}: not valid JSON ({exc})") from None
    body = _unwrap(body)
    if not isinstance(body, (dict, list)):
        raise ValueError(f"{source}: not a UID2 keys file (expected a JSON object with a 'keys' array)")
    if isinstance(body, dict) and "keys" not in body:
        raise ValueError(f"{source}: not a UID2 keys file (no 'keys' field)")
    response = parse_keys_json(body)
    if not response.success:
        raise ValueError(f"{source}: malformed keys file ({response.reason})")
    return response.keys


def _looks_like_json(text: Any) -> bool:
    """True for text that is a keys body rather than a path (a BOM and leading whitespace allowed)."""
    return isinstance(text, str) and text.lstrip("\ufeff \t\r\n").startswith(("{", "["))


def load_keys(path: PathLike) -> EncryptionKeysCollection:
    """Read a key file written by :func:`save_keys` (or ``uid2fast keys fetch``).

    Parameters
    ----------
    path : str or os.PathLike
        A JSON file holding the keys response ``body`` (the whole response is accepted too).

    Returns
    -------
    EncryptionKeysCollection

    Raises
    ------
    OSError
        The file cannot be read.
    ValueError
        The file is not a keys body (the message names the file), or ``path`` is keys JSON text.
    """
    name = os.fspath(path)
    if _looks_like_json(name) and not os.path.exists(name):
        # The keys JSON itself was passed: open() would fail with the whole text, key secrets included,
        # as the file name in its message.
        raise ValueError("load_keys takes the path of a key file, not the keys JSON (use parse_keys_body)")
    with open(name, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not a UID2 keys file (not UTF-8 text)") from None
    return parse_keys_body(text, name)


def save_keys(body: Dict[str, Any], path: PathLike) -> None:
    """Write a keys ``body`` to ``path`` as JSON, mode 0600, atomically (temporary file + rename).

    Parameters
    ----------
    body : dict
        The ``body`` of a keys response (validated before anything is written).
    path : str or os.PathLike
        The key file; an existing file is replaced only once the new one is complete.
    """
    name = os.fspath(path)
    parse_keys_body(body, "keys body")  # refuse to save something load_keys would reject
    data = json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")
    directory = os.path.dirname(os.path.abspath(name))
    tmp = os.path.join(directory, f".{os.path.basename(name)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # O_CREAT's mode is already 0600 under any umask; this pins it on odd filesystems
        os.replace(tmp, name)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def keys_body(keys: EncryptionKeysCollection) -> Dict[str, Any]:
    """The keys body (as the operator sends it) that :func:`parse_keys_body` turns back into ``keys``.

    Used to ship a key set to Spark executors as plain JSON; the result holds key secrets.
    """
    if not isinstance(keys, EncryptionKeysCollection):
        raise TypeError(f"keys must be an EncryptionKeysCollection, not {type(keys).__name__}")

    def secs(value: Any) -> Any:
        us = to_us(value)
        return us // 1_000_000 if us % 1_000_000 == 0 else us / 1_000_000

    def lifetime(value: Any) -> Any:
        return None if value is None or value == sys.maxsize else value  # sys.maxsize: not in the JSON

    out_keys = [{"id": k.key_id, "created": secs(k.created), "activates": secs(k.activates),
                 "expires": secs(k.expires), "secret": k.secret, "site_id": k.site_id, "keyset_id": k.keyset_id}
                for k in keys.values()]
    return keys_json_body(
        out_keys, identity_scope=IdentityScope(keys.get_identity_scope()).name, site_data=keys.get_site_data(),
        caller_site_id=keys.get_caller_site_id(), master_keyset_id=keys.get_master_keyset_id(),
        default_keyset_id=keys.get_default_keyset_id(), token_expiry_seconds=keys.get_token_expiry_seconds(),
        max_sharing_lifetime_seconds=lifetime(keys.get_max_sharing_lifetime_seconds()),
        max_bidstream_lifetime_seconds=lifetime(keys.get_max_bidstream_lifetime_seconds()),
        allow_clock_skew_seconds=keys.get_allow_clock_skew_seconds())
