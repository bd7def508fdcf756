"""Export file formats (csv, jsonl, parquet): streaming writers and readers of chain rows.

Every format stores the row's fields losslessly (``seq`` and ``ts`` as integers, everything else as
the exact strings that were hashed), so ``audit verify DIR`` can recompute each hash from a file.
Writers take blocks of rows and hold at most one parquet row group; readers yield row by row.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from pipeline.audit.chain import FIELDS, ChainRow
from pipeline.errors import InputError

FORMATS = ("csv", "jsonl", "parquet")
ROW_GROUP = 16_384  # rows per parquet row group: ~12 MB of Python tuples held at most
_INT = {"seq", "ts"}


class RowWriter:
    """``write(rows)`` then ``close()``; ``rows`` counts what was written."""

    def __init__(self, path: Path, fmt: str) -> None:
        if fmt not in FORMATS:
            raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
        self.path, self.fmt, self.rows = path, fmt, 0
        self._fh: IO[Any] | None = None
        self._csv: Any = None
        self._pq: Any = None
        self._group: list[tuple] = []
        if fmt == "csv":
            self._fh = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - held until close()
            self._csv = csv.writer(self._fh, lineterminator="\n")
            self._csv.writerow(FIELDS)
        elif fmt == "jsonl":
            self._fh = open(path, "wb")  # noqa: SIM115 - held until close()
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            self._schema = pa.schema([(f, pa.int64() if f in _INT else pa.string()) for f in FIELDS])
            self._pq = pq.ParquetWriter(str(path), self._schema, compression="zstd")

    def write(self, rows: list[tuple]) -> None:
        self.rows += len(rows)
        if self.fmt == "csv":
            self._csv.writerows(rows)
        elif self.fmt == "jsonl":
            assert self._fh is not None
            self._fh.write(b"".join(orjson.dumps(dict(zip(FIELDS, r))) + b"\n" for r in rows))
        else:
            self._group.extend(rows)
            if len(self._group) >= ROW_GROUP:
                self._flush_group()

    def _flush_group(self) -> None:
        import pyarrow as pa

        if self._group:
            columns = list(zip(*self._group))
            self._pq.write_table(pa.Table.from_arrays([pa.array(c, type=t.type) for c, t in
                                                       zip(columns, self._schema)], schema=self._schema))
            self._group = []

    def close(self) -> None:
        if self._pq is not None:
            self._flush_group()
            self._pq.close()
        if self._fh is not None:
            self._fh.close()


def read_rows(path: Path, fmt: str) -> Iterator[ChainRow]:
    """The rows of one export file, in file order; a malformed line raises ``InputError``."""
    if fmt == "csv":
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if tuple(header or ()) != FIELDS:
                raise InputError(f"{path}: header is not {','.join(FIELDS)}")
            for line, rec in enumerate(reader, start=2):
                yield _row(rec, path, line)
    elif fmt == "jsonl":
        with open(path, "rb") as fh:
            for line, raw in enumerate(fh, start=1):
                try:
                    obj = orjson.loads(raw)
                    rec = [obj[f] for f in FIELDS]
                except (orjson.JSONDecodeError, KeyError, TypeError) as err:
                    raise InputError(f"{path}:{line}: not an audit record ({err})") from None
                yield _row(rec, path, line)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(str(path)).iter_batches(batch_size=ROW_GROUP, columns=list(FIELDS)):
            for rec in zip(*(batch.column(i).to_pylist() for i in range(len(FIELDS)))):
                yield ChainRow(*rec)
    else:
        raise InputError(f"{path}: unknown format {fmt!r}")


def _row(rec: Iterable[Any], path: Path, line: int) -> ChainRow:
    try:
        vals = [int(v) if f in _INT else str(v) for f, v in zip(FIELDS, rec, strict=True)]
    except ValueError as err:
        raise InputError(f"{path}:{line}: not an audit record ({err})") from None
    return ChainRow(*vals)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
