"""The engine <-> kernel contract: NamedTuples of contiguous arrays with fixed dtypes.

Conventions
-----------
* Months are indexed 0..T; index 0 is the closing date and carries no cash. Arrays over months have
  length ``T + 1``.
* Money is float64 (USD); indices and months are int32; opcodes and flags are int8.
* Ragged data uses CSR: ``*_ptr`` of length n+1 and a flat index array.
* A month value of ``T + 1`` (``NEVER``-like) means "not within the horizon".
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Waterfall opcodes (int8). The config's step `type` compiles to one of these.
OP_FEES = 1
OP_INTEREST = 2
OP_RESERVE = 3
OP_PRINCIPAL = 4
OP_RESIDUAL = 5
OP_TRAP = 6

# Sources of a deal's collections (rows of the kernel's ``flows`` scratch).
SRC_RENT = 0
SRC_RVG = 1
SRC_FEE = 2
SRC_RECOVERY = 3
SRC_SALE = 4
SRC_ABS = 5
N_SRC = 6
SOURCE_NAMES = ("rent", "rvg", "termination_fee", "recovery", "sale", "abs_collateral")

# ARD outcome of a deal on a path.
ARD_NONE = 0
ARD_REFINANCED = 1
ARD_SWEPT = 2

MODE_SEQUENTIAL = 0
MODE_PRO_RATA = 1

CURVE_STRAIGHT = 0
CURVE_EXPONENTIAL = 1

# Fan-chart bins: per-path monthly values of the factor and the GPU value index are binned in the
# kernel so that their quantiles over time can be merged exactly across chunks.
FAN_BINS = 1600
FACTOR_LO, FACTOR_WIDTH = -8.0, 0.01
GPU_LO, GPU_WIDTH = 0.0, 0.0025

# The interest coverage recorded at the stress horizon is capped: a deal whose notes are paid off
# (no interest due) or nearly so would otherwise put an unbounded regressor into the marks' fit.
COVERAGE_CAP = 10.0

# Columns of the per-deal monthly ledger written in trace mode: the sources (SOURCE_NAMES), then these.
L_RESERVE_INTEREST = N_SRC
L_RESERVE_DRAW = N_SRC + 1
L_RESERVE_RELEASE = N_SRC + 2
L_FEES = N_SRC + 3
L_INTEREST = N_SRC + 4
L_PRINCIPAL = N_SRC + 5
L_STEP_UP = N_SRC + 6
L_RESERVE_DEPOSIT = N_SRC + 7
L_TRAPPED = N_SRC + 8
L_REFINANCED = N_SRC + 9
L_RESIDUAL = N_SRC + 10
L_RESERVE_BALANCE = N_SRC + 11
L_DSCR = N_SRC + 12
L_TRAP_ON = N_SRC + 13
L_SWEEP_ON = N_SRC + 14
L_FACTOR = N_SRC + 15
L_GPU_INDEX = N_SRC + 16
LEDGER_COLUMNS = SOURCE_NAMES + (
    "reserve_interest", "reserve_draw", "reserve_release", "fees", "interest", "principal", "step_up_interest",
    "reserve_deposit", "trapped", "refinanced", "residual", "reserve_balance", "dscr", "trap_on", "sweep_on",
    "factor", "gpu_index",
)
# Columns of the per-tranche monthly ledger written in trace mode.
TL_INTEREST = 0
TL_PRINCIPAL = 1
TL_BALANCE = 2
TL_SHORTFALL = 3  # unpaid interest carried at the month's end (a deferrable class's goes into its balance)
TL_WRITEDOWN = 4  # the balance written off when the deal ends, in its last month
TRANCHE_LEDGER_COLUMNS = ("interest", "principal", "balance", "shortfall", "writedown")


class FactorPlan(NamedTuple):
    """AI-demand factor (MODEL §1). Scalars only."""

    phi: float  # persistence φ
    innovation_scale: float  # sqrt(1 - φ²)
    burst_shift: float  # s ≤ 0
    fixed_path: np.ndarray  # f8[T+1] X_t of a deterministic run, or f8[0] for a simulated factor


class CreditPlan(NamedTuple):
    """Tenant default thresholds grouped in hazard classes (MODEL §2).

    class_c : f8[K]            threshold c of each class (−inf for PD 0)
    class_sqrt_rho : f8[K]     sqrt(ρ)
    class_inv_sqrt_1mrho : f8[K]   1/sqrt(1−ρ)
    tenant_class : i4[N]       class of each tenant
    tenant_forced : i4[N]      forced default month, or T+1 for none
    hazard_table : f8[n, 4]    the monthly hazard step −ln Φ(−z) tabulated (kernels/credit.py hazard_table)
    """

    class_c: np.ndarray
    class_sqrt_rho: np.ndarray
    class_inv_sqrt_1mrho: np.ndarray
    tenant_class: np.ndarray
    tenant_forced: np.ndarray
    hazard_table: np.ndarray


class CollateralPlan(NamedTuple):
    """GPU and facility value model (MODEL §3).

    scheduled_obsolescence : f8[T+1]   O_t for scheduled releases (all ones when Poisson)
    """

    curve: int
    gpu_life: float
    gpu_half_life: float
    gpu_salvage: float
    kappa: float
    poisson_releases: bool
    beta_gpu: float
    beta_shell: float
    beta_rent: float
    shell_life: float
    scheduled_obsolescence: np.ndarray


class PoolPlan(NamedTuple):
    """Leases, pre-aggregated by (deal, tenant) group and by deal (MODEL §4).

    Per lease (L):
      lease_deal, lease_start, lease_end, lease_a0, lease_rec_lag : i4[L]
      lease_gpu, lease_shell, lease_liq : f8[L]
      lease_fixed_rr : f8[L]     recovery rate for `fixed` recovery, −1 for `sale`
      lease_term_month : i4[L]   month of the terminal sale (end + sale_lag), T+1 if beyond T
      lease_term_gpu, lease_term_shell : f8[L]  deterministic part of that sale
    tenant_lease_ptr : i4[N+1], tenant_lease_idx : i4[L]   CSR tenant -> leases
    Per group G (a deal's leases of one tenant):
      group_tenant : i4[G]
      group_rent : f8[G, T+1]          scheduled contract rent by month
      group_rent_suffix : f8[G, T+2]   Σ_{u ≥ t, u ≤ T} group_rent[g, u]
    deal_group_ptr : i4[D+1]           CSR deal -> groups (groups are sorted by deal)
    deal_rent, deal_term_gpu, deal_term_shell : f8[D, T+1]
    deal_pool_balance : f8[D]          P0: scheduled rent within T plus original collateral
    lease_dynamic : i1[L]              1 for a lease with options (renewals, RVG, re-letting, early
                                       termination): left out of the aggregates above and simulated
                                       lease by lease (kernels/leases.py:option_leases)
    lease_tenant, lease_sale_lag : i4[L]
    Per option lease (M of them, sorted by deal; CSR deal_dyn_ptr : i4[D+1]):
      dyn_lease : i4[M]                index into the lease arrays
      dyn_rent, dyn_esc : f8[M]        R_j, e_j
      dyn_sched : f8[M]                scheduled rent of the original term within T (part of P0)
      dyn_renewals, dyn_renewal_term : i4[M]; dyn_ren_a, dyn_ren_b : f8[M]   renewal option
      dyn_rvg_start, dyn_rvg_end, dyn_rvg_cap : f8[M]; dyn_rvg_months, dyn_guarantor : i4[M]
                                       RVG threshold path, cap, and guarantor tenant (−1: none)
      dyn_relet_class : i4[M]          hazard class of the replacement tenant, −1 unless `relet`
      dyn_downtime : i4[M]
      dyn_term_frac, dyn_term_fee : f8[M]; dyn_term_from : i4[M]   early termination option
    deal_ctrl_ptr : i4[D+1], ctrl_tenant : i4[E], ctrl_weight : f8[E]   per deal, its tenants and what
                                       their leases bring to P0 (scheduled rent within T and original
                                       collateral): the weights of the control variate
    fixed_uniform : float              −1 draws renewals and replacement defaults at random; a value
                                       in (0, 1) is used for every renewal draw and replacement
                                       tenants never default (deterministic mode)
    """

    lease_deal: np.ndarray
    lease_start: np.ndarray
    lease_end: np.ndarray
    lease_a0: np.ndarray
    lease_rec_lag: np.ndarray
    lease_gpu: np.ndarray
    lease_shell: np.ndarray
    lease_liq: np.ndarray
    lease_fixed_rr: np.ndarray
    lease_term_month: np.ndarray
    lease_term_gpu: np.ndarray
    lease_term_shell: np.ndarray
    tenant_lease_ptr: np.ndarray
    tenant_lease_idx: np.ndarray
    group_tenant: np.ndarray
    group_rent: np.ndarray
    group_rent_suffix: np.ndarray
    deal_group_ptr: np.ndarray
    deal_rent: np.ndarray
    deal_term_gpu: np.ndarray
    deal_term_shell: np.ndarray
    deal_pool_balance: np.ndarray
    lease_dynamic: np.ndarray
    lease_tenant: np.ndarray
    lease_sale_lag: np.ndarray
    deal_dyn_ptr: np.ndarray
    dyn_lease: np.ndarray
    dyn_rent: np.ndarray
    dyn_esc: np.ndarray
    dyn_sched: np.ndarray
    dyn_renewals: np.ndarray
    dyn_renewal_term: np.ndarray
    dyn_ren_a: np.ndarray
    dyn_ren_b: np.ndarray
    dyn_rvg_start: np.ndarray
    dyn_rvg_end: np.ndarray
    dyn_rvg_cap: np.ndarray
    dyn_rvg_months: np.ndarray
    dyn_guarantor: np.ndarray
    dyn_relet_class: np.ndarray
    dyn_downtime: np.ndarray
    dyn_term_frac: np.ndarray
    dyn_term_fee: np.ndarray
    dyn_term_from: np.ndarray
    deal_ctrl_ptr: np.ndarray
    ctrl_tenant: np.ndarray
    ctrl_weight: np.ndarray
    fixed_uniform: float


class DealPlan(NamedTuple):
    """Notes, reserve, fees and the waterfall program (MODEL §5).

    deal_legal_final : i4[D]
    deal_reserve0, deal_reserve_months, deal_reserve_rate_m, deal_fee_rate_m, deal_fee_fixed : f8[D]
    deal_tranche_ptr : i4[D+1]      tranches of deal d are deal_tranche_ptr[d]..[d+1]
    tranche_balance, tranche_coupon_m : f8[K]
    tranche_interest_on_shortfall, tranche_senior, tranche_scheduled, tranche_deferrable : i1[K]
    tranche_target : f8[K, T+1]     scheduled balance after month t's principal step
    tranche_attach, tranche_detach : f8[K]   NaN when the tranche has no loss-allocation points
    deal_step_ptr : i4[D+1]; step_op, step_mode, step_draws_reserve : i1[S]
    step_target_ptr : i4[S+1]; step_target : i4[...]   global tranche indices
    discount_m : f8    monthly discount factor (1+r)^(−1/12)
    deal_order : i4[D]              deals in dependency order (collateral deals before ABS-of-ABS)
    deal_trap_dscr, deal_rapid_dscr : f8[D]   trailing-3-month DSCR trigger levels (0: no trigger)
    deal_ard : i4[D]                ARD month, or T+1 for none
    deal_refi_threshold, deal_step_up_m : f8[D]
    deal_coll_ptr : i4[D+1]; coll_tranche : i4[C]; coll_fraction : f8[C]
                                    tranches of other deals held as collateral, and the share held
    horizon_month : int             the stress horizon h of MODEL §6 (0: no horizon state recorded)
    tranche_mark_disc : f8[K]       monthly discount factor of a tranche's marks: 1/(1 + its monthly
                                    coupon), so a tranche paid in full as promised is worth par
                                    (the run's discount rate for a zero-coupon class)
    """

    deal_legal_final: np.ndarray
    deal_reserve0: np.ndarray
    deal_reserve_months: np.ndarray
    deal_reserve_rate_m: np.ndarray
    deal_fee_rate_m: np.ndarray
    deal_fee_fixed: np.ndarray
    deal_tranche_ptr: np.ndarray
    tranche_balance: np.ndarray
    tranche_coupon_m: np.ndarray
    tranche_interest_on_shortfall: np.ndarray
    tranche_senior: np.ndarray
    tranche_scheduled: np.ndarray
    tranche_deferrable: np.ndarray
    tranche_target: np.ndarray
    tranche_attach: np.ndarray
    tranche_detach: np.ndarray
    deal_step_ptr: np.ndarray
    step_op: np.ndarray
    step_mode: np.ndarray
    step_draws_reserve: np.ndarray
    step_target_ptr: np.ndarray
    step_target: np.ndarray
    discount_m: float
    deal_order: np.ndarray
    deal_trap_dscr: np.ndarray
    deal_rapid_dscr: np.ndarray
    deal_ard: np.ndarray
    deal_refi_threshold: np.ndarray
    deal_step_up_m: np.ndarray
    deal_coll_ptr: np.ndarray
    coll_tranche: np.ndarray
    coll_fraction: np.ndarray
    horizon_month: int
    tranche_mark_disc: np.ndarray


class NetworkPlan(NamedTuple):
    """The circular-financing network (MODEL §7). F firms, Y = T // 12 year ends.

    enabled : bool               False runs the hazard-only model (F may still be > 0)
    alpha, beta : float          Rogers–Veraart shares realised by a defaulter
    firm_tenant : i4[F]          tenant index of each firm, −1 if the firm is not a tenant
    firm_revenue : f8[Y+1, F]      external revenue of each year at a neutral factor (growth applied)
    firm_beta, firm_cash, firm_debt : f8[F]
    obligations : f8[Y+1, F, F]  obligations[y, i, j] = what firm i owes firm j in year y (row 0 unused)
    """

    enabled: bool
    alpha: float
    beta: float
    firm_tenant: np.ndarray
    firm_revenue: np.ndarray
    firm_beta: np.ndarray
    firm_cash: np.ndarray
    firm_debt: np.ndarray
    obligations: np.ndarray


class DrawPlan(NamedTuple):
    """How a path's random inputs are drawn inside the kernel (kernels/draws.py), and under which law.

    key0, key1 : u8            the seed's low and high 32-bit words, the Philox key
    months : int               T
    n_normals : int            factor normals drawn per path: T+1, or 1 for a static factor (φ = 1
                               uses no innovation; the others are 0)
    burst_hazard : float       monthly burst hazard h
    burst_month : int          a fixed burst month, or −1 when it is random
    nu : float                 t-copula degrees of freedom (0: the Gaussian copula)
    poisson_rate : float       chip releases per month in Poisson mode (0: no random releases)
    weighted : bool            importance sampling: the paths carry likelihood ratios
    shift : float              the factor shift m along ``direction`` (engine/simulation/importance.py)
    direction : f8[T+1]        d (engine/plan/rng.py shift_direction)
    tilted_hazard : float      the tilted burst hazard, or −1 when the burst law is not tilted
    plain_share : float        α of the defensive mixture α·P + (1 − α)·Q_tilt
    strata : int               K cells of the factor's projection on ``direction`` (path j in cell
                               j mod K); 0 or 1: not stratified
    horizon : int              h ≤ T: the burst hazard and the defaults are tilted in months 1..h
                               only (``direction`` is 0 after h)
    default_floor : float      ℓ: on the tilted component a tilted tenant's probability of defaulting
                               by ``horizon`` given the factor is raised to at least ℓ (0: defaults
                               not tilted)
    tilt_tenant : u1[N]        which tenants' defaults are tilted (empty when ``default_floor`` is 0)
    factor_tilt : f8[K]        per hazard class, its tilted tenants: the factor's law on the tilted
                               component leans towards their hazard (``hazard_tilted_factor``);
                               empty: the factor is only shifted
    """

    key0: np.uint64
    key1: np.uint64
    months: int
    n_normals: int
    burst_hazard: float
    burst_month: int
    nu: float
    poisson_rate: float
    weighted: bool
    shift: float
    direction: np.ndarray
    tilted_hazard: float
    plain_share: float
    strata: int
    horizon: int
    default_floor: float
    tilt_tenant: np.ndarray
    factor_tilt: np.ndarray


class Draws(NamedTuple):
    """The random inputs of n paths written out as arrays: by kernels/draws.py ``draw_paths`` (the
    same numbers the kernel draws for itself), or by hand (deterministic what-ifs, nested
    re-simulation). A run's chunks never materialise them.

    eps : f8[n, T+1]          factor innovations; column 0 is Y_0
    expo : f8[n, N]           one Exp(1) per tenant
    burst_month : i4[n]       B, or T+1 when no burst within the horizon
    winv : f8[n]              1/sqrt(W) of the t-copula (1 for the Gaussian copula)
    release_counts : i4[n, T+1] or i4[n, 0]   chip releases per month (Poisson mode only)
    key : u8[n]               per-path key of the counter-based uniforms of lease options
                              (kernels/uniforms.py): renewals and replacement-tenant defaults
    key_late : u8[n]          the key of option decisions after month ``split``
    split : i4[n]             T+1 in a run (key_late = key); the stress horizon h in a nested
                              re-simulation (engine/simulation/marks.py), whose inner paths share the outer
                              path's history up to h and draw afresh after it
    """

    eps: np.ndarray
    expo: np.ndarray
    burst_month: np.ndarray
    winv: np.ndarray
    release_counts: np.ndarray
    key: np.ndarray
    key_late: np.ndarray
    split: np.ndarray


class PathOutputs(NamedTuple):
    """Per-path results of n paths (MODEL §5). K tranches, D deals.

    tranche_loss : f8[n, K]        principal written off at legal final / original balance
    tranche_shortfall : f8[n, K]   unpaid interest at legal final / original balance
    tranche_pv : f8[n, K]          discounted cash received / original balance
    tranche_wal : f8[n, K]         years; NaN when no principal was received
    tranche_any_shortfall : i1[n, K]   1 if any month's interest was not paid in full
    tranche_first_loss : i4[n, K]  first month of a shortfall on a path that ends in a loss; 0 if none
    tranche_alloc_loss : f8[n, K]  loss-allocation view on the pool's net loss; NaN without points
    deal_net_loss : f8[n, D]       NL_T, the pool's net loss fraction
    deal_defaults : i4[n, D]       tenants of the deal that defaulted within the horizon
    deal_reserve_used : f8[n, D]   reserve draws / original note balance
    deal_reserve_out : i1[n, D]    1 if a draw ever emptied the reserve with a shortfall left
    deal_trap_month, deal_rapid_month : i4[n, D]   first month the cash trap / rapid amortisation
                                   trigger was on; 0 if never
    deal_ard : i1[n, D]            ARD_NONE, ARD_REFINANCED or ARD_SWEPT
    deal_rvg, deal_recovery : f8[n, D]   RVG paid, and default recoveries plus collateral sales,
                                   over the pool balance P0
    deal_renewals : i4[n, D]       lease renewals exercised
    firm_default_month : i4[n, F]  month a firm defaulted (hazard or clearing), T+1 if none
    firm_own : i1[n, F]            1 if that default was the firm's own failure, 0 if contagion or none
    firm_ratio : f8[n, F]          clearing ratio p/p̄ in the year of a clearing default; NaN otherwise
    firm_caused : f8[n, F]         contagion defaults attributed to the firm's own failure
    cascade : i4[n]                contagion defaults on the path
    factor_bin, gpu_bin : i2[n, T+1] or i2[n, 0]   fan-chart bin of X_t and of the GPU value index
    The state at the stress horizon h (DealPlan.horizon_month; all 0 when h = 0), MODEL §6.1:
    tranche_h_balance : f8[n, K]   balance after month h's payments / original balance
    tranche_h_value : f8[n, K]     cash paid after h, discounted to h at the tranche's mark rate
                                   (DealPlan.tranche_mark_disc) / original balance
    tranche_h_wal : f8[n, K]       years from h to the principal paid after h; NaN when none is
    deal_h_coverage : f8[n, D]     collections of months h−2..h over three months of interest due
                                   on the balances after h (capped at COVERAGE_CAP)
    deal_h_defaulted : f8[n, D]    share of the deal's scheduled rent whose original tenant had
                                   defaulted by h
    h_factor, h_gpu : f8[n]        X_h and the GPU value index at h
    weight : f8[n]                 the path's likelihood ratio dP/dQ under importance sampling, 1 otherwise
    deal_control : f8[n, D] or f8[n, 0]   the control variate of the deal's losses (MODEL §9): the
                                   P0-weighted share (scheduled rent and original collateral) of its
                                   tenants whose own hazard defaulted them
                                   by T minus its expectation given the factor, Σ e_i·(1{τ_i ≤ T} −
                                   (1 − e^{−H_c(i),T})) over tenants without a forced month by T;
                                   computed only when allocated with D columns
    """

    tranche_loss: np.ndarray
    tranche_shortfall: np.ndarray
    tranche_pv: np.ndarray
    tranche_wal: np.ndarray
    tranche_any_shortfall: np.ndarray
    tranche_first_loss: np.ndarray
    tranche_alloc_loss: np.ndarray
    deal_net_loss: np.ndarray
    deal_defaults: np.ndarray
    deal_reserve_used: np.ndarray
    deal_reserve_out: np.ndarray
    deal_trap_month: np.ndarray
    deal_rapid_month: np.ndarray
    deal_ard: np.ndarray
    deal_rvg: np.ndarray
    deal_recovery: np.ndarray
    deal_renewals: np.ndarray
    firm_default_month: np.ndarray
    firm_own: np.ndarray
    firm_ratio: np.ndarray
    firm_caused: np.ndarray
    cascade: np.ndarray
    factor_bin: np.ndarray
    gpu_bin: np.ndarray
    tranche_h_balance: np.ndarray
    tranche_h_value: np.ndarray
    tranche_h_wal: np.ndarray
    deal_h_coverage: np.ndarray
    deal_h_defaulted: np.ndarray
    h_factor: np.ndarray
    h_gpu: np.ndarray
    weight: np.ndarray
    deal_control: np.ndarray


class Ledgers(NamedTuple):
    """A statement's monthly ledgers, written by the kernel for one path (MODEL §5). D deals, S
    waterfall steps, K tranches, N tenants. Without a month axis (``no_ledgers``) nothing is recorded.

    deal : f8[D, T+1, len(LEDGER_COLUMNS)]
    step : f8[S, T+1]                what each waterfall step paid (a `trap` step's release is negative)
    tranche : f8[K, T+1, len(TRANCHE_LEDGER_COLUMNS)]
    tau : i4[N]                      the path's default month per tenant
    """

    deal: np.ndarray
    step: np.ndarray
    tranche: np.ndarray
    tau: np.ndarray


def no_ledgers(n_deals: int, n_tranches: int) -> Ledgers:
    """Ledgers that record nothing (a run, not a statement)."""
    return Ledgers(deal=np.empty((n_deals, 0, 0)), step=np.empty((0, 0)), tranche=np.empty((n_tranches, 0, 0)),
                   tau=np.empty(0, dtype=np.int32))


def empty_outputs(n: int, n_tranches: int, n_deals: int, n_firms: int = 0, months: int = -1,
                  control: bool = False) -> PathOutputs:
    """Allocate the outputs of n paths; ``months`` = T records the fan-chart bins (−1: not recorded);
    ``control``: the kernel computes each deal's control variate."""
    f = lambda m: np.zeros((n, m), dtype=np.float64)  # noqa: E731
    return PathOutputs(
        tranche_loss=f(n_tranches),
        tranche_shortfall=f(n_tranches),
        tranche_pv=f(n_tranches),
        tranche_wal=f(n_tranches),
        tranche_any_shortfall=np.zeros((n, n_tranches), dtype=np.int8),
        tranche_first_loss=np.zeros((n, n_tranches), dtype=np.int32),
        tranche_alloc_loss=f(n_tranches),
        deal_net_loss=f(n_deals),
        deal_defaults=np.zeros((n, n_deals), dtype=np.int32),
        deal_reserve_used=f(n_deals),
        deal_reserve_out=np.zeros((n, n_deals), dtype=np.int8),
        deal_trap_month=np.zeros((n, n_deals), dtype=np.int32),
        deal_rapid_month=np.zeros((n, n_deals), dtype=np.int32),
        deal_ard=np.zeros((n, n_deals), dtype=np.int8),
        deal_rvg=f(n_deals),
        deal_recovery=f(n_deals),
        deal_renewals=np.zeros((n, n_deals), dtype=np.int32),
        firm_default_month=np.zeros((n, n_firms), dtype=np.int32),
        firm_own=np.zeros((n, n_firms), dtype=np.int8),
        firm_ratio=f(n_firms),
        firm_caused=f(n_firms),
        cascade=np.zeros(n, dtype=np.int32),
        factor_bin=np.zeros((n, months + 1), dtype=np.int16),
        gpu_bin=np.zeros((n, months + 1), dtype=np.int16),
        tranche_h_balance=f(n_tranches),
        tranche_h_value=f(n_tranches),
        tranche_h_wal=f(n_tranches),
        deal_h_coverage=f(n_deals),
        deal_h_defaulted=f(n_deals),
        h_factor=np.zeros(n),
        h_gpu=np.zeros(n),
        weight=np.ones(n),
        deal_control=f(n_deals if control else 0),
    )
