"""uid2fast.install_as_uid2_client(): ``uid2_client`` imports resolve to uid2fast's own module objects.

Each case runs in a fresh interpreter, because the point is what ``sys.modules`` looks like there.
"""
import os
import subprocess
import sys
import textwrap

import pytest

import uid2fast

# Where the uid2fast under test lives: src/ of the checkout (in-place build) or site-packages (an installed
# build, as .ci/run and the wheel check test it); the fresh interpreters must import that one.
SRC = os.path.dirname(os.path.dirname(os.path.abspath(uid2fast.__file__)))


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True,
                          text=True, timeout=120)


def test_imports_resolve_to_the_same_objects():
    r = _run("""
        import sys
        import uid2fast
        uid2fast.install_as_uid2_client()
        uid2fast.install_as_uid2_client()   # a second call is harmless

        import uid2_client
        from uid2_client import BidstreamClient, DecryptionStatus
        from uid2_client.identity_scope import IdentityScope
        from uid2_client.bidstream_client import BidstreamClient as B2
        import uid2_client.encryption as enc
        import uid2_client.batch                      # a uid2fast addition, answered by the finder
        from uid2fast._dropin import OFFICIAL_SUBMODULES

        assert uid2_client is uid2fast
        assert BidstreamClient is uid2fast.BidstreamClient is B2
        assert DecryptionStatus is uid2fast.DecryptionStatus
        assert IdentityScope is uid2fast.identity_scope.IdentityScope
        assert enc is uid2fast.encryption
        assert sys.modules["uid2_client.batch"] is sys.modules["uid2fast.batch"]
        for name in OFFICIAL_SUBMODULES:
            assert sys.modules["uid2_client." + name] is sys.modules["uid2fast." + name], name
        # nothing was executed twice: every module object in sys.modules is a uid2fast one
        for k, v in sys.modules.items():
            if k.startswith("uid2_client"):
                assert v.__name__.startswith("uid2fast"), (k, v.__name__)
        try:
            import uid2_client.no_such_module
        except ModuleNotFoundError:
            pass
        else:
            raise AssertionError("a missing module imported")
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_patching_a_submodule_global_reaches_the_client():
    r = _run("""
        import base64
        from unittest import mock
        import uid2fast
        uid2fast.install_as_uid2_client()
        from uid2_client import IdentityMapClient, IdentityMapInput

        class Sentinel(Exception):
            pass

        client = IdentityMapClient("http://127.0.0.1:9", "key", base64.b64encode(b"s" * 32).decode())
        with mock.patch("uid2_client.identity_map_client.make_request", side_effect=Sentinel) as m:
            try:
                client.generate_identity_map(IdentityMapInput.from_emails(["a@example.com"]))
            except Sentinel:
                pass
        assert m.call_count >= 1, m.call_count
        assert m.call_args.args[1] == "/v2/identity/map"
        print("ok")
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_refuses_when_the_official_package_is_already_imported():
    pytest.importorskip("uid2_client")
    r = _run("""
        import uid2_client.identity_scope     # the official package
        import uid2fast
        try:
            uid2fast.install_as_uid2_client()
        except ImportError as exc:
            print(exc)
        else:
            raise AssertionError("no error")
    """)
    assert r.returncode == 0, r.stderr
    assert "already imported" in r.stdout and "before anything imports uid2_client" in r.stdout
