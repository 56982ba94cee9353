"""The whole config: its sections, the checks across them, and the ways in (`validate_config`, `load_config`)."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Callable

from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails

from engine.config.base import BASE_SCENARIO, Name, _Section
from engine.config.collateral import FacilityConfig, GpuConfig, MarketRentConfig
from engine.config.contagion import ContagionConfig, Holder
from engine.config.deals import Deal
from engine.config.errors import ConfigError, OverrideError, _errors_from_validation, _line_errors, _ref_error
from engine.config.factor import FactorConfig
from engine.config.importance import ImportanceConfig
from engine.config.leases import Tenant
from engine.config.network import NetworkConfig
from engine.config.paths import apply_overrides
from engine.config.run import DeterministicConfig, RunConfig
from engine.config.scenarios import Scenario


class Config(_Section):
    """A whole run: the sections of MODEL.md §1–5."""

    run: RunConfig = Field(..., description="Run size, seed and horizon.")
    factor: FactorConfig = Field(default_factory=FactorConfig, description="AI-demand factor (§1).")
    gpu: GpuConfig = Field(default_factory=GpuConfig, description="GPU collateral (§3).")
    facility: FacilityConfig = Field(default_factory=FacilityConfig, description="Facility collateral (§3).")
    market_rent: MarketRentConfig = Field(default_factory=MarketRentConfig, description="Market-rent index (§3).")
    tenants: list[Tenant] = Field(..., min_length=1, description="Lessees (§2).")
    deals: list[Deal] = Field(..., min_length=1, description="Deals (§5).")
    network: NetworkConfig | None = Field(None, description="Circular-financing network between firms (§7).")
    deterministic: DeterministicConfig | None = Field(
        None, description="Run one deterministic what-if path instead of the Monte Carlo (`dcabs trace`, `dcabs breakeven`)."
    )
    contagion: ContagionConfig | None = Field(None, description="Stress horizon, marks and the fire-sale market (§6).")
    holders: list[Holder] = Field(default_factory=list, description="Holders of the tranches and other assets (§6).")
    importance: ImportanceConfig | None = Field(
        None, description="Importance sampling of the factor (docs/model.md §9); omitted: plain Monte Carlo."
    )
    scenarios: dict[Name, Scenario] = Field(
        default_factory=dict,
        description="Named stress scenarios: overrides of this config, run with `--scenario`. "
                    "`base` is reserved: it names the config as written.",
    )

    _holdings: list[tuple[str, str, float]] = PrivateAttr(default_factory=list)

    @field_validator("tenants", "deals", "holders")
    @classmethod
    def _unique_names(cls, items: list, info: ValidationInfo) -> list:
        names = [item.name for item in items]
        errs = [
            _ref_error((k, "name"), f"duplicate {info.field_name[:-1]} name {n!r}", n)
            for k, n in enumerate(names)
            if n in names[:k]
        ]
        if errs:
            raise ValidationError.from_exception_data("Config", errs)
        return items

    @field_validator("scenarios")
    @classmethod
    def _base_reserved(cls, scenarios: dict[str, Scenario]) -> dict[str, Scenario]:
        # `--scenario base` selects the config as written, so a scenario of that name would never run.
        if BASE_SCENARIO in scenarios:
            raise ValidationError.from_exception_data("Config", [_ref_error(
                (BASE_SCENARIO,),
                f"the name {BASE_SCENARIO!r} is reserved for the config as written (the unstressed run that "
                f"`--scenario {BASE_SCENARIO}` selects), so these overrides would never be applied: rename the scenario",
                BASE_SCENARIO)])
        return scenarios

    @model_validator(mode="after")
    def _collateral_graph(self) -> Config:
        errs: list[InitErrorDetails] = []
        tranches = {d.name: {t.name for t in d.tranches} for d in self.deals}
        held: dict[tuple[str, str], float] = {}
        for d, deal in enumerate(self.deals):
            for c, ct in enumerate(deal.collateral_tranches):
                loc = ("deals", d, "collateral_tranches", c)
                if ct.deal == deal.name:
                    errs.append(_ref_error((*loc, "deal"), "a deal cannot hold its own tranches", ct.deal))
                elif ct.deal not in tranches:
                    errs.append(_ref_error((*loc, "deal"), f"unknown deal {ct.deal!r}", ct.deal))
                elif ct.tranche not in tranches[ct.deal]:
                    errs.append(_ref_error((*loc, "tranche"), f"deal {ct.deal!r} has no tranche {ct.tranche!r}", ct.tranche))
                else:
                    held[(ct.deal, ct.tranche)] = held.get((ct.deal, ct.tranche), 0.0) + ct.fraction
        for (deal, tranche), total in held.items():
            if total > 1.0 + 1e-12:
                d = next(i for i, x in enumerate(self.deals) if x.name == deal)
                errs.append(_ref_error(("deals", d, "name"), f"tranche {tranche!r} is held {total:.4g} times over by ABS-of-ABS deals (at most 1)", deal))
        if not errs:
            cycle = _find_cycle({d.name: [ct.deal for ct in d.collateral_tranches] for d in self.deals})
            if cycle:
                d = next(i for i, x in enumerate(self.deals) if x.name == cycle[0])
                errs.append(_ref_error(("deals", d, "collateral_tranches"), "deals hold each other's tranches in a cycle: " + " → ".join(cycle), None))
        if errs:
            raise ValidationError.from_exception_data("Config", errs)
        return self

    @model_validator(mode="after")
    def _holders(self, info: ValidationInfo) -> Config:
        errs: list[InitErrorDetails] = []
        c = self.contagion
        if self.holders and c is None:
            errs.append(_ref_error(("holders",), "holders need a `contagion` section (the stress horizon)", None))
        if c is None:
            if errs:
                raise ValidationError.from_exception_data("Config", errs)
            return self
        for d, deal in enumerate(self.deals):
            if c.horizon_month >= deal.legal_final_month:
                errs.append(_ref_error(("contagion", "horizon_month"),
                                       f"must come before every deal's legal final; deal {deal.name!r} ends in month {deal.legal_final_month}",
                                       c.horizon_month))
        size = {f"{d.name}.{t.name}": t.balance for d in self.deals for t in d.tranches}
        clash = sorted(set(size) & set(c.assets))
        for name in clash:
            errs.append(_ref_error(("contagion", "assets", name), "an asset cannot share its name with a tranche", name))
        known = {**size, **{a: None for a in c.assets}}
        names = {h.name: i for i, h in enumerate(self.holders)}
        rows: list[tuple[str, str, float]] = []
        if c.holdings_file is not None:
            try:
                from engine.config.tables import _read_holdings  # lazy: pandas only when a file is read

                rows = _read_holdings(Path((info.context or {}).get("base_dir", ".")) / c.holdings_file)
            except ValidationError as exc:
                errs.extend(_line_errors(exc))
            for r, (h, a, _) in enumerate(rows):
                if h not in names:
                    errs.append(_ref_error(("contagion", "holdings_file", f"row {r}", "holder"), f"unknown holder {h!r}", h))
                if a not in known:
                    errs.append(_ref_error(("contagion", "holdings_file", f"row {r}", "asset"),
                                           f"unknown tranche or asset {a!r} (tranches are named `deal.tranche`)", a))
        held: dict[str, float] = {}
        par_of = [dict(h.positions) for h in self.holders]
        for i, h in enumerate(self.holders):
            for a, x in h.positions.items():
                if a not in known:
                    errs.append(_ref_error(("holders", i, "positions", a),
                                           f"unknown tranche or asset {a!r} (tranches are named `deal.tranche`)", a))
        for h, a, x in rows:
            if h in names and a in known:
                par_of[names[h]][a] = par_of[names[h]].get(a, 0.0) + x
        for pos in par_of:
            for a, x in pos.items():
                held[a] = held.get(a, 0.0) + x
        for a, total in held.items():
            if a in size and total > size[a] * (1.0 + 1e-12):
                errs.append(_ref_error(("holders",), f"tranche {a!r} is held {total:,.6g} in total, above its balance {size[a]:,.6g}", total))
        for i, h in enumerate(self.holders):
            at_par = sum(x for a, x in par_of[i].items() if a in known)
            floor = h.cash + at_par - h.debt
            # A pension's surplus may be negative (underfunded); every other holder needs equity.
            if h.equity is None and floor < 0.0 and h.type != "pension":
                errs.append(_ref_error(("holders", i, "debt"),
                                       f"negative equity: cash + positions at par − debt = {floor:,.6g}", h.debt))
            elif h.equity is not None and h.equity < floor * (1.0 - 1e-12) - 1e-6:
                errs.append(_ref_error(("holders", i, "equity"),
                                       f"below cash + positions at par − debt = {floor:,.6g}: the balance sheet cannot hold it", h.equity))
        if errs:
            raise ValidationError.from_exception_data("Config", errs)
        self._holdings = [(h.name, a, x) for h, pos in zip(self.holders, par_of) for a, x in pos.items()]
        return self

    @model_validator(mode="after")
    def _importance(self) -> Config:
        imp = self.importance
        if imp is None:
            return self
        errs: list[InitErrorDetails] = []
        if imp.target is not None:
            deal, _, tranche = imp.target.partition(".")
            names = {d.name: {t.name for t in d.tranches} for d in self.deals}
            if deal not in names:
                errs.append(_ref_error(("importance", "target"), f"unknown deal {deal!r} (write `deal.tranche`)", imp.target))
            elif tranche not in names[deal]:
                errs.append(_ref_error(("importance", "target"), f"deal {deal!r} has no tranche {tranche!r}", imp.target))
            elif imp.view == "allocation" and next(t for d in self.deals if d.name == deal for t in d.tranches
                                                   if t.name == tranche).attach is None:
                errs.append(_ref_error(("importance", "view"), f"tranche {imp.target!r} has no attach/detach points to allocate", imp.view))
        n = self.run.paths
        if (imp.strata is not None and imp.strata > 1 and self.deterministic is None  # a what-if ignores [importance]
                and (n % imp.strata or n // imp.strata < 2)):
            errs.append(_ref_error(("importance", "strata"),
                                   f"must divide run.paths = {n} (after any --paths or scenario override) with at least 2 "
                                   "paths a stratum (every stratum holds the same number of paths); choose a divisor, "
                                   "or 1 for none", imp.strata))
        for field, value, remedy in (("default_floor", imp.default_floor, "omit `default_floor`"),
                                     ("factor_tilt", imp.factor_tilt if imp.factor_tilt == "hazard" else None,
                                      'use factor_tilt = "shift"')):
            if value is None or self.deterministic is not None:
                continue
            name = self.importance_deal()
            deal = next((d for d in self.deals if d.name == name), None)
            if deal is not None and deal.leases is None and deal.lease_tape is None:
                errs.append(_ref_error(("importance", field), f"deal {name!r} has no leases of its own (its "
                                       "collateral is other deals' tranches, whose tenants are not tilted); target a deal "
                                       f"with leases, or {remedy}", value))
        if imp.horizon is not None and imp.horizon > self.run.months and self.deterministic is None:
            errs.append(_ref_error(("importance", "horizon"), f"is past the run's horizon run.months = {self.run.months} "
                                   "(after any scenario override); omit it for the whole horizon", imp.horizon))
        b = self.factor.burst
        if imp.burst_hazard is not None and not (b.month is None and 0.0 < b.monthly_hazard < 1.0):
            errs.append(_ref_error(("importance", "burst_hazard"),
                                   "tilts a random burst, but factor.burst is fixed (`month`) or has hazard 0 or 1", imp.burst_hazard))
        if errs:
            raise ValidationError.from_exception_data("Config", errs)
        return self

    def importance_deal(self) -> str:
        """The deal of ``importance.target``, else the first deal (whose tranche engine/simulation/importance.py
        then chooses): the deal whose tenants ``importance.default_floor`` tilts."""
        target = self.importance.target if self.importance is not None else None
        return target.partition(".")[0] if target else self.deals[0].name

    def positions(self) -> list[tuple[str, str, float]]:
        """Every position as (holder, asset, par): inline positions plus the holdings file."""
        return list(self._holdings)

    def deal_order(self) -> list[int]:
        """Deal indices in dependency order: every deal after the deals whose tranches it holds."""
        index = {d.name: i for i, d in enumerate(self.deals)}
        order: list[int] = []
        done: set[int] = set()

        def visit(i: int) -> None:
            if i in done:
                return
            done.add(i)
            for ct in self.deals[i].collateral_tranches:
                visit(index[ct.deal])
            order.append(i)

        for i in range(len(self.deals)):
            visit(i)
        return order

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> Config:
        # validate_config passes tenant names and the horizon in the context, so deals check their
        # own references and every missing name is reported at once. Without a context (a direct
        # Config.model_validate), the same checks run here.
        if (info.context or {}).get("tenant_names") is not None:
            return self
        errs: list[InitErrorDetails] = []
        known = {t.name for t in self.tenants}
        T = self.run.months
        for d, deal in enumerate(self.deals):
            if deal.legal_final_month > T:
                errs.append(_ref_error(("deals", d, "legal_final_month"), f"beyond run.months ({T})", deal.legal_final_month))
            errs.extend(deal.lease_start_errors(T, prefix=("deals", d)))
            errs.extend(deal.tenant_errors(known, prefix=("deals", d)))
        if self.factor.burst.month is not None and self.factor.burst.month > T:
            errs.append(_ref_error(("factor", "burst", "month"), f"beyond run.months ({T})", self.factor.burst.month))
        for k, firm in enumerate(self.network.firms if self.network else []):
            if firm.tenant is not None and firm.tenant not in known:
                errs.append(_ref_error(("network", "firms", k, "tenant"), f"unknown tenant {firm.tenant!r}", firm.tenant))
        if errs:
            raise ValidationError.from_exception_data("Config", errs)
        return self

    # ----------------------------------------------------------------- conveniences

    def resolved(self) -> dict[str, Any]:
        """The config as plain JSON-able data, defaults filled in."""
        return self.model_dump(mode="json")

    def digest(self) -> str:
        """SHA-256 of the resolved config and the bytes of every lease tape it reads."""
        h = hashlib.sha256(json.dumps(self.resolved(), sort_keys=True).encode())
        for deal in self.deals:
            if deal._tape_sha256:
                h.update(deal._tape_sha256.encode())
        if self.contagion is not None and self.contagion.holdings_file is not None:
            h.update(json.dumps(self._holdings).encode())
        return h.hexdigest()

    def derive(self, overrides: dict[str, Any] | None = None, *, run: dict[str, Any] | None = None,
               keep_scenarios: bool = True, check_tranche_stack: bool | None = None,
               edit: Callable[[dict], None] | None = None) -> Config:
        """A copy of this config changed and re-validated: the one way every override is applied
        (``with_run``, ``with_overrides``, scenarios, sweep points).

        In order: ``run``'s non-None fields replace the run section's; ``edit`` changes the
        resolved data in place (a sweep's resized notes); ``overrides`` set values by dotted path
        (engine/config/paths.py). A path that names nothing raises :class:`OverrideError` listing
        every such path; the result is validated like a file, with this config's base directory and
        (unless given) its tranche-stack check."""
        data = self.resolved()
        if not keep_scenarios:
            data.pop("scenarios", None)
        if run:
            data["run"].update({k: v for k, v in run.items() if v is not None})
        if edit is not None:
            edit(data)
        errors = apply_overrides(data, overrides or {})
        if errors:
            raise OverrideError(errors)
        stack = self._check_tranche_stack if check_tranche_stack is None else check_tranche_stack
        return validate_config(data, base_dir=self._base_dir, check_tranche_stack=stack)

    def with_run(self, **changes: Any) -> Config:
        """A copy with fields of ``run`` replaced, re-validated."""
        return self.derive(run=changes)

    def with_overrides(self, overrides: dict[str, Any]) -> Config:
        """A copy with fields replaced by dotted path (``{"deals.hyperion.tranches.A.detach": 0.9}``;
        list items by their ``name`` or index), re-validated. Raises ConfigError naming the path."""
        return self.derive(overrides)

    def scenario(self, name: str) -> Config:
        """This config with scenario ``name``'s overrides applied, validated; ``base`` is the config
        as written. Errors name the scenario."""
        if name == BASE_SCENARIO:
            return self
        if name not in self.scenarios:
            known = ", ".join([BASE_SCENARIO, *self.scenarios])
            raise ConfigError([("scenario", f"unknown scenario {name!r}; this config has: {known}")])
        try:
            return self.derive(self.scenarios[name].set, keep_scenarios=False)
        except OverrideError as exc:
            raise ConfigError([(f"scenarios.{name}.set.{p}", f"Scenario {name!r}: {m}") for p, m in exc.errors]) from None
        except ConfigError as exc:
            raise ConfigError(
                [(f"scenarios.{name}", f"Scenario {name!r} failed config validation: {p}: {m}") for p, m in exc.errors]
            ) from None

    _base_dir: Path = PrivateAttr(Path("."))
    # False for a sweep's points and the configs derived from them (see validate_config).
    _check_tranche_stack: bool = PrivateAttr(True)


def _find_cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """A cycle of the directed graph ``edges`` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in edges:
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def validate_config(data: dict[str, Any], base_dir: Path | str = ".", *, check_tranche_stack: bool = True) -> Config:
    """Validate a config given as a dict. Lease tapes are read relative to ``base_dir``.

    ``check_tranche_stack=False`` skips only the check that each deal's attach/detach points tile
    (:meth:`Deal.stack_errors`): a sweep moves one class's points alone, e.g. the senior's attach
    when it searches for the minimum subordination, and each class's allocation view depends on its
    own points only. Configs derived from the result (scenarios, overrides) inherit the setting."""
    base_dir = Path(base_dir)
    raw = data if isinstance(data, dict) else {}
    tenants = raw.get("tenants")
    # Only string names: an unhashable one (a list) is reported by the field check, not raised here.
    names = {t["name"] for t in tenants if isinstance(t, dict) and isinstance(t.get("name"), str)} if isinstance(tenants, list) else set()
    run = raw.get("run")
    months = run.get("months") if isinstance(run, dict) else None
    context = {"base_dir": base_dir, "tenant_names": names, "months": months if type(months) is int else None,
               "check_tranche_stack": check_tranche_stack}
    try:
        cfg = Config.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(_errors_from_validation(exc)) from None
    cfg._base_dir = base_dir
    cfg._check_tranche_stack = check_tranche_stack
    errors = []
    for name in cfg.scenarios:  # every scenario validated up front, all failures reported at once
        try:
            cfg.scenario(name)
        except ConfigError as exc:
            errors.extend(exc.errors)
    if errors:
        raise ConfigError(errors)
    return cfg


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file. Raises :class:`ConfigError` on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([("", f"config file not found: {path}")])
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError([("", f"{path}: not valid TOML: {exc}")]) from None
    return validate_config(data, base_dir=path.parent)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the config file."""
    return Config.model_json_schema()
