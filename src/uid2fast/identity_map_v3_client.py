"""Identity map v3 client: ``/v3/identity/map`` (binary envelope)."""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Optional

import requests

from ._batching import DEFAULT_MAX_IN_FLIGHT, MAX_IDENTITIES_PER_REQUEST, check_batch_options, run_chunks
from ._http import HttpConfig
from ._operator_client import OperatorClient
from .identity_map_v3_input import IdentityMapV3Input
from .identity_map_v3_response import IdentityMapV3Response
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

# Besides the client, the names the official module has (it star-imports request_response_util).
__all__ = ["IdentityMapV3Client",
           "BINARY", "Envelope", "Uid2Response", "auth_headers", "create_envelope", "make_binary_request",
           "make_request", "parse_response", "post"]

_RESULT_KEYS = ("email", "phone", "email_hash", "phone_hash")


class IdentityMapV3Client(OperatorClient):
    """Client for identity map v3: current and previous raw UIDs and their refresh time.

    Parameters
    ----------
    base_url : str
        Base URL of the operator, e.g. ``"https://prod.uidapi.com"``.
    api_key : str
        The API key (needs the MAPPER role).
    client_secret : str
        The base64 client secret.
    http : HttpConfig, optional
        Timeouts and retries (uid2fast addition).
    session : requests.Session, optional
        A session to share connections with (uid2fast addition).
    max_batch_size : int
        Identities (emails + phones) per request, at most 5,000; larger inputs are split.
    max_in_flight : int
        Requests in flight at once for a split input (default 4).
    """

    _hooks = __name__

    def __init__(self, base_url: str, api_key: str, client_secret: str, *,
                 http: Optional[HttpConfig] = None, session: Optional[requests.Session] = None,
                 max_batch_size: int = MAX_IDENTITIES_PER_REQUEST,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        check_batch_options(max_batch_size, max_in_flight)
        super().__init__(base_url, api_key, client_secret, http=http, session=session)
        self._max_batch_size = max_batch_size
        self._max_in_flight = max_in_flight

    def _request(self, data: bytes, deadline: Any = None) -> bytes:
        return self._post(IDENTITY_MAP_V3_PATH, data, binary=True, deadline=deadline)

    def generate_identity_map(self, identity_map_input: IdentityMapV3Input) -> IdentityMapV3Response:
        """Map the input; inputs over ``max_batch_size`` are split and the results merged in order.

        Raises
        ------
        Uid2HttpError
            HTTP failure after retries.
        ValueError
            A non-success status, a malformed result or an undecryptable response.
        """
        if input_size(identity_map_input) <= self._max_batch_size:
            body = self._request(identity_map_input.get_identity_map_input_as_json_string().encode())
            return IdentityMapV3Response(body, identity_map_input)

        chunks = identity_map_input._chunk_json_strings(self._max_batch_size)
        deadline = self._call_deadline()  # the whole split call, not each request, gets call_timeout
        bodies = run_chunks(lambda s: self._request(s.encode(), deadline), chunks, self._max_in_flight)
        return merge_responses(bodies, identity_map_input)


# Shared with the asyncio client (uid2fast.aio).
IDENTITY_MAP_V3_PATH = "/v3/identity/map"


def input_size(identity_map_input: IdentityMapV3Input) -> int:
    """Identities in the input (0 for an input type without ``_size``: sent in one request)."""
    return identity_map_input._size() if hasattr(identity_map_input, "_size") else 0


def merge_responses(bodies: Iterable[bytes], identity_map_input: IdentityMapV3Input) -> IdentityMapV3Response:
    """One response from the responses of a split input, in input order."""
    merged: Dict[str, List[Any]] = {}
    for raw in bodies:
        parsed = json.loads(raw)
        if parsed.get("status") != "success":
            return IdentityMapV3Response(raw, identity_map_input)  # raises the single-request error
        for key in _RESULT_KEYS:
            values = (parsed.get("body") or {}).get(key)
            if values:
                merged.setdefault(key, []).extend(values)
    return IdentityMapV3Response._from_parsed({"status": "success", "body": merged}, identity_map_input)
