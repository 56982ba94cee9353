"""The one reader of CSV/Parquet inputs: lease tapes and holdings files, every bad cell located."""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pydantic import ValidationError
from pydantic_core import InitErrorDetails
from tqdm import tqdm

from engine.config.base import _SHOWN_BAD_ROWS
from engine.config.contagion import HOLDINGS_COLUMNS
from engine.config.errors import _ref_error
from engine.config.leases import _LEASE_FIELDS, _REQUIRED_LEASE_COLUMNS, LEASE_COLUMNS, Lease, LeaseColumns, _LeaseField

log = logging.getLogger(__name__)


def _read_frame(path: Path, what: str, fail: Callable[[str], ValidationError]) -> pd.DataFrame:
    """A CSV or Parquet file (lease tape, holdings file) as a DataFrame; every problem raises
    ``fail(message)``, located by the caller."""

    if not path.is_file():
        raise fail(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise fail(f"unsupported {what} format {suffix!r} (use .csv or .parquet)")
    try:
        return pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any reader error is a user error about this file
        raise fail(f"cannot read {path.name}: {exc}") from None


# Tapes from this many rows on show a progress bar; the first rows with errors that are listed.
_PROGRESS_ROWS = 100_000


def _read_lease_tape(path: Path) -> tuple[LeaseColumns, str]:
    """The tape's leases as columns, and the SHA-256 of its bytes.

    Each column is checked as a whole against its Lease field (numbers with numpy, strings once per
    distinct value with the field's own pydantic type), so that the accepted rows are exactly those
    ``Lease(**row)`` accepts; the first rows with errors are then run through ``Lease`` itself, for
    its messages."""

    def fail(loc: tuple, msg: str) -> ValidationError:
        return ValidationError.from_exception_data("Deal", [_ref_error(("lease_tape",) + loc, msg, str(path))])

    big = _tape_rows_estimate(path) >= _PROGRESS_ROWS
    t0 = time.perf_counter()
    with tqdm(total=1 + len(LEASE_COLUMNS), desc=f"lease tape {path.name}", unit="column", file=sys.stderr,
              disable=not big) as bar:
        bar.set_postfix_str("reading")
        frame = _read_frame(path, "lease tape", lambda msg: fail((), msg))
        with path.open("rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        bar.update()
        t_read = time.perf_counter() - t0
        unknown = [c for c in frame.columns if c not in LEASE_COLUMNS]
        missing = [c for c in _REQUIRED_LEASE_COLUMNS if c not in frame.columns]
        column_errors = [_ref_error(("lease_tape", c), f"unknown column {c!r}; allowed: {', '.join(LEASE_COLUMNS)}", c) for c in unknown]
        column_errors += [_ref_error(("lease_tape", c), f"missing required column {c!r}", None) for c in missing]
        if column_errors:
            raise ValidationError.from_exception_data("Deal", column_errors)
        if frame.empty:
            raise fail((), "the lease tape has no rows")
        n = len(frame)
        at = {c: i for i, c in enumerate(frame.columns)}  # a repeated name: the last one, as a row dict keeps it
        cols: dict[str, np.ndarray] = {}
        rejected: dict[str, np.ndarray] = {}
        for name, spec in _LEASE_FIELDS.items():
            bar.set_postfix_str(name, refresh=False)
            if name in at:
                cols[name], ok = _lease_column(frame.iloc[:, at[name]], spec)
                if not ok.all():
                    rejected[name] = ~ok
            else:
                cols[name] = np.full(n, spec.fill, dtype=spec.dtype)
            bar.update()
    bad = np.zeros(n, dtype=bool)
    for mask in rejected.values():
        bad |= mask
    # Lease._options, checked by pydantic only on rows whose fields all pass.
    bad |= (cols["rvg_threshold"] > 0) & (cols["rvg_months"] == 0)
    if bad.any():
        raise ValidationError.from_exception_data("Deal", _tape_row_errors(frame, np.flatnonzero(bad), rejected))
    if big:
        log.info("lease tape %s: %d rows read in %.1f s, checked in %.1f s", path, n, t_read, time.perf_counter() - t0 - t_read)
    return LeaseColumns(cols), digest


def _tape_rows_estimate(path: Path) -> int:
    """About how many rows the tape has, from its first MiB (CSV) or its metadata (Parquet); 0 if unknown."""
    try:
        if path.suffix.lower() == ".csv":
            with path.open("rb") as f:
                head = f.read(1 << 20)
            return path.stat().st_size * head.count(b"\n") // max(len(head), 1)

        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - only sizes the progress bar; reading the tape reports the problem
        return 0


def _lease_column(column: pd.Series, spec: _LeaseField) -> tuple[np.ndarray, np.ndarray]:
    """One tape column as ``spec`` stores it, and which of its cells ``Lease`` accepts.

    The cell values are those the rows of ``frame.to_dict("records")`` hold, so both the coercions
    (a float 3.0 is the int 3, True is 1, the string " 7 " is 7) and the rejections are pydantic's."""

    numbers = _numeric(column)
    if numbers is not None:
        x, missing = numbers
        values, ok = _check_numbers(x, spec)
    else:
        values, ok, missing = _check_objects(column, spec)
    if missing.any():
        # An empty cell is left out of the row, so the field takes its default; a required field has none.
        values = np.where(missing, spec.fill, values)
        ok[missing] = not spec.required
    return values, ok


def _numeric(column: pd.Series) -> tuple[np.ndarray, np.ndarray] | None:
    """A bool, integer or float column as a numpy array and its empty cells; None for any other column."""

    dt = column.dtype
    if isinstance(dt, np.dtype):
        if dt.kind in "biu":
            return column.to_numpy(), np.zeros(len(column), dtype=bool)
        if dt.kind == "f":
            x = column.to_numpy()
            return x, np.isnan(x)
        return None
    # Nullable (masked) and Arrow-backed numbers, as pandas makes of some Parquet columns.
    npdt = getattr(dt, "numpy_dtype", None)
    if not (pd.api.types.is_bool_dtype(dt) or pd.api.types.is_numeric_dtype(dt)) or npdt is None or npdt.kind not in "biuf":
        return None
    missing = np.array(column.isna(), dtype=bool)  # a copy: the mask may be a read-only view
    x = column.to_numpy(dtype=npdt, na_value=npdt.type(0))
    if npdt.kind == "f":
        missing |= np.isnan(x)  # a NaN that is not NA is as empty to the row dict
    return x, missing


def _check_numbers(x: np.ndarray, spec: _LeaseField) -> tuple[np.ndarray, np.ndarray]:
    """Pydantic's lax rules for Python numbers, vectorised: an int field takes an integral finite
    float or a bool, a float field any number, a str field (or choice) no number at all."""
    n = len(x)
    if spec.kind == "str":
        return np.full(n, None, dtype=object), np.zeros(n, dtype=bool)
    if x.dtype.kind == "b":
        x = x.astype(np.int64)
    # A column already of the field's dtype is kept as it is (a read-only view of the frame), not
    # copied: the values of a tape with a bad cell are never used.
    with np.errstate(invalid="ignore"):
        if spec.kind == "float":
            values = x.astype(np.float64, copy=False)
            return values, _within(values, spec)
        if x.dtype.kind == "f":
            x = x.astype(np.float64, copy=False)
            ok = np.isfinite(x) & (np.floor(x) == x) & _within(x, spec)
            return np.where(ok, x, 0).astype(np.int64), ok
        return x.astype(np.int64, copy=False), _within(x, spec)


def _within(x: np.ndarray, spec: _LeaseField) -> np.ndarray:
    ok = np.ones(len(x), dtype=bool)
    for op, limit in spec.bounds:
        ok &= op(x, limit)
    return ok


def _check_objects(column: pd.Series, spec: _LeaseField) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A column of strings (or of anything else) checked by the field's pydantic type, once per
    distinct string: a tenant column of a million rows costs a few hundred validations."""

    dt = column.dtype
    if isinstance(dt, pd.StringDtype) or (dt == object and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")):
        codes, uniques = pd.factorize(column)  # an empty cell is code -1
        cells = uniques.to_numpy(dtype=object)
        u_missing = np.asarray(pd.isna(cells), dtype=bool)
        u_values, u_ok = _check_cells(list(cells), u_missing, spec)
        empty = codes < 0
        if not len(cells):
            return np.full(len(column), spec.fill, dtype=spec.dtype), np.ones(len(column), dtype=bool), empty
        codes = np.where(empty, 0, codes)
        return u_values[codes], u_ok[codes], empty | u_missing[codes]
    # Mixed or unusual cells (a CSV column that is numbers in some blocks and text in others, dates,
    # decimals), boxed as the row dicts box them.
    cells = column.to_frame(name="v").to_dict("list")["v"]
    missing = np.array([_is_missing(v) for v in cells], dtype=bool)
    return (*_check_cells(cells, missing, spec), missing)


_CHECK_BLOCK = 65_536  # cells per pydantic call: bounds the error list of a column of bad cells


def _check_cells(cells: list, missing: np.ndarray, spec: _LeaseField) -> tuple[np.ndarray, np.ndarray]:
    """The field's pydantic type on every present cell: the values it makes, and which it accepts."""
    values = np.full(len(cells), spec.fill, dtype=spec.dtype)
    ok = np.ones(len(cells), dtype=bool)
    present = np.flatnonzero(~missing)
    for b in range(0, len(present), _CHECK_BLOCK):
        at = present[b:b + _CHECK_BLOCK]
        block = [cells[i] for i in at.tolist()]
        try:
            out = spec.many.validate_python(block)
            good = at
        except ValidationError as exc:
            bad = np.zeros(len(block), dtype=bool)
            bad[[e["loc"][0] for e in exc.errors(include_url=False, include_context=False, include_input=False)]] = True
            ok[at[bad]] = False
            good = at[~bad]
            out = spec.many.validate_python([block[i] for i in np.flatnonzero(~bad).tolist()])
        if len(good):
            values[good] = np.array(out, dtype=spec.dtype)
    return values, ok


def _tape_row_errors(frame: pd.DataFrame, rows: np.ndarray, rejected: dict[str, np.ndarray]) -> list[InitErrorDetails]:
    """The errors of the first bad ``rows``, from ``Lease`` on the row as a dict (the messages a
    list of Lease objects gave), then how many rows have errors."""

    errs: list[InitErrorDetails] = []
    for r in rows[:_SHOWN_BAD_ROWS].tolist():
        record = {k: v for k, v in frame.iloc[[r]].to_dict("records")[0].items() if not _is_missing(v)}
        try:
            Lease.model_validate(record)
        except ValidationError as exc:
            errs += [_ref_error(("lease_tape", f"row {r}", *e["loc"]), e["msg"], e.get("input"))
                     for e in exc.errors(include_url=False)]
        else:  # the column check and the model disagree: still an error, never a silent acceptance
            fields = [name for name, mask in rejected.items() if mask[r]] or ["rvg_months"]
            errs += [_ref_error(("lease_tape", f"row {r}", name), "rejected by the lease tape check", record.get(name))
                     for name in fields]
    if len(rows) > _SHOWN_BAD_ROWS:
        errs.append(_ref_error(("lease_tape",), f"{len(rows):,} rows have errors; only the first {_SHOWN_BAD_ROWS} are listed", None))
    return errs


def _is_missing(v: Any) -> bool:

    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _read_holdings(path: Path) -> list[tuple[str, str, float]]:
    """Rows (holder, asset, par) of a holdings file; errors are located at `contagion.holdings_file`."""
    def fail(msg: str, where: tuple = ()) -> ValidationError:
        return ValidationError.from_exception_data("Config", [_ref_error(("contagion", "holdings_file", *where), msg, str(path))])

    frame = _read_frame(path, "holdings file", fail)
    cols = [c for c in frame.columns if c not in HOLDINGS_COLUMNS]
    missing = [c for c in HOLDINGS_COLUMNS if c not in frame.columns]
    if cols or missing:
        raise fail(f"columns must be exactly {', '.join(HOLDINGS_COLUMNS)}"
                   + (f"; unknown: {', '.join(map(str, cols))}" if cols else "") + (f"; missing: {', '.join(missing)}" if missing else ""))
    rows = []
    for i, (h, a, par) in enumerate(frame[list(HOLDINGS_COLUMNS)].itertuples(index=False)):
        try:
            x = float(par)
        except (TypeError, ValueError):
            raise fail(f"par {par!r} is not a number", (f"row {i}", "par")) from None
        if not np.isfinite(x) or x < 0.0:
            raise fail(f"par {x:g} must be finite and ≥ 0", (f"row {i}", "par"))
        rows.append((str(h), str(a), x))
    return rows
