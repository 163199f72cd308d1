"""``from_env()``: build a client from ``UID2_BASE_URL``, ``UID2_API_KEY`` and ``UID2_SECRET_KEY``.

Every client gets :meth:`FromEnv.from_env` from its base class (the operator clients and the key-holding
clients); the legacy factories call :func:`credentials_from_env` themselves. Only variable names ever go
into an error message, never a value: a missing or empty variable is named, and a value with a control
character or inner whitespace is refused by the same checks the constructors run, naming the variable it
came from. The constructor then checks the credentials exactly as when they are passed directly.
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping, Optional, Tuple, Type, TypeVar, cast

from ._netpolicy import check_api_key

__all__ = ["FromEnv", "credentials_from_env"]

_PREFIX = re.compile(r"[A-Za-z](?:[A-Za-z0-9_]*[A-Za-z0-9])?")  # the "_" before BASE_URL is added

T = TypeVar("T")


def credentials_from_env(prefix: str = "UID2", environ: Optional[Mapping[str, str]] = None) -> Tuple[str, str, str]:
    """``(base_url, api_key, secret_key)`` read from ``{prefix}_BASE_URL``, ``{prefix}_API_KEY`` and
    ``{prefix}_SECRET_KEY``, surrounding whitespace stripped.

    Raises
    ------
    ValueError
        A variable is missing or empty (every such variable is named), or a credential holds a control
        character or inner whitespace (the variable is named, the value is not shown).
    """
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ValueError(f"prefix must be a variable name prefix without the trailing underscore, such as 'UID2' "
                         f"or 'EUID', got {prefix!r}")
    env = os.environ if environ is None else environ
    names = [f"{prefix}_{suffix}" for suffix in ("BASE_URL", "API_KEY", "SECRET_KEY")]
    values = [env.get(name) for name in names]
    for name, value in zip(names, values):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    missing = [name for name, value in zip(names, values) if value is None or not value.strip()]
    if missing:
        raise ValueError(f"missing or empty environment variable{'s' if len(missing) > 1 else ''}: "
                         f"{', '.join(missing)}")
    base_url, api_key, secret_key = (cast(str, v).strip() for v in values)
    # The checks both client families run on both credentials (the constructor adds the base64 check of the
    # secret where it applies), here so that the message names the variable.
    check_api_key(api_key, name=f"API key in {names[1]}")
    check_api_key(secret_key, name=f"secret key in {names[2]}")
    return base_url, api_key, secret_key


class FromEnv:
    """Adds :meth:`from_env` to a client whose constructor takes ``(base_url, api_key, secret_key, ...)``."""

    @classmethod
    def from_env(cls: Type[T], prefix: str = "UID2", environ: Optional[Mapping[str, str]] = None,
                 **kwargs: Any) -> T:
        """A client built from ``{prefix}_BASE_URL``, ``{prefix}_API_KEY`` and ``{prefix}_SECRET_KEY``.

        Parameters
        ----------
        prefix : str
            ``"UID2"`` (default) or ``"EUID"``; any other prefix (e.g. ``"UID2_STAGING"``) works the same way.
        environ : mapping, optional
            Where to read the variables (default ``os.environ``, read at call time).
        **kwargs
            Passed to the constructor (``http=``, ``session=``, ``max_batch_size=``, ...).

        Raises
        ------
        ValueError
            A variable is missing or empty (named), or a credential is invalid (the value is never shown).
        """
        client: T = cast(Any, cls)(*credentials_from_env(prefix, environ), **kwargs)
        return client
