"""The engine dispatcher: the C engine unless it is switched off or missing, else the Python twin.

``UID2FAST_NO_EXTENSIONS=1`` forces the pure-Python engine; ``UID2FAST_REQUIRE_EXTENSIONS=1`` makes a
missing C engine an ImportError (CI sets it so a broken build cannot silently fall back).
Everything else in the package calls the engine through this module, never ``_engine_c`` directly.
"""
import contextlib
import os
import platform
from typing import Any, Iterator, Optional

from . import _engine_py

import_error: Optional[BaseException] = None
_c: Any = None


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


if _flag("UID2FAST_NO_EXTENSIONS") or platform.python_implementation() != "CPython":
    if _flag("UID2FAST_REQUIRE_EXTENSIONS"):
        raise ImportError("UID2FAST_REQUIRE_EXTENSIONS is set but the C engine is disabled (UID2FAST_NO_EXTENSIONS)")
else:
    import importlib.util

    try:
        if importlib.util.find_spec(f"{__package__}._engine_c") is None:
            # a pure-Python installation (no compiler at install time, or a py3-none-any wheel): say so rather
            # than let `from . import` blame a circular import
            raise ImportError("this installation of uid2fast has no C engine (a pure-Python build: no C compiler "
                              "or a failed build at install time, or the py3-none-any wheel)")
        from . import _engine_c as _c  # type: ignore[attr-defined,no-redef]
        if not _c.hw_available():
            # the C engine's only AES is the CPU's (csrc/uid2_kernels.h)
            _c = None
            raise ImportError("the C engine needs AES instructions this CPU lacks (AES-NI + PCLMULQDQ on x86-64, "
                              "the ARMv8 crypto extensions on aarch64): using the pure-Python engine")
    except ImportError as exc:  # pragma: no cover - depends on the build and the CPU
        import_error = exc
        if _flag("UID2FAST_REQUIRE_EXTENSIONS"):
            raise ImportError(f"UID2FAST_REQUIRE_EXTENSIONS is set but the C engine is unavailable: {exc}") from exc

c_engine = _c
"""The compiled engine module, or None where it is not built or switched off."""

_py_decrypt = _engine_py.decrypt_token
_py_encrypt = _engine_py.encrypt_token


def _python_functions() -> dict:
    def decrypt_token(keys: Any, token: Any, now_us: int, client: int, domain: Any) -> tuple:
        """Decrypt one token with the pure-Python engine."""
        return _py_decrypt(None if keys is None else keys._engine_table(), token, now_us, client, domain)

    def encrypt_token(keys: Any, uid: Any, now_us: int, keyset_id: Any, scope: Any, established_ms: int) -> tuple:
        return _py_encrypt(None if keys is None else keys._engine_table(), uid, now_us, keyset_id, scope,
                           established_ms)

    return {"decrypt_token": decrypt_token, "encrypt_token": encrypt_token}


def _c_functions(c: Any) -> dict:
    c_decrypt = c.decrypt_token
    c_encrypt = c.encrypt_token

    def decrypt_token(keys: Any, token: Any, now_us: int, client: int, domain: Any) -> tuple:
        """Decrypt with the C engine; inputs it does not take (non-ASCII or non-str) get the twin,
        which mirrors the official SDK for every type."""
        if keys is None:
            return c_decrypt(None, "", now_us, client, None)
        if type(token) is str and token.isascii() and (domain is None or type(domain) is str):
            return c_decrypt(keys._engine_table(), token, now_us, client, domain)
        return _py_decrypt(keys._py_engine_table(), token, now_us, client, domain)

    def encrypt_token(keys: Any, uid: Any, now_us: int, keyset_id: Any, scope: Any, established_ms: int) -> tuple:
        if keys is None:
            return c_encrypt(None, "", now_us, None, None, established_ms)
        if (type(uid) is str and uid.isascii() and (keyset_id is None or type(keyset_id) is int)
                and (scope is None or isinstance(scope, int))):
            return c_encrypt(keys._engine_table(), uid, now_us, keyset_id, None if scope is None else int(scope),
                             established_ms)
        return _py_encrypt(keys._py_engine_table(), uid, now_us, keyset_id, scope, established_ms)

    return {"decrypt_token": decrypt_token, "encrypt_token": encrypt_token}


impl: Any = None
backend = ""
decrypt_token: Any = None
encrypt_token: Any = None


def _select(module: Any) -> None:
    global impl, backend, decrypt_token, encrypt_token
    impl = module
    backend = "python" if module is _engine_py else "c"
    funcs = _python_functions() if module is _engine_py else _c_functions(module)
    decrypt_token = funcs["decrypt_token"]
    encrypt_token = funcs["encrypt_token"]


_select(_c if _c is not None else _engine_py)


@contextlib.contextmanager
def use(name: str) -> Iterator[None]:
    """Run a block on one engine (``"c"`` or ``"py"``): for tests that compare the engines."""
    if name in ("c", "C") and _c is None:
        raise RuntimeError(f"the C engine is not available: {import_error}")
    previous = impl
    _select(_c if name in ("c", "C") else _engine_py)
    try:
        yield
    finally:
        _select(previous)


def build_table(args: dict) -> Any:
    """The active engine's key table from ``EncryptionKeysCollection._table_args()``."""
    return impl.KeyTable(**args)


def build_py_table(args: dict) -> Any:
    return _engine_py.KeyTable(**args)


def decrypt_tokens(keys: Any, tokens: Any, now_us: int, client: int, domains: Any, threads: Optional[int]) -> dict:
    table = None if keys is None else keys._engine_table()
    return impl.decrypt_tokens(table, tokens, now_us, client, domains, threads)


def encrypt_tokens(keys: Any, uids: Any, now_us: int, keyset_id: Any, scope: Any, established_ms: int,
                   threads: Optional[int]) -> tuple:
    table = None if keys is None else keys._engine_table()
    return impl.encrypt_tokens(table, uids, now_us, keyset_id, scope, established_ms, threads)
