"""The command line end to end: validate, schema, run, and every bad-input path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from builders import INLINE, SMALL, TAPE, _tape, small, write
from engine.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
HYPERION = ROOT / "configs" / "hyperion.toml"


def test_validate_ok(tmp_path, capsys):
    assert main(["validate", str(small(tmp_path))]) == 0
    assert capsys.readouterr().out.strip() == "ok"


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.toml")) + sorted((ROOT / "benchmarks" / "workloads").glob("*.toml")),
                         ids=lambda p: p.name)
def test_example_configs_validate(config, capsys):
    assert main(["validate", str(config)]) == 0


def test_schema_is_json_with_the_sections(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"run", "factor", "gpu", "facility", "tenants", "deals"} <= set(schema["properties"])


BAD = {
    "typo": (lambda s: s.replace("pd = 0.05", "pdd = 0.05"), ["tenants[0].pdd", "unknown field"]),
    "missing_tenant": (lambda s: s.replace('tenant = "hyper"', 'tenant = "hyperr"'), ["deals[0].leases[1].tenant", "unknown tenant 'hyperr'"]),
    "detach_le_attach": (lambda s: s.replace("attach = 0.2, detach = 1.0", "attach = 0.2, detach = 0.2"), ["deals[0].tranches[0].detach", "must exceed attach"]),
    "negative_balance": (lambda s: s.replace("balance = 10e6", "balance = -10e6"), ["deals[0].tranches[1].balance", "greater than 0"]),
}


@pytest.mark.parametrize("case", ["typo", "missing_tenant", "detach_le_attach", "negative_balance"])
def test_bad_config_exits_2_names_the_field_and_creates_nothing(tmp_path, capsys, case):
    edit, needles = BAD[case]
    cfg = write(tmp_path, edit(SMALL.format(leases=INLINE)))
    out = tmp_path / "out"
    for argv in (["validate", str(cfg)], ["run", str(cfg), "--out", str(out)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        for needle in needles:
            assert needle in err
        assert "Traceback" not in err
    assert not out.exists()


def test_all_missing_names_are_reported_at_once(tmp_path, capsys):
    text = SMALL.format(leases=INLINE).replace('tenant = "hyper"', 'tenant = "nobody"').replace('tenant = "lab"', 'tenant = "ghost"')
    text = text.replace('classes = ["A", "B"] },\n  { type = "residual"', 'classes = ["A", "Z"] },\n  { type = "residual"')
    assert main(["validate", str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert "deals[0].leases[0].tenant: unknown tenant 'ghost'" in err
    assert "deals[0].leases[1].tenant: unknown tenant 'nobody'" in err
    assert "deals[0].waterfall[2].classes[1]: unknown tranche 'Z'" in err


def test_unknown_class_and_unpaid_tranche_are_reported_together(tmp_path, capsys):
    text = SMALL.format(leases=INLINE).replace('{ type = "principal", classes = ["A", "B"] }', '{ type = "principal", classes = ["A", "C"] }')
    assert main(["validate", str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert "deals[0].waterfall[2].classes[1]: unknown tranche 'C'" in err
    assert "deals[0].tranches[1].name: tranche 'B' is paid principal by no waterfall step" in err


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_lease_tape_gives_the_same_result_as_inline_leases(tmp_path, fmt):
    from engine import load_config
    from engine import run

    inline = run(load_config(small(tmp_path)), paths=3000)
    taped = run(load_config(write(tmp_path, SMALL.format(leases=_tape(tmp_path, TAPE, fmt)), "t.toml")), paths=3000)
    pd.testing.assert_frame_equal(inline.tranches, taped.tranches, check_exact=True)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_lease_tape_with_a_bad_column(tmp_path, capsys, fmt):
    cfg = write(tmp_path, SMALL.format(leases=_tape(tmp_path, TAPE.rename(columns={"monthly_rent": "monthly_rnt"}), fmt)))
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "deals[0].lease_tape.monthly_rnt: unknown column 'monthly_rnt'" in err
    assert "deals[0].lease_tape.monthly_rent: missing required column" in err
    assert not out.exists()


def test_lease_tape_bad_value_names_the_row(tmp_path, capsys):
    bad = TAPE.assign(term_months=[36, -1])
    assert main(["validate", str(write(tmp_path, SMALL.format(leases=_tape(tmp_path, bad, "csv")))) ]) == 2
    assert "deals[0].lease_tape.row 1.term_months" in capsys.readouterr().err


def test_missing_file_and_bad_toml(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.toml")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["validate", str(write(tmp_path, "[run\nmonths=1"))]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_bad_override_is_a_config_error(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(small(tmp_path)), "--paths", "0", "--out", str(out)]) == 2
    assert "run.paths" in capsys.readouterr().err
    assert not out.exists()


def test_run_writes_outputs_and_refuses_to_overwrite(tmp_path, capsys):
    cfg, out = small(tmp_path), tmp_path / "out"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress", "--no-report", "--seed", "5"]) == 0
    printed = capsys.readouterr().out
    assert "paths/s" in printed and "cashflow" in printed
    assert "warnings:" in printed and "loses principal at legal final" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 5 and manifest["paths"] == 3000 and len(manifest["config_sha256"]) == 64
    assert set(manifest["versions"]) >= {"numpy", "numba", "pandas", "pyarrow", "pydantic", "python"}
    assert manifest["config"]["run"]["seed"] == 5
    tranches = pd.read_parquet(out / "summary" / "tranches.parquet")
    deals = pd.read_parquet(out / "summary" / "deals.parquet")
    assert list(tranches["tranche"]) == ["A", "B", "A", "B"] and len(deals) == 1
    assert not list(out.rglob("*.tmp"))
    before = (out / "manifest.json").read_bytes()
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    assert (out / "manifest.json").read_bytes() == before
    assert main(["run", str(cfg), "--out", str(out), "--no-progress", "--no-report", "--overwrite"]) == 0


def test_console_script_runs_the_main_example(tmp_path):
    exe = shutil.which("dcabs", path=str(Path(sys.executable).parent))
    assert exe, "the dcabs console script is not installed"
    res = subprocess.run([exe, "run", str(HYPERION), "--paths", "5000", "--out", str(tmp_path / "h"), "--no-progress"],
                         capture_output=True, text=True, check=True)
    assert "hyperion" in res.stdout and (tmp_path / "h" / "summary" / "tranches.parquet").exists()
    # the run ends with the report, and says where it is
    assert f"report: {tmp_path / 'h' / 'report.html'}" in res.stdout and (tmp_path / "h" / "report.html").exists()


def test_horizon_duplicate_and_reference_errors_come_in_one_report(tmp_path, capsys):
    text = SMALL.format(leases=INLINE).replace("legal_final_month = 36", "legal_final_month = 40")
    text = text.replace('name = "hyper"', 'name = "lab"').replace('tenant = "hyper"', 'tenant = "nobody"')
    text = text.replace("[[tenants]]", "[factor.burst]\nmonth = 99\n\n[[tenants]]", 1)
    assert main(["validate", str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    for needle in ("deals[0].legal_final_month: beyond run.months (36)", "tenants[1].name: duplicate tenant name 'lab'",
                   "deals[0].leases[1].tenant: unknown tenant 'nobody'", "factor.burst.month: beyond run.months (36)"):
        assert needle in err


def test_direct_model_validation_still_checks_references():
    from pydantic import ValidationError

    from builders import base_dict
    from engine.config import Config

    d = base_dict()
    d["deals"][0]["leases"][0]["tenant"] = "ghost"
    with pytest.raises(ValidationError, match="unknown tenant 'ghost'"):
        Config.model_validate(d)


def test_out_that_is_a_file_and_a_damaged_run_are_user_errors(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["run", str(small(tmp_path)), "--out", str(afile), "--no-progress"]) == 2
    assert "is a file" in capsys.readouterr().err
    broken = tmp_path / "broken"
    (broken / "summary").mkdir(parents=True)
    (broken / "manifest.json").write_text("{not json")
    assert main(["report", str(broken)]) == 2
    assert "cannot build the report" in capsys.readouterr().err


def test_scenario_all_prints_compact_pivots_that_match_the_tables(tmp_path, capsys):
    import tomllib

    cfg = ROOT / "configs" / "ai_bubble.toml"
    out = tmp_path / "o"
    assert main(["run", str(cfg), "--scenario", "all", "--paths", "1000", "--out", str(out), "--no-report", "--no-progress"]) == 0
    text = capsys.readouterr().out
    scenarios = ["base", *tomllib.loads(cfg.read_text())["scenarios"]]
    tranches = pd.read_parquet(out / "summary" / "tranches.parquet")
    # A line per scenario in each of the six pivots, not one per scenario × tranche × view, firm or holder type.
    n = len(scenarios)
    assert len(text.split("\nwarnings:")[0].splitlines()) <= 6 * (n + 3) + (n + 1) + 9 < len(tranches)
    for name, spec in tomllib.loads(cfg.read_text())["scenarios"].items():
        assert f"  {name}" in text and spec["description"] in text
    block = text.split("cashflow view")[1].split("\n\n")[0].splitlines()[1:]
    header = block[0].split()
    cells = {line.split()[0]: dict(zip(header, line.split()[1:])) for line in block[1:]}
    assert list(cells) == scenarios
    for row in tranches[tranches["view"] == "cashflow"].itertuples():
        assert cells[row.scenario][f"{row.deal}.{row.tranche}"] == f"{row.el:.4f}"
    assert "pensions never fail in the model" in text
