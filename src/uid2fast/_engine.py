"""Which engine the package uses, decided once at import: the C engine unless it is switched off or
unavailable, else the pure-Python twin.

``UID2FAST_NO_EXTENSIONS=1`` forces the pure-Python engine; ``UID2FAST_REQUIRE_EXTENSIONS=1`` makes a missing
or unusable C engine an ImportError (CI sets it so a broken build cannot silently fall back). The C module
reports whether it can run on this machine (``_engine_c.unavailable_reason()``: None, or why not); the
choice is made here, once.

Nothing here changes after import. An engine is a module with the same functions over its own key table
(``KeyTable``): ``decrypt_token``, ``decrypt_result``, ``encrypt_token``, ``decrypt_tokens``, ``encrypt_tokens``.
A key collection is built on one engine (:data:`engine` unless it is given another) and carries it, so every
call with those keys runs on the engine that built their table.
"""
import os
import platform
from types import MappingProxyType, ModuleType
from typing import Mapping, Optional

from . import _engine_py

__all__ = ["engine", "backend", "c_engine", "py_engine", "import_error", "engines", "by_name"]


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def _load_c() -> "tuple[Optional[ModuleType], Optional[BaseException]]":
    """The C engine module if it is wanted, importable and usable here; else None and why."""
    if _flag("UID2FAST_NO_EXTENSIONS") or platform.python_implementation() != "CPython":
        if _flag("UID2FAST_REQUIRE_EXTENSIONS"):
            raise ImportError("UID2FAST_REQUIRE_EXTENSIONS is set but the C engine is disabled "
                              "(UID2FAST_NO_EXTENSIONS)")
        return None, None
    import importlib.util

    try:
        if importlib.util.find_spec(f"{__package__}._engine_c") is None:
            # a pure-Python installation (no compiler at install time, or a py3-none-any wheel): say so rather
            # than let `from . import` blame a circular import
            raise ImportError("this installation of uid2fast has no C engine (a pure-Python build: no C compiler "
                              "or a failed build at install time, or the py3-none-any wheel)")
        from . import _engine_c as c  # type: ignore[attr-defined]
    except ImportError as exc:  # pragma: no cover - depends on the build
        if _flag("UID2FAST_REQUIRE_EXTENSIONS"):
            raise ImportError(f"UID2FAST_REQUIRE_EXTENSIONS is set but the C engine failed to import: {exc}") from exc
        return None, exc
    reason = c.unavailable_reason()  # type: ignore[attr-defined]
    if reason is not None:
        if _flag("UID2FAST_REQUIRE_EXTENSIONS"):
            raise ImportError(f"UID2FAST_REQUIRE_EXTENSIONS is set but the C engine cannot run here: {reason}")
        return None, ImportError(reason)
    return c, None


c_engine, import_error = _load_c()
"""The compiled engine module (None where it is not built, switched off or unusable here), and why not."""

py_engine: ModuleType = _engine_py
"""The pure-Python twin: always available."""

engine: ModuleType = c_engine if c_engine is not None else _engine_py
"""The engine key collections are built on by default."""

backend: str = "c" if c_engine is not None else "python"

engines: Mapping[str, ModuleType] = MappingProxyType(
    {"py": _engine_py} if c_engine is None else {"c": c_engine, "py": _engine_py})
"""Every engine this process can run, by short name (the C one only where it is usable)."""


def by_name(name: str) -> ModuleType:
    """The engine ``"c"`` or ``"py"``; a RuntimeError when the C engine is not available."""
    if name in ("py", "python"):
        return _engine_py
    if name in ("c", "C"):
        if c_engine is None:
            raise RuntimeError(f"the C engine is not available: {import_error}")
        return c_engine
    raise ValueError(f"engine must be 'c' or 'py', not {name!r}")
