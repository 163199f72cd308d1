"""uid2fast.spark on a real local[2] SparkSession (skipped only without Java or pyspark).

One session for the module and few Spark actions: starting the JVM dominates the run time.
"""
import os
import shutil
import sys

import pytest

pytest.importorskip("pyarrow")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Java is not installed (Spark needs a JVM)", allow_module_level=True)
pyspark = pytest.importorskip("pyspark")
pytestmark = pytest.mark.no_sanitizer(reason="Spark's JVM and its Python workers do not run under the ASan "
                                             "preload")

import uid2fast  # noqa: E402
from uid2fast.keyfile import keys_body  # noqa: E402
from uid2fast.spark import decrypt_column, decrypt_schema, encrypt_column  # noqa: E402
from uid2fast.testing import LocalOperator  # noqa: E402

DOMAIN = "news.example.com"
SITE = 1001


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    # Python workers must run this interpreter (with uid2fast importable from the same path).
    src = os.path.dirname(os.path.dirname(os.path.abspath(uid2fast.__file__)))
    saved = {k: os.environ.get(k) for k in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "PYTHONPATH", "SPARK_LOCAL_IP")}
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ["PYTHONPATH"] = src + os.pathsep + os.environ.get("PYTHONPATH", "")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = (SparkSession.builder.master("local[2]").appName("uid2fast-test")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.adaptive.enabled", "false")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    try:
        yield session
    finally:
        session.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def op():
    with LocalOperator(site_data={SITE: [DOMAIN]}) as operator:
        yield operator


def _client(cls, op, role):
    client = cls(op.base_url, *op.credentials(role))
    assert client.refresh().success
    return client


def test_decrypt_column_matches_batch_api_row_for_row(spark, op):
    bid = _client(uid2fast.BidstreamClient, op, "bidstream")
    tokens = [op.issue_token(email=f"spark{i}@example.com") for i in range(400)]
    tokens += [op.issue_token(phone=f"+1444{i:07d}", version=3) for i in range(100)]
    cstg = op.issue_token(email="cstg@example.com", client_side=True)
    tokens += [cstg, cstg, "garbage", None, tokens[0][:-8]]
    domains = [DOMAIN] * 500 + ["other.example", DOMAIN, DOMAIN, DOMAIN, DOMAIN]
    rows = [(i, t, d) for i, (t, d) in enumerate(zip(tokens, domains))]
    df = spark.createDataFrame(rows, "id long, token string, domain string")  # 2 partitions

    # keys given as the collection; it travels as the keys JSON in the closure
    out = decrypt_column(df, "token", bid.keys, domain_col="domain")
    assert out.columns[:3] == ["id", "token", "domain"]
    assert [f.name for f in out.schema.fields[3:]] == [f.name for f in decrypt_schema("uid2_").fields]
    got = sorted(out.collect(), key=lambda r: r.id)

    expected = uid2fast.decrypt_tokens(tokens, bid.keys, domain_names=domains)
    exp = expected.to_arrow().to_pylist()
    assert len(got) == len(tokens)
    for r, e in zip(got, exp):
        assert r.uid2_status == e["status"]
        assert r.uid2_uid == e["uid"]
        assert r.uid2_site_id == e["site_id"]
        assert r.uid2_identity_type == e["identity_type"]
        assert r.uid2_version == e["version"]
        assert r.uid2_is_client_side_generated == e["is_client_side_generated"]
        for name in ("established", "expiry"):
            want = e[name]
            have = getattr(r, f"uid2_{name}")
            assert (have is None) == (want is None)
            if want is not None:  # Spark returns naive datetimes in the session time zone (UTC here)
                assert have.replace(tzinfo=want.tzinfo) == want
    statuses = [r.uid2_status for r in got]
    assert statuses.count("SUCCESS") == 501
    assert statuses[-5:-3] == ["DOMAIN_NAME_CHECK_FAILED", "SUCCESS"]  # the CSTG check uses the domain column
    assert "SUCCESS" not in statuses[-3:] and got[-2].uid2_uid is None  # bad input is a status, None included


def test_encrypt_column_round_trip(spark, op):
    share = _client(uid2fast.SharingClient, op, "sharer")
    uids = [op.raw_uid(email=f"share{i}@example.com") for i in range(300)] + ["not-a-uid"]
    df = spark.createDataFrame([(i, u) for i, u in enumerate(uids)], "id long, uid string")
    body = keys_body(share.keys)  # keys given as the body dict this time
    enc = encrypt_column(df, "uid", body)
    dec = decrypt_column(enc, "uid2_token", body, client="sharing", prefix="back_")
    got = sorted(dec.select("id", "uid", "uid2_status", "uid2_token", "back_uid", "back_status").collect(),
                 key=lambda r: r.id)
    assert [r.uid2_status for r in got[:-1]] == ["SUCCESS"] * 300
    assert [r.back_uid for r in got[:-1]] == uids[:-1]
    assert got[-1].uid2_status != "SUCCESS" and got[-1].back_status != "SUCCESS"
    assert len({r.uid2_token for r in got[:-1]}) == 300  # a fresh nonce per token
    # tokens from Spark decrypt with the plain client too
    assert share.decrypt_token_into_raw_uid(got[0].uid2_token).uid == uids[0]


def test_argument_errors_on_the_driver(spark, op):
    bid = _client(uid2fast.BidstreamClient, op, "bidstream")
    df = spark.createDataFrame([("x", "y")], "token string, uid string")
    with pytest.raises(ValueError, match="tok"):
        decrypt_column(df, "tok", bid.keys)
    with pytest.raises(ValueError, match="client"):
        decrypt_column(df, "token", bid.keys, client="nope")
    with pytest.raises(ValueError, match="already has"):
        decrypt_column(df, "token", bid.keys, prefix="")
    with pytest.raises(TypeError):
        decrypt_column(df, "token", 42)
