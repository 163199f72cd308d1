"""The CLI's file formats: CSV, Parquet and newline text in (streamed in batches) and out (atomically).

``-`` is standard input or output, for CSV and text (``--input-format``/``--output-format``; text by
default). Every error names the file, and the line where there is one.
"""
import codecs
import gzip
import io
import os
import re
import sys
from typing import Any, Callable, Iterator, List, NoReturn, Optional, Tuple

from ._common import CliError, printable

STDIO = "-"
FORMATS = ("csv", "parquet", "text")
_EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".txt": "text", ".text": "text",
               ".tokens": "text"}
_TEXT_LINES_PER_READ = 1 << 20  # bytes of lines read at a time from a text input
_NOT_SPACE = re.compile(rb"\S")  # a CSV block with anything but white space in it has records to parse


def display_name(path: str, output: bool = False) -> str:
    return ("standard output" if output else "standard input") if path == STDIO else path


def format_of(path: str, override: Optional[str] = None) -> Tuple[str, bool]:
    """(``csv`` | ``parquet`` | ``text``, gzip-compressed?) from ``override`` or the file name."""
    if path == STDIO:
        fmt: Optional[str] = override or "text"
        if fmt == "parquet":
            raise CliError("'-' (standard input or output) takes CSV or text, not Parquet")
        return str(fmt), False
    name = path.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    if override is not None:
        if gz and override == "parquet":
            raise CliError(f"{path}: a Parquet file is compressed inside; it cannot be gzipped")
        return override, gz
    ext = os.path.splitext(name)[1]
    fmt = _EXTENSIONS.get(ext)
    if fmt is None or (gz and fmt == "parquet"):
        known = ", ".join(sorted(set(_EXTENSIONS) | {".csv.gz", ".txt.gz"}))
        raise CliError(f"{path}: unknown file type {ext + ('.gz' if gz else '') or '(no extension)'!r}; "
                       f"use one of {known}, or --input-format/--output-format")
    return fmt, gz


def same_file(a: str, b: str) -> bool:
    """True when both paths name one existing file (device and inode: symlinks and hard links count)."""
    if STDIO in (a, b):
        return False
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _shown_line(raw: bytes) -> str:
    return printable(raw.rstrip(b"\r\n"), limit=80)


def _stdin() -> Any:
    """Standard input as a raw file (no Python buffer, whose lock a blocked reader would hold at exit)."""
    try:
        return io.FileIO(sys.stdin.fileno(), "rb", closefd=False)
    except (AttributeError, OSError, ValueError):
        return sys.stdin.buffer


def _read_header(f: Any, name: str) -> bytes:
    """The bytes up to the end of the first line (or 4 MiB): enough for Arrow to read the column names."""
    head = b""
    while b"\n" not in head and len(head) < (4 << 20):
        chunk = f.read(1 << 16)
        if not chunk:
            break
        head += chunk
    if not head.strip():
        raise CliError(f"{name}: empty CSV file (no header line)")
    return head


def _record_end(data: Any, end: Optional[int] = None, *, first: bool) -> int:
    """The index just past the first (or last) newline of ``data[:end]`` (bytes or bytearray; all of it by
    default) that ends a CSV record, or -1.

    A newline ends a record when an even number of quote characters precedes it (RFC 4180 doubles a quote
    inside a quoted field, so the parity tells whether the newline is inside one)."""
    end = len(data) if end is None else end
    pos = data.find(b"\n", 0, end) if first else data.rfind(b"\n", 0, end)
    while pos >= 0:
        if data.count(b'"', 0, pos) % 2 == 0:
            return pos + 1
        pos = data.find(b"\n", pos + 1, end) if first else data.rfind(b"\n", 0, pos)
    return -1


class _Source(io.RawIOBase):
    """A binary reader over a file or stdin: counts the bytes taken from the file (progress by bytes read)
    and can put bytes back in front (a CSV header read to learn the column names is read again)."""

    def __init__(self, raw: Any, owned: bool):
        super().__init__()
        self._raw = raw
        self._owned = owned
        self._front = b""
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def unread(self, data: bytes) -> None:
        self._front = data + self._front

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._front:
            n = min(len(view), len(self._front))
            view[:n] = self._front[:n]
            self._front = self._front[n:]
            return n
        n = self._raw.readinto(view) or 0
        self.bytes_read += n
        return n

    def close(self) -> None:
        if self._owned and not self.closed:
            self._raw.close()
        super().close()


class Input:
    """An input opened for streaming: its Arrow schema, row count when known, and a batch iterator.

    ``bytes_read``/``total_bytes`` report progress for CSV and text (``total_bytes`` is None for stdin).
    """

    def __init__(self, path: str, column: str, batch_size: int, fmt: Optional[str] = None):
        import pyarrow as pa

        self.path = path
        self.name = display_name(path)
        self.format, self.gz = format_of(path, fmt)
        self.total: Optional[int] = None
        self.total_bytes: Optional[int] = None
        self._batch_size = batch_size
        self._column = column
        self._source: Optional[_Source] = None
        self._stream: Any = None
        self._pending = b""  # CSV: bytes read after the header, not yet parsed
        self._block = int(min(max(batch_size * 256, 1 << 20), 256 << 20))  # CSV bytes parsed at a time
        if path != STDIO:
            if not os.path.exists(path):
                raise CliError(f"{path}: no such file")
            if os.path.isdir(path):
                raise CliError(f"{path}: is a directory")
            if not os.access(path, os.R_OK):
                raise CliError(f"{path}: permission denied")
        if self.format == "parquet":
            import pyarrow.parquet as pq

            try:
                # buffer_size > 0 streams column chunks page by page instead of loading whole row groups.
                self._pf = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
            except (pa.ArrowException, OSError) as exc:
                raise CliError(f"{path}: not a readable Parquet file ({exc})") from None
            self.schema = self._pf.schema_arrow
            self.total = self._pf.metadata.num_rows
            return
        raw = _stdin() if path == STDIO else open(path, "rb")
        self._source = _Source(raw, owned=path != STDIO)
        if path != STDIO:
            self.total_bytes = os.fstat(raw.fileno()).st_size
        self._stream = gzip.GzipFile(fileobj=self._source, mode="rb") if self.gz else self._source
        if self.format == "csv":
            self._open_csv()
        else:
            self.schema = pa.schema([pa.field(column, pa.string())])

    @property
    def bytes_read(self) -> int:
        """Bytes taken from the file so far (compressed bytes for a .gz file)."""
        return 0 if self._source is None else self._source.bytes_read

    def close(self) -> None:
        for obj in (self._stream, self._source):
            try:
                if obj is not None:
                    obj.close()
            except Exception:  # noqa: BLE001 - closing after an error; the first error is the one reported
                pass

    def __enter__(self) -> "Input":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- CSV ---------------------------------------------------------------------------------------
    def _open_csv(self) -> None:
        # Read in blocks cut at record ends, each parsed by Arrow: one block in memory at a time whatever the
        # file size, and standard input is read on the calling thread (a reader thread blocked on a pipe
        # would keep the process from exiting on a signal).
        head = _read_header(self._stream, self.name)
        names = self._header_names(head)
        end = _record_end(head, first=True)
        self._pending = head[end:] if end > 0 else b""
        self._convert_to_text(names)

    def _header_names(self, head: bytes) -> List[str]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        for probe in (head.partition(b"\n")[0] + b"\n", head):
            try:
                names = pacsv.open_csv(io.BytesIO(probe)).schema.names
            except (pa.ArrowException, OSError):
                continue
            if len(set(names)) != len(names):
                raise CliError(f"{self.name}: the CSV header repeats a column name")
            return list(names)
        self._raise_csv_error(None)

    def _convert_to_text(self, names: List[str]) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        # Every column as text: values pass through unchanged and a later block can never contradict the
        # types guessed from the first one.
        self._names = names
        self._convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names})
        self.schema = pa.schema([pa.field(n, pa.string()) for n in names])

    def _raise_csv_error(self, exc: Optional[BaseException]) -> NoReturn:
        where = self._locate_csv_problem()
        detail = f"{exc}" if exc is not None else "not a readable CSV file"
        raise CliError(f"{self.name}: {where}{printable(detail)}") from None

    def _locate_csv_problem(self) -> str:
        """``line N: `` for the first line that is not UTF-8 or has the wrong number of fields ('' for stdin)."""
        if self.path == STDIO:
            return ""
        import csv

        opener: Callable[..., Any] = gzip.open if self.gz else open
        try:
            with opener(self.path, "rb") as f:
                for lineno, raw in enumerate(f, 1):
                    try:
                        raw.decode("utf-8")
                    except UnicodeDecodeError:
                        return f"line {lineno}: not UTF-8 text ({_shown_line(raw)}); "
            with opener(self.path, "rt", encoding="utf-8", newline="") as f:
                rows = csv.reader(f)
                header = next(rows, None)
                width = len(header or [])
                for row in rows:
                    if len(row) != width:
                        return f"line {rows.line_num}: {len(row)} fields where the header has {width}; "
        except (OSError, csv.Error, EOFError):
            pass
        return ""

    # --- batches -----------------------------------------------------------------------------------
    def batches(self) -> Iterator[Any]:
        import pyarrow as pa

        if self.format == "parquet":
            try:
                yield from self._pf.iter_batches(batch_size=self._batch_size)
            except (pa.ArrowException, OSError) as exc:
                raise CliError(f"{self.name}: corrupt or unreadable Parquet data ({printable(str(exc))})") from None
        elif self.format == "csv":
            try:
                yield from self._csv_batches()
            except (pa.ArrowException, OSError, EOFError) as exc:
                self._raise_csv_error(exc)
        else:
            yield from self._text_batches()

    def _csv_batches(self) -> Iterator[Any]:
        """The CSV records in blocks of about ``_block`` bytes, each cut at a record's end and parsed by Arrow.

        One buffer serves every block: the bytes after the last block's cut are moved to its front and the
        rest is read into it in place, and Arrow parses the block where it lies (its table is built in
        buffers of its own, so the block can be overwritten once it is parsed). A new bytes object for each
        read, join and slice had the pages of every block faulted in afresh: on 2M rows (500 MB), 212,000
        page faults and 2.4 s of system time in a 3 s run."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        want = self._block
        buf = bytearray(max(want, len(self._pending)))
        fill = len(self._pending)
        buf[:fill] = self._pending
        self._pending = b""
        eof = False
        while fill or not eof:
            if len(buf) < want:  # a record longer than a block: a larger one (no view of buf is alive here)
                buf.extend(bytes(want - len(buf)))
            while fill < want and not eof:
                view = memoryview(buf)[fill:want]
                n = self._stream.readinto(view) or 0
                del view
                if n == 0:
                    eof = True
                fill += n
            cut = fill if eof else _record_end(buf, fill, first=False)
            if cut <= 0:  # no complete record yet: read more
                want *= 2
                continue
            table = None
            if _NOT_SPACE.search(buf, 0, cut):
                block = pa.py_buffer(memoryview(buf)[:cut])
                # one Arrow block for the whole cut (a record longer than Arrow's block would not parse)
                options = pacsv.ReadOptions(column_names=self._names, block_size=cut + 1)
                table = pacsv.read_csv(block, read_options=options, convert_options=self._convert)
                del block
            buf[:fill - cut] = buf[cut:fill]  # the start of the next block to the front (no resize)
            fill -= cut
            want = self._block
            if table is not None:
                yield from table.to_batches(max_chunksize=self._batch_size)

    def _text_batches(self) -> Iterator[Any]:
        import pyarrow as pa

        stream: Any = self._stream if isinstance(self._stream, io.BufferedIOBase) else io.BufferedReader(
            self._stream)  # type: ignore[arg-type, type-var]
        lineno = 0
        buf: List[str] = []
        decode = codecs.getdecoder("utf-8")
        while True:
            try:
                lines = stream.readlines(_TEXT_LINES_PER_READ)
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                raise CliError(f"{self.name}: cannot read ({printable(str(exc))})") from None
            if not lines:
                break
            for raw in lines:
                lineno += 1
                try:
                    text = decode(raw)[0]
                except UnicodeDecodeError:
                    raise CliError(f"{self.name}: line {lineno}: not UTF-8 text ({_shown_line(raw)})") from None
                if text.endswith("\n"):
                    text = text[:-2] if text.endswith("\r\n") else text[:-1]
                buf.append(text)
            while len(buf) >= self._batch_size:
                yield pa.record_batch([pa.array(buf[:self._batch_size], pa.string())], names=[self._column])
                buf = buf[self._batch_size:]
        if buf:
            yield pa.record_batch([pa.array(buf, pa.string())], names=[self._column])

    def check_column(self, column: str, what: str) -> None:
        if column not in self.schema.names:
            shown = ", ".join(printable(n) for n in self.schema.names[:20]) + \
                (", ..." if len(self.schema.names) > 20 else "")
            raise CliError(f"{self.name}: no {what} column {printable(column)!r} (columns: {shown})")


class AtomicOutput:
    """Writes an output file under a temporary name beside it; ``commit()`` renames it into place.

    Standard output (``-``) is written as it goes: there is nothing to rename or remove.
    """

    def __init__(self, path: str, schema: Any, text_column: Optional[str], fmt: Optional[str] = None):
        import pyarrow as pa

        self.path = path
        self.name = display_name(path, output=True)
        self.format, gz = format_of(path, fmt)
        self.tmp: Optional[str] = None
        self._text_column = text_column
        self._writer: Any = None
        self._file: Any = None
        if path == STDIO:
            self._file = sys.stdout.buffer
            if self.format == "csv":
                import pyarrow.csv as pacsv

                self._writer = pacsv.CSVWriter(self._file, schema)
            return
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise CliError(f"{path}: the directory {directory} does not exist")
        self.tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            if self.format == "parquet":
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self.tmp, schema)
            elif self.format == "csv":
                import pyarrow.csv as pacsv

                sink = pa.output_stream(self.tmp, compression="gzip" if gz else None)
                self._file = sink
                self._writer = pacsv.CSVWriter(sink, schema)
            else:
                self._file = gzip.open(self.tmp, "wb") if gz else open(self.tmp, "wb")
        except PermissionError:
            self._discard()
            raise CliError(f"{path}: permission denied") from None
        except OSError as exc:
            self._discard()
            raise CliError(f"{path}: cannot write ({exc.strerror or exc})") from None

    def write(self, batch: Any) -> None:
        if self.format == "text":
            values = batch.column(batch.schema.get_field_index(self._text_column)).to_pylist()
            self._file.write("".join(("" if v is None else v) + "\n" for v in values).encode("utf-8"))
        else:
            self._writer.write_batch(batch)

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self.tmp is None:
            self._file.flush()
            return
        if self._file is not None:
            self._file.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)  # as an ordinary open() would have created it
        os.replace(self.tmp, self.path)

    def _discard(self) -> None:
        if self.tmp is None:
            return
        for obj in (self._writer, self._file):
            try:
                if obj is not None:
                    obj.close()
            except Exception:  # noqa: BLE001 - already failing; the temporary file goes anyway
                pass
        try:
            os.unlink(self.tmp)
        except OSError:
            pass

    def __enter__(self) -> "AtomicOutput":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self._discard()


def text_column_of(batch: Any, index: int, name: str, column: str) -> Any:
    """Column ``index`` of ``batch`` as Arrow text (``name`` is the input's display name, for errors)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = batch.column(index)
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return col
    if pa.types.is_null(t) or pa.types.is_dictionary(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t) \
            or getattr(pa.types, "is_string_view", lambda _: False)(t):
        try:
            return pc.cast(col, pa.string())
        except pa.ArrowException:
            raise CliError(f"{name}: column {printable(column)!r} holds bytes that are not UTF-8 text") from None
    raise CliError(f"{name}: column {printable(column)!r} has type {t}; it must hold text")
