from .client import Uid2Client

__all__ = ["Uid2ClientFactory"]


class Uid2ClientFactory:
    @staticmethod
    def create(endpoint: str, auth_key: str, secret_key: str) -> Uid2Client:
        """A legacy client for UID2."""
        return Uid2Client.create_uid2(endpoint, auth_key, secret_key)
