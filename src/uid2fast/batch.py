"""Batch decryption and encryption: columnar results over numpy arrays (an addition, docs/design.md#batch).

A batch call releases the GIL and, on the C engine, splits the work across cores. Per-item problems
(None, a non-string, non-ASCII text, a malformed token) are statuses, never exceptions; argument errors
(a wrong ``client``, misaligned ``domain_names``) raise ``TypeError``/``ValueError``.
"""
import datetime as dt
import gc
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union, overload

import numpy as np

from . import _codes, _engine
from ._results import BARE_CODES, ENCRYPTION_STATUSES, RESULT_COLUMNS, STATUS_BY_CODE, DecryptedToken, make_token
from ._time import now_us as _wall_us
from ._time import to_us
from .client_type import ClientType
from .decryption_status import DecryptionStatus
from .encryption import _engine_and_table
from .encryption_data_response import EncryptionDataResponse
from .encryption_status import EncryptionStatus

__all__ = ["DecryptedTokens", "EncryptedTokens", "decrypt_tokens", "encrypt_tokens"]

NONE_I64 = _codes.NONE_I64
_ITER_CHUNK = 1024  # at most this many rows built per call while iterating a DecryptedTokens (_iter_chunk)
_CLIENTS = {
    "bidstream": _codes.CLIENT_BIDSTREAM,
    "sharing": _codes.CLIENT_SHARING,
    "legacy": _codes.CLIENT_LEGACY,
    ClientType.BIDSTREAM: _codes.CLIENT_BIDSTREAM,
    ClientType.SHARING: _codes.CLIENT_SHARING,
    ClientType.LEGACY_WITHOUT_DOMAIN_CHECK: _codes.CLIENT_LEGACY,
}
_STATUS_BY_CODE = STATUS_BY_CODE
_ENC_STATUS = ENCRYPTION_STATUSES
# The status name of every uint8 code ("" for a code that is not a status), for a vectorized take.
_STATUS_NAMES = tuple(_STATUS_BY_CODE[c].name if c in _STATUS_BY_CODE else "" for c in range(256))
# The same names as one Arrow string array's buffers (UTF-8 bytes one after another, int32 offsets), read-only.
_STATUS_BYTES = np.frombuffer("".join(_STATUS_NAMES).encode(), dtype=np.uint8)
_STATUS_OFFSETS = np.concatenate([[0], np.cumsum([len(s.encode()) for s in _STATUS_NAMES])]).astype(np.int32)
_STATUS_OFFSETS.flags.writeable = False
_BARE_CODES = np.array(sorted(BARE_CODES), dtype=np.intp)
_BARE_CODES.flags.writeable = False
_BARE_LUT = np.zeros(256, dtype=np.uint8)  # 1 for the codes reported without an identity scope
_BARE_LUT[_BARE_CODES] = 1
_BARE_LUT.flags.writeable = False
_INT32_MAX = np.iinfo(np.int32).max
# The numeric columns as the engines make them, by attribute: the dtypes the C engine's row builders read
# (DecryptedTokens._c_columns).
_C_DTYPES = {name: np.dtype(t) for name, t in (
    ("status", np.uint8), ("established_ms", np.int64), ("expiry_ms", np.int64), ("site_id", np.int64),
    ("site_key_site_id", np.int64), ("identity_type", np.int8), ("version", np.int16),
    ("is_client_side_generated", np.int8))}
# The columns of DecryptedTokens.to_arrow(), in order.
ARROW_COLUMNS = ("status", "uid", "established", "expiry", "site_id", "site_key_site_id", "identity_type",
                 "identity_scope", "version", "is_client_side_generated")


def _client_code(client: Any) -> int:
    try:
        return _CLIENTS[client.lower() if isinstance(client, str) else client]
    except (KeyError, TypeError):
        raise ValueError(f"client must be 'bidstream', 'sharing' or 'legacy', not {client!r}") from None


def _now(now: Optional[dt.datetime]) -> int:
    if now is None:
        return _wall_us()
    if not isinstance(now, dt.datetime):
        raise TypeError(f"now must be a timezone-aware datetime or None, not {type(now).__name__}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(timezone.utc))")
    return to_us(now)


def _check_threads(threads: Optional[int]) -> Optional[int]:
    if threads is None:
        return None
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive int or None, not {threads!r}")
    return threads


def _check_tokens(tokens: Any, name: str) -> Any:
    if isinstance(tokens, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of strings (list, numpy or Arrow array), not a single "
                        f"{type(tokens).__name__}")
    if not hasattr(tokens, "__len__") and not hasattr(tokens, "__iter__"):
        raise TypeError(f"{name} must be a list, a numpy array or an Arrow array, not {type(tokens).__name__}")
    if not hasattr(tokens, "__len__"):
        tokens = list(tokens)
    if isinstance(tokens, (list, tuple)) and type(tokens) not in (list, tuple):
        # A subclass's __len__ or __iter__ may say anything; both engines read the items it really holds.
        if isinstance(tokens, list):
            tokens = list.__getitem__(tokens, slice(None))
        else:
            tokens = tuple.__getitem__(tokens, slice(None))
    ndim = getattr(tokens, "ndim", 1)
    if ndim != 1 and isinstance(ndim, int):
        # A 0-d array is one value (iterating its string would give one row per character), a 2-d one rows
        # of rows: both are refused like a plain str.
        raise TypeError(f"{name} must be one-dimensional, not a {ndim}-d {type(tokens).__name__}")
    return tokens


def _iter_chunk() -> int:
    """Rows per chunk while iterating: below the garbage collector's first threshold (700 by default). The rows
    are objects the collector tracks, and a chunk alive past that threshold sets off a collection that finds
    them all alive and moves them to an older generation, whose collections then go over them again (and over
    the rest of the heap): a loop that drops each row as it goes paid about a quarter more per row with
    1,024-row chunks than with 512-row ones. Not below 64 rows, so a chunk's own cost stays small."""
    first = gc.get_threshold()[0]
    return _ITER_CHUNK if first <= 0 else max(64, min(_ITER_CHUNK, first * 3 // 4))


class DecryptedTokens:
    """The columnar result of :func:`decrypt_tokens`.

    Columns (numpy arrays, one row per input token):

    - ``status`` (uint8): the :class:`DecryptionStatus` code; ``status_enum(i)`` gives the enum.
    - ``uid`` (``S44``): the raw UID2 as ASCII bytes, ``b''`` where there is none.
    - ``established_ms``, ``expiry_ms`` (int64): Unix milliseconds, ``NONE_I64`` where absent.
    - ``site_id``, ``site_key_site_id`` (int64), ``NONE_I64`` where absent.
    - ``identity_type`` (int8: 0 email, 1 phone, -1 absent), ``identity_scope`` (int8, -1 absent),
      ``version`` (int16: 2, 112, 128; -1 absent), ``is_client_side_generated`` (int8: 0, 1, -1 absent).

    ``result[i]`` is the :class:`DecryptedToken` the scalar API returns for the same token, with one
    exception: a row that is not ASCII text (non-ASCII ``str``, bytes or Arrow UTF-8) is always
    ``INVALID_PAYLOAD``, while the scalar API, like the official SDK, first reads the version from the
    first four characters and may say ``VERSION_NOT_SUPPORTED``. Neither can ever decrypt.
    """

    NONE_I64 = NONE_I64

    def __init__(self, columns: Dict[str, Any], identity_scope: Any, keys: Any = None):
        self._overflow: Dict[int, str] = dict(columns.get("uid_overflow") or {})
        for name in RESULT_COLUMNS:
            setattr(self, name, columns[name])
        self._scope = identity_scope
        self._keys = keys
        self._scope_column: Optional[np.ndarray] = None

    @property
    def identity_scope(self) -> np.ndarray:
        """int8 column: the key set's identity scope, or -1 for the statuses the official SDK reports without
        one (and where there was no key set). Built on first use: a batch that never reads it never pays."""
        if self._scope_column is None:
            if self._scope is None:
                self._scope_column = np.full(len(self.status), -1, dtype=np.int8)
            else:
                lut = np.full(256, int(self._scope), dtype=np.int8)
                lut[_BARE_CODES] = -1
                self._scope_column = np.take(lut, self.status)
        return self._scope_column

    status: np.ndarray
    uid: np.ndarray
    established_ms: np.ndarray
    expiry_ms: np.ndarray
    site_id: np.ndarray
    site_key_site_id: np.ndarray
    identity_type: np.ndarray
    version: np.ndarray
    is_client_side_generated: np.ndarray

    def __len__(self) -> int:
        return len(self.status)

    def __repr__(self) -> str:
        counts = ", ".join(f"{s.name}={n}" for s, n in self.status_counts().items())
        return f"<DecryptedTokens {len(self)} tokens: {counts}>"

    def uid_at(self, i: int) -> Optional[str]:
        """The raw UID of row ``i`` as str, or None."""
        if i in self._overflow:
            return self._overflow[i]
        raw = self.uid[i]
        return raw.decode("ascii") if raw else None

    def uids(self) -> List[Optional[str]]:
        """The raw UIDs as a list of str (None where a row has none)."""
        out: List[Optional[str]] = [u.decode("ascii") or None for u in self.uid.tolist()]
        for i, u in self._overflow.items():
            out[i] = u
        return out

    def status_enum(self, i: int) -> DecryptionStatus:
        return _STATUS_BY_CODE[int(self.status[i])]

    @property
    def success(self) -> np.ndarray:
        """Boolean mask of the rows that decrypted successfully."""
        return self.status == _codes.SUCCESS

    def status_counts(self) -> Dict[DecryptionStatus, int]:
        """How many rows have each status (only statuses that occur)."""
        codes, counts = np.unique(self.status, return_counts=True)
        return {_STATUS_BY_CODE[int(c)]: int(n) for c, n in zip(codes, counts)}

    def _row(self, i: int) -> tuple:
        def opt(v: Any) -> Optional[int]:
            v = int(v)
            return None if v == NONE_I64 else v

        csg = int(self.is_client_side_generated[i])
        itype = int(self.identity_type[i])
        version = int(self.version[i])
        return (int(self.status[i]), self.uid_at(i), opt(self.established_ms[i]), opt(self.site_id[i]),
                opt(self.site_key_site_id[i]), None if itype < 0 else itype, None if version < 0 else version,
                None if csg < 0 else bool(csg), opt(self.expiry_ms[i]))

    def _c_columns(self, lo: int, hi: int, cast: bool) -> Optional[Tuple[Dict[str, np.ndarray], np.ndarray]]:
        """Rows [lo, hi) as the C engine reads them: the numeric columns by attribute name, C-contiguous, in
        ``_C_DTYPES``' dtypes, and the uid column as a 2-d uint8 view of its bytes. A column of another dtype
        (a result built by hand) is converted with ``cast``; else the answer is None."""
        cols = {}
        for name, want in _C_DTYPES.items():
            a = getattr(self, name)[lo:hi]
            if a.dtype != want and not cast:
                return None
            cols[name] = np.ascontiguousarray(a, dtype=want)
        uid = np.ascontiguousarray(self.uid[lo:hi])
        if uid.dtype.kind != "S":
            if not cast:
                return None
            uid = uid.astype(bytes)
        return cols, uid.view(np.uint8).reshape(len(uid), uid.dtype.itemsize)

    def _tokens(self, lo: int, hi: int) -> List[DecryptedToken]:
        """Rows [lo, hi) as DecryptedToken objects: built in C where the C engine is importable (one call for
        the chunk, no numpy scalar per field; the same objects as below), else from each row's tuple."""
        c = _engine.c_engine
        if c is None:
            return [make_token(self._row(i), self._scope) for i in range(lo, hi)]
        got = self._c_columns(lo, hi, True)
        assert got is not None
        cols, uid = got
        return c.decrypted_token_rows(
            cols["status"], uid, cols["established_ms"], cols["site_id"], cols["site_key_site_id"],
            cols["identity_type"], cols["version"], cols["is_client_side_generated"], cols["expiry_ms"],
            self._overflow, lo, self._scope)

    @overload
    def __getitem__(self, i: int) -> DecryptedToken: ...

    @overload
    def __getitem__(self, i: slice) -> List[DecryptedToken]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[DecryptedToken, List[DecryptedToken]]:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step == 1:
                return self._tokens(start, max(start, stop))
            return [self[j] for j in range(start, stop, step)]
        n = len(self)
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"index must be an int or a slice, not {type(i).__name__}")
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {i} out of range for {n} tokens")
        return self._tokens(i, i + 1)[0]

    def __iter__(self) -> Iterator[DecryptedToken]:
        # in chunks: each costs one call, and a long batch never has all its row objects alive at once
        n = len(self)
        step = _iter_chunk()
        for lo in range(0, n, step):
            yield from self._tokens(lo, min(n, lo + step))

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` with nullable columns (needs pyarrow)."""
        import pyarrow as pa

        return pa.Table.from_arrays(self._arrow_arrays(), names=list(ARROW_COLUMNS))

    def _arrow_arrays(self) -> List[Any]:
        """The columns of :meth:`to_arrow` (ARROW_COLUMNS order) as Arrow arrays built over the numpy columns'
        own buffers where the layouts agree, and none per row, so that small batches (a DuckDB vector of
        2,048 rows) pay little beside the decrypt itself. Null slots of the integer columns keep the sentinel
        (Arrow leaves them undefined); timestamps get 0 there. Where the C engine is built, the validity
        bitmaps, the status strings and the scope column come from one pass over the rows
        (``_engine_c.batch_arrow_parts``); otherwise, or for a batch that pass does not cover, from a few
        numpy calls per column (:meth:`_arrow_arrays_numpy`). Both give the same arrays."""
        arrays = self._arrow_arrays_one_pass()
        return self._arrow_arrays_numpy() if arrays is None else arrays

    def _arrow_arrays_one_pass(self) -> Optional[List[Any]]:
        """:meth:`_arrow_arrays` through the C engine's one pass, or None where it does not apply (no C engine,
        an empty batch, a raw UID longer than the column (``_overflow``) or not a prefix of it, buffers past
        Arrow's 32-bit offsets)."""
        c = _engine.c_engine
        n, width = len(self.uid), self.uid.dtype.itemsize
        scope = -1 if self._scope is None else int(self._scope)
        if (c is None or self._overflow or n == 0 or width == 0 or not -1 <= scope <= 127
                or (n + 1) * width > _INT32_MAX or self.uid.dtype.kind != "S"):
            return None
        got = self._c_columns(0, n, False)
        if got is None:
            return None  # the engines' own dtypes only (a result built by hand may hold others)
        import pyarrow as pa

        cols, uid2d = got
        bitmaps, complete, regular, offsets, data, scope_column = c.batch_arrow_parts(
            cols["status"], uid2d, cols["established_ms"], cols["expiry_ms"], cols["site_id"],
            cols["site_key_site_id"], cols["identity_type"], cols["version"], cols["is_client_side_generated"],
            scope, _BARE_LUT, _STATUS_OFFSETS, _STATUS_BYTES)
        if not regular or offsets is None:
            return None

        def valid(k: int) -> Any:
            return None if complete[k] else pa.py_buffer(bitmaps[k])

        def fixed(col: np.ndarray, k: int, typ: Any, zero_nulls: bool = False) -> Any:
            if zero_nulls and not complete[k]:
                col = np.where(col != NONE_I64, col, 0)
            return pa.Array.from_buffers(typ, n, [valid(k), pa.py_buffer(np.ascontiguousarray(col))])

        ts = pa.timestamp("ms", tz="UTC")
        # bitmaps' rows: established, expiry, site_id, site_key_site_id, identity_type, identity_scope, version,
        # is_client_side_generated (valid), is_client_side_generated (true), uid (valid)
        uid_offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
        return [
            pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]),
            pa.Array.from_buffers(pa.string(), n, [valid(9), pa.py_buffer(uid_offsets), pa.py_buffer(uid2d)]),
            fixed(cols["established_ms"], 0, ts, True),
            fixed(cols["expiry_ms"], 1, ts, True),
            fixed(cols["site_id"], 2, pa.int64()),
            fixed(cols["site_key_site_id"], 3, pa.int64()),
            fixed(cols["identity_type"], 4, pa.int8()),
            fixed(scope_column, 5, pa.int8()),
            fixed(cols["version"], 6, pa.int16()),
            pa.Array.from_buffers(pa.bool_(), n, [valid(7), pa.py_buffer(bitmaps[8])]),
        ]

    def _arrow_arrays_numpy(self) -> List[Any]:
        """:meth:`_arrow_arrays` with numpy: a few numpy and pyarrow calls per column."""
        import pyarrow as pa

        n = len(self.status)

        def validity(present: np.ndarray) -> Any:
            return None if present.all() else pa.py_buffer(np.packbits(present, bitorder="little"))

        def fixed(col: np.ndarray, present: np.ndarray, typ: Any, zero_nulls: bool = False) -> Any:
            valid = validity(present)
            if valid is not None and zero_nulls:
                col = np.where(present, col, 0)
            return pa.Array.from_buffers(typ, n, [valid, pa.py_buffer(np.ascontiguousarray(col))])

        csg = self.is_client_side_generated
        ts = pa.timestamp("ms", tz="UTC")
        return [
            self._status_arrow(),
            self._uid_arrow(),
            fixed(self.established_ms, self.established_ms != NONE_I64, ts, True),
            fixed(self.expiry_ms, self.expiry_ms != NONE_I64, ts, True),
            fixed(self.site_id, self.site_id != NONE_I64, pa.int64()),
            fixed(self.site_key_site_id, self.site_key_site_id != NONE_I64, pa.int64()),
            fixed(self.identity_type, self.identity_type >= 0, pa.int8()),
            fixed(self.identity_scope, self.identity_scope >= 0, pa.int8()),
            fixed(self.version, self.version >= 0, pa.int16()),
            pa.Array.from_buffers(pa.bool_(), n, [validity(csg >= 0),
                                                  pa.py_buffer(np.packbits(csg == 1, bitorder="little"))]),
        ]

    def _status_arrow(self) -> Any:
        """The ``status`` column (each row's DecryptionStatus name) as an Arrow string array: the name repeated
        when every row has the same status, else a take from the array of every code's name."""
        import pyarrow as pa

        n = len(self.status)
        if n and (self.status == self.status[0]).all():
            code = int(self.status[0])
            name = _STATUS_NAMES[code].encode()
            offsets = np.arange(0, (n + 1) * len(name), len(name), dtype=np.int32) if name else \
                np.zeros(n + 1, dtype=np.int32)
            return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(name * n)])
        names = pa.Array.from_buffers(pa.string(), len(_STATUS_NAMES),
                                      [None, pa.py_buffer(_STATUS_OFFSETS), pa.py_buffer(_STATUS_BYTES)])
        return names.take(pa.Array.from_buffers(pa.uint8(), n, [None, pa.py_buffer(self.status)]))

    def _uid_arrow(self) -> Any:
        """The ``uid`` column as an Arrow string array (null where a row has none), without a str per row.

        The raw UIDs are base64 text, NUL-padded to the column's width: each row's bytes are a prefix of
        non-NUL bytes, so the Arrow data buffer is the non-NUL bytes in row order and the offsets their
        running count. Rows longer than the width (``_overflow``) take the per-row path.
        """
        import pyarrow as pa

        n, width = len(self.uid), self.uid.dtype.itemsize
        if self._overflow or n == 0 or width == 0:
            return pa.array(self.uids(), type=pa.string())
        uid = np.ascontiguousarray(self.uid)
        mat = uid.view(np.uint8).reshape(n, width)
        full, empty = mat[:, -1] != 0, mat[:, 0] == 0
        if (full | empty).all() and (n + 1) * width <= np.iinfo(np.int32).max:
            # The usual case: every UID fills the width (or the row has none). The column itself is the data
            # buffer, every row at i * width; a row without a UID is null, and Arrow lets a null row's range
            # hold any bytes.
            offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
            valid = None if full.all() else pa.py_buffer(np.packbits(full, bitorder="little"))
            return pa.Array.from_buffers(pa.string(), n, [valid, pa.py_buffer(offsets), pa.py_buffer(uid)])
        if (full | empty).all():
            lengths = full.astype(np.int64) * width
            data = mat[full]
        else:
            present = mat != 0
            if (present[:, 1:] & ~present[:, :-1]).any():  # a NUL inside a row: not a prefix
                return pa.array(self.uids(), type=pa.string())
            lengths = present.sum(axis=1, dtype=np.int64)
            data = mat[present]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if offsets[-1] > np.iinfo(np.int32).max:
            return pa.array(self.uids(), type=pa.string())
        validity = pa.array(lengths > 0, type=pa.bool_()).buffers()[1]
        return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(offsets.astype(np.int32)),
                                                      pa.py_buffer(data)])

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` (via Arrow; needs pandas and pyarrow).

        Integer and boolean columns are pandas' nullable types (``Int64``, ``Int8``, ``Int16``, ``boolean``:
        ``pd.NA`` where a row has no value, never a float column); ``status`` and ``uid`` are text
        (``string``); ``established`` and ``expiry`` are ``datetime64[ms, UTC]`` (``NaT`` where absent).
        """
        return self.to_arrow().to_pandas(types_mapper=_pandas_types())


def _pandas_types() -> Any:
    """Arrow type -> pandas dtype for ``to_pandas``: nullable integers and booleans, and text."""
    import pandas as pd
    import pyarrow as pa

    return {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int64(): pd.Int64Dtype(),
            pa.bool_(): pd.BooleanDtype(), pa.string(): pd.StringDtype()}.get


class EncryptedTokens:
    """The result of :func:`encrypt_tokens`: a ``status`` column (uint8 EncryptionStatus codes) and ``tokens``."""

    def __init__(self, status: np.ndarray, tokens: List[Optional[str]]):
        self.status = status
        self.tokens = tokens

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> EncryptionDataResponse:
        code = int(self.status[i])
        return EncryptionDataResponse(_ENC_STATUS[code], self.tokens[i])

    def __iter__(self) -> Iterator[EncryptionDataResponse]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        counts = ", ".join(f"{s.name}={n}" for s, n in self.status_counts().items())
        return f"<EncryptedTokens {len(self)} tokens: {counts}>"

    @property
    def success(self) -> np.ndarray:
        return self.status == _codes.ENC_SUCCESS

    def status_counts(self) -> Dict[EncryptionStatus, int]:
        codes, counts = np.unique(self.status, return_counts=True)
        return {_ENC_STATUS[int(c)]: int(n) for c, n in zip(codes, counts)}

    def to_arrow(self) -> Any:
        import pyarrow as pa

        names = np.array([s.name for s in _ENC_STATUS], dtype=object)
        return pa.table({"status": pa.array(names[self.status], type=pa.string()),
                         "token": pa.array(self.tokens, type=pa.string())})

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` with ``status`` and ``token`` as text (``string``, ``pd.NA`` for no token)."""
        return self.to_arrow().to_pandas(types_mapper=_pandas_types())


def decrypt_tokens(tokens: Any, keys: Any, *, now: Optional[dt.datetime] = None, client: Any = "bidstream",
                   domain_names: Any = None, threads: Optional[int] = None) -> DecryptedTokens:
    """Decrypt many tokens at once.

    Parameters
    ----------
    tokens : list of str, numpy array (``U``, ``S`` or object) or pyarrow string array / chunked array
    keys : EncryptionKeysCollection or None
    now : datetime.datetime, optional
        Timezone-aware; the current time by default. The clock is read once per call: every row of a
        batch is judged at the same instant (so keys expiring mid-batch give ``KEYS_NOT_SYNCED`` for all
        rows or none, never a mix).
    client : {"bidstream", "sharing", "legacy"} or ClientType
        Which checks apply (lifetime and, for bidstream, the CSTG domain check).
    domain_names : str, sequence of str, or None
        One name for all tokens or one per token (bidstream CSTG check). A list's items are read after the
        tokens are decrypted, and only for the rows whose check needs them: on the C engine, changing the
        list's length from another thread meanwhile raises ``RuntimeError`` (the Python engine copies it first).
    threads : int, optional
        Worker threads; all cores by default.

    Returns
    -------
    DecryptedTokens
    """
    code = _client_code(client)
    tokens = _check_tokens(tokens, "tokens")
    if domain_names is not None and not isinstance(domain_names, str):
        domain_names = _check_tokens(domain_names, "domain_names")
        if len(domain_names) != len(tokens):
            raise ValueError(f"domain_names has {len(domain_names)} items for {len(tokens)} tokens")
    engine, table = _engine_and_table(keys)
    columns = engine.decrypt_tokens(table, tokens, _now(now), code, domain_names, _check_threads(threads))
    return DecryptedTokens(columns, None if keys is None else keys.get_identity_scope())


def encrypt_tokens(uids: Any, keys: Any, *, keyset_id: Optional[int] = None, now: Optional[dt.datetime] = None,
                   identity_scope: Any = None, threads: Optional[int] = None) -> EncryptedTokens:
    """Encrypt many raw UID2s into v4 sharing tokens, a fresh random nonce per GCM operation."""
    uids = _check_tokens(uids, "uids")
    if keyset_id is not None and (not isinstance(keyset_id, int) or isinstance(keyset_id, bool)):
        raise TypeError(f"keyset_id must be an int or None, not {type(keyset_id).__name__}")
    scope = None if identity_scope is None else int(identity_scope)
    engine, table = _engine_and_table(keys)
    status, out = engine.encrypt_tokens(table, uids, _now(now), keyset_id, scope, _wall_us() // 1000,
                                        _check_threads(threads))
    return EncryptedTokens(status, out)
