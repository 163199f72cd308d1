"""Spark integration: decrypt or encrypt a DataFrame column with the batch engine, via ``mapInArrow``.

>>> from uid2fast.spark import decrypt_column
>>> keys = uid2fast.keyfile.load_keys("keys.json")  # doctest: +SKIP
>>> out = decrypt_column(spark.read.parquet("bids/"), "token", keys, domain_col="domain")  # doctest: +SKIP
>>> out.groupBy("uid2_status").count().show()  # doctest: +SKIP

The key set travels to the executors once per job, as the keys JSON inside the serialized function (a
few kilobytes), never per row; each Python worker rebuilds the key collection once per partition and
decrypts Arrow batches without converting rows to Python objects. pyspark is imported only when these
functions are called.

The key set holds key secrets: the closure is visible to anyone who can read the Spark job's
serialized tasks, exactly as a broadcast variable would be.
"""
import json
from typing import Any, Iterator, Optional

__all__ = ["decrypt_column", "encrypt_column", "decrypt_schema", "encrypt_schema"]

KeysArg = Any  # EncryptionKeysCollection, a keys body (dict or JSON text) or a key file path


def _keys_json(keys: KeysArg) -> str:
    """The keys body as JSON text, from whatever form the caller has."""
    import os

    from .keyfile import _looks_like_json, keys_body, parse_keys_body
    from .keys import EncryptionKeysCollection

    if isinstance(keys, EncryptionKeysCollection):
        body = keys_body(keys)
        parse_keys_body(body, "keys")  # a hand-built collection gets the refresh's checks, on the driver
        return json.dumps(body)
    if isinstance(keys, dict):
        parse_keys_body(keys, "keys")  # fail on the driver, not in every task
        return json.dumps(keys)
    if isinstance(keys, (str, os.PathLike)):
        text = os.fspath(keys)
        if not _looks_like_json(text):  # (JSON text opened as a path would put it in the error message)
            with open(text, encoding="utf-8") as f:
                text = f.read()
        parse_keys_body(text, "keys")
        return text
    raise TypeError("keys must be an EncryptionKeysCollection, a keys body (dict or JSON text) or a key file "
                    f"path, not {type(keys).__name__}")


def _spark_type_of_arrow(t: Any) -> Any:
    import pyarrow as pa
    from pyspark.sql import types as T

    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return T.StringType()
    if pa.types.is_timestamp(t):
        return T.TimestampType()
    if pa.types.is_boolean(t):
        return T.BooleanType()
    if pa.types.is_int64(t):
        return T.LongType()
    if pa.types.is_int32(t):
        return T.IntegerType()
    if pa.types.is_int16(t):
        return T.ShortType()
    if pa.types.is_int8(t):
        return T.ByteType()
    raise TypeError(f"no Spark type for Arrow {t}")  # pragma: no cover - the result columns are fixed


def _result_arrow_schema(kind: str) -> Any:
    from .batch import decrypt_tokens, encrypt_tokens

    table = decrypt_tokens([], None).to_arrow() if kind == "decrypt" else encrypt_tokens([], None).to_arrow()
    return table.schema


def decrypt_schema(prefix: str = "uid2_") -> Any:
    """The Spark ``StructType`` of the columns :func:`decrypt_column` appends."""
    from pyspark.sql import types as T

    return T.StructType([T.StructField(prefix + f.name, _spark_type_of_arrow(f.type), True)
                         for f in _result_arrow_schema("decrypt")])


def encrypt_schema(prefix: str = "uid2_") -> Any:
    """The Spark ``StructType`` of the columns :func:`encrypt_column` appends (``status``, ``token``)."""
    from pyspark.sql import types as T

    return T.StructType([T.StructField(prefix + f.name, _spark_type_of_arrow(f.type), True)
                         for f in _result_arrow_schema("encrypt")])


def _check_column(df: Any, name: Optional[str], what: str) -> None:
    if name is None:
        return
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a column name (str), not {type(name).__name__}")
    if name not in df.columns:
        raise ValueError(f"{what} {name!r} is not a column of the DataFrame (columns: {', '.join(df.columns)})")


def _out_schema(df: Any, extra: Any) -> Any:
    from pyspark.sql import types as T

    clash = [f.name for f in extra.fields if f.name in df.columns]
    if clash:
        raise ValueError(f"the DataFrame already has column(s) {', '.join(clash)}; choose another prefix")
    return T.StructType(list(df.schema.fields) + list(extra.fields))


def _as_text(col: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col
    return pc.cast(col, pa.string())


def _append(batch: Any, results: Any, names: Any, out_types: Any) -> Any:
    import pyarrow as pa

    arrays = [batch.column(i) for i in range(batch.num_columns)]
    for i in range(results.num_columns):
        col = results.column(i).combine_chunks()
        want = out_types[i]
        if col.type != want:
            col = col.cast(want)
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, names=list(batch.schema.names) + names)


def _arrow_types(kind: str) -> Any:
    import pyarrow as pa

    out = []
    for f in _result_arrow_schema(kind):
        # Spark's Arrow form of TimestampType is microseconds.
        out.append(pa.timestamp("us", tz="UTC") if pa.types.is_timestamp(f.type) else f.type)
    return out


def decrypt_column(df: Any, token_col: str, keys: KeysArg, client: str = "bidstream",
                   domain_col: Optional[str] = None, prefix: str = "uid2_", *, threads: Optional[int] = None) -> Any:
    """Decrypt the tokens in ``df[token_col]``; returns ``df`` with the result columns appended.

    Parameters
    ----------
    df : pyspark.sql.DataFrame
    token_col : str
        The column of advertising (or sharing) tokens.
    keys : EncryptionKeysCollection, dict, str or os.PathLike
        The key set: a collection, a keys body (dict or JSON text) or the path of a key file on the driver.
    client : {"bidstream", "sharing"}
        Which checks apply.
    domain_col : str, optional
        Column with the domain or app name of each bid request (bidstream check of client-side tokens).
    prefix : str
        Prefix of the result columns: ``uid2_status``, ``uid2_uid``, ``uid2_established``, ``uid2_expiry``,
        ``uid2_site_id``, ``uid2_site_key_site_id``, ``uid2_identity_type``, ``uid2_identity_scope``,
        ``uid2_version``, ``uid2_is_client_side_generated`` (the columns of ``DecryptedTokens.to_arrow()``).
    threads : int, optional
        Engine threads per Python worker (default: all cores of the executor; set it to 1 when each
        executor core already runs its own worker).

    Returns
    -------
    pyspark.sql.DataFrame
    """
    from .batch import _client_code

    _client_code(client)  # a wrong client fails here, not in the executors
    _check_column(df, token_col, "token_col")
    _check_column(df, domain_col, "domain_col")
    extra = decrypt_schema(prefix)
    schema = _out_schema(df, extra)
    keys_json = _keys_json(keys)
    names = [f.name for f in extra.fields]

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        from uid2fast.batch import decrypt_tokens
        from uid2fast.keyfile import parse_keys_body

        collection = parse_keys_body(keys_json, "keys")  # once per partition
        types = _arrow_types("decrypt")
        for batch in batches:
            tokens = _as_text(batch.column(batch.schema.get_field_index(token_col)))
            domains = None
            if domain_col is not None:
                domains = _as_text(batch.column(batch.schema.get_field_index(domain_col)))
            res = decrypt_tokens(tokens, collection, client=client, domain_names=domains, threads=threads)
            yield _append(batch, res.to_arrow(), names, types)

    return df.mapInArrow(run, schema)


def encrypt_column(df: Any, uid_col: str, keys: KeysArg, keyset_id: Optional[int] = None,
                   prefix: str = "uid2_", *, threads: Optional[int] = None) -> Any:
    """Encrypt the raw UIDs in ``df[uid_col]`` into sharing tokens; appends ``uid2_status`` and ``uid2_token``.

    Each token gets a fresh random nonce. ``keys`` is a sharing key set (see :func:`decrypt_column`);
    ``keyset_id`` defaults to the key set's default keyset.
    """
    _check_column(df, uid_col, "uid_col")
    if keyset_id is not None and (not isinstance(keyset_id, int) or isinstance(keyset_id, bool)):
        raise TypeError(f"keyset_id must be an int or None, not {type(keyset_id).__name__}")
    extra = encrypt_schema(prefix)
    schema = _out_schema(df, extra)
    keys_json = _keys_json(keys)
    names = [f.name for f in extra.fields]

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        from uid2fast.batch import encrypt_tokens
        from uid2fast.keyfile import parse_keys_body

        collection = parse_keys_body(keys_json, "keys")
        types = _arrow_types("encrypt")
        for batch in batches:
            uids = _as_text(batch.column(batch.schema.get_field_index(uid_col)))
            res = encrypt_tokens(uids, collection, keyset_id=keyset_id, threads=threads)
            yield _append(batch, res.to_arrow(), names, types)

    return df.mapInArrow(run, schema)

