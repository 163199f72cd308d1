from typing import Any, Mapping, Optional

from ._env import credentials_from_env
from .client import Uid2Client

__all__ = ["EuidClientFactory"]


class EuidClientFactory:
    @staticmethod
    def create(endpoint: str, auth_key: str, secret_key: str) -> Uid2Client:
        """A legacy client for EUID."""
        return Uid2Client.create_euid(endpoint, auth_key, secret_key)

    @staticmethod
    def from_env(prefix: str = "EUID", environ: Optional[Mapping[str, str]] = None, **kwargs: Any) -> Uid2Client:
        """A legacy client for EUID from ``EUID_BASE_URL``, ``EUID_API_KEY`` and ``EUID_SECRET_KEY``.

        ``prefix`` picks other variables, ``environ`` another mapping than ``os.environ``; ``kwargs`` go to the
        client (``http=``, ``session=``). Raises ``ValueError`` naming a missing variable, never a value.
        """
        return Uid2Client.create_euid(*credentials_from_env(prefix, environ), **kwargs)
