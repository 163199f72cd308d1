"""The CLI's file formats: CSV, Parquet and newline text in (streamed in batches) and out (atomically)."""
import gzip
import os
from typing import Any, Callable, Iterator, List, Optional, Tuple

from ._common import CliError


_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".txt": "text", ".text": "text",
            ".tokens": "text"}


def _format_of(path: str) -> Tuple[str, bool]:
    """(``csv`` | ``parquet`` | ``text``, gzip-compressed?) from the file name."""
    name = path.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    ext = os.path.splitext(name)[1]
    fmt = _FORMATS.get(ext)
    if fmt is None or (gz and fmt == "parquet"):
        known = ", ".join(sorted(set(_FORMATS) | {".csv.gz", ".txt.gz"}))
        raise CliError(f"{path}: unknown file type {ext + ('.gz' if gz else '') or '(no extension)'!r}; "
                       f"use one of {known}")
    return fmt, gz


class _Input:
    """An input file opened for streaming: its Arrow schema, row count when known, and a batch iterator."""

    def __init__(self, path: str, column: str, batch_size: int):
        import pyarrow as pa

        self.path = path
        self.format, self.gz = _format_of(path)
        self.total: Optional[int] = None
        if not os.path.exists(path):
            raise CliError(f"{path}: no such file")
        if os.path.isdir(path):
            raise CliError(f"{path}: is a directory")
        if not os.access(path, os.R_OK):
            raise CliError(f"{path}: permission denied")
        self._batch_size = batch_size
        self._column = column
        if self.format == "parquet":
            import pyarrow.parquet as pq

            try:
                # buffer_size > 0 streams column chunks page by page instead of loading whole row groups.
                self._pf = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
            except (pa.ArrowException, OSError) as exc:
                raise CliError(f"{path}: not a readable Parquet file ({exc})") from None
            self.schema = self._pf.schema_arrow
            self.total = self._pf.metadata.num_rows
        elif self.format == "csv":
            import pyarrow.csv as pacsv

            self._block = int(min(max(batch_size * 256, 1 << 20), 256 << 20))
            try:
                probe = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=self._block))
                names = probe.schema.names
                probe.close()
            except (pa.ArrowException, OSError) as exc:
                raise CliError(f"{path}: not a readable CSV file ({exc})") from None
            if len(set(names)) != len(names):
                raise CliError(f"{path}: the CSV header repeats a column name")
            # Every column as text: values pass through unchanged and a later block can never
            # contradict the types guessed from the first one.
            self._convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names})
            self.schema = pa.schema([pa.field(n, pa.string()) for n in names])
        else:
            self.schema = pa.schema([pa.field(column, pa.string())])

    def batches(self) -> Iterator[Any]:
        import pyarrow as pa

        if self.format == "parquet":
            yield from self._pf.iter_batches(batch_size=self._batch_size)
        elif self.format == "csv":
            import pyarrow.csv as pacsv

            reader = pacsv.open_csv(self.path, read_options=pacsv.ReadOptions(block_size=self._block),
                                    convert_options=self._convert)
            try:
                for batch in reader:
                    yield batch
            finally:
                reader.close()
        else:
            opener: Callable[..., Any] = gzip.open if self.gz else open
            with opener(self.path, "rt", encoding="utf-8") as f:
                buf: List[str] = []
                try:
                    for line in f:
                        buf.append(line[:-1] if line.endswith("\n") else line)
                        if len(buf) >= self._batch_size:
                            yield pa.record_batch([pa.array(buf, pa.string())], names=[self._column])
                            buf = []
                except UnicodeDecodeError:
                    raise CliError(f"{self.path}: not UTF-8 text") from None
                if buf:
                    yield pa.record_batch([pa.array(buf, pa.string())], names=[self._column])

    def check_column(self, column: str, what: str) -> None:
        if column not in self.schema.names:
            shown = ", ".join(self.schema.names[:20]) + (", ..." if len(self.schema.names) > 20 else "")
            raise CliError(f"{self.path}: no {what} column {column!r} (columns: {shown})")


class _AtomicOutput:
    """Writes an output file under a temporary name beside it; ``commit()`` renames it into place."""

    def __init__(self, path: str, schema: Any, text_column: Optional[str]):
        import pyarrow as pa

        self.path = path
        self.format, gz = _format_of(path)
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise CliError(f"{path}: the directory {directory} does not exist")
        self.tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        self._text_column = text_column
        self._writer: Any = None
        self._file: Any = None
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
                opener: Callable[..., Any] = gzip.open if gz else open
                self._file = opener(self.tmp, "wt", encoding="utf-8", newline="\n")
        except PermissionError:
            self._discard()
            raise CliError(f"{path}: permission denied") from None
        except OSError as exc:
            self._discard()
            raise CliError(f"{path}: cannot write ({exc.strerror or exc})") from None

    def write(self, batch: Any) -> None:
        if self.format == "text":
            values = batch.column(batch.schema.get_field_index(self._text_column)).to_pylist()
            self._file.write("".join(("" if v is None else v) + "\n" for v in values))
        else:
            self._writer.write_batch(batch)

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._file is not None:
            self._file.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)  # as an ordinary open() would have created it
        os.replace(self.tmp, self.path)

    def _discard(self) -> None:
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

    def __enter__(self) -> "_AtomicOutput":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self._discard()


def _text_column_of(batch: Any, index: int, path: str, name: str) -> Any:
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
            raise CliError(f"{path}: column {name!r} holds bytes that are not UTF-8 text") from None
    raise CliError(f"{path}: column {name!r} has type {t}; it must hold text")
