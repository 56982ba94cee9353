"""Config builders shared by the test modules: the small three-tenant deal, the CLI's TOML file and
lease tape, and the network, holder, importance, oracle-structure and fuzzing variants of them.

Every test module imports these as ``from builders import ...`` (plain module names, as for
``naive`` and ``naive_contagion``): pytest's default ``prepend`` import mode puts tests/ on
``sys.path`` because tests/ is not a package (no ``__init__.py``), so the one style works under
``python -m pytest tests``, plain ``pytest``, from the repository root and from inside tests/.
No test module imports from another ``test_*.py`` module or from conftest.py, which holds only
pytest configuration (the hypothesis profile and fixtures).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
from hypothesis import strategies as st

from engine.config import validate_config
from kernels.plan import LEDGER_COLUMNS

# --------------------------------------------------------------------------- the small Python config

BASE = {
    "run": {"months": 60, "paths": 2000, "seed": 11, "chunk_paths": 1000},
    "factor": {"persistence": 0.95, "burst": {"monthly_hazard": 0.02, "shift": -1.0}},
    "gpu": {"economic_life_months": 30, "obsolescence_haircut": 0.1},
    "tenants": [
        {"name": "lab", "pd": 0.06, "rho": 0.3},
        {"name": "hyper", "pd": 0.01, "rho": 0.2},
        {"name": "neo", "pd": 0.10, "rho": 0.4},
    ],
    "deals": [
        {
            "name": "d1",
            "legal_final_month": 60,
            "leases": [
                {"tenant": "lab", "term_months": 48, "monthly_rent": 1.2e6, "gpu_cost": 50e6, "shell_value": 20e6},
                {"tenant": "hyper", "start_month": 6, "term_months": 54, "monthly_rent": 0.8e6, "escalator": 0.03, "shell_value": 30e6},
                {"tenant": "neo", "term_months": 36, "monthly_rent": 0.5e6, "gpu_cost": 20e6, "recovery_lag": 3},
            ],
            "tranches": [
                {"name": "A", "balance": 60e6, "coupon": 0.06, "attach": 0.3, "detach": 1.0},
                {"name": "B", "balance": 20e6, "coupon": 0.09, "attach": 0.1, "detach": 0.3},
                {"name": "E", "balance": 20e6, "attach": 0.0, "detach": 0.1},
            ],
            "reserve": {"initial_balance": 1e6, "target_months": 6, "rate": 0.03},
            "fees": {"bps": 20, "fixed_monthly": 10_000},
            "waterfall": [
                {"type": "fees"},
                {"type": "interest", "classes": ["A"]},
                {"type": "reserve"},
                {"type": "interest", "classes": ["B"]},
                {"type": "principal", "classes": ["A", "B", "E"]},
                {"type": "residual"},
            ],
        }
    ],
}


def base_dict() -> dict:
    """A deep copy of the small three-tenant, one-deal config used across tests."""
    return copy.deepcopy(BASE)


def make_config(data: dict | None = None, base_dir="."):
    return validate_config(base_dict() if data is None else data, base_dir=base_dir)


# --------------------------------------------------------------------------- the CLI's TOML file and lease tape

SMALL = """
[run]
months = 36
paths = 3000

[[tenants]]
name = "lab"
pd = 0.05
rho = 0.3

[[tenants]]
name = "hyper"
pd = 0.01
rho = 0.2

[[deals]]
name = "d1"
legal_final_month = 36
{leases}
tranches = [
  {{ name = "A", balance = 30e6, coupon = 0.06, attach = 0.2, detach = 1.0 }},
  {{ name = "B", balance = 10e6, coupon = 0.09, attach = 0.0, detach = 0.2 }},
]
waterfall = [
  {{ type = "fees" }},
  {{ type = "interest", classes = ["A", "B"] }},
  {{ type = "principal", classes = ["A", "B"] }},
  {{ type = "residual" }},
]
"""
INLINE = 'leases = [ { tenant = "lab", term_months = 36, monthly_rent = 1.5e6, gpu_cost = 20e6 }, { tenant = "hyper", term_months = 36, monthly_rent = 0.5e6, shell_value = 10e6 } ]'

TAPE = pd.DataFrame({"tenant": ["lab", "hyper"], "term_months": [36, 36], "monthly_rent": [1.5e6, 0.5e6],
                     "gpu_cost": [20e6, 0.0], "shell_value": [0.0, 10e6]})


def write(tmp_path: Path, text: str, name="c.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def small(tmp_path: Path, leases: str = INLINE) -> Path:
    """SMALL with ``leases`` written to ``tmp_path/c.toml``."""
    return write(tmp_path, SMALL.format(leases=leases))


def _tape(tmp_path: Path, frame: pd.DataFrame, fmt: str) -> str:
    """``frame`` written as ``tmp_path/tape.{fmt}`` (csv or parquet); returns the deal's ``lease_tape`` line."""
    path = tmp_path / f"tape.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    return f'lease_tape = "tape.{fmt}"'


# --------------------------------------------------------------------------- a network, holders, importance

NETWORK = {
    "alpha": 0.7,
    "beta": 0.9,
    "firms": [
        {"name": "chip", "revenue": 30.0, "factor_beta": 0.8, "cash": 5.0},
        {"name": "lab", "tenant": "lab", "revenue": 6.0, "revenue_growth": 0.5, "factor_beta": 1.5, "cash": 4.0, "external_debt": 1.0},
        {"name": "cloud", "tenant": "neo", "revenue": 8.0, "factor_beta": 0.6, "cash": 1.0, "external_debt": 3.0},
    ],
    "obligations": [
        {"payer": "chip", "payee": "lab", "amount": 5.0, "end_year": 4},
        {"payer": "lab", "payee": "cloud", "amount": 14.0, "end_year": 5},
        {"payer": "cloud", "payee": "chip", "amount": 10.0, "end_year": 5},
    ],
}


def with_network(**changes) -> dict:
    """base_dict() with NETWORK (its top-level keys replaced by ``changes``)."""
    d = base_dict()
    d["network"] = copy.deepcopy(NETWORK) | changes
    return d


HOLDERS = [
    {"name": "hf", "type": "hedge_fund", "cash": 2e6, "debt": 30e6,
     "positions": {"d1.B": 12e6, "d1.E": 8e6, "eq": 15e6}},
    {"name": "life", "type": "insurer", "cash": 1e6, "debt": 95e6, "positions": {"d1.A": 30e6, "d1.B": 6e6, "bonds": 64e6}},
    {"name": "fund", "type": "asset_manager", "cash": 1e6, "positions": {"d1.A": 10e6, "bonds": 5e6}},
    {"name": "bank", "type": "bank", "cash": 1e6, "debt": 20e6, "equity": 3e6, "max_leverage": 7.0, "target_leverage": 6.0,
     "positions": {"d1.A": 8e6, "eq": 5e6}},
    {"name": "plan", "type": "pension", "cash": 1e6, "debt": 30e6, "positions": {"d1.A": 5e6, "eq": 20e6}},
]


def holders_dict(**contagion) -> dict:
    """base_dict() with riskier lab and neo, a contagion section (``contagion`` overrides it) and HOLDERS."""
    d = base_dict()
    d["tenants"][0].update(pd=0.15, rho=0.4)
    d["tenants"][2].update(pd=0.25, rho=0.4)
    d["contagion"] = {"horizon_month": 18, "pilot_paths": 2000, "nested_paths": 0,
                      "assets": {"eq": {"kind": "ai_equity", "depth": 200e6}, "bonds": {"kind": "bond", "rating": "A", "depth": 1e9}},
                      **contagion}
    d["holders"] = copy.deepcopy(HOLDERS)
    return d


def with_importance(cfg, **section):
    """``cfg`` with its ``importance`` section set to ``section``, re-validated."""
    d = cfg.resolved()
    d["importance"] = section
    return validate_config(d)


# --------------------------------------------------------------------------- the homogeneous pool (closed forms)


def pool_deal(name: str, tenants: list[str], months: int, recovery_rate: float,
              points: list[tuple[float, float]] | None = None) -> dict:
    """A deal of one single-lease tenant each: no rent, no GPU, equal facility collateral (1e6),
    fixed recovery paid in the default month, term = legal final = run.months. Zero-coupon classes,
    one sequential principal step and a residual (the cash-flow view is irrelevant here)."""
    leases = [{"tenant": t, "term_months": months, "monthly_rent": 0.0, "gpu_cost": 0.0, "shell_value": 1e6,
               "recovery": "fixed", "recovery_rate": recovery_rate, "recovery_lag": 0} for t in tenants]
    points = points or [(0.0, 1.0)]
    tranches = [{"name": f"T{j}", "balance": (d - a) * len(tenants) * 1e6, "attach": a, "detach": d}
                for j, (a, d) in enumerate(points)]
    return {"name": name, "legal_final_month": months, "leases": leases, "tranches": tranches,
            "waterfall": [{"type": "principal", "classes": [t["name"] for t in tranches]}, {"type": "residual"}]}


def homogeneous_config(n: int, pd_: float, rho: float, months: int, *, recovery_rate: float = 0.0,
                       points=None, paths: int, seed: int, persistence: float = 1.0,
                       student_t_dof: float | None = None, calibration: str = "unconditional"):
    tenants = [{"name": f"n{i:04d}", "pd": pd_, "rho": rho} for i in range(n)]
    factor = {"persistence": persistence, "burst": {"monthly_hazard": 0.0}}
    if student_t_dof:
        factor["student_t_dof"] = student_t_dof
    return make_config({
        "run": {"months": months, "paths": paths, "seed": seed, "chunk_paths": 65536, "pd_calibration": calibration},
        "factor": factor,
        "tenants": tenants,
        "deals": [pool_deal("pool", [t["name"] for t in tenants], months, recovery_rate, points)],
    })


# --------------------------------------------------------------------------- the oracle's deal structures

COL = {c: i for i, c in enumerate(LEDGER_COLUMNS)}
SOURCES = ("rent", "rvg", "termination_fee", "recovery", "sale", "abs_collateral")
# docs/model.md §5 cash conservation: collections + reserve interest + draws + release = fees + interest +
# principal + step-up interest + reserve deposits + trapped + residual (refinancing is new money, outside).
INFLOW = [COL[c] for c in SOURCES + ("reserve_interest", "reserve_draw", "reserve_release")]
OUTFLOW = [COL[c] for c in ("fees", "interest", "principal", "step_up_interest", "reserve_deposit", "trapped", "residual")]


def stressed(d: dict) -> dict:
    """PDs and correlations high enough that tenants default on a good share of paths."""
    for tenant, (pd_, rho) in zip(d["tenants"], [(0.15, 0.3), (0.05, 0.2), (0.25, 0.4), (0.1, 0.5)]):
        tenant["pd"], tenant["rho"] = pd_, rho
    return d


def stressed_base() -> dict:
    """base_dict() stressed: the starting point of every oracle structure below."""
    return stressed(base_dict())


def with_options(d):
    """Option leases: renewals, an RVG with another guarantor, re-letting, early termination."""
    d["market_rent"] = {"factor_beta": 0.6}
    d["gpu"]["first_release_month"] = 18
    leases = d["deals"][0]["leases"]
    leases[0].update(renewals=2, renewal_term=5, renewal_intercept=0.2, renewal_beta=1.0, escalator=0.04)
    leases[2].update(recovery="relet", downtime=2, relet_pd=0.35, relet_rho=0.4, term_months=50, recovery_lag=2)
    leases += [
        {"tenant": "neo", "term_months": 24, "monthly_rent": 0.4e6, "gpu_cost": 20e6, "shell_value": 4e6,
         "rvg_threshold": 30e6, "rvg_threshold_end": 12e6, "rvg_months": 36, "rvg_cap": 9e6, "rvg_guarantor": "lab"},
        {"tenant": "lab", "start_month": 2, "term_months": 40, "monthly_rent": 0.3e6, "escalator": 0.05, "gpu_cost": 8e6,
         "termination_threshold": 0.85, "termination_fee_months": 3, "termination_earliest_month": 6, "sale_lag": 1},
        {"tenant": "hyper", "term_months": 20, "monthly_rent": 0.2e6, "gpu_cost": 5e6, "renewals": 3, "renewal_term": 14,
         "renewal_intercept": -0.3, "renewal_beta": 0.8, "rvg_threshold": 4e6, "rvg_months": 60,
         "termination_threshold": 0.7, "termination_earliest_month": 3, "recovery": "relet", "downtime": 1,
         "relet_pd": 0.2, "relet_rho": 0.1},
        # runs past the horizon: the tenant's survival must not count as a default
        {"tenant": "hyper", "start_month": 10, "term_months": 70, "monthly_rent": 0.1e6, "shell_value": 6e6,
         "termination_threshold": 0.5, "termination_earliest_month": 12},
    ]
    return d


def with_structures(d):
    """Tight notes: PIK class, pro-rata interest group with ranks, schedule amortisation, cash trap and
    rapid amortisation triggers."""
    deal = d["deals"][0]
    deal["tranches"] = [
        {"name": "A1", "balance": 40e6, "coupon": 0.06, "rank": 1, "amortization": "schedule",
         "target_schedule": [[6, 36e6], [18, 25e6], [40, 5e6]]},
        {"name": "A2", "balance": 30e6, "coupon": 0.07, "rank": 1, "amortization": "level", "amort_start_month": 3},
        {"name": "B", "balance": 25e6, "coupon": 0.14, "deferrable": True, "rank": 2},
        {"name": "E", "balance": 15e6, "rank": 3},
    ]
    deal["fees"] = {"bps": 60, "fixed_monthly": 50_000}
    deal["reserve"] = {"initial_balance": 1.5e6, "target_months": 2, "rate": 0.02}
    deal["triggers"] = {"cash_trap_dscr": 1.6, "rapid_amortization_dscr": 1.05}
    deal["waterfall"] = [
        {"type": "fees"},
        {"type": "interest", "classes": ["A1", "A2"]},
        {"type": "reserve"},
        {"type": "principal", "classes": ["A1", "A2"], "mode": "pro_rata"},
        {"type": "interest", "classes": ["B"]},
        {"type": "trap"},
        {"type": "principal", "classes": ["B", "E"]},
        {"type": "residual"},
    ]
    return d


def with_ard(d):
    """io classes refinanced at an ARD when the market is open, else swept with a step-up."""
    deal = d["deals"][0]
    deal["ard"] = {"month": 30, "refinance_threshold": -0.2, "step_up_bps": 300}
    for tr, bal in zip(deal["tranches"], (30e6, 10e6, 6e6)):  # small enough for the sweep to repay and pay the step-up
        tr["balance"] = bal
    deal["tranches"][0].update(amortization="io")
    deal["tranches"][1].update(amortization="io", deferrable=True, coupon=0.16)
    deal["triggers"] = {"cash_trap_dscr": 1.3}
    deal["waterfall"] = [
        {"type": "fees"},
        {"type": "interest", "classes": ["A"]},
        {"type": "reserve"},
        {"type": "interest", "classes": ["B"]},
        {"type": "trap"},
        {"type": "principal", "classes": ["A", "B", "E"]},
    ]  # the implicit residual pays the step-up
    return d


def with_abs_of_abs(d):
    """A second deal holding shares of the first deal's B and E classes (listed before it: run order
    is dependency order), and a third holding the second's junior class plus leases of its own."""
    d = with_ard(d)
    holder = {
        "name": "h", "legal_final_month": 60,
        "collateral_tranches": [{"deal": "d1", "tranche": "B", "fraction": 0.6}, {"deal": "d1", "tranche": "E", "fraction": 0.5}],
        "tranches": [{"name": "S", "balance": 14e6, "coupon": 0.05}, {"name": "J", "balance": 8e6, "coupon": 0.09}],
        "reserve": {"initial_balance": 0.2e6},
        "waterfall": [{"type": "interest", "classes": ["S", "J"]}, {"type": "principal", "classes": ["S", "J"]}],
    }
    top = {
        "name": "top", "legal_final_month": 58,
        "collateral_tranches": [{"deal": "h", "tranche": "J", "fraction": 1.0}],
        "leases": [{"tenant": "neo", "term_months": 30, "monthly_rent": 0.1e6, "gpu_cost": 3e6, "renewals": 1,
                    "renewal_intercept": 1.0}],
        "tranches": [{"name": "T", "balance": 9e6, "coupon": 0.04, "amortization": "level"}],
        "waterfall": [{"type": "interest", "classes": ["T"]}, {"type": "principal", "classes": ["T"]}],
    }
    d["deals"] = [top, holder] + d["deals"]
    return d


# --------------------------------------------------------------------------- fuzzing any edit of a valid config

DELETE = object()  # an ANY_VALUE that deletes the key instead of setting it


def key_paths(node, prefix=()):
    """Every key path in ``node``, containers included."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += key_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += key_paths(v, (*prefix, i))
    return out


def _with_scenarios():
    d = base_dict()
    d["scenarios"] = {"stress": {"set": {"tenants.lab.pd": 0.2, "deals.d1.tranches.A.detach": 0.9}}}
    return d


FUZZ_BASE = _with_scenarios()
FUZZ_PATHS = key_paths(FUZZ_BASE) + [("deals", 0, "tranches", k, f) for k in range(3) for f in ("rank", "target_schedule")] + [
    ("deals", 0, "leases", 0, "start_month"), ("deals", 0, "lease_tape"), ("factor", "burst", "month"),
    ("contagion",), ("holders",), ("network",), ("importance",), ("deterministic",), ("scenarios", "base"),
    *[("scenarios", "stress", "set", p) for p in ("deals.d1.tranches.B.detach", "run.months", "deals.d1.leases.0", "tenants", "deals")],
]
ANY_VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20), st.integers(-3, 700),
    st.text(max_size=6), st.none(), st.booleans(), st.just(DELETE),
    st.lists(st.one_of(st.integers(-2, 70), st.floats(-1, 2), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.sampled_from(["name", "set", "type", "month", "x"]), st.one_of(st.integers(-2, 70), st.text(max_size=3)), max_size=2),
)


def set_at(d, path, value):
    """Set (or, for DELETE, remove) the key path ``path`` of ``d``."""
    node = d
    for k in path[:-1]:
        node = node[k]
    if value is DELETE:
        if isinstance(node, dict):
            node.pop(path[-1], None)
        else:
            del node[path[-1]]
    else:
        node[path[-1]] = value
