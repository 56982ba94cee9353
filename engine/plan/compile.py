"""Config -> plan: the flat arrays the kernels read (see kernels/plan.py for the contract).

Everything deterministic is computed here once: default thresholds, hazard classes, rent schedules
aggregated by (deal, tenant), terminal sale values, scheduled note balances and the waterfall program.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.config import LEASE_COLUMNS, Config
from engine.plan.calibrate import calibrate_thresholds
from kernels.collateral import gpu_depreciation_many
from kernels.credit import hazard_table
from kernels.plan import (
    CURVE_EXPONENTIAL, CURVE_STRAIGHT, MODE_PRO_RATA, MODE_SEQUENTIAL, OP_FEES, OP_INTEREST, OP_PRINCIPAL, OP_RESERVE,
    OP_RESIDUAL, OP_TRAP, CollateralPlan, CreditPlan, DealPlan, FactorPlan, NetworkPlan, PoolPlan
)

_OPCODES = {"fees": OP_FEES, "interest": OP_INTEREST, "reserve": OP_RESERVE, "principal": OP_PRINCIPAL,
            "trap": OP_TRAP, "residual": OP_RESIDUAL}
# The renewal draw of a deterministic run: renew exactly when Φ(a + b·X_t) > ½.
DETERMINISTIC_UNIFORM = 0.5
I4 = np.int32
I1 = np.int8


@dataclass(frozen=True)
class Plan:
    """The compiled run: kernel plans plus the names that label their indices."""

    factor: FactorPlan
    credit: CreditPlan
    collateral: CollateralPlan
    pool: PoolPlan
    deals: DealPlan
    network: NetworkPlan
    months: int
    tenant_names: tuple[str, ...]
    tenant_threshold: np.ndarray
    deal_names: tuple[str, ...]
    tranche_deal: tuple[str, ...]
    tranche_names: tuple[str, ...]
    firm_names: tuple[str, ...]

    @property
    def tranche_deal_index(self) -> np.ndarray:
        """Each tranche's deal, as an index into ``deal_names`` (tranches are grouped by deal)."""
        ptr = self.deals.deal_tranche_ptr
        return np.repeat(np.arange(ptr.size - 1), np.diff(ptr))

    @property
    def kernel_args(self) -> tuple:
        return (self.factor, self.credit, self.collateral, self.pool, self.deals, self.network)

    def without_network(self) -> Plan:
        """The same plan with the network switched off (common random numbers: no draws change)."""
        return dataclasses.replace(self, network=self.network._replace(enabled=False))


def compile_plan(cfg: Config) -> Plan:
    """Compile a validated config into kernel plans."""
    T = cfg.run.months
    fp = FactorPlan(
        phi=float(cfg.factor.persistence),
        innovation_scale=float(np.sqrt(max(0.0, 1.0 - cfg.factor.persistence**2))),
        burst_shift=float(cfg.factor.burst.shift),
        fixed_path=_fixed_factor(cfg),
    )
    credit, thresholds, relet_class = _credit(cfg)
    col = _collateral(cfg)
    pool = _pool(cfg, col, relet_class)
    deals, tr_deal, tr_name = _deals(cfg)
    # An ABS-of-ABS pool's balance P0 is the held share of its collateral tranches' balances.
    held = np.zeros(len(cfg.deals))
    for d in range(len(cfg.deals)):
        c0, c1 = deals.deal_coll_ptr[d], deals.deal_coll_ptr[d + 1]
        held[d] = (deals.coll_fraction[c0:c1] * deals.tranche_balance[deals.coll_tranche[c0:c1]]).sum()
    pool = pool._replace(deal_pool_balance=pool.deal_pool_balance + held)
    return Plan(
        factor=fp,
        credit=credit,
        collateral=col,
        pool=pool,
        deals=deals,
        network=_network(cfg),
        months=T,
        tenant_names=tuple(t.name for t in cfg.tenants),
        tenant_threshold=thresholds,
        deal_names=tuple(d.name for d in cfg.deals),
        tranche_deal=tr_deal,
        tranche_names=tr_name,
        firm_names=tuple(f.name for f in cfg.network.firms) if cfg.network else (),
    )


def _fixed_factor(cfg: Config) -> np.ndarray:
    """X_t of a deterministic run, interpolated from its points; empty for a simulated factor."""
    if cfg.deterministic is None:
        return np.zeros(0)
    months, values = zip(*cfg.deterministic.factor)
    return np.interp(np.arange(cfg.run.months + 1, dtype=float), np.array(months, dtype=float), np.array(values, dtype=float))


def _relet_pairs(cfg: Config) -> list[tuple[float, float]]:
    """(PD, ρ) of every replacement tenant of a `relet` lease, in first-seen order."""
    cols = [deal.lease_columns() for deal in cfg.deals]
    relet = [c["recovery"] == "relet" for c in cols]
    pd_ = np.concatenate([c["relet_pd"][r] for c, r in zip(cols, relet)])
    rho = np.concatenate([c["relet_rho"][r] for c, r in zip(cols, relet)])
    if not pd_.size:
        return []
    # Equal pairs (0.0 and -0.0 alike, as dict keys) collapse onto their first occurrence's values.
    _, first = np.unique(np.stack([pd_, rho], axis=1), axis=0, return_index=True)
    first.sort()
    return [(float(pd_[i]), float(rho[i])) for i in first]


def _network(cfg: Config) -> NetworkPlan:
    Y = cfg.run.months // 12
    net = cfg.network
    firms = net.firms if net else []
    F = len(firms)
    index = {f.name: i for i, f in enumerate(firms)}
    tenant_index = {t.name: i for i, t in enumerate(cfg.tenants)}
    L = np.zeros((Y + 1, F, F))
    years = np.arange(Y + 1)
    for o in net.obligations if net else []:
        due = (years >= o.start_year) & (years <= o.end_year)
        L[:, index[o.payer], index[o.payee]] += np.where(due, o.amount * (1.0 + o.growth) ** (years - o.start_year), 0.0)
    return NetworkPlan(
        enabled=bool(net and net.enabled),
        alpha=float(net.alpha) if net else 1.0,
        beta=float(net.beta) if net else 1.0,
        firm_tenant=np.array([tenant_index[f.tenant] if f.tenant else -1 for f in firms], dtype=I4),
        firm_revenue=np.array([[f.revenue * (1.0 + f.revenue_growth) ** (y - 1) for f in firms] for y in years]).reshape(Y + 1, F),
        firm_beta=np.array([f.factor_beta for f in firms], dtype=float),
        firm_cash=np.array([f.cash for f in firms], dtype=float),
        firm_debt=np.array([f.external_debt for f in firms], dtype=float),
        obligations=L,
    )


@functools.cache
def _hazard_table() -> np.ndarray:
    """One table for every plan: the hazard step is the same function for every class."""
    return hazard_table()


def _credit(cfg: Config) -> tuple[CreditPlan, np.ndarray, dict[tuple[float, float], int]]:
    T = cfg.run.months
    N = len(cfg.tenants)
    relet = _relet_pairs(cfg)
    pds = np.array([t.pd for t in cfg.tenants] + [p for p, _ in relet])
    rhos = np.array([t.rho for t in cfg.tenants] + [r for _, r in relet])
    c_all = calibrate_thresholds(
        pds, rhos, persistence=cfg.factor.persistence, student_t_dof=cfg.factor.student_t_dof, method=cfg.run.pd_calibration
    )
    c = c_all[:N]
    # Tenants with the same (c, ρ) share one hazard path per path-month (ARCHITECTURE: hazard classes);
    # replacement tenants of re-let leases are classes of their own kind.
    pairs = np.stack([c_all, rhos], axis=1)
    classes, all_class = np.unique(pairs, axis=0, return_inverse=True)
    all_class = all_class.reshape(-1)
    tenant_class = all_class[:N]
    relet_class = {pair: int(all_class[N + i]) for i, pair in enumerate(relet)}
    forced = np.array([t.default_month if t.default_month is not None else T + 1 for t in cfg.tenants], dtype=I4)
    plan = CreditPlan(
        class_c=np.ascontiguousarray(classes[:, 0]),
        class_sqrt_rho=np.sqrt(classes[:, 1]),
        class_inv_sqrt_1mrho=1.0 / np.sqrt(1.0 - classes[:, 1]),
        tenant_class=tenant_class.reshape(-1).astype(I4),
        tenant_forced=np.minimum(forced, T + 1).astype(I4),
        hazard_table=_hazard_table(),
    )
    return plan, c, relet_class


def _collateral(cfg: Config) -> CollateralPlan:
    T = cfg.run.months
    g = cfg.gpu
    t = np.arange(T + 1, dtype=float)
    n_released = np.where(t >= g.first_release_month, np.floor((t - g.first_release_month) / g.generation_interval_months) + 1, 0)
    scheduled = (1.0 - g.obsolescence_haircut) ** n_released
    # A deterministic what-if has no random releases: the schedule stands in for the Poisson process.
    poisson = g.releases == "poisson" and cfg.deterministic is None
    return CollateralPlan(
        curve=CURVE_STRAIGHT if g.curve == "straight_line" else CURVE_EXPONENTIAL,
        gpu_life=float(g.economic_life_months),
        gpu_half_life=float(g.half_life_months),
        gpu_salvage=float(g.salvage),
        kappa=float(g.obsolescence_haircut),
        poisson_releases=poisson,
        beta_gpu=float(g.factor_beta),
        beta_shell=float(cfg.facility.factor_beta),
        beta_rent=float(cfg.market_rent.factor_beta),
        shell_life=float(cfg.facility.life_months),
        scheduled_obsolescence=np.ones(T + 1) if poisson else scheduled,
    )


_DYN_FIELDS = ("renewals", "renewal_term", "renewal_intercept", "renewal_beta", "rvg_threshold", "rvg_end", "rvg_cap",
               "rvg_months", "guarantor", "relet_class", "downtime", "term_frac", "term_fee", "term_from")


# Leases per block of the rent schedule: 8,192 × 601 months × 8 bytes is 40 MB at most per array.
_LEASE_BLOCK = 1 << 13


def _pool(cfg: Config, col: CollateralPlan, relet_class: dict[tuple[float, float], int]) -> PoolPlan:
    T = cfg.run.months
    # Every lease of every deal, in deal order, as columns: a million-lease tape never becomes objects.
    parts = [deal.lease_columns() for deal in cfg.deals]
    c = {name: parts[0][name] if len(parts) == 1 else np.concatenate([part[name] for part in parts])
         for name in LEASE_COLUMNS if name != "id"}
    names = pd.Index([t.name for t in cfg.tenants], dtype=object)
    tenant = names.get_indexer(c["tenant"])
    relet = c["recovery"] == "relet"
    relet_of = np.full(len(tenant), -1, dtype=np.int64)
    if relet.any():
        pairs, inverse = np.unique(np.stack([c["relet_pd"][relet], c["relet_rho"][relet]], axis=1), axis=0, return_inverse=True)
        relet_of[relet] = np.array([relet_class[(float(p), float(r))] for p, r in pairs])[inverse.reshape(-1)]
    a = {
        "deal": np.repeat(np.arange(len(parts)), [len(part) for part in parts]),
        "tenant": tenant, "start": c["start_month"], "term": c["term_months"], "rent": c["monthly_rent"],
        "esc": c["escalator"], "gpu": c["gpu_cost"], "shell": c["shell_value"],
        "a0": np.where(c["gpu_in_service_month"] < 0, c["start_month"], c["gpu_in_service_month"]),
        "fixed": c["recovery"] == "fixed", "rr": c["recovery_rate"], "rec_lag": c["recovery_lag"],
        "sale_lag": c["sale_lag"], "liq": c["liquidation_cost"],
        "dyn": np.concatenate([part.has_options() for part in parts]),
    }
    opt = {
        "renewals": c["renewals"], "renewal_term": c["renewal_term"], "renewal_intercept": c["renewal_intercept"],
        "renewal_beta": c["renewal_beta"], "rvg_threshold": c["rvg_threshold"],
        "rvg_end": np.where(np.isnan(c["rvg_threshold_end"]), c["rvg_threshold"], c["rvg_threshold_end"]),
        "rvg_cap": np.where(np.isnan(c["rvg_cap"]), np.inf, c["rvg_cap"]),
        "rvg_months": np.where(c["rvg_threshold"] > 0, c["rvg_months"], 0),
        "guarantor": np.where(pd.notna(c["rvg_guarantor"]), names.get_indexer(c["rvg_guarantor"]), tenant),
        "relet_class": relet_of, "downtime": c["downtime"], "term_frac": c["termination_threshold"],
        "term_fee": c["termination_fee_months"], "term_from": c["termination_earliest_month"],
    }
    o = {k: opt[k][a["dyn"]] for k in _DYN_FIELDS}
    dyn = a["dyn"].astype(bool)
    deal_of, tenant_of = a["deal"].astype(I4), a["tenant"].astype(I4)
    start, end = a["start"].astype(I4), (a["start"] + a["term"]).astype(I4)
    n_deals, n_tenants = len(cfg.deals), len(cfg.tenants)

    # Groups: a deal's leases of one tenant, sorted by deal then tenant.
    key = deal_of.astype(np.int64) * n_tenants + tenant_of
    group_keys, group_of = np.unique(key, return_inverse=True)
    group_of = group_of.reshape(-1)
    n_groups = group_keys.size
    group_rent = np.zeros((n_groups, T + 1))
    deal_rent = np.zeros((n_deals, T + 1))
    sched_total = np.empty(len(start))
    # Contract rent R·(1+e)^⌊(t−s−1)/12⌋ for s < t ≤ end, a block of leases × every month at a time:
    # a million-lease tape never holds [leases × months] arrays. np.add.at adds in index order, and
    # each row sums alone, so the blocks give the same bits as one pass.
    months = np.arange(T + 1)[None, :]
    for lo in range(0, len(start), _LEASE_BLOCK):
        b = slice(lo, lo + _LEASE_BLOCK)
        live = (months > start[b, None]) & (months <= end[b, None])
        years = np.floor_divide(np.maximum(months - start[b, None] - 1, 0), 12)
        scheduled_rent = np.where(live, a["rent"][b, None] * (1.0 + a["esc"][b, None]) ** years, 0.0)
        sched_total[b] = scheduled_rent.sum(axis=1)
        # Option leases are simulated lease by lease; only the others are aggregated.
        rent = np.where(dyn[b, None], 0.0, scheduled_rent)
        np.add.at(group_rent, group_of[b], rent)
        np.add.at(deal_rent, deal_of[b], rent)
    suffix = np.zeros((n_groups, T + 2))
    suffix[:, :-1] = np.cumsum(group_rent[:, ::-1], axis=1)[:, ::-1]
    group_deal = (group_keys // n_tenants).astype(I4)
    deal_group_ptr = np.searchsorted(group_deal, np.arange(n_deals + 1)).astype(I4)

    # Terminal sale at end + sale_lag of every lease whose tenant survives its term.
    term_month = end + a["sale_lag"].astype(I4)
    in_horizon = (term_month <= T) & ~dyn
    depreciation = np.empty(len(start))
    gpu_depreciation_many(
        (term_month - a["a0"]).astype(float), col.curve, col.gpu_life, col.gpu_half_life, col.gpu_salvage, depreciation
    )
    keep = 1.0 - a["liq"]
    term_gpu = np.where(in_horizon, a["gpu"] * depreciation * keep, 0.0)
    term_shell = np.where(in_horizon, a["shell"] * np.maximum(0.0, 1.0 - term_month / col.shell_life) * keep, 0.0)
    deal_term_gpu = np.zeros((n_deals, T + 1))
    deal_term_shell = np.zeros((n_deals, T + 1))
    np.add.at(deal_term_gpu, (deal_of[in_horizon], term_month[in_horizon]), term_gpu[in_horizon])
    np.add.at(deal_term_shell, (deal_of[in_horizon], term_month[in_horizon]), term_shell[in_horizon])

    pool_balance = np.zeros(n_deals)
    np.add.at(pool_balance, deal_of, sched_total + a["gpu"] + a["shell"])
    dyn_idx = np.flatnonzero(dyn).astype(I4)  # leases are in deal order, so these are sorted by deal

    order = np.argsort(tenant_of, kind="stable")
    tenant_ptr = np.searchsorted(tenant_of[order], np.arange(n_tenants + 1)).astype(I4)
    # What each (deal, tenant) brings to P0, for the control variate (kernels/simulate.py _deal_controls).
    ctrl_keys, ctrl_of = np.unique(deal_of.astype(np.int64) * n_tenants + tenant_of, return_inverse=True)
    ctrl_weight = np.bincount(ctrl_of, weights=sched_total + a["gpu"] + a["shell"], minlength=ctrl_keys.size)
    return PoolPlan(
        lease_deal=deal_of,
        lease_start=start,
        lease_end=end,
        lease_a0=a["a0"].astype(I4),
        lease_rec_lag=a["rec_lag"].astype(I4),
        lease_gpu=a["gpu"].astype(float),
        lease_shell=a["shell"].astype(float),
        lease_liq=a["liq"].astype(float),
        lease_fixed_rr=np.where(a["fixed"], a["rr"], -1.0).astype(float),
        lease_term_month=np.where(in_horizon, term_month, T + 1).astype(I4),
        lease_term_gpu=term_gpu,
        lease_term_shell=term_shell,
        tenant_lease_ptr=tenant_ptr,
        tenant_lease_idx=order.astype(I4),
        group_tenant=(group_keys % n_tenants).astype(I4),
        group_rent=group_rent,
        group_rent_suffix=suffix,
        deal_group_ptr=deal_group_ptr,
        deal_rent=deal_rent,
        deal_term_gpu=deal_term_gpu,
        deal_term_shell=deal_term_shell,
        deal_pool_balance=pool_balance,
        lease_dynamic=dyn.astype(I1),
        lease_tenant=tenant_of,
        lease_sale_lag=a["sale_lag"].astype(I4),
        deal_dyn_ptr=np.searchsorted(deal_of[dyn_idx], np.arange(n_deals + 1)).astype(I4),
        dyn_lease=dyn_idx,
        dyn_rent=a["rent"][dyn_idx].astype(float),
        dyn_esc=a["esc"][dyn_idx].astype(float),
        dyn_sched=sched_total[dyn_idx],
        dyn_renewals=o["renewals"].astype(I4),
        dyn_renewal_term=o["renewal_term"].astype(I4),
        dyn_ren_a=o["renewal_intercept"].astype(float),
        dyn_ren_b=o["renewal_beta"].astype(float),
        dyn_rvg_start=o["rvg_threshold"].astype(float),
        dyn_rvg_end=o["rvg_end"].astype(float),
        dyn_rvg_cap=o["rvg_cap"].astype(float),
        dyn_rvg_months=o["rvg_months"].astype(I4),
        dyn_guarantor=o["guarantor"].astype(I4),
        dyn_relet_class=o["relet_class"].astype(I4),
        dyn_downtime=o["downtime"].astype(I4),
        dyn_term_frac=o["term_frac"].astype(float),
        dyn_term_fee=o["term_fee"].astype(float),
        dyn_term_from=o["term_from"].astype(I4),
        deal_ctrl_ptr=np.searchsorted(ctrl_keys // n_tenants, np.arange(n_deals + 1)).astype(I4),
        ctrl_tenant=(ctrl_keys % n_tenants).astype(I4),
        ctrl_weight=ctrl_weight.astype(float),
        fixed_uniform=DETERMINISTIC_UNIFORM if cfg.deterministic is not None else -1.0,
    )


def _deals(cfg: Config) -> tuple[DealPlan, tuple[str, ...], tuple[str, ...]]:
    T = cfg.run.months
    tr_deal, tr_name, balance, coupon, ios, senior, scheduled, deferrable, attach, detach = ([] for _ in range(10))
    tranche_index = {}
    for deal in cfg.deals:
        for tr in deal.tranches:
            tranche_index[(deal.name, tr.name)] = len(tranche_index)
    coll_ptr, coll_tranche, coll_fraction = [0], [], []
    targets = []
    tranche_ptr, step_ptr = [0], [0]
    ops, modes, draws, tgt_ptr, tgt = [], [], [], [0], []
    for deal in cfg.deals:
        k0 = len(balance)
        index = {t.name: k0 + i for i, t in enumerate(deal.tranches)}
        kinds = [s.type for s in deal.waterfall]
        reserve_at = kinds.index("reserve") if "reserve" in kinds else len(kinds)
        senior_names = {
            c for s, step in enumerate(deal.waterfall) if step.type == "interest" and s < reserve_at for c in step.classes
        }
        months = np.arange(T + 1, dtype=float)
        for tr in deal.tranches:
            tr_deal.append(deal.name)
            tr_name.append(tr.name)
            balance.append(tr.balance)
            coupon.append(tr.coupon / 12.0)
            ios.append(tr.interest_on_shortfall)
            senior.append(tr.name in senior_names)
            target = np.zeros(T + 1)
            if tr.amortization == "level":
                s, e = tr.amort_start_month, tr.amort_end_month or deal.legal_final_month
                target = tr.balance * np.clip((e - months) / (e - s), 0.0, 1.0)
            elif tr.amortization in ("bullet", "io"):
                # `io` owes nothing before legal final: the ARD's refinancing or sweep repays it.
                target = np.where(months < deal.legal_final_month, tr.balance, 0.0)
            elif tr.amortization == "schedule":
                target = np.full(T + 1, tr.balance)
                for month, bal in tr.target_schedule:
                    target[month:] = bal
            scheduled.append(tr.amortization != "sweep")
            deferrable.append(tr.deferrable)
            targets.append(target)
            attach.append(np.nan if tr.attach is None else tr.attach)
            detach.append(np.nan if tr.detach is None else tr.detach)
        tranche_ptr.append(len(balance))
        for s, step in enumerate(deal.waterfall):
            ops.append(_OPCODES[step.type])
            modes.append(MODE_PRO_RATA if getattr(step, "mode", "sequential") == "pro_rata" else MODE_SEQUENTIAL)
            draws.append(step.type in ("fees", "interest") and s < reserve_at)
            tgt.extend(index[c] for c in getattr(step, "classes", ()))
            tgt_ptr.append(len(tgt))
        step_ptr.append(len(ops))
        for ct in deal.collateral_tranches:
            coll_tranche.append(tranche_index[(ct.deal, ct.tranche)])
            coll_fraction.append(ct.fraction)
        coll_ptr.append(len(coll_tranche))
    discount_m = float((1.0 + cfg.run.discount_rate) ** (-1.0 / 12.0))
    plan = DealPlan(
        deal_legal_final=np.array([d.legal_final_month for d in cfg.deals], dtype=I4),
        deal_reserve0=np.array([d.reserve.initial_balance for d in cfg.deals], dtype=float),
        deal_reserve_months=np.array([d.reserve.target_months for d in cfg.deals], dtype=float),
        deal_reserve_rate_m=np.array([d.reserve.rate / 12.0 for d in cfg.deals], dtype=float),
        deal_fee_rate_m=np.array([d.fees.bps / 1e4 / 12.0 for d in cfg.deals], dtype=float),
        deal_fee_fixed=np.array([d.fees.fixed_monthly for d in cfg.deals], dtype=float),
        deal_tranche_ptr=np.array(tranche_ptr, dtype=I4),
        tranche_balance=np.array(balance, dtype=float),
        tranche_coupon_m=np.array(coupon, dtype=float),
        tranche_interest_on_shortfall=np.array(ios, dtype=I1),
        tranche_senior=np.array(senior, dtype=I1),
        tranche_scheduled=np.array(scheduled, dtype=I1),
        tranche_deferrable=np.array(deferrable, dtype=I1),
        tranche_target=np.ascontiguousarray(np.array(targets, dtype=float).reshape(len(balance), T + 1)),
        tranche_attach=np.array(attach, dtype=float),
        tranche_detach=np.array(detach, dtype=float),
        deal_step_ptr=np.array(step_ptr, dtype=I4),
        step_op=np.array(ops, dtype=I1),
        step_mode=np.array(modes, dtype=I1),
        step_draws_reserve=np.array(draws, dtype=I1),
        step_target_ptr=np.array(tgt_ptr, dtype=I4),
        step_target=np.array(tgt, dtype=I4),
        discount_m=discount_m,
        deal_order=np.array(cfg.deal_order(), dtype=I4),
        deal_trap_dscr=np.array([d.triggers.cash_trap_dscr for d in cfg.deals], dtype=float),
        deal_rapid_dscr=np.array([d.triggers.rapid_amortization_dscr for d in cfg.deals], dtype=float),
        deal_ard=np.array([d.ard.month if d.ard else T + 1 for d in cfg.deals], dtype=I4),
        deal_refi_threshold=np.array([d.ard.refinance_threshold if d.ard else 0.0 for d in cfg.deals], dtype=float),
        deal_step_up_m=np.array([d.ard.step_up_bps / 1e4 / 12.0 if d.ard else 0.0 for d in cfg.deals], dtype=float),
        deal_coll_ptr=np.array(coll_ptr, dtype=I4),
        coll_tranche=np.array(coll_tranche, dtype=I4),
        coll_fraction=np.array(coll_fraction, dtype=float),
        horizon_month=int(cfg.contagion.horizon_month) if cfg.contagion is not None else 0,
        tranche_mark_disc=np.array([1.0 / (1.0 + c) if c > 0.0 else discount_m for c in coupon], dtype=float),
    )
    return plan, tuple(tr_deal), tuple(tr_name)
