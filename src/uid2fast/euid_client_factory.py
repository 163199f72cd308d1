from .client import Uid2Client

__all__ = ["EuidClientFactory"]


class EuidClientFactory:
    @staticmethod
    def create(endpoint: str, auth_key: str, secret_key: str) -> Uid2Client:
        """A legacy client for EUID."""
        return Uid2Client.create_euid(endpoint, auth_key, secret_key)
