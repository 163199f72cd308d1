"""``install_as_uid2_client()``: make ``import uid2_client`` give uid2fast, as PyMySQL's ``install_as_MySQLdb()``.

After the call, ``import uid2_client``, ``from uid2_client import BidstreamClient`` and
``from uid2_client.identity_scope import IdentityScope`` all resolve to uid2fast's own module objects: the
names are the *same* objects (``uid2_client.BidstreamClient is uid2fast.BidstreamClient``), and patching a
module global (``unittest.mock.patch("uid2_client.identity_map_client.make_request")``) patches the module
the client code runs in, because there is only one.

How: each submodule the official package 2.9.0 has is imported under its uid2fast name and the same object
is entered in ``sys.modules`` under its ``uid2_client`` name. Nothing is executed a second time. A
``uid2_client.<name>`` outside that list (a uid2fast addition such as ``uid2_client.batch``) is answered
by a meta-path finder with ``uid2fast.<name>``, again the same object.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Optional, Sequence

ALIAS = "uid2_client"
TARGET = "uid2fast"

# Every module of the official uid2-client 2.9.0 package (its uid2_client/*.py).
OFFICIAL_SUBMODULES = (
    "advertising_token_version", "auto_refresh", "bidstream_client", "client", "client_type", "decryption_status",
    "encryption", "encryption_data_response", "encryption_status", "envelope", "euid_client_factory",
    "identity_buckets_response", "identity_map_client", "identity_map_input", "identity_map_response",
    "identity_map_v3_client", "identity_map_v3_input", "identity_map_v3_response", "identity_scope",
    "identity_tokens", "identity_type", "input_util", "keys", "publisher_client", "refresh_keys_util",
    "refresh_response", "request_response_util", "sharing_client", "token_generate_input",
    "token_generate_response", "token_refresh_response", "uid2_base64_url_coder", "uid2_client_factory",
    "uid2_response", "uid2_token_generator", "unmapped_identity_reason",
)


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers ``uid2_client.<name>`` (not registered eagerly) with the module ``uid2fast.<name>`` itself."""

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        if not fullname.startswith(ALIAS + "."):
            return None
        real = TARGET + fullname[len(ALIAS):]
        try:
            module = importlib.import_module(real)
        except ModuleNotFoundError as exc:
            if exc.name == real:
                return None  # no such uid2fast module: the usual ModuleNotFoundError follows
            raise
        spec = importlib.util.spec_from_loader(fullname, self, is_package=hasattr(module, "__path__"))
        if spec is not None:
            spec.loader_state = module
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return spec.loader_state  # type: ignore[no-any-return]  # the uid2fast module object itself

    def exec_module(self, module: ModuleType) -> None:
        pass  # already executed under its uid2fast name


def _is_alias(name: str) -> bool:
    return name == ALIAS or name.startswith(ALIAS + ".")


def _installed() -> bool:
    return sys.modules.get(ALIAS) is sys.modules[TARGET]


def install_as_uid2_client() -> None:
    """Make ``uid2_client`` (and every ``uid2_client.<module>``) resolve to uid2fast.

    Call it once, before anything imports ``uid2_client``; typically at the top of the program's entry
    point. Calling it again is harmless.

    Raises
    ------
    ImportError
        The official ``uid2_client`` package (or one of its modules) is already imported in this process:
        its classes would then coexist with uid2fast's and ``isinstance``/``is`` checks would disagree.
    """
    if _installed():
        return
    foreign = sorted(k for k, v in sys.modules.items() if _is_alias(k) and v is not None)
    if foreign:
        origin = getattr(sys.modules.get(foreign[0]), "__file__", None) or "?"
        raise ImportError(
            f"install_as_uid2_client(): {foreign[0]!r} is already imported (from {origin}), so the official "
            "uid2-client package is in use in this process. Call uid2fast.install_as_uid2_client() before "
            "anything imports uid2_client (e.g. first thing in your entry point), or uninstall uid2-client.")
    package = sys.modules[TARGET]
    modules = {name: importlib.import_module(f"{TARGET}.{name}") for name in OFFICIAL_SUBMODULES}
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())
    for name, module in modules.items():
        sys.modules[f"{ALIAS}.{name}"] = module
    sys.modules[ALIAS] = package


def _uninstall_uid2_client() -> None:
    """Undo :func:`install_as_uid2_client` (for tests that alternate with the official package)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _AliasFinder)]
    for name in [k for k in sys.modules if _is_alias(k)]:
        del sys.modules[name]
