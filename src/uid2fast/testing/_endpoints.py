"""The local operator's request handling: fault injection, authentication, the envelope and the endpoints.

:func:`serve_request` is the application the HTTP server (:mod:`uid2fast.testing._server`) calls for every
request; it reads and updates the state of a :class:`~uid2fast.testing.LocalOperator` (an
:class:`~uid2fast.testing._state.OperatorState`). The wire formats are those of docs/keys-and-envelope.md.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .. import _envelope
from ._model import _DAY_MS, _ENDPOINT_ROLES, _REFRESH_PATH, RequestRecord, _Client, _ClientError, _Fault
from ._server import HttpResponse, json_response
from ._state import OperatorState

__all__ = ["serve_request"]

logger = logging.getLogger("uid2fast.testing.operator")


def serve_request(op: OperatorState, path: str, headers: Mapping[str, str], body: bytes,
                  peer_port: int) -> HttpResponse:
    """The server's application: faults, dispatch, and the request record (written before the answer goes
    out, so a client that got its response always finds the record)."""
    response = _respond(op, path, headers, body)
    binary = headers.get("content-type", "").startswith("application/octet-stream")
    redacted = {k: ("***" if k == "authorization" else v) for k, v in headers.items()}
    op.requests.append(RequestRecord(path, response[0], redacted, binary, peer_port,
                                     hashlib.sha256(body).hexdigest()))
    return response


def _respond(op: OperatorState, path: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
    delay, fault = op._take_faults(path)
    if delay > 0 and op._closing.wait(delay):
        return json_response(503, {"status": "error", "message": "operator closing"})
    if fault is not None:
        return _fault_response(fault)
    try:
        return _handle(op, path, headers, body)
    except _ClientError as err:
        obj = {"status": err.status}
        if err.status != "unauthorized":
            obj["message"] = err.message
        return json_response(err.http_status, obj)
    except Exception:  # noqa: BLE001 - a bug in the operator must not kill the server
        logger.exception("local operator failed handling %s", path)
        return json_response(500, {"status": "error", "message": "internal error"})


def _fault_response(fault: _Fault) -> HttpResponse:
    if fault.kind == "fail":
        return json_response(int(fault.value), {"status": "error", "message": "injected failure"})
    if fault.kind == "rate_limit":
        retry_after = fault.value
        value = str(int(retry_after)) if float(retry_after).is_integer() else f"{retry_after:g}"
        return 429, {"Retry-After": value}, b""
    # malformed: a 200 whose body is base64 but not a valid encrypted response
    return 200, {"Content-Type": "text/plain"}, base64.b64encode(os.urandom(48))


def _authenticate(op: OperatorState, path: str, authorization: Optional[str]) -> _Client:
    if not authorization or not authorization.startswith("Bearer "):
        raise _ClientError("missing API key", 401, "unauthorized")
    with op._lock:
        client = op._clients.get(authorization[7:].strip())
    if client is None or not (client.roles & _ENDPOINT_ROLES[path]):
        raise _ClientError("unauthorized", 401, "unauthorized")
    return client


def _open_envelope(op: OperatorState, client: _Client, body: bytes, binary: bool) -> Tuple[bytes, Any]:
    if not binary:
        try:
            body = base64.b64decode(body.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise _ClientError("Invalid body: not base64") from None
    try:
        ts, nonce, data = _envelope.decrypt_envelope(client.secret, body)
    except ValueError:
        raise _ClientError("Invalid body: cannot decrypt") from None
    if abs(op.now_ms() - ts) > 60_000:
        raise _ClientError("Request too old or client time drift")
    if not data:
        return nonce, None
    try:
        return nonce, json.loads(data)
    except ValueError:
        raise _ClientError("Invalid body: not JSON") from None


def _handle(op: OperatorState, path: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
    binary = headers.get("content-type", "").split(";")[0].strip().lower() == "application/octet-stream"
    if path == _REFRESH_PATH:
        return _handle_refresh(op, body)
    if path not in _ENDPOINT_ROLES:
        raise _ClientError("unknown endpoint", 404)
    client = _authenticate(op, path, headers.get("authorization"))
    nonce, request = _open_envelope(op, client, body, binary)
    handler = _HANDLERS[path]
    status, response_body = handler(op, client, request)
    payload: Dict[str, Any] = {"status": status}
    if response_body is not None:
        payload["body"] = response_body
    encrypted = _envelope.encrypt_response(client.secret, op.now_ms(), nonce, json.dumps(payload).encode())
    if binary:
        return 200, {"Content-Type": "application/octet-stream"}, encrypted
    return 200, {"Content-Type": "text/plain"}, base64.b64encode(encrypted)


def _handle_refresh(op: OperatorState, body: bytes) -> HttpResponse:
    try:
        raw = base64.b64decode(body.strip(), validate=True)
        if raw[:1] != b"\x02":
            raise ValueError("unknown refresh token version")
        inner = json.loads(_envelope.decrypt_gcm(op._refresh_key, raw[1:]))
    except (binascii.Error, ValueError):
        raise _ClientError("Invalid Token", 400, "invalid_token") from None
    now = op.now_ms()
    if now > inner["x"]:
        raise _ClientError("Expired Token", 400, "expired_token")
    ident = (inner["k"], inner["h"])
    if ident in op._refresh_optout or op._optout_time(ident) is not None:
        payload: Dict[str, Any] = {"status": "optout"}
    else:
        payload = {"status": "success",
                   "body": op._issue_identity(ident, inner["s"], inner["e"], v1=inner["r"] is None)}
    data = json.dumps(payload).encode()
    if inner["r"] is None:  # v1 session: plain JSON
        return 200, {"Content-Type": "application/json"}, data
    return 200, {"Content-Type": "text/plain"}, base64.b64encode(
        _envelope.encrypt_gcm(base64.b64decode(inner["r"]), data))


# -- endpoints: each returns (status, body) ----------------------------------------------------


def _ep_key_sharing(op: OperatorState, client: _Client, request: Any) -> Tuple[str, Any]:
    return "success", op._keys_json(client, bidstream=False)


def _ep_key_bidstream(op: OperatorState, client: _Client, request: Any) -> Tuple[str, Any]:
    return "success", op._keys_json(client, bidstream=True)


def _require_object(request: Any) -> Dict[str, Any]:
    if not isinstance(request, dict):
        raise _ClientError("request body must be a JSON object")
    return request


def _request_identity(op: OperatorState, request: Dict[str, Any]) -> Tuple[str, str]:
    given = [k for k in ("email", "email_hash", "phone", "phone_hash") if request.get(k) is not None]
    if len(given) != 1:
        raise _ClientError("Exactly one of email, email_hash, phone, phone_hash is required")
    try:
        return op._identity(given[0], request[given[0]])
    except (ValueError, TypeError) as exc:
        raise _ClientError(str(exc)) from None


def _ep_token_generate(op: OperatorState, client: _Client, request: Any) -> Tuple[str, Any]:
    request = _require_object(request)
    ident = _request_identity(op, request)
    tcf = request.get("tcf_consent_string")
    if tcf is not None and tcf in op._insufficient_consent:
        return "insufficient_user_consent", None
    if op._optout_time(ident) is not None:
        return "optout", None
    return "success", op._issue_identity(ident, client.site_id)


def _ep_token_validate(op: OperatorState, client: _Client, request: Any) -> Tuple[str, Any]:
    request = _require_object(request)
    token = request.get("token")
    if not isinstance(token, str) or not token:
        raise _ClientError("Required Parameter Missing: token")
    ident = _request_identity(op, request)
    try:
        uid, _, _ = op.decrypt_token(token)
    except ValueError:
        return "success", False
    return "success", uid == base64.b64encode(op._raw_uid_bytes(ident)).decode()


def _check_count(op: OperatorState, n: int) -> None:
    if n > op.max_identities_per_request:
        raise _ClientError(f"Too many identities: {n} > {op.max_identities_per_request}")


def _map_one(op: OperatorState, kind: str, value: Any) -> Tuple[Optional[Tuple[str, str]], Optional[str]]:
    """(identity, None) or (None, unmapped reason)."""
    try:
        ident = op._identity(kind, value)
    except (ValueError, TypeError):
        return None, "invalid identifier"
    if op._optout_time(ident) is not None:
        return None, "optout"
    return ident, None


def _ep_identity_map_v2(op: OperatorState, client: _Client, request: Any) -> Tuple[str, Any]:
    request = _require_object(request)
    given = [k for k in ("email", "email_hash", "phone", "phone_hash") if request.get(k) is not None]
    if len(given) != 1 or not isinstance(request[given[0]], list):
        raise _ClientError("Exactly one of email, email_hash, phone, phone_hash (a list) is required")
    kind = given[0]
    values = request[kind]
    _check_count(op, len(values))
    mapped, unmapped = [], []
    for value in values:
        ident, reason = _map_one(op, kind, value)
        if ident is None:
            unmapped.append({"identifier": value, "reason": reason})
        else:
            mapped.append({"identifier": value,
                           "advertising_id": base64.b64encode(op._raw_uid_bytes(ident)).decode(),
                           "bucket_id": op._bucket_id(op._bucket(ident))})
    body: Dict[str, Any] = {"mapped": mapped}
    if unmapped:
        body["unmapped"] = unmapped
    return "success", body


def _ep_identity_map_v3(op: OperatorState, client: _Client, request: Any) -> Tuple[str, Any]:
    request = _require_object(request)
    kinds = ("email", "email_hash", "phone", "phone_hash")
    lists = {k: request.get(k) or [] for k in kinds}
    if any(not isinstance(v, list) for v in lists.values()):
        raise _ClientError("identity arrays must be lists")
    _check_count(op, sum(len(v) for v in lists.values()))
    now = op.now_ms()
    body: Dict[str, List[Dict[str, Any]]] = {}
    for kind in kinds:
        out: List[Dict[str, Any]] = []
        for value in lists[kind]:
            ident, reason = _map_one(op, kind, value)
            if ident is None:
                out.append({"e": reason})
                continue
            bucket = op._bucket(ident)
            prev_rot = op._bucket_previous_rotation[bucket]
            previous = None
            if prev_rot is not None and now - prev_rot < 90 * _DAY_MS and op._bucket_version[bucket] > 0:
                previous = base64.b64encode(
                    op._raw_uid_bytes(ident, op._bucket_version[bucket] - 1)).decode()
            refresh_from = max(op._bucket_updated[bucket] + 30 * _DAY_MS, now + _DAY_MS) // 1000
            out.append({"u": base64.b64encode(op._raw_uid_bytes(ident)).decode(), "p": previous,
                        "r": refresh_from})
        body[kind] = out
    return "success", body


def _ep_identity_buckets(op: OperatorState, client: _Client, request: Any) -> Tuple[str, Any]:
    request = _require_object(request)
    since = request.get("since_timestamp")
    try:
        since_dt = dt.datetime.fromisoformat(since)
        if since_dt.tzinfo is not None:
            raise ValueError("offset not allowed")
    except (TypeError, ValueError):
        raise _ClientError("invalid date, must conform to ISO 8601") from None
    since_ms = int(since_dt.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    out = []
    with op._lock:
        for i in range(op._n_buckets):
            updated = op._bucket_updated[i]
            if updated > since_ms:
                ts = dt.datetime.fromtimestamp(updated / 1000, tz=dt.timezone.utc).replace(tzinfo=None)
                out.append({"bucket_id": op._bucket_id(i),
                            "last_updated": ts.isoformat(timespec="milliseconds")})
    return "success", out


def _ep_optout_status(op: OperatorState, client: _Client, request: Any) -> Tuple[str, Any]:
    request = _require_object(request)
    ids = request.get("advertising_ids")
    if not isinstance(ids, list):
        raise _ClientError("Required Parameter Missing: advertising_ids")
    _check_count(op, len(ids))
    with op._lock:
        by_uid = dict(op._raw_uid_optouts)
        for ident, when in op._optouts.items():
            by_uid.setdefault(base64.b64encode(op._raw_uid_bytes(ident)).decode(), when)
    return "success", {"opted_out": [{"advertising_id": u, "opted_out_since": by_uid[u]}
                                     for u in ids if isinstance(u, str) and u in by_uid]}


_HANDLERS: Dict[str, Callable[[OperatorState, _Client, Any], Tuple[str, Any]]] = {
    "/v2/key/sharing": _ep_key_sharing,
    "/v2/key/bidstream": _ep_key_bidstream,
    "/v2/token/generate": _ep_token_generate,
    "/v2/token/validate": _ep_token_validate,
    "/v2/identity/map": _ep_identity_map_v2,
    "/v3/identity/map": _ep_identity_map_v3,
    "/v2/identity/buckets": _ep_identity_buckets,
    "/v2/optout/status": _ep_optout_status,
}
