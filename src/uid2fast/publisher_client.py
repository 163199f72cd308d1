"""Publisher client: ``/v2/token/generate``, ``/v2/token/refresh`` and ``/v2/token/validate``.

Usage
>>> from uid2fast import Uid2PublisherClient, TokenGenerateInput
>>> client = Uid2PublisherClient("https://prod.uidapi.com", "my-api-key", "my-secret-key")  # doctest: +SKIP
>>> identity = client.generate_token(TokenGenerateInput.from_email("user@example.com")).get_identity()  # doctest: +SKIP
"""
from __future__ import annotations

import datetime as dt
import json
from datetime import timezone
from typing import Any, Optional

import requests

from . import _envelope
from ._http import HttpConfig
from ._operator_client import OperatorClient
from .identity_tokens import IdentityTokens
from .envelope import Envelope
from .request_response_util import (  # the official module star-imports these; users import them from here
    BINARY,
    auth_headers,
    create_envelope,
    make_binary_request,
    make_request,
    parse_response,
    post,
)
from .uid2_response import Uid2Response
from .input_util import base64_to_byte_array
from .token_generate_input import TokenGenerateInput
from .token_generate_response import TokenGenerateResponse
from .token_refresh_response import TokenRefreshResponse

# Besides the client, the names the official module has (it star-imports request_response_util).
__all__ = ["Uid2PublisherClient", "base64_to_byte_array",
           "BINARY", "Envelope", "Uid2Response", "auth_headers", "create_envelope", "make_binary_request",
           "make_request", "parse_response", "post"]

# create_envelope, make_request, parse_response, post and auth_headers are looked up in this module's
# namespace at call time, so patching ``uid2fast.publisher_client.<name>`` works as with the official.


class Uid2PublisherClient(OperatorClient):
    """Client for the UID2/EUID publisher endpoints.

    Parameters
    ----------
    base_url : str
        Base URL of the operator, e.g. ``"https://prod.uidapi.com"``.
    auth_key : str
        The API key (needs the GENERATOR role). Surrounding whitespace is stripped; a control character
        raises ``ValueError`` (uid2fast addition, see :class:`~uid2fast._operator_client.OperatorClient`).
    secret_key : str
        The base64 client secret.
    http : HttpConfig, optional
        Timeouts, deadlines, retries and response limits (uid2fast addition).
    session : requests.Session, optional
        A session to share connections with (uid2fast addition).

    Examples
    --------
    >>> client = Uid2PublisherClient(base_url, api_key, secret)  # doctest: +SKIP
    >>> response = client.generate_token(TokenGenerateInput.from_email("test@email.com"))  # doctest: +SKIP
    >>> refreshed = client.refresh_token(response.get_identity())  # doctest: +SKIP
    """

    _hooks = __name__

    def __init__(self, base_url: str, auth_key: str, secret_key: str, *,
                 http: Optional[HttpConfig] = None, session: Optional[requests.Session] = None) -> None:
        super().__init__(base_url, auth_key, secret_key, http=http, session=session)

    def generate_token(self, token_generate_input: TokenGenerateInput) -> TokenGenerateResponse:
        """Generate an identity (advertising + refresh token) for an email, phone or hash.

        Returns
        -------
        TokenGenerateResponse
            ``is_optout()`` when the user opted out.

        Raises
        ------
        Uid2HttpError
            HTTP failure (an ``urllib.error.HTTPError``), after retries for 5xx/429/no response.
        ValueError
            Invalid input, or an undecryptable response.
        """
        data = token_generate_input.get_as_json_string().encode()
        return TokenGenerateResponse(self._post("/v2/token/generate", data))

    def refresh_token(self, current_identity: IdentityTokens) -> TokenRefreshResponse:
        """Refresh an identity with its refresh token.

        The response is decrypted with the identity's ``refresh_response_key``; an identity without one
        (v1 session) gets a plain JSON response (docs/differences.md#refresh-without-key).
        """
        raw = self._post("/v2/token/refresh", refresh_request(current_identity), enveloped=False)
        return refresh_result(raw, current_identity)

    def validate_token(self, advertising_token: str, identity: TokenGenerateInput) -> bool:
        """Check that an advertising token belongs to an identity (``/v2/token/validate``).

        Parameters
        ----------
        advertising_token : str
            The token to check.
        identity : TokenGenerateInput
            The identity it should encode (email, phone or a hash; hashed unless ``do_not_hash()``).

        Returns
        -------
        bool
            The operator's answer. (The production operator only validates its test identities, e.g.
            ``validate@example.com``; the local operator validates any identity.)

        Raises
        ------
        ValueError
            A non-success status.
        """
        return validate_result(self._post("/v2/token/validate", validate_request(advertising_token, identity)))


# The requests and results of the endpoints, shared with the asyncio client (uid2fast.aio).
def refresh_request(current_identity: IdentityTokens) -> bytes:
    """The ``/v2/token/refresh`` body: the refresh token itself (not enveloped)."""
    return current_identity.get_refresh_token().encode()  # type: ignore[union-attr]


def refresh_result(raw: bytes, current_identity: IdentityTokens) -> TokenRefreshResponse:
    """The response decrypted with the identity's ``refresh_response_key`` (plain JSON without one)."""
    decrypted = _envelope.decrypt_refresh_response(raw, current_identity.get_refresh_response_key())
    return TokenRefreshResponse(decrypted.decode(), dt.datetime.now(tz=timezone.utc))


def validate_request(advertising_token: str, identity: TokenGenerateInput) -> bytes:
    """The ``/v2/token/validate`` JSON: the token and the identity (without a TCF consent string)."""
    request: Any = json.loads(identity.get_as_json_string())
    request.pop("tcf_consent_string", None)
    return json.dumps({"token": advertising_token, **request}).encode()


def validate_result(payload: bytes) -> bool:
    """The operator's answer; ``ValueError`` for a non-success status."""
    response = json.loads(payload)
    if response.get("status") != "success":
        raise ValueError("Got unexpected token validate status: " + str(response.get("status")))
    return bool(response.get("body"))
