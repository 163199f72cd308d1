"""Identity map v2 client: ``/v2/identity/map`` and ``/v2/identity/buckets``."""
from __future__ import annotations

import datetime as dt
import json
import warnings
from typing import Any, Dict, List, Optional

import requests

from ._batching import DEFAULT_MAX_IN_FLIGHT, MAX_IDENTITIES_PER_REQUEST, check_batch_options, run_chunks
from ._http import HttpConfig
from ._operator_client import OperatorClient
from .identity_buckets_response import IdentityBucketsResponse
from .identity_map_input import IdentityMapInput
from .identity_map_response import IdentityMapResponse
from .input_util import get_datetime_utc_iso_format
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
__all__ = ["IdentityMapClient",
           "BINARY", "Envelope", "Uid2Response", "auth_headers", "create_envelope", "make_binary_request",
           "make_request", "parse_response", "post"]

# create_envelope, make_request, parse_response and auth_headers are looked up in this module's namespace
# at call time: patching ``uid2fast.identity_map_client.<name>`` works as with the official module.


_V2_DEPRECATED = ("{path} (identity map v2) is deprecated by UID2 from 30 September 2026: use identity map v3, "
                  "uid2fast.IdentityMapV3Client (/v3/identity/map), which also reports previous raw UIDs and "
                  "refresh times in place of salt buckets")


class IdentityMapClient(OperatorClient):
    """Client for identity map v2 (raw UIDs and salt buckets). Deprecated: use :class:`IdentityMapV3Client`.

    The UID2 service deprecates ``/v2/identity/map`` and ``/v2/identity/buckets`` from 30 September 2026;
    both methods still work and emit a ``DeprecationWarning`` that points to identity map v3.

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
        Identities per request (default and maximum 5,000, the operator's limit); larger inputs are split.
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

    def _request(self, path: str, data: bytes, deadline: Any = None) -> bytes:
        return self._post(path, data, deadline=deadline)

    def generate_identity_map(self, identity_map_input: IdentityMapInput) -> IdentityMapResponse:
        """Map emails/phones (or hashes) to raw UIDs and bucket ids.

        Inputs larger than ``max_batch_size`` are sent as several requests (at most ``max_in_flight`` at a
        time); the merged response is what a single request would give.

        Raises
        ------
        Uid2HttpError
            HTTP failure after retries.
        ValueError
            A non-success status or an undecryptable response.
        """
        path = "/v2/identity/map"
        warnings.warn(_V2_DEPRECATED.format(path=path), DeprecationWarning, stacklevel=2)
        chunk_jsons = None
        if hasattr(identity_map_input, "_chunk_json_strings") and \
                identity_map_input._size() > self._max_batch_size:
            chunk_jsons = identity_map_input._chunk_json_strings(self._max_batch_size)
        if chunk_jsons is None:
            resp_body = self._request(path, identity_map_input.get_identity_map_input_as_json_string().encode())
            return IdentityMapResponse(resp_body, identity_map_input)

        deadline = self._call_deadline()  # the whole split call, not each request, gets call_timeout
        bodies = run_chunks(lambda s: self._request(path, s.encode(), deadline), chunk_jsons, self._max_in_flight)
        mapped: List[Any] = []
        unmapped: List[Any] = []
        for raw in bodies:
            parsed: Dict[str, Any] = json.loads(raw)
            if parsed.get("status") != "success":
                return IdentityMapResponse(raw, identity_map_input)  # raises the single-request error
            mapped.extend(parsed["body"].get("mapped", []))
            unmapped.extend(parsed["body"].get("unmapped", []))
        return IdentityMapResponse._from_parsed(
            {"status": "success", "body": {"mapped": mapped, "unmapped": unmapped}}, identity_map_input)

    def get_identity_buckets(self, since_timestamp: dt.datetime) -> IdentityBucketsResponse:
        """Salt buckets rotated since ``since_timestamp`` (a naive datetime is local time).

        Raises
        ------
        AttributeError
            ``since_timestamp`` is not a datetime (as the official client).
        """
        warnings.warn(_V2_DEPRECATED.format(path="/v2/identity/buckets"), DeprecationWarning, stacklevel=2)
        data = json.dumps({"since_timestamp": get_datetime_utc_iso_format(since_timestamp)}).encode()
        return IdentityBucketsResponse(self._request("/v2/identity/buckets", data))
