"""Mergeable per-chunk statistics and the summary tables built from them (MODEL §8).

Exactness is the design goal: every accumulated quantity is an integer.
* Sums and sums of squares are kept in fixed point: each path's value (and its square) is rounded
  once to a multiple of 2^-40 and the integers are summed exactly (as Python ints when merged). The merge is
  therefore associative and commutative bit for bit, so results do not depend on chunk size,
  thread count or the shape of a Dask reduction tree. The rounding (at most 4.5e-13 per value) is
  far below any Monte Carlo error.
* Loss histograms have a bin for exactly 0, 10,000 bins of width 1e-4 on (0, 1), and a bin for a
  loss of exactly 1 (a wiped-out class). Quantiles (VaR) and ES are computed from the merged
  histogram with each bin represented by its midpoint, so they are accurate to half a bin (5e-5).
* Under importance sampling (engine/simulation/importance.py) every path carries a likelihood-ratio weight w.
  Counts and histogram bins become sums of weights (:class:`Mass`, exact fixed point in int64
  limbs), moments sum w·x, w·x² and (w·x)². Without weights nothing of this runs: a plain run's
  statistics are the integer counts above, bit for bit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from engine.io.chunks import committable
from kernels.plan import ARD_REFINANCED, ARD_SWEPT, FACTOR_LO, FACTOR_WIDTH, FAN_BINS, GPU_LO, GPU_WIDTH, PathOutputs
from kernels.tally import fixed_sums, loss_bin_counts, month_bin_counts, stratum_sums, weighted_bin_sums, weighted_fixed_sums

# Labels of the kernel's ARD outcome codes (ARD_NONE, ARD_REFINANCED, ARD_SWEPT).
ARD_OUTCOMES = ("none", "refinanced", "swept")

FIX_BITS = 40
_SPLIT = 31
_MAX_ABS = 2.0**62
N_BINS = 10_002
BIN_WIDTH = 1e-4
LEVELS = (0.95, 0.99, 0.999)
_LEVEL_NAMES = ("95", "99", "999")
BIN_VALUES = np.concatenate([[0.0], (np.arange(1, N_BINS - 1) - 0.5) * BIN_WIDTH, [1.0]])


def _limb_ints(sums: np.ndarray) -> np.ndarray:
    """Python ints of split fixed-point sums i8[4, m] (whole-hi, whole-lo, frac-hi, frac-lo; kernels/tally.py)."""
    return np.array([(((int(a) << _SPLIT) + int(b)) << FIX_BITS) + (int(c) << _SPLIT) + int(d)
                     for a, b, c, d in zip(*sums)], dtype=object)


# Path weights in fixed point: units of 2^-40, held as three int64 limbs of base 2^31.
_LIMB = 31
_LIMB_MASK = (1 << _LIMB) - 1
MAX_WEIGHT = 2.0**40


@dataclass(frozen=True)
class PathWeights:
    """The likelihood-ratio weights of a chunk's paths (importance sampling) and their exact
    fixed-point limbs: w = (limbs[2]·2^62 + limbs[1]·2^31 + limbs[0])·2^-40, rounded once per path.
    With a stratified factor, ``stratum`` holds each path's stratum (path index mod ``n_strata``)."""

    w: np.ndarray
    limbs: np.ndarray
    stratum: np.ndarray | None = None
    n_strata: int = 1

    @classmethod
    def of(cls, w: np.ndarray, start: int = 0, n_strata: int = 1) -> PathWeights:
        w = np.asarray(w, dtype=np.float64)
        if w.size and not (np.all(np.isfinite(w)) and w.min() >= 0.0 and w.max() < MAX_WEIGHT):
            bad = int(np.flatnonzero(~(np.isfinite(w) & (w >= 0.0) & (w < MAX_WEIGHT)))[0])
            raise RuntimeError(f"a likelihood-ratio weight of {w[bad]:.3g} is outside [0, 2^40): the importance "
                               "law is far from the model's for this config; set importance.factor_shift nearer 0, or "
                               "raise importance.plain_share above 0 (every weight then stays below 1/plain_share)")
        hi = np.floor(w * 2.0**-22)
        q = np.rint((w - hi * 2.0**22) * 2.0**40).astype(np.int64)
        stratum = (np.arange(start, start + w.size, dtype=np.int64) % n_strata) if n_strata > 1 else None
        return cls(w, np.stack([q & _LIMB_MASK, q >> _LIMB, hi.astype(np.int64)], axis=1), stratum, n_strata)

    def rows(self, a: int, b: int) -> PathWeights:
        return PathWeights(self.w[a:b], self.limbs[a:b], None if self.stratum is None else self.stratum[a:b], self.n_strata)


def _normalise_fixed(limbs: np.ndarray) -> np.ndarray:
    """Canonical limbs of fixed-point sums (last axis: whole >> 31, whole & mask, frac >> 31, frac & mask;
    value = ((l0·2^31 + l1)·2^40 + l2·2^31 + l3)·2^-40), so that equal sums are equal bits."""
    out = limbs.copy()
    out[..., 2] += out[..., 3] >> _LIMB
    out[..., 3] &= _LIMB_MASK
    out[..., 1] += out[..., 2] >> (FIX_BITS - _LIMB)
    out[..., 2] &= (1 << (FIX_BITS - _LIMB)) - 1
    out[..., 0] += out[..., 1] >> _LIMB
    out[..., 1] &= _LIMB_MASK
    return out


@committable
@dataclass
class StratumSums:
    """Per stratum of the factor (kernels/draws.py ``_stratify``) and column: the paths, and exact
    fixed-point sums of y and y² for the weighted values y = w·x, in canonical int64 limbs. They give
    the stratified estimator's variance Σ_h n_h·s_h² / n² (s_h² the sample variance of y in stratum h),
    which leaves out the variance between strata that stratification removed."""

    count: np.ndarray  # int64[K]
    limbs: np.ndarray  # int64[2, K, m, 4]: sums of y, of y²

    @classmethod
    def of(cls, y: np.ndarray, stratum: np.ndarray, n_strata: int) -> StratumSums:
        if y.size and np.abs(y).max() >= 2.0**31:
            raise RuntimeError(f"a weighted per-path statistic of magnitude {np.abs(y).max():.3g} is beyond 2^31: the "
                               "likelihood ratios are extreme; keep importance.plain_share above 0 or the shift nearer 0")
        count, out = stratum_sums(np.ascontiguousarray(y, dtype=np.float64), np.ascontiguousarray(stratum, dtype=np.int64),
                                  int(n_strata))
        return cls(count, _normalise_fixed(out))

    def merge(self, other: StratumSums) -> StratumSums:
        return StratumSums(self.count + other.count, _normalise_fixed(self.limbs + other.limbs))

    def _exact(self) -> np.ndarray:
        """The sums as Python ints in units of 2^-40: object[2, K, m]."""
        L = self.limbs.astype(object)
        return (L[..., 0] * (1 << _LIMB) + L[..., 1]) * (1 << FIX_BITS) + L[..., 2] * (1 << _LIMB) + L[..., 3]

    def spread(self) -> np.ndarray:
        """Per column, Σ_h n_h·s_h² (s_h² the sample variance of y in stratum h; a stratum with
        fewer than 2 paths adds nothing): n_h·s_h² = (n_h·Q_h − S_h²) / (n_h − 1), its numerator
        exact, rounded once to float, summed over the strata in their order."""
        S, Q = self._exact()
        scale = 1 << FIX_BITS
        nh = self.count.astype(object)[:, None]
        keep = self.count >= 2
        num = (Q * nh * scale - S * S)[keep].astype(np.float64)
        den = (float(scale) * float(scale)) * (self.count[keep].astype(np.float64) - 1.0)
        return np.maximum(num / den[:, None], 0.0).sum(axis=0) if keep.any() else np.zeros(S.shape[1])

    def sums(self) -> np.ndarray:
        """Per column, Σ y over every stratum (float64 of the exact sum)."""
        return np.array([float(Fraction(int(v), 1 << FIX_BITS)) for v in self._exact()[0].sum(axis=0)])

    def mean_variance(self, n: int) -> np.ndarray | None:
        """Variance of the estimator Σ y / n per column; None while some stratum has fewer than 2 paths."""
        if self.count.min() < 2:
            return None
        return self.spread() / (float(n) * float(n))


def _normalise(limbs: np.ndarray) -> np.ndarray:
    out = limbs.copy()
    for k in (0, 1):
        carry = out[..., k] >> _LIMB
        out[..., k] &= _LIMB_MASK
        out[..., k + 1] += carry
    return out


@committable
@dataclass
class Mass:
    """Exact sums of path weights (a weighted count, or a weighted histogram's bins): int64 limbs
    on the last axis, canonical, so that equal sums are equal bits whatever the order of merging."""

    limbs: np.ndarray

    def merge(self, other: Mass) -> Mass:
        return Mass(_normalise(self.limbs + other.limbs))

    def value(self) -> np.ndarray:
        """The sums as float64 (one rounding of the exact value's limbs, in a fixed order)."""
        l = self.limbs.astype(np.float64)
        return l[..., 2] * 2.0**22 + l[..., 1] * 2.0**-9 + l[..., 0] * 2.0**-40


def _weighted_count(flags: np.ndarray, pw: PathWeights) -> Mass:
    """Σ w over the paths where each column of ``flags`` (n × m, or n) holds."""
    f = flags.astype(np.int64)
    return Mass(_normalise(f.T @ pw.limbs))


def _weighted_bincount(idx: np.ndarray, size: int, pw: PathWeights) -> Mass:
    """Σ w per (column, value) of an n × m integer matrix with values in 0..size-1 (others are
    skipped) -> Mass[m, size], the limbs summed exactly in int64 in one jitted pass."""
    return Mass(_normalise(weighted_bin_sums(np.ascontiguousarray(idx, dtype=np.int64), int(size),
                                             np.ascontiguousarray(pw.limbs, dtype=np.int64))))


@dataclass(frozen=True)
class Tally:
    """Moments and counts of one chunk's paths, weighted by their likelihood ratios when there are any."""

    weights: PathWeights | None

    def moments(self, values: np.ndarray, se: bool = False) -> Moments:
        """``se``: also tally per stratum, for the mean's stratified standard error."""
        return Moments.of(values, self.weights, se)

    def count(self, flags: np.ndarray) -> np.ndarray | Mass:
        return _count(flags, self.weights)


def counts_view(stats):
    """A copy of a statistics dataclass with every :class:`Mass` as float64 sums of weights, so that
    the tables read weighted and plain counts alike (a plain run's fields are returned as they are)."""
    changes = {f.name: getattr(stats, f.name).value() for f in dataclasses.fields(stats)
               if isinstance(getattr(stats, f.name), Mass)}
    return dataclasses.replace(stats, **changes) if changes else stats


@committable
@dataclass
class Moments:
    """Exact count, sum and sum of squares per column, ignoring NaN.

    Weighted (importance sampling): ``total`` and ``squares`` sum w·x and w·x², ``wsquares`` sums
    (w·x)² (the estimator's second moment), ``weight`` sums w over the finite values and ``paths``
    counts every path. A column with no NaN is estimated by Σw·x / n (unbiased); one with NaN (a
    mean over the paths where the value exists) by Σw·x / Σw over those paths."""

    count: np.ndarray
    total: np.ndarray
    squares: np.ndarray
    wsquares: np.ndarray | None = None
    weight: np.ndarray | None = None
    paths: int | None = None
    strata: StratumSums | None = None

    @classmethod
    def of(cls, values: np.ndarray, weights: PathWeights | None = None, se: bool = False) -> Moments:
        """``se`` with stratified weights: also the per-stratum sums of the mean's standard error."""
        if weights is None:
            return cls._of_plain(values)
        shape = values.shape[1:]
        v = np.ascontiguousarray(values.reshape(values.shape[0], int(np.prod(shape, dtype=np.int64))), dtype=np.float64)
        count, sums, top = weighted_fixed_sums(v, np.ascontiguousarray(weights.w, dtype=np.float64))
        if top >= _MAX_ABS:
            raise RuntimeError(f"a weighted per-path statistic of magnitude {top:.3g} is beyond 2^62; this is a bug")
        strata = None
        if se and weights.stratum is not None and values.ndim == 2:
            strata = StratumSums.of(weights.w[:, None] * np.where(np.isfinite(v), v, 0.0), weights.stratum, weights.n_strata)
        total, squares, wsquares, weight = (_limb_ints(sums[r]).reshape(shape) for r in range(4))
        return cls(count=count.astype(object).reshape(shape), total=total, squares=squares, wsquares=wsquares,
                   weight=weight, paths=int(values.shape[0]), strata=strata)

    @classmethod
    def _of_plain(cls, values: np.ndarray) -> Moments:
        """``of`` without weights in one jitted pass (kernels/tally.py): the same integers."""
        shape = values.shape[1:]
        v = values.reshape(values.shape[0], int(np.prod(shape, dtype=np.int64)))
        count, sums, top = fixed_sums(np.ascontiguousarray(v, dtype=np.float64))
        if top >= _MAX_ABS:
            raise RuntimeError(f"a per-path statistic of magnitude {top:.3g} is beyond 2^62; this is a bug")

        return cls(count=count.astype(object).reshape(shape), total=_limb_ints(sums[0]).reshape(shape),
                   squares=_limb_ints(sums[1]).reshape(shape))

    @property
    def weighted(self) -> bool:
        return self.weight is not None

    def merge(self, other: Moments) -> Moments:
        if not self.weighted:
            return Moments(self.count + other.count, self.total + other.total, self.squares + other.squares)
        strata = None if self.strata is None or other.strata is None else self.strata.merge(other.strata)
        return Moments(self.count + other.count, self.total + other.total, self.squares + other.squares,
                       self.wsquares + other.wsquares, self.weight + other.weight, self.paths + other.paths, strata)

    def _denominators(self) -> list:
        """Per column, the sum that divides the weighted sums (in units of 2^-FIX_BITS)."""
        return [n << FIX_BITS if n == self.paths else wt for n, wt in zip(self.count, self.weight)]

    def mean(self) -> np.ndarray:
        if self.weighted:
            return np.array([float(Fraction(s, d)) if n and d else np.nan
                             for s, d, n in zip(self.total, self._denominators(), self.count)])
        return np.array([float(Fraction(s, n << FIX_BITS)) if n else np.nan for s, n in zip(self.total, self.count)])

    def variance(self) -> np.ndarray:
        """Unbiased sample variance, computed exactly from the integer sums before rounding
        (weighted: the variance of the values under the weights, E_w[x²] − E_w[x]²)."""
        out = []
        scale = 1 << FIX_BITS
        if self.weighted:
            for s, ss, d, n in zip(self.total, self.squares, self._denominators(), self.count):
                if n < 2 or not d:
                    out.append(np.nan)
                    continue
                m = Fraction(s, d)
                out.append(max(0.0, float(Fraction(ss, d) - m * m)))
            return np.array(out)
        for s, ss, n in zip(self.total, self.squares, self.count):
            if n < 2:
                out.append(np.nan)
                continue
            m = Fraction(s, scale) / n
            var = (Fraction(ss, scale) - n * m * m) / (n - 1)
            out.append(max(0.0, float(var)))
        return np.array(out)

    def mean_se(self, n: int) -> np.ndarray:
        """Monte Carlo standard error of ``mean()`` over ``n`` paths (weighted: of the estimator
        Σw·x / n, from the sample variance of w·x; with a stratified factor, from the variances
        within the strata for every column defined on all paths)."""
        if not self.weighted:
            return np.sqrt(self.variance() / n)
        within = None if self.strata is None else self.strata.mean_variance(n)
        out = []
        scale = 1 << FIX_BITS
        for s, ss, c in zip(self.total, self.wsquares, self.count):
            if c < 2:
                out.append(np.nan)
                continue
            m = Fraction(s, scale) / c
            out.append(max(0.0, float((Fraction(ss, scale) - c * m * m) / (c - 1))))
        var = np.array(out) / n
        if within is not None:
            full = np.array([c == n for c in self.count])
            var = np.where(full, within, var)
        return np.sqrt(var)

    def ess(self) -> np.ndarray:
        """Effective sample size of the mean: (Σw·x)² / Σ(w·x)², the number of equally weighted paths
        with a non-zero value that would carry the same information (plain runs: w = 1)."""
        second = self.wsquares if self.weighted else self.squares
        return np.array([float(Fraction(s * s, ss << FIX_BITS)) if ss else 0.0 for s, ss in zip(self.total, second)])


def loss_histogram(values: np.ndarray, weights: PathWeights | None = None) -> np.ndarray | Mass:
    """Counts per loss bin of each column of ``values`` (n × m) -> int64[m, N_BINS] (weighted: the
    bins' sums of weights, a Mass). NaN is skipped."""
    if weights is not None:
        idx = np.clip(np.ceil(values / BIN_WIDTH), 1, N_BINS - 2)
        idx = np.where(values <= 0.0, 0, np.where(values >= 1.0, N_BINS - 1, idx))
        return _weighted_bincount(np.where(np.isfinite(values), idx, -1).astype(np.int64), N_BINS, weights)
    return loss_bin_counts(np.ascontiguousarray(values, dtype=np.float64), N_BINS, BIN_WIDTH)


def count_histogram(values: np.ndarray, size: int, weights: PathWeights | None = None) -> np.ndarray | Mass:
    """Counts of each integer 0..size-1 per column of ``values`` (n × m) -> int64[m, size]."""
    if weights is not None:
        return _weighted_bincount(values, size, weights)
    return np.stack([np.bincount(values[:, j], minlength=size)[:size] for j in range(values.shape[1])])


def _month_bins(bins: np.ndarray, weights: PathWeights | None = None) -> np.ndarray | Mass:
    """Counts per (month, fan bin) of an i2[n, T+1] array of bin indices -> int64[T+1, FAN_BINS]."""
    if weights is not None:
        return _weighted_bincount(bins, FAN_BINS, weights)
    return month_bin_counts(np.ascontiguousarray(bins), FAN_BINS)


def quantile_and_es(hist: np.ndarray, level: float, total: float | None = None) -> tuple[float, float]:
    """VaR and expected shortfall at ``level`` of the distribution held in a loss histogram.

    VaR is the smallest bin value v with P(L ≤ v) ≥ level; ES is the mean of the upper
    (1 − level) tail (Acerbi–Tasche), both on the midpoint-discretised distribution.

    With ``total`` (importance sampling: the bins hold sums of weights and ``total`` is the number
    of paths), the tail is estimated directly, P(L > v) = Σ_{bins above v} w / total: VaR is the
    smallest bin value v with P(L > v) ≤ 1 − level. This is the tail-probability estimator that
    importance sampling makes precise; the body's weights never enter it.
    """
    if total is not None:
        if total <= 0:
            return np.nan, np.nan
        above = np.concatenate([np.cumsum(hist[::-1])[::-1][1:], [0.0]])  # Σ_{j>i} hist[j]
        budget = (1.0 - level) * total
        i = int(np.argmax(above <= budget))
        var = BIN_VALUES[i]
        tail = float((hist[i + 1:] * BIN_VALUES[i + 1:]).sum())
        return float(var), float((tail + (budget - above[i]) * var) / budget)
    n = hist.sum()
    if n == 0:
        return np.nan, np.nan
    cum = np.cumsum(hist)
    i = int(np.searchsorted(cum, level * n, side="left"))
    i = min(i, hist.size - 1)
    var = BIN_VALUES[i]
    tail = float((hist[i + 1:] * BIN_VALUES[i + 1:]).sum())
    es = (tail + (cum[i] - level * n) * var) / ((1.0 - level) * n)
    return float(var), float(es)


@committable
@dataclass
class RunStats:
    """Everything the summary tables need, merged over chunks. All fields are exact integers."""

    n_paths: int = 0
    loss: Moments | None = None
    alloc: Moments | None = None
    pv: Moments | None = None
    wal: Moments | None = None
    shortfall: Moments | None = None
    net_loss: Moments | None = None
    reserve_used: Moments | None = None
    rvg: Moments | None = None
    recovery: Moments | None = None
    renewals: Moments | None = None
    reserve_out: np.ndarray | None = None
    trap_fired: np.ndarray | None = None
    rapid_fired: np.ndarray | None = None
    ard_refinanced: np.ndarray | None = None
    ard_swept: np.ndarray | None = None
    trap_month_hist: np.ndarray | None = None
    rapid_month_hist: np.ndarray | None = None
    loss_pos: np.ndarray | None = None
    alloc_pos: np.ndarray | None = None
    any_shortfall: np.ndarray | None = None
    loss_hist: np.ndarray | None = None
    alloc_hist: np.ndarray | None = None
    net_loss_hist: np.ndarray | None = None
    defaults_hist: np.ndarray | None = None
    firm_default: np.ndarray | None = None
    firm_own: np.ndarray | None = None
    firm_ratio: Moments | None = None
    firm_caused: Moments | None = None
    cascade_hist: np.ndarray | None = None
    fan_factor: np.ndarray | None = None
    fan_gpu: np.ndarray | None = None
    control: StratumSums | None = None  # importance sampling: w·L, w·A, w·C and w·L + w·C, w·A + w·C per tranche
    holders: object | None = None  # engine.analytics.holders.HolderStats of the contagion step, when there is one
    weights: Moments | None = None  # importance sampling: the likelihood ratios themselves (unweighted moments)

    @classmethod
    def of_chunk(cls, out: PathOutputs, max_defaults: int, horizon: int, weights: PathWeights | None = None,
                 tranche_deal: np.ndarray | None = None) -> RunStats:
        """Statistics of one chunk's path outputs; ``horizon`` is T (a firm month beyond it is no default).
        ``weights``: the paths' likelihood ratios under importance sampling (None: a plain run);
        ``tranche_deal``: each tranche's deal, for the control variate (PathOutputs.deal_control)."""
        alloc = out.tranche_alloc_loss
        tally = Tally(weights)
        moments, count = tally.moments, tally.count
        n_firms = out.firm_own.shape[1]
        return cls(
            n_paths=out.tranche_loss.shape[0],
            loss=moments(out.tranche_loss, se=True),
            alloc=moments(alloc, se=True),
            pv=moments(out.tranche_pv),
            wal=moments(out.tranche_wal),
            shortfall=moments(out.tranche_shortfall),
            net_loss=moments(out.deal_net_loss, se=True),
            reserve_used=moments(out.deal_reserve_used),
            rvg=moments(out.deal_rvg),
            recovery=moments(out.deal_recovery),
            renewals=moments(out.deal_renewals.astype(np.float64)),
            reserve_out=count(out.deal_reserve_out == 1),
            trap_fired=count(out.deal_trap_month > 0),
            rapid_fired=count(out.deal_rapid_month > 0),
            ard_refinanced=count(out.deal_ard == ARD_REFINANCED),
            ard_swept=count(out.deal_ard == ARD_SWEPT),
            trap_month_hist=_month_counts(out.deal_trap_month, horizon, weights),
            rapid_month_hist=_month_counts(out.deal_rapid_month, horizon, weights),
            loss_pos=count(out.tranche_loss > 0),
            alloc_pos=count(np.nan_to_num(alloc) > 0),
            any_shortfall=count(out.tranche_any_shortfall != 0),
            loss_hist=loss_histogram(out.tranche_loss, weights),
            alloc_hist=loss_histogram(alloc, weights),
            net_loss_hist=loss_histogram(out.deal_net_loss, weights),
            defaults_hist=count_histogram(out.deal_defaults, max_defaults + 1, weights),
            firm_default=count(out.firm_default_month <= horizon),
            firm_own=count(out.firm_own == 1),
            firm_ratio=moments(out.firm_ratio),
            firm_caused=moments(out.firm_caused),
            cascade_hist=np.bincount(out.cascade, minlength=n_firms + 1).astype(np.int64) if weights is None
            else Mass(_weighted_bincount(out.cascade[:, None], n_firms + 1, weights).limbs[0]),
            fan_factor=_month_bins(out.factor_bin, weights),
            fan_gpu=_month_bins(out.gpu_bin, weights),
            weights=None if weights is None else Moments.of(weights.w[:, None]),
            control=_control_sums(out, weights, tranche_deal),
        )

    @property
    def weighted(self) -> bool:
        return self.weights is not None

    def weight_summary(self) -> dict | None:
        """Mean of the likelihood ratios (1 in expectation), its standard error and their Kish
        effective sample size (Σw)²/Σw²; None for plain Monte Carlo."""
        if self.weights is None:
            return None
        return {"weight_mean": float(self.weights.mean()[0]), "weight_mean_se": float(self.weights.mean_se(self.n_paths)[0]),
                "weight_ess": float(self.weights.ess()[0])}

    def merge(self, other: RunStats) -> RunStats:
        return merge_fields(self, other)


MERGE_MAX = {"merge": max}
"""Field metadata of a statistic merged by its maximum instead of its sum."""


def merge_fields(a, b):
    """The exact merge of two statistics dataclasses with an ``n_paths`` field: every field is summed
    (counts, integer arrays), merged (fields with a ``merge`` method, e.g. Moments) or combined by
    the function in its ``merge`` metadata; a None field takes the other side's value."""
    if a.n_paths == 0:
        return b
    if b.n_paths == 0:
        return a
    merged = {}
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x is None or y is None:
            merged[f.name] = x if y is None else y
        elif "merge" in f.metadata:
            merged[f.name] = f.metadata["merge"](x, y)
        else:
            merged[f.name] = x.merge(y) if hasattr(x, "merge") else x + y
    return type(a)(**merged)


def _control_sums(out: PathOutputs, weights: PathWeights | None, tranche_deal: np.ndarray | None) -> StratumSums | None:
    """Per stratum, the sums the control-variate estimator needs (model.md §9), when the kernel computed the control."""
    if weights is None or tranche_deal is None or out.deal_control.shape[1] == 0:
        return None
    w = weights.w[:, None]
    y = w * out.tranche_loss
    a = w * np.nan_to_num(out.tranche_alloc_loss)
    c = w * out.deal_control[:, tranche_deal]
    stratum = weights.stratum if weights.stratum is not None else np.zeros(w.shape[0], dtype=np.int64)
    return StratumSums.of(np.concatenate([y, a, c, y + c, a + c], axis=1), stratum, weights.n_strata)


def control_estimates(control: StratumSums, n: int) -> tuple[np.ndarray, np.ndarray]:
    """EL with the control variate, and its standard error, per view (rows: cash flow, allocation)
    and tranche: ȳ − β·c̄ with β = cov(y, c) / var(c) pooled within the strata,
    se² = Σ_h n_h·s_h²(y − β·c) / n² (model.md §9)."""
    K = control.limbs.shape[2] // 5
    spread, sums = control.spread(), control.sums()
    el, se = np.full((2, K), np.nan), np.full((2, K), np.nan)
    v_c, s_c = spread[2 * K:3 * K], sums[2 * K:3 * K]
    for view in (0, 1):
        v_y, s_y = spread[view * K:(view + 1) * K], sums[view * K:(view + 1) * K]
        v_s = spread[(3 + view) * K:(4 + view) * K]
        cov = 0.5 * (v_s - v_y - v_c)
        beta = np.where(v_c > 0, cov / np.where(v_c > 0, v_c, 1.0), 0.0)
        el[view] = (s_y - beta * s_c) / n
        se[view] = np.sqrt(np.maximum(v_y - 2 * beta * cov + beta * beta * v_c, 0.0)) / n
    return el, se


def _month_counts(months: np.ndarray, horizon: int, weights: PathWeights | None = None) -> np.ndarray | Mass:
    """int64[columns, T+1]: paths per column whose month is m (0 = never)."""
    if weights is not None:
        return _weighted_bincount(months, horizon + 1, weights)
    return np.stack([np.bincount(months[:, j], minlength=horizon + 1) for j in range(months.shape[1])]).astype(np.int64) \
        if months.shape[1] else np.zeros((0, horizon + 1), dtype=np.int64)


def _count(flags: np.ndarray, weights: PathWeights | None = None) -> np.ndarray | Mass:
    """Paths per column where ``flags`` holds (int64; weighted: the sum of their weights)."""
    if weights is not None:
        return _weighted_count(flags, weights)
    return flags.sum(axis=0).astype(np.int64)


def _loss_columns(moments: Moments, positive: np.ndarray, hist: np.ndarray, n: int) -> dict[str, np.ndarray]:
    el = moments.mean()
    se = moments.mean_se(n)
    pd_ = positive / n
    cols = {"el": el, "el_se": se, "pd": pd_, "lgd": np.where(pd_ > 0, el / np.where(pd_ > 0, pd_, 1), np.nan)}
    cols.update(tail_columns(hist, n if moments.weighted else None))
    cols["ess"] = moments.ess()
    return cols


def tail_columns(hist: np.ndarray, total: float | None = None) -> dict[str, np.ndarray]:
    """``var95``, ``es95``, … ``es999`` of each row of a stack of loss histograms (``total``: see
    :func:`quantile_and_es`)."""
    cols = {}
    for lvl, name in zip(LEVELS, _LEVEL_NAMES):
        pairs = [quantile_and_es(h, lvl, total) for h in hist]
        cols[f"var{name}"] = np.array([p[0] for p in pairs])
        cols[f"es{name}"] = np.array([p[1] for p in pairs])
    return cols


def tranche_table(stats: RunStats, deal: tuple[str, ...], tranche: tuple[str, ...], balance: np.ndarray,
                  has_points: np.ndarray) -> pd.DataFrame:
    """One row per tranche and view: `cashflow` (the waterfall) and, with attach/detach, `allocation`."""
    stats = counts_view(stats)
    n = stats.n_paths
    order = {d: i for i, d in enumerate(dict.fromkeys(deal))}
    base = pd.DataFrame({"deal": list(deal), "tranche": list(tranche), "view": "cashflow", "balance": balance})
    cash = base.assign(
        **_loss_columns(stats.loss, stats.loss_pos, stats.loss_hist, n),
        pv_mean=stats.pv.mean(),
        pv_sd=np.sqrt(stats.pv.variance()),
        wal_mean=stats.wal.mean(),
        p_interest_shortfall=stats.any_shortfall / n,
        interest_shortfall_mean=stats.shortfall.mean(),
        paths=n,
    )
    alloc = base.assign(view="allocation", **_loss_columns(stats.alloc, stats.alloc_pos, stats.alloc_hist, n), paths=n)
    if stats.control is not None:  # importance-sampled runs: the control-variate estimate beside the plain one
        el_cv, se_cv = control_estimates(stats.control, n)
        cash = cash.assign(el_cv=el_cv[0], el_cv_se=se_cv[0])
        alloc = alloc.assign(el_cv=el_cv[1], el_cv_se=se_cv[1])
    table = pd.concat([cash, alloc[has_points]])
    # Deal by deal, the cash-flow rows first, tranches in config order.
    rank = table["deal"].map(order) * 2 + (table["view"] == "allocation")
    table = table.iloc[np.lexsort((table.index.to_numpy(), rank.to_numpy()))].reset_index(drop=True)
    table["view"] = pd.Categorical(table["view"], categories=["cashflow", "allocation"])
    return table


def deal_table(stats: RunStats, deals: tuple[str, ...], pool_balance: np.ndarray) -> pd.DataFrame:
    """One row per deal: the distribution of the net loss fraction and of the number of defaults."""
    stats = counts_view(stats)
    n = stats.n_paths
    nl = _loss_columns(stats.net_loss, (stats.net_loss_hist[:, 1:].sum(axis=1)), stats.net_loss_hist, n)
    dh = stats.defaults_hist
    k = np.arange(dh.shape[1])
    dmean = (dh * k).sum(axis=1) / n
    dcum = np.cumsum(dh, axis=1)
    dq = {f"defaults_q{name}": np.array([int(np.searchsorted(c, lvl * n)) for c in dcum]) for lvl, name in zip(LEVELS, _LEVEL_NAMES)}
    return pd.DataFrame({
        "deal": list(deals),
        "pool_balance": pool_balance,
        "nl_mean": nl["el"],
        "nl_se": nl["el_se"],
        "nl_sd": np.sqrt(stats.net_loss.variance()),
        "p_nl_positive": nl["pd"],
        **{f"nl_{c}": nl[c] for lv in _LEVEL_NAMES for c in (f"var{lv}", f"es{lv}")},
        "defaults_mean": dmean,
        "p_any_default": 1.0 - dh[:, 0] / n,
        **dq,
        "reserve_used_mean": stats.reserve_used.mean(),
        "p_reserve_exhausted": stats.reserve_out / n,
        "p_cash_trap": stats.trap_fired / n,
        "p_rapid_amortization": stats.rapid_fired / n,
        "p_ard_refinanced": stats.ard_refinanced / n,
        "p_ard_swept": stats.ard_swept / n,
        "rvg_paid_mean": stats.rvg.mean(),
        "recoveries_mean": stats.recovery.mean(),
        "renewals_mean": stats.renewals.mean(),
        "paths": n,
    })


def trigger_table(stats: RunStats, deals: tuple[str, ...], has_trigger: np.ndarray) -> pd.DataFrame:
    """When each trigger first fires: one row per deal with that trigger, trigger and month 1..T, with the
    probability of first firing in that month and by that month."""
    stats = counts_view(stats)
    n = stats.n_paths
    frames = []
    for trigger, hist, present in (("cash_trap", stats.trap_month_hist, has_trigger[:, 0]),
                                   ("rapid_amortization", stats.rapid_month_hist, has_trigger[:, 1])):
        for d in np.flatnonzero(present):
            counts = hist[d, 1:]
            frames.append(pd.DataFrame({"deal": deals[d], "trigger": trigger, "month": np.arange(1, counts.size + 1),
                                        "p_first": counts / n, "p_by_month": np.cumsum(counts) / n}))
    if not frames:
        return pd.DataFrame({"deal": [], "trigger": [], "month": [], "p_first": [], "p_by_month": []})
    return pd.concat(frames, ignore_index=True)


def network_table(stats: RunStats, firms: tuple[str, ...]) -> pd.DataFrame:
    """One row per firm: P(default) split into own failure and contagion, the clearing ratio of a
    clearing default, and the contagion defaults attributed to the firm's own failure."""
    stats = counts_view(stats)
    n = stats.n_paths
    p_default = stats.firm_default / n
    p_own = stats.firm_own / n
    return pd.DataFrame({
        "firm": list(firms),
        "p_default": p_default,
        "p_own": p_own,
        "p_contagion": p_default - p_own,
        "clearing_ratio_mean": stats.firm_ratio.mean(),
        "expected_defaults_caused": stats.firm_caused.mean(),
        "paths": n,
    })


def cascade_table(stats: RunStats) -> pd.DataFrame:
    """The distribution of the number of contagion defaults per path."""
    stats = counts_view(stats)
    n = stats.n_paths
    size = np.arange(stats.cascade_hist.size)
    return pd.DataFrame({"cascade_size": size, "paths_with_size": stats.cascade_hist, "probability": stats.cascade_hist / n,
                         "p_at_least": stats.cascade_hist[::-1].cumsum()[::-1] / n})


FAN_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def fan_table(stats: RunStats) -> pd.DataFrame:
    """Quantiles over time of the factor X_t and of the GPU value index O_t·exp(β_g X_t − β_g²/2),
    from exact per-month bin counts; each quantile is its bin's midpoint (bins of 0.01 and 0.0025)."""
    stats = counts_view(stats)
    rows = []
    for series, counts, lo, width in (("factor", stats.fan_factor, FACTOR_LO, FACTOR_WIDTH),
                                      ("gpu_index", stats.fan_gpu, GPU_LO, GPU_WIDTH)):
        mids = lo + (np.arange(FAN_BINS) + 0.5) * width
        cum = np.cumsum(counts, axis=1)
        n = cum[:, -1:]
        row = {"series": series, "month": np.arange(counts.shape[0])}
        for q in FAN_QUANTILES:
            idx = np.minimum((cum < q * n).sum(axis=1), FAN_BINS - 1)
            row[f"q{int(round(q * 100)):02d}"] = mids[idx]
        row["mean"] = (counts * mids).sum(axis=1) / n[:, 0]
        rows.append(pd.DataFrame(row))
    return pd.concat(rows, ignore_index=True)


def distribution_table(stats: RunStats, deal: tuple[str, ...], tranche: tuple[str, ...], has_points: np.ndarray) -> pd.DataFrame:
    """The loss distribution of every tranche and view: the probability of each non-empty loss bin,
    the bin represented by its midpoint (0 and 1 exactly)."""
    stats = counts_view(stats)
    frames = []
    for view, hist, keep in (("cashflow", stats.loss_hist, np.ones(len(deal), bool)), ("allocation", stats.alloc_hist, has_points)):
        for k in np.flatnonzero(keep):
            nz = np.flatnonzero(hist[k])
            frames.append(pd.DataFrame({"deal": deal[k], "tranche": tranche[k], "view": view,
                                        "loss": BIN_VALUES[nz], "probability": hist[k, nz] / stats.n_paths}))
    return pd.concat(frames, ignore_index=True)


def path_tables(out: PathOutputs, start: int, deal: tuple[str, ...], tranche: tuple[str, ...],
                deal_names: tuple[str, ...], firms: tuple[str, ...], weights: np.ndarray | None = None) -> dict[str, pd.DataFrame]:
    """One chunk's per-path outputs as long tables (vectorised; no loop over paths). Under importance
    sampling every row carries its path's likelihood ratio ``weight`` (dP/dQ)."""
    n, k = out.tranche_loss.shape
    path = np.arange(start, start + n, dtype=np.int64)
    tables = {
        "tranches": pd.DataFrame({
            "path": np.repeat(path, k),
            "deal": np.tile(np.array(deal, dtype=object), n),
            "tranche": np.tile(np.array(tranche, dtype=object), n),
            "principal_loss": out.tranche_loss.ravel(),
            "interest_shortfall": out.tranche_shortfall.ravel(),
            "pv": out.tranche_pv.ravel(),
            "wal": out.tranche_wal.ravel(),
            "any_interest_shortfall": out.tranche_any_shortfall.ravel().astype(bool),
            "first_loss_month": out.tranche_first_loss.ravel(),
            "alloc_loss": out.tranche_alloc_loss.ravel(),
        }),
        "deals": pd.DataFrame({
            "path": np.repeat(path, len(deal_names)),
            "deal": np.tile(np.array(deal_names, dtype=object), n),
            "net_loss": out.deal_net_loss.ravel(),
            "defaults": out.deal_defaults.ravel(),
            "reserve_used": out.deal_reserve_used.ravel(),
            "reserve_exhausted": out.deal_reserve_out.ravel().astype(bool),
            "cash_trap_month": out.deal_trap_month.ravel(),
            "rapid_amortization_month": out.deal_rapid_month.ravel(),
            "ard_outcome": pd.Categorical.from_codes(out.deal_ard.ravel().astype(np.int64), ARD_OUTCOMES),
            "rvg_paid": out.deal_rvg.ravel(),
            "recoveries": out.deal_recovery.ravel(),
            "renewals": out.deal_renewals.ravel(),
        }),
    }
    if weights is not None:
        tables["tranches"]["weight"] = np.repeat(weights, k)
        tables["deals"]["weight"] = np.repeat(weights, len(deal_names))
    if firms:
        tables["firms"] = pd.DataFrame({
            "path": np.repeat(path, len(firms)),
            "firm": np.tile(np.array(firms, dtype=object), n),
            "default_month": out.firm_default_month.ravel(),
            "own": out.firm_own.ravel().astype(bool),
            "clearing_ratio": out.firm_ratio.ravel(),
            "defaults_caused": out.firm_caused.ravel(),
        })
        tables["cascades"] = pd.DataFrame({"path": path, "cascade_size": out.cascade})
    return tables
