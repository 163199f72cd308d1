"""``uid2fast keys fetch``, ``uid2fast operator`` and ``uid2fast bench``."""
import argparse
import json
import os
import signal
import threading
from typing import Any, List

from ._common import CliError, _credentials, _info, _json_out, _out, require


# ---------------------------------------------------------------------------------------------------
# keys fetch
# ---------------------------------------------------------------------------------------------------
def _cmd_keys_fetch(args: argparse.Namespace) -> int:
    from .. import _http
    from ..identity_scope import IdentityScope
    from ..keyfile import parse_keys_body, save_keys
    from ..refresh_keys_util import _KeyFetcher

    api_key, secret = _credentials(args)
    base_url = args.base_url.rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise CliError(f"--base-url must start with http:// or https://, not {args.base_url!r}")
    _format_json_path(args.output)
    path = "/v2/key/bidstream" if args.kind == "bidstream" else "/v2/key/sharing"
    # --timeout bounds the whole fetch: every attempt and the retries between them.
    limits = {path: args.max_response_bytes} if args.max_response_bytes else {}
    config = _http.HttpConfig(connect_timeout=args.timeout, read_timeout=args.timeout, attempt_timeout=args.timeout,
                              call_timeout=args.timeout, retries=2, response_limits=limits)
    try:
        with _KeyFetcher(base_url, api_key, secret, config) as fetcher:
            payload = fetcher.fetch(path)
    except _http.Uid2HttpError as exc:
        status = getattr(exc, "status", None) or getattr(exc, "code", None)
        hint = " (check the API key and secret key)" if status in (400, 401, 403) else ""
        raise CliError(f"fetching {args.kind} keys from {base_url} failed: {exc.message}{hint}") from None
    except ValueError as exc:  # the response envelope did not decrypt: usually the wrong secret
        raise CliError(f"fetching {args.kind} keys from {base_url}: the response could not be decrypted "
                       f"({exc}); check the secret key") from None
    try:
        response = json.loads(payload)
    except ValueError:
        raise CliError(f"{base_url}{path} answered with something that is not JSON") from None
    status = response.get("status") if isinstance(response, dict) else None
    if status != "success":
        raise CliError(f"{base_url}{path} answered status {status!r}")
    body = response.get("body")
    keys = parse_keys_body(body, f"{base_url}{path}")
    try:
        save_keys(body, args.output)
    except OSError as exc:
        raise CliError(f"{args.output}: cannot write ({exc.strerror or exc})") from None
    info = {"output": args.output, "kind": args.kind, "keys": len(keys),
            "identity_scope": IdentityScope(keys.get_identity_scope()).name,
            "caller_site_id": keys.get_caller_site_id()}
    if args.json:
        _json_out(info)
    else:
        _info(args, f"wrote {info['keys']} {args.kind} keys ({info['identity_scope']}) to {args.output} (mode 0600)")
    return 0


def _format_json_path(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CliError(f"{path}: the directory {directory} does not exist")


# ---------------------------------------------------------------------------------------------------
# operator
# ---------------------------------------------------------------------------------------------------
def _cmd_operator(args: argparse.Namespace) -> int:
    from ..testing import LocalOperator

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    # Both signals only set the event, so a Ctrl-C at any moment ends the loop and closes the operator cleanly.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            op = LocalOperator(identity_scope=args.scope, port=args.port)
        except OSError as exc:
            raise CliError(f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc})") from None
        with op:
            roles = ("publisher", "bidstream", "sharer", "mapper")
            creds = {role: op.credentials(role) for role in roles}
            if args.json:
                _out(json.dumps({"base_url": op.base_url, "identity_scope": op.identity_scope,
                                 "credentials": {r: {"api_key": k, "secret_key": s} for r, (k, s) in creds.items()}}))
            else:
                # These are fake credentials of a local test operator; printing them is the point.
                _out(f"uid2fast local {op.identity_scope} operator listening on {op.base_url}")
                _out(f"  {'role':<10} {'api key':<56} secret key")
                for role, (key, secret) in creds.items():
                    _out(f"  {role:<10} {key:<56} {secret}")
                _out("Press Ctrl-C to stop.")
            while not stop.wait(0.5):
                pass
        if not args.json:
            _info(args, "operator stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.plot:  # before the benchmark's minutes of work, not after
        require("matplotlib", "uid2fast bench --plot")
    from .. import _bench

    argv: List[str] = []
    if args.plot:
        argv += ["--plot", args.plot]
    if args.quick:
        argv.append("--quick")
    if args.json:
        argv.append("--json")
    if args.count is not None:
        argv += ["--count", str(args.count)]
    return _bench.main(argv)
