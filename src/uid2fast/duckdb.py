"""DuckDB integration: decrypt (and, for sharers, encrypt) token columns in SQL with vectorized Arrow UDFs.

>>> import duckdb, uid2fast, uid2fast.duckdb
>>> con = duckdb.connect()
>>> uid2fast.duckdb.register(con, uid2fast.keyfile.load_keys("keys.json"))  # doctest: +SKIP
>>> con.sql("SELECT d.status, count(*) FROM (SELECT uid2_decrypt(token, domain) AS d FROM 'bids.parquet') "
...         "GROUP BY ALL")  # doctest: +SKIP

Each UDF call receives one DuckDB vector (about 2048 rows) as an Arrow array and hands it to
:func:`uid2fast.decrypt_tokens` (or ``encrypt_tokens``) whole: no Python object per row. The result is the
columns of ``DecryptedTokens.to_arrow()`` packed into a STRUCT, so the SQL columns are exactly the batch API's;
they are built over the batch's numpy buffers with a few pyarrow calls a column, since DuckDB calls the
function for every 2,048 rows and a fixed cost per call counts as much as the decrypt itself. DuckDB's own
handoff (the VARCHAR vectors out to Arrow, the STRUCT back) costs about as much per row as the decrypt, which
bounds what a scalar UDF can reach: docs/design.md (DuckDB) has the measurements and what was tried.

``uid2_decrypt(token [, domain])`` returns ``STRUCT(status VARCHAR, uid VARCHAR, established TIMESTAMPTZ,
expiry TIMESTAMPTZ, site_id BIGINT, site_key_site_id BIGINT, identity_type TINYINT, identity_scope TINYINT,
version SMALLINT, is_client_side_generated BOOLEAN)``. ``status`` is the ``DecryptionStatus`` name;
timestamps are instants (TIMESTAMP WITH TIME ZONE, shown in the connection's ``TimeZone`` setting). A NULL
token gives a NULL struct; a NULL domain means "no domain" (as ``domain_names=None`` does for that row); a
malformed token gives a status such as ``INVALID_PAYLOAD``, never an SQL error.

``uid2_encrypt(raw_uid)`` (``client="sharing"`` only) returns ``STRUCT(status VARCHAR, token VARCHAR)``,
``status`` being the ``EncryptionStatus`` name; a NULL raw UID gives a NULL struct. Each token gets a fresh
random nonce, so the function is registered with side effects (DuckDB never caches or folds it).
"""
from typing import Any, Callable, Optional

__all__ = ["register"]

_CLIENTS = ("bidstream", "sharing", "legacy")
# The public names are temporary macros over these UDFs: a Python UDF name cannot be overloaded, a macro can.
_DECRYPT1 = "__uid2fast_decrypt"
_DECRYPT2 = "__uid2fast_decrypt_domain"
_ENCRYPT = "uid2_encrypt"


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError as e:
        raise ImportError("uid2fast.duckdb needs the duckdb package: pip install 'uid2fast[duckdb]'") from e
    return duckdb


def _duckdb_type(t: Any) -> str:
    import pyarrow as pa

    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_timestamp(t):
        return "TIMESTAMPTZ"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    names = {pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.int16(): "SMALLINT", pa.int8(): "TINYINT"}
    if t in names:
        return names[t]
    raise TypeError(f"no DuckDB type for Arrow {t}")  # pragma: no cover - the result columns are fixed


def _struct_type(duckdb: Any, table: Any) -> Any:
    return duckdb.struct_type({f.name: _duckdb_type(f.type) for f in table.schema})


def _keys_source(keys: Any) -> Callable[[], Any]:
    """A callable giving the key collection now: a client's current keys (refreshes are seen), or the collection."""
    from ._client_base import _KeyHolder
    from .keys import EncryptionKeysCollection

    if isinstance(keys, _KeyHolder):
        return lambda: keys.keys
    if isinstance(keys, EncryptionKeysCollection):
        return lambda: keys
    raise TypeError("keys must be an EncryptionKeysCollection or a client (BidstreamClient, SharingClient), "
                    f"not {type(keys).__name__}")


def _text(col: Any) -> Any:
    """One Arrow string array from what DuckDB passes (a chunked array of VARCHAR)."""
    import pyarrow as pa

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    t = pa.types
    if not (t.is_string(col.type) or t.is_large_string(col.type) or t.is_string_view(col.type)):
        col = col.cast(pa.string())  # (the batch reads the three string layouts in place)
    return col


def _answered(status: Any, inputs: Any) -> Any:
    """The status codes of the rows whose input was not NULL (the rows that get an answer)."""
    if not inputs.null_count:
        return status
    return status[inputs.is_valid().to_numpy(zero_copy_only=False)]


def _pack(arrays: Any, names: Any, valid_from: Any) -> Any:
    """The result columns as one STRUCT array, NULL where the input row was NULL."""
    import pyarrow as pa

    mask = valid_from.is_null() if valid_from.null_count else None
    return pa.StructArray.from_arrays(arrays, names=list(names), mask=mask)


def register(con: Any, keys: Any, *, client: str = "bidstream", threads: Optional[int] = None) -> Any:
    """Register ``uid2_decrypt`` (and, for ``client="sharing"``, ``uid2_encrypt``) on a DuckDB connection.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
    keys : EncryptionKeysCollection or a client
        A key collection (e.g. ``uid2fast.keyfile.load_keys(path)``), or a ``BidstreamClient`` /
        ``SharingClient`` whose current key set is read at every call, so its refreshes (auto-refresh
        included) apply to later queries. A client's ``metrics()`` then count the SQL answers by status, as
        its own batch methods do, every row but the NULL ones (a NULL gives a NULL, not an answer).
    client : {"bidstream", "sharing", "legacy"}
        Which checks ``uid2_decrypt`` applies (as ``decrypt_tokens(client=...)``); ``"sharing"`` also
        registers ``uid2_encrypt``.
    threads : int, optional
        Engine threads per UDF call (default: all cores, as ``decrypt_tokens``). DuckDB calls the function
        once per vector of about 2048 rows, from its own worker threads; ``threads=1`` may suit a
        connection that already runs many threads (``benchmarks/bench_duckdb.py --threads`` compares).

    Returns the connection. Registering again on the same connection replaces the functions.
    """
    duckdb = _duckdb()
    from .batch import ARROW_COLUMNS, _check_threads, _client_code, decrypt_tokens, encrypt_tokens

    if not isinstance(client, str) or client.lower() not in _CLIENTS:
        raise ValueError(f"client must be 'bidstream', 'sharing' or 'legacy', not {client!r}")
    client = client.lower()
    _client_code(client)
    threads = _check_threads(threads)
    current_keys = _keys_source(keys)
    decrypts = getattr(keys, "_decrypts", None)  # a client's status counters (None for a key collection)
    encrypts = getattr(keys, "_encrypts", None)

    def run(tokens: Any, domains: Any) -> Any:
        tokens = _text(tokens)
        domains = None if domains is None else _text(domains)
        res = decrypt_tokens(tokens, current_keys(), client=client, domain_names=domains, threads=threads)
        if decrypts is not None:
            decrypts.add_codes(_answered(res.status, tokens))
        return _pack(res._arrow_arrays(), ARROW_COLUMNS, tokens)

    def decrypt(tokens: Any) -> Any:
        return run(tokens, None)

    def decrypt_domain(tokens: Any, domains: Any) -> Any:
        return run(tokens, domains)

    decrypt_struct = _struct_type(duckdb, decrypt_tokens([], None).to_arrow())
    names = [_DECRYPT1, _DECRYPT2] + ([_ENCRYPT] if client == "sharing" else [])
    for name in names:
        try:
            con.remove_function(name)
        except Exception:  # noqa: BLE001 - not registered yet (duckdb raises InvalidInputException)
            pass
    con.create_function(_DECRYPT1, decrypt, ["VARCHAR"], decrypt_struct, type="arrow",
                        null_handling="special", side_effects=False)
    con.create_function(_DECRYPT2, decrypt_domain, ["VARCHAR", "VARCHAR"], decrypt_struct, type="arrow",
                        null_handling="special", side_effects=False)
    con.execute(f"CREATE OR REPLACE TEMP MACRO uid2_decrypt(token) AS {_DECRYPT1}(token), "
                f"(token, domain) AS {_DECRYPT2}(token, domain)")

    if client == "sharing":

        def encrypt(uids: Any) -> Any:
            uids = _text(uids)
            res = encrypt_tokens(uids, current_keys(), threads=threads)
            if encrypts is not None:
                encrypts.add_codes(_answered(res.status, uids))
            table = res.to_arrow()
            return _pack([c.combine_chunks() for c in table.columns], table.column_names, uids)

        encrypt_struct = _struct_type(duckdb, encrypt_tokens([], None).to_arrow())
        con.create_function(_ENCRYPT, encrypt, ["VARCHAR"], encrypt_struct, type="arrow",
                            null_handling="special", side_effects=True)
    return con
