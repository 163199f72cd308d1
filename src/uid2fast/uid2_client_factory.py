from typing import Any, Mapping, Optional

from ._env import credentials_from_env
from .client import Uid2Client

__all__ = ["Uid2ClientFactory"]


class Uid2ClientFactory:
    @staticmethod
    def create(endpoint: str, auth_key: str, secret_key: str) -> Uid2Client:
        """A legacy client for UID2."""
        return Uid2Client.create_uid2(endpoint, auth_key, secret_key)

    @staticmethod
    def from_env(prefix: str = "UID2", environ: Optional[Mapping[str, str]] = None, **kwargs: Any) -> Uid2Client:
        """A legacy client for UID2 from ``UID2_BASE_URL``, ``UID2_API_KEY`` and ``UID2_SECRET_KEY``.

        ``prefix`` picks other variables, ``environ`` another mapping than ``os.environ``; ``kwargs`` go to the
        client (``http=``, ``session=``). Raises ``ValueError`` naming a missing variable, never a value.
        """
        return Uid2Client.create_uid2(*credentials_from_env(prefix, environ), **kwargs)
