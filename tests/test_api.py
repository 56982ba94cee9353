"""The notebook-facing API: open_run round trips, with_overrides, Results.plot."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import base_dict, make_config
from engine import ConfigError, open_run, run


def test_open_run_round_trips_every_table_with_dtypes(tmp_path):
    d = base_dict()
    d["scenarios"] = {"high_pd": {"set": {"tenants.lab.pd": 0.3}}}
    res = run(make_config(d), scenario="all", paths=2000)
    res.write(tmp_path / "r")
    back = open_run(tmp_path / "r")
    assert set(back.tables) == set(res.tables)
    for name, frame in res.tables.items():
        pd.testing.assert_frame_equal(back.tables[name], frame, check_exact=True)
    assert back.manifest["config_sha256"] == res.manifest["config_sha256"]


def test_open_run_refuses_an_unfinished_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        open_run(tmp_path)


def test_with_overrides_changes_only_what_it_names():
    cfg = make_config()
    new = cfg.with_overrides({"deals.d1.tranches.A.detach": 0.9, "gpu.economic_life_months": 18})
    assert new.deals[0].tranches[0].detach == 0.9 and new.gpu.economic_life_months == 18
    assert new.tenants == cfg.tenants and cfg.deals[0].tranches[0].detach == 1.0
    with pytest.raises(ConfigError, match="no item 'Z'"):
        cfg.with_overrides({"deals.d1.tranches.Z.detach": 0.9})
    with pytest.raises(ConfigError, match="detach"):
        cfg.with_overrides({"deals.d1.tranches.A.detach": 0.1})
