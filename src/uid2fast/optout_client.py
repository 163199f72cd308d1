"""Opt-out status client: ``/v2/optout/status`` (no official SDK has it).

Request ``{"advertising_ids": [raw UIDs]}`` (at most 5,000 per request; this client splits larger
inputs); response body ``{"opted_out": [{"advertising_id": ..., "opted_out_since": epoch ms}]}`` listing
only the raw UIDs that opted out. Needs an API key with the MAPPER role (advertisers, data providers).
"""
from __future__ import annotations

import datetime as dt
import json
from datetime import timezone
from typing import Any, Dict, Iterable, List, Optional, Tuple

import requests

from ._batching import DEFAULT_MAX_IN_FLIGHT, MAX_IDENTITIES_PER_REQUEST, check_batch_options, run_chunks
from ._http import HttpConfig
from ._operator_client import OperatorClient
# The request steps, looked up here by OperatorClient._post (patchable like the official clients' hooks).
from .request_response_util import auth_headers, create_envelope, make_request, parse_response  # noqa: F401

__all__ = ["OptOutClient"]


class OptOutClient(OperatorClient):
    """Ask the operator whether raw UIDs have opted out.

    Parameters
    ----------
    base_url : str
        Base URL of the operator.
    api_key : str
        The API key.
    secret : str
        The base64 client secret.
    http : HttpConfig, optional
        Timeouts and retries.
    session : requests.Session, optional
        A session to share connections with.
    max_batch_size : int
        Raw UIDs per request (at most 5,000).
    max_in_flight : int
        Requests in flight at once for a split input.

    Examples
    --------
    >>> client = OptOutClient(base_url, api_key, secret)  # doctest: +SKIP
    >>> status = client.get_optout_status(["MiRG9zUyRU2GYF1kR0FFJ/3RNGWmXUAuqmtTtWdKn0E="])  # doctest: +SKIP
    >>> status["MiRG9zUyRU2GYF1kR0FFJ/3RNGWmXUAuqmtTtWdKn0E="] is None  # not opted out  # doctest: +SKIP
    """

    _hooks = __name__

    def __init__(self, base_url: str, api_key: str, secret: str, *,
                 http: Optional[HttpConfig] = None, session: Optional[requests.Session] = None,
                 max_batch_size: int = MAX_IDENTITIES_PER_REQUEST,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        check_batch_options(max_batch_size, max_in_flight)
        super().__init__(base_url, api_key, secret, http=http, session=session)
        self._max_batch_size = max_batch_size
        self._max_in_flight = max_in_flight

    def _request(self, raw_uids: List[str], deadline: Any = None) -> Dict[str, int]:
        return optout_parse(self._post(OPTOUT_PATH, optout_request(raw_uids), deadline=deadline))

    def get_optout_status(self, raw_uids: Iterable[str]) -> Dict[str, Optional[dt.datetime]]:
        """When each raw UID opted out.

        Parameters
        ----------
        raw_uids : iterable of str
            Base64 raw UIDs (e.g. from identity map or token decryption).

        Returns
        -------
        dict
            Every input raw UID -> the aware UTC datetime it opted out, or None if it has not.

        Raises
        ------
        Uid2HttpError
            HTTP failure after retries.
        ValueError
            A non-success status or an undecryptable response.
        """
        uids, chunks = optout_chunks(raw_uids, self._max_batch_size)
        deadline = self._call_deadline()  # the whole split call, not each request, gets call_timeout
        return optout_result(uids, run_chunks(lambda c: self._request(c, deadline), chunks, self._max_in_flight))


# The request and the result, shared with the asyncio client (uid2fast.aio).
OPTOUT_PATH = "/v2/optout/status"


def optout_chunks(raw_uids: Iterable[str], size: int) -> Tuple[List[str], List[List[str]]]:
    """The distinct raw UIDs in input order, and them in requests of at most ``size``."""
    uids = list(dict.fromkeys(raw_uids))
    if any(not isinstance(u, str) for u in uids):
        raise TypeError("raw_uids must be strings")
    return uids, [uids[i:i + size] for i in range(0, len(uids), size)]


def optout_request(raw_uids: List[str]) -> bytes:
    return json.dumps({"advertising_ids": raw_uids}).encode()


def optout_parse(payload: bytes) -> Dict[str, int]:
    """The opted-out raw UIDs of one response and when (epoch ms); ``ValueError`` for a non-success status."""
    response = json.loads(payload)
    if response.get("status") != "success":
        raise ValueError("Got unexpected optout status response status: " + str(response.get("status")))
    out: Dict[str, int] = {}
    for item in (response.get("body") or {}).get("opted_out", []):
        out[item["advertising_id"]] = int(item["opted_out_since"])
    return out


def optout_result(uids: List[str], parts: Iterable[Dict[str, int]]) -> Dict[str, Optional[dt.datetime]]:
    """Every raw UID to the aware UTC time it opted out, or None."""
    opted: Dict[str, int] = {}
    for part in parts:
        opted.update(part)
    return {u: (dt.datetime.fromtimestamp(opted[u] / 1000.0, tz=timezone.utc) if u in opted else None)
            for u in uids}
