"""docs/configuration.md is generated from the schema and in sync; every field is documented and bounded.

The models are walked here independently of engine/config/schema_docs.py, so a bug in the generator's walk
cannot hide a field from these tests.
"""

from __future__ import annotations

import functools
import json
import tomllib
import types
from pathlib import Path
from typing import Annotated, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from engine import config as config_module
from engine.config import Config, json_schema, validate_config
from engine.config.schema_docs import EXAMPLE_TOML, REGENERATE, main, render_markdown

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"


# --------------------------------------------------------------------------- an independent walk


def _unwrap(tp):
    """Yield every type inside Annotated / Optional / Union / list / dict wrappers."""
    origin = get_origin(tp)
    if origin is Annotated:
        yield from _unwrap(get_args(tp)[0])
    elif origin in (Union, types.UnionType, list, tuple, set, frozenset, dict):
        for arg in get_args(tp):
            yield from _unwrap(arg)
    else:
        yield tp


def all_models(root: type[BaseModel] = Config) -> list[type[BaseModel]]:
    """Every pydantic model reachable from ``root`` through field annotations."""
    out: list[type[BaseModel]] = []
    todo = [root]
    while todo:
        model = todo.pop()
        if model in out:
            continue
        out.append(model)
        for f in model.model_fields.values():
            todo += [t for t in _unwrap(f.annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
    return out


@functools.cache
def rendered() -> str:
    return render_markdown()


MODELS = all_models()
FIELDS = [(m, name, f) for m in MODELS for name, f in m.model_fields.items()]


def _field_id(item) -> str:
    model, name, _ = item
    return f"{model.__name__}.{name}"


def _numeric(f: FieldInfo) -> bool:
    """int or float, possibly Optional or Annotated (bool is not numeric here)."""
    kinds = [t for t in _unwrap(f.annotation) if t is not type(None)]
    return bool(kinds) and all(t in (int, float) for t in kinds)


def _bounds(f: FieldInfo) -> list[str]:
    """The ge/gt/le/lt constraints on a field, wherever pydantic keeps them."""
    metas = list(f.metadata)
    stack = [f.annotation]
    while stack:
        tp = stack.pop()
        if get_origin(tp) is Annotated:
            stack.append(get_args(tp)[0])
            metas += list(get_args(tp)[1:])
        elif get_origin(tp) in (Union, types.UnionType, list, tuple):
            stack += list(get_args(tp))
    found = []
    for m in metas:
        inner = list(m.metadata) if isinstance(m, FieldInfo) else [m]
        for x in inner:
            found += [k for k in ("ge", "gt", "le", "lt") if getattr(x, k, None) is not None]
    return found


# --------------------------------------------------------------------------- (a) no drift


def test_configuration_md_is_up_to_date():
    assert DOC.is_file(), f"docs/configuration.md is missing; generate it with: {REGENERATE}"
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/configuration.md is out of date with engine/config/root.py (or engine/config/schema_docs.py); "
        f"regenerate it with:\n    {REGENERATE}\nand commit the result."
    )


def test_check_flag_reports_drift(tmp_path, capsys):
    good = tmp_path / "configuration.md"
    good.write_text(render_markdown(), encoding="utf-8")
    assert main(["--check", "--file", str(good)]) == 0
    stale = tmp_path / "stale.md"
    stale.write_text(render_markdown().replace("| `months` |", "| `month` |"), encoding="utf-8")
    assert main(["--check", "--file", str(stale)]) == 1
    assert REGENERATE in capsys.readouterr().err
    assert main(["--check", "--file", str(tmp_path / "absent.md")]) == 1


# --------------------------------------------------------------------------- (b) every field documented


def _tables(markdown: str) -> list[list[str]]:
    """The first-column entries of every table in the document, one list per table."""
    tables, current = [], None
    for line in markdown.splitlines():
        if line.startswith("|"):
            cell = line.split("|")[1].strip()
            if current is None:
                current = []  # header row
            elif not set(cell) <= set("-: "):
                current.append(cell.strip("`"))
        elif current is not None:
            tables.append(current)
            current = None
    if current is not None:
        tables.append(current)
    return tables


def test_walk_finds_the_documented_sections():
    names = {m.__name__ for m in MODELS}
    assert {"Config", "RunConfig", "FactorConfig", "BurstConfig", "GpuConfig", "FacilityConfig", "Tenant",
            "Deal", "Lease", "Tranche", "Reserve", "Fees"} <= names
    steps = {m.model_fields["type"].annotation for m in MODELS if "type" in m.model_fields}
    assert {get_args(s)[0] for s in steps if get_origin(s) is Literal} >= {
        "fees", "interest", "reserve", "principal", "residual"
    }


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_has_a_table_of_exactly_its_fields(model):
    tables = _tables(rendered())
    expected = list(model.model_fields)
    assert expected in tables, (
        f"no table in the rendered doc lists exactly the fields of {model.__name__}: {expected}"
    )


@pytest.mark.parametrize("item", FIELDS, ids=_field_id)
def test_every_field_appears_with_its_description(item):
    model, name, f = item
    doc = rendered()
    rows = [line for line in doc.splitlines() if line.startswith(f"| `{name}` |")]
    assert rows, f"{model.__name__}.{name} is not in the rendered doc"
    if f.description:
        wanted = " ".join(f.description.split()).replace("|", "\\|")
        assert any(wanted in r for r in rows), f"description of {model.__name__}.{name} is not rendered"


def test_doc_covers_layout_lease_tapes_and_errors():
    doc = render_markdown()
    for header in ("[run]", "[factor]", "[factor.burst]", "[gpu]", "[facility]", "[[tenants]]", "[[deals]]",
                   "[[deals.tranches]]", "[[deals.leases]]"):
        assert header in doc, header
    for heading in ("## Waterfall steps", "## Lease tapes", "## Validation errors"):
        assert heading in doc
    for column in config_module.LEASE_COLUMNS:
        assert f"`{column}`" in doc.split("## Lease tapes")[1].split("## Validation errors")[0]
    errors = doc.split("## Validation errors")[1]
    assert "status 2" in errors and "deals[0].tranches[1].detach" in errors


def test_example_config_in_the_doc_validates():
    validate_config(tomllib.loads(EXAMPLE_TOML))
    assert EXAMPLE_TOML in render_markdown()


# --------------------------------------------------------------------------- (c) description and bounds

# Every field meets the rule: no list of known exceptions (there was one, KNOWN_GAPS, empty).


def _rule_problems(f: FieldInfo) -> list[str]:
    """How a field breaks the rule "every field has a description, every numeric field bounds"."""
    problems = []
    if not (f.description or "").strip():
        problems.append("no description")
    if _numeric(f) and not _bounds(f):
        problems.append("a numeric field without bounds (ge/gt/le/lt)")
    return problems


@pytest.mark.parametrize("item", FIELDS, ids=_field_id)
def test_every_field_has_a_description_and_numeric_fields_have_bounds(item):
    model, name, f = item
    problems = _rule_problems(f)
    assert not problems, f"{model.__name__}.{name}: " + "; ".join(problems) + " (project rule: every field has a description and bounds)"


def test_the_rule_check_sees_each_kind_of_gap_and_has_fields_to_check():
    """The check above flags a missing description, a blank one and missing bounds (plain,
    Optional and Annotated numbers), passes ge/gt/le/lt wherever pydantic keeps them, and is not
    vacuous on the real models: they have numeric fields, and those carry bounds."""
    from typing import Optional

    from pydantic import Field

    class Gaps(BaseModel):
        bare: str
        blank: str = Field("", description="  ")
        unbounded: float = Field(1.0, description="a number")
        maybe: Optional[int] = Field(None, description="a number or nothing")
        annotated: Annotated[float, Field(description="a number")] = 1.0
        flag: bool = Field(False, description="not numeric: needs no bounds")
        low: float = Field(1.0, ge=0, description="bounded below")
        high: Annotated[int, Field(lt=5)] = Field(1, description="bounded in its annotation")
        in_list: list[Annotated[float, Field(gt=0)]] = Field([], description="bounded items")

    found = {name: _rule_problems(f) for name, f in Gaps.model_fields.items()}
    bounds = "a numeric field without bounds (ge/gt/le/lt)"
    assert found == {"bare": ["no description"], "blank": ["no description"], "unbounded": [bounds],
                     "maybe": [bounds], "annotated": [bounds], "flag": [], "low": [], "high": [], "in_list": []}
    numeric = [item for item in FIELDS if _numeric(item[2])]
    assert len(FIELDS) > 100 and len(numeric) > 50
    assert {"RunConfig.paths", "Tenant.pd", "Tranche.balance"} <= {_field_id(item) for item in numeric}


# --------------------------------------------------------------------------- (d) JSON schema


def test_json_schema_is_serialisable_and_has_the_sections():
    schema = json_schema()
    text = json.dumps(schema)
    assert json.loads(text) == schema
    assert schema.get("title") == "Config"
    assert schema.get("type") == "object"
    assert {"run", "factor", "gpu", "facility", "tenants", "deals"} <= set(schema["properties"])
    assert {"run", "tenants", "deals"} <= set(schema.get("required", []))


# --------------------------------------------------------------------------- (e) sample outputs in README.md and docs/*.md
#
# docs/samples.py regenerates every sample output block (`make docs`) and records it in
# docs/samples.lock. Here the cheap samples (about 15 s) are rerun and compared exactly; the others
# are checked against the lock: their block is the recorded text and none of their inputs (configs,
# engine/*.py, kernels/*.py, ...) changed since. docs/samples.py's docstring gives the trade-off.


def _load_samples():
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("dcabs_docs_samples", ROOT / "docs" / "samples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


samples = _load_samples()


def test_every_sample_block_is_the_recorded_output_of_unchanged_inputs():
    problems = samples.verify()
    assert not problems, "\n".join(problems) + f"\nregenerate the samples with:\n    {samples.REGENERATE}\nand commit the result."


def test_the_cheap_samples_equal_a_fresh_run():
    assert samples.CHEAP, "no sample is rerun by the tests"
    drift = samples.check(samples.CHEAP)
    assert not drift, ("sample outputs differ from a fresh run of their commands:\n" + "\n".join(drift.values())
                       + f"\nregenerate them with:\n    {samples.REGENERATE}")


def test_a_hand_edited_block_and_a_changed_input_are_reported():
    texts = samples.read_docs()
    block = samples.all_blocks(texts)["make-run"]
    assert "base hyperion       A   cashflow" in block.text
    texts = dict(texts, **{block.doc: texts[block.doc].replace(block.text, block.text.replace("0.", "0.9", 1))})
    assert any(p.startswith("make-run: the block") for p in samples.verify(texts))

    lock = samples.read_lock()
    holders = lock["samples"]["holders"]
    holders = {**holders, "inputs": {**holders["inputs"], "configs/ai_bubble.toml": "0" * 64}}
    problems = samples.verify(lock={**lock, "samples": {**lock["samples"], "holders": holders}})
    assert any(p.startswith("holders: inputs changed") and "configs/ai_bubble.toml" in p for p in problems)


def test_only_the_timing_figures_are_masked():
    line = "1 scenario(s) × 100,000 paths in 4.49 s (22,268 paths/s, 2 threads; compile/cache load 0.05 s)"
    result = "    base hyperion       A   cashflow 0.003976 0.000146   732 0.007970"
    assert samples.mask_timing(f"{result}\n{line}") == (
        f"{result}\n1 scenario(s) × 100,000 paths in … s (… paths/s, … threads; compile/cache load … s)")
    with pytest.raises(samples.SampleError, match="timing line changed format"):
        samples.mask_timing("1 scenario(s) × 100,000 paths in 4.49 seconds")


def test_markers_must_pair_and_name_known_samples():
    with pytest.raises(samples.SampleError, match="never closed"):
        samples.find_blocks("x.md", "<!-- sample: make-run -->\ntext\n")
    with pytest.raises(samples.SampleError, match="without a start marker"):
        samples.find_blocks("x.md", "text\n<!-- /sample -->\n")
    texts = dict(samples.read_docs())
    texts["README.md"] += "\n<!-- sample: nonesuch -->\n<!-- /sample -->\n"
    with pytest.raises(samples.SampleError, match="not a sample"):
        samples.all_blocks(texts)
