"""Why no row of a file job succeeded, in one sentence that says what to do about it."""
import datetime as dt
from typing import Any, Dict, Optional

from .._time import now_us, to_us
from ._common import printable

_FETCH = "run `uid2fast keys fetch`"


def _keys_problem(keys: Any, keys_path: str) -> Optional[str]:
    """What is wrong with the key set as a whole (None when it has keys that are valid now)."""
    if keys is None or len(keys) == 0:
        return f"key file {keys_path} holds no keys; {_FETCH}"
    latest = max(to_us(k.expires) for k in keys.values())
    if latest <= now_us():
        when = dt.datetime.fromtimestamp(latest / 1e6, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"key file {keys_path}: every key expired, the last at {when}; {_FETCH} for a fresh key set"
    return None


def _is_bidstream_key_set(keys: Any) -> bool:
    # A bidstream key set has neither a master keyset nor a default keyset: nothing to encrypt with.
    return keys.get_master_keyset_id() is None and keys.get_default_keyset_id() is None


def diagnose(kind: str, counts: Dict[str, int], keys: Any, keys_path: str, column: str,
             keyset_id: Optional[int] = None) -> str:
    """The likely cause when no row succeeded, from the status counts and the key set."""
    problem = _keys_problem(keys, keys_path)
    if problem is not None:
        return problem
    top = max(counts, key=lambda name: counts[name]) if counts else ""
    col = repr(printable(column))
    if kind == "encrypt":
        if top in ("NOT_AUTHORIZED_FOR_MASTER_KEY", "NOT_AUTHORIZED_FOR_KEY") and _is_bidstream_key_set(keys):
            return (f"key file {keys_path} holds bidstream keys; encrypting needs `--kind sharing` keys "
                    f"(`uid2fast keys fetch --kind sharing`)")
        if top == "NOT_AUTHORIZED_FOR_KEY" and keyset_id is not None:
            return f"key file {keys_path} has no active key of keyset {keyset_id} (--keyset-id)"
        if top in ("NOT_AUTHORIZED_FOR_KEY", "NOT_AUTHORIZED_FOR_MASTER_KEY"):
            return f"key file {keys_path} has no active master or default keyset key; {_FETCH} --kind sharing"
        if top == "ENCRYPTION_FAILURE":
            return f"no value of column {col} is a raw UID2 (44 base64 characters); check --column"
        if top in ("KEYS_NOT_SYNCED", "NOT_INITIALIZED"):
            return f"key file {keys_path} has no key that is active now; {_FETCH}"
    else:
        if top in ("INVALID_PAYLOAD", "VERSION_NOT_SUPPORTED"):
            return (f"no value of column {col} decrypts as a UID2/EUID token; check --column, and that key file "
                    f"{keys_path} comes from the operator that issued the tokens")
        if top in ("NOT_AUTHORIZED_FOR_KEY", "NOT_AUTHORIZED_FOR_MASTER_KEY"):
            return (f"key file {keys_path} lacks the keys these tokens were encrypted with: advertising tokens need "
                    f"`--kind bidstream` keys, sharing tokens `--kind sharing` keys of a sharing partner "
                    f"(`uid2fast keys fetch`)")
        if top in ("KEYS_NOT_SYNCED", "NOT_INITIALIZED"):
            return f"key file {keys_path} has no key that is active now; {_FETCH}"
        if top == "EXPIRED_TOKEN":
            return "every token has expired; tokens are decrypted within their lifetime (days, not months)"
        if top == "INVALID_IDENTITY_SCOPE":
            from ..identity_scope import IdentityScope

            scope = IdentityScope(keys.get_identity_scope()).name
            return (f"the tokens are not {scope} tokens, and key file {keys_path} holds {scope} keys: UID2 tokens "
                    f"need UID2 keys, EUID tokens EUID keys")
        if top == "DOMAIN_NAME_CHECK_FAILED":
            return ("every token failed the domain check: check --domain-column (a client-side token's domain or "
                    "app name must be one its site lists), or use --client sharing for sharing tokens")
        if top == "USER_OPTED_OUT":
            return "every user in the file has opted out"
        if top == "INVALID_TOKEN_LIFETIME":
            return ("every token's lifetime is longer than the key file allows: sharing tokens need "
                    "--client sharing")
    shown = ", ".join(f"{name}={n:,}" for name, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"no row succeeded ({shown})"
