"""Implied ratings from EL and WAL (engine/market/ratings.py)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.market import ratings as rules
from engine.market.ratings import HORIZON_YEARS, IDEALIZED_EL, IDEALIZED_LGD, NOTCHES, idealized_el, implied_notch, implied_rating, to_sp

TABLED = NOTCHES[:-1]  # Aaa..Ca; "C" has no budget

# Copied by hand from jeickmeier/finstack-quant finstack/core/data/credit/credit_assumptions.v1.json
# (table moodys_idealized_default_rates_2024_09): Moody's 10-year idealized default rate × 10,000.
# Deliberately not imported from engine.market.ratings, so a typo in either copy fails the test.
SOURCE_FACTORS_10Y = {
    "Aaa": 1, "Aa1": 10, "Aa2": 20, "Aa3": 40, "A1": 70, "A2": 120, "A3": 180,
    "Baa1": 260, "Baa2": 360, "Baa3": 610, "Ba1": 940, "Ba2": 1350, "Ba3": 1766,
    "B1": 2220, "B2": 2720, "B3": 3490, "Caa1": 4770, "Caa2": 6500, "Caa3": 8070, "Ca": 10000,
}
SOURCE_SEVERITY = 0.55  # the module's documented (assumed) idealized loss severity


# -- the table --------------------------------------------------------------------------------------

def test_notches_are_the_21_moodys_long_term_notches_best_first():
    assert NOTCHES == (
        "Aaa", "Aa1", "Aa2", "Aa3", "A1", "A2", "A3", "Baa1", "Baa2", "Baa3",
        "Ba1", "Ba2", "Ba3", "B1", "B2", "B3", "Caa1", "Caa2", "Caa3", "Ca", "C",
    )
    assert tuple(IDEALIZED_EL) == TABLED
    assert HORIZON_YEARS == tuple(range(1, 11))
    assert all(len(row) == 10 for row in IDEALIZED_EL.values())


def test_ten_year_column_is_the_sourced_default_rate_times_severity():
    assert IDEALIZED_LGD == SOURCE_SEVERITY
    for name, factor in SOURCE_FACTORS_10Y.items():
        assert IDEALIZED_EL[name][9] == pytest.approx(SOURCE_SEVERITY * factor / 10_000, rel=1e-12), name


def test_ten_year_column_reproduces_the_notes_values_that_the_source_supports():
    # Calibration notes (recalled): Aaa 0.0055%, Aa2 0.11%, Baa2 1.98% — these agree with the source.
    assert IDEALIZED_EL["Aaa"][9] == pytest.approx(0.000055, rel=1e-12)
    assert IDEALIZED_EL["Aa2"][9] == pytest.approx(0.0011, rel=1e-12)
    assert IDEALIZED_EL["Baa2"][9] == pytest.approx(0.0198, rel=1e-12)


def test_table_rises_down_the_notches_at_every_horizon():
    grid = np.array([IDEALIZED_EL[n] for n in TABLED])
    assert (np.diff(grid, axis=0) > 0).all()


def test_table_rises_with_horizon_for_every_notch_except_ca():
    grid = np.array([IDEALIZED_EL[n] for n in TABLED])
    # Ca's 10-year PD is 100%, so under a constant hazard its budget is the full severity from year 1.
    assert (np.diff(grid[:-1], axis=1) > 0).all()
    assert list(grid[-1]) == pytest.approx([SOURCE_SEVERITY] * 10)
    assert (grid > 0).all() and (grid <= SOURCE_SEVERITY).all()


def test_intermediate_years_are_constant_hazard_interpolation():
    for name, factor in SOURCE_FACTORS_10Y.items():
        pd10 = factor / 10_000
        for t in range(1, 10):
            expected = SOURCE_SEVERITY * (1 - (1 - pd10) ** (t / 10))
            assert IDEALIZED_EL[name][t - 1] == pytest.approx(expected, rel=1e-9), (name, t)


# -- idealized_el ---------------------------------------------------------------------------------

def test_idealized_el_hits_table_cells_exactly_at_whole_years():
    for name in TABLED:
        for t in HORIZON_YEARS:
            assert idealized_el(name, t) == IDEALIZED_EL[name][t - 1]
            assert idealized_el(name, float(t)) == IDEALIZED_EL[name][t - 1]


def test_idealized_el_is_linear_between_years_and_from_zero_below_one():
    # The yearly cells from the typed source, not from IDEALIZED_EL: 0.55·(1 − (1 − 3.6%)^(t/10)).
    cell = {t: SOURCE_SEVERITY * (1 - (1 - SOURCE_FACTORS_10Y["Baa2"] / 10_000) ** (t / 10)) for t in range(1, 11)}
    assert idealized_el("Baa2", 0.0) == 0.0
    assert idealized_el("Baa2", 0.25) == pytest.approx(0.25 * cell[1], rel=1e-12)
    assert idealized_el("Baa2", 4.5) == pytest.approx(0.5 * (cell[4] + cell[5]), rel=1e-12)
    assert idealized_el("Baa2", 9.9) == pytest.approx(cell[9] + 0.9 * (cell[10] - cell[9]), rel=1e-12)
    # By hand: 0.964^0.1 = exp(0.1·ln 0.964) = 0.996340, 0.55·(1 − 0.996340) = 0.2013%, so a quarter
    # year's budget is 0.0503%.
    assert idealized_el("Baa2", 0.25) == pytest.approx(0.000503, abs=5e-7)


def test_idealized_el_beyond_ten_years():
    pd10 = SOURCE_FACTORS_10Y["Baa2"] / 10_000
    assert idealized_el("Baa2", 15) == pytest.approx(SOURCE_SEVERITY * (1 - (1 - pd10) ** 1.5))
    assert idealized_el("Baa2", 10.000001) == pytest.approx(IDEALIZED_EL["Baa2"][9], rel=1e-6)
    assert idealized_el("Baa2", 15) > idealized_el("Baa2", 12) > IDEALIZED_EL["Baa2"][9]
    assert idealized_el("Baa2", 15, beyond_10="cap") == IDEALIZED_EL["Baa2"][9]
    assert idealized_el("Ca", 30) == pytest.approx(SOURCE_SEVERITY)


# -- implied ratings ------------------------------------------------------------------------------

@pytest.mark.parametrize("t", HORIZON_YEARS)
def test_el_exactly_at_a_cell_gets_that_rating(t):
    """The boundary rule on the module's own table (checked against the source above): an EL equal
    to a budget gets that notch, the next float above it the notch below."""
    for i, name in enumerate(TABLED):
        cell = IDEALIZED_EL[name][t - 1]
        if name == "Ca" and t < 10:
            continue  # Ca's budget equals the severity at every year; covered below
        assert implied_rating(cell, t) == name, (name, t)
        assert implied_notch(cell, t) == i


@pytest.mark.parametrize("t", HORIZON_YEARS)
def test_el_just_above_a_cell_drops_one_notch(t):
    for i, name in enumerate(TABLED):
        cell = IDEALIZED_EL[name][t - 1]
        above = np.nextafter(cell, 1.0)
        assert implied_notch(above, t) == i + 1, (name, t)
        assert implied_rating(above, t) == NOTCHES[i + 1]


def test_extremes():
    assert implied_rating(0.0, 5) == "Aaa"
    assert implied_rating(0.0, 0.0) == "Aaa"
    assert implied_rating(1e-12, 0.0) == "C"  # no loss budget at zero life
    assert implied_rating(SOURCE_SEVERITY, 5) == "Ca"
    assert implied_rating(0.56, 5) == "C"
    assert implied_rating(1.0, 40) == "C"


def test_a_realistic_case():
    # 7-year budgets, 0.55 * (1 - (1 - PD10) ** 0.7): Baa1 ~1.005%, Baa2 ~1.39%, Baa3 ~2.37%.
    assert implied_rating(0.0100, 7) == "Baa1"
    assert implied_rating(0.0120, 7) == "Baa2"
    assert implied_rating(0.02, 7) == "Baa3"
    assert to_sp(implied_rating(0.02, 7)) == "BBB-"


def test_vectorised_matches_scalar_loop_and_broadcasts():
    rng = np.random.default_rng(7)
    el = np.concatenate([10 ** rng.uniform(-7, 0, 400), [0.0, 1.0, 0.55]])
    wal = np.concatenate([rng.uniform(0, 15, 400), [3.0, 10.0, 12.0]])
    for beyond in ("hazard", "cap"):
        vec = implied_rating(el, wal, beyond_10=beyond)
        loop = [implied_rating(float(e), float(w), beyond_10=beyond) for e, w in zip(el, wal)]
        assert vec.shape == el.shape
        assert list(vec) == loop
        assert list(implied_notch(el, wal, beyond_10=beyond)) == [NOTCHES.index(r) for r in loop]
    grid = implied_notch(el[:5, None], np.array([1.0, 5.0, 10.0])[None, :])
    assert grid.shape == (5, 3)
    assert grid[3, 1] == implied_notch(float(el[3]), 5.0)
    assert isinstance(implied_notch(0.01, 5), int) and isinstance(implied_rating(0.01, 5), str)


def test_longer_wal_never_worsens_and_higher_el_never_improves_the_rating():
    el = np.linspace(0, 0.6, 301)
    for w in (0.5, 1.0, 3.3, 10.0, 14.0):
        assert (np.diff(implied_notch(el, w)) >= 0).all()
    wal = np.linspace(0.01, 20, 400)
    for e in (1e-5, 1e-3, 0.02, 0.2):
        assert (np.diff(implied_notch(e, wal)) <= 0).all()


# -- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"el": -0.01, "wal_years": 5}, r"^el must be >= 0"),
        ({"el": 1.5, "wal_years": 5}, r"^el must be <= 1"),
        ({"el": [0.01, 2.0], "wal_years": 5}, r"^el must be <= 1"),
        ({"el": 0.01, "wal_years": -1}, r"^wal_years must be >= 0"),
        ({"el": 0.01, "wal_years": np.inf}, r"^wal_years must be finite"),
        ({"el": np.nan, "wal_years": 5}, r"^el contains 1 NaN"),
        ({"el": 0.01, "wal_years": [5, np.nan]}, r"^wal_years contains 1 NaN"),
        ({"el": "x", "wal_years": 5}, r"^el must be numeric"),
        ({"el": [0.1, 0.2], "wal_years": [1, 2, 3]}, r"do not broadcast"),
        ({"el": 0.01, "wal_years": 5, "beyond_10": "flat"}, r"^beyond_10 must be"),
        ({"el": 0.01, "wal_years": 5, "nan_policy": "ignore"}, r"^nan_policy must be"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        implied_rating(**kwargs)
    with pytest.raises(ValueError, match=match):
        implied_notch(**kwargs)


def test_idealized_el_bad_input():
    with pytest.raises(ValueError, match=r"unknown rating 'BBB'"):
        idealized_el("BBB", 5)
    with pytest.raises(ValueError, match=r"unknown rating 'C'"):
        idealized_el("C", 5)
    with pytest.raises(ValueError, match=r"^wal_years must be >= 0"):
        idealized_el("Baa2", -0.5)
    with pytest.raises(ValueError, match=r"^wal_years contains 1 NaN"):
        idealized_el("Baa2", float("nan"))


def test_nan_policy_nr():
    # By hand, EL 1% at 5 years: budgets 0.55·(1 − (1 − PD10)^0.5) are Baa2 (3.60%) 0.999% and
    # Baa3 (6.10%) 1.704%, so 1% is Baa3, notch 9.
    notch = implied_notch([0.01, np.nan, 0.01], [5.0, 5.0, np.nan], nan_policy="nr")
    assert list(notch) == [9, -1, -1]
    assert list(implied_rating([0.01, np.nan], [5.0, 5.0], nan_policy="nr")) == ["Baa3", "NR"]
    assert implied_rating(np.nan, 5.0, nan_policy="nr") == "NR"
    # NaNs do not hide range errors in the other entries
    with pytest.raises(ValueError, match=r"^el must be >= 0"):
        implied_rating([np.nan, -1.0], 5.0, nan_policy="nr")


def test_to_sp():
    expected = (
        "AAA", "AA+", "AA", "AA-", "A+", "A", "A-", "BBB+", "BBB", "BBB-",
        "BB+", "BB", "BB-", "B+", "B", "B-", "CCC+", "CCC", "CCC-", "CC", "C",
    )
    assert tuple(to_sp(n) for n in NOTCHES) == expected
    assert list(to_sp(np.array(NOTCHES).reshape(3, 7)).ravel()) == list(expected)
    assert to_sp(" Baa3 ") == "BBB-"
    with pytest.raises(ValueError, match=r"^moodys: unknown"):
        to_sp("NR")
    with pytest.raises(ValueError, match=r"^moodys: unknown"):
        to_sp(["Aaa", "BBB"])


# -- compatibility with the rules tables ----------------------------------------------------------

# Typed from engine/rules.py's documented sources, per Moody's notch's letter grade: repo haircuts
# (Farmer et al. 2020: government 2% for AAA, corporate 4% for A, equity 15% for BB; Gorton–Metrick
# 2012's 50% peak for CCC and below; the rest the module's stated interpolation), and NAIC's C-1 bond
# factors by designation (1: 0.3%, 2: 1%, 3: 2%, 4: 4.5%, 5: 10%, 6: 30%) with the SVO's mapping
# AAA–A → 1, BBB → 2, BB → 3, B → 4, CCC → 5, CC and below → 6.
GRADE_TABLE = {  # grade: (haircut, NAIC designation)
    "AAA": (0.02, 1), "AA": (0.03, 1), "A": (0.04, 1), "BBB": (0.08, 2), "BB": (0.15, 3), "B": (0.25, 4),
    "CCC": (0.50, 5), "CC": (0.50, 6), "C": (0.50, 6),
}
NAIC_C1 = {1: 0.003, 2: 0.01, 3: 0.02, 4: 0.045, 5: 0.10, 6: 0.30}
GRADE_OF_NOTCH = {"Aaa": "AAA", "Aa1": "AA", "Aa2": "AA", "Aa3": "AA", "A1": "A", "A2": "A", "A3": "A",
                  "Baa1": "BBB", "Baa2": "BBB", "Baa3": "BBB", "Ba1": "BB", "Ba2": "BB", "Ba3": "BB",
                  "B1": "B", "B2": "B", "B3": "B", "Caa1": "CCC", "Caa2": "CCC", "Caa3": "CCC", "Ca": "CC", "C": "C"}


@pytest.mark.parametrize("name", NOTCHES)
def test_every_notch_gets_the_documented_haircut_and_rbc_factor(name):
    haircut, designation = GRADE_TABLE[GRADE_OF_NOTCH[name]]
    assert rules.haircut(name) == haircut
    assert rules.naic_designation(name) == designation
    assert rules.rbc_factor(name) == NAIC_C1[designation]


@pytest.mark.parametrize("name", NOTCHES)
def test_every_notch_is_accepted_by_the_rules_tables(name):
    for label in (name, to_sp(name)):
        assert 0 < rules.haircut(label) <= 1
        assert 0 < rules.rbc_factor(label) <= 1
    # Moody's name and its S&P letter land in the same grade, so the two lookups agree.
    assert rules.haircut(name) == rules.haircut(to_sp(name))
    assert rules.rbc_factor(name) == rules.rbc_factor(to_sp(name))


def test_every_implied_rating_output_is_accepted_by_the_rules_tables():
    el = np.concatenate([np.geomspace(1e-7, 1.0, 200), [0.0]])
    out = set(implied_rating(el[:, None], np.array([0.0, 0.5, 1, 3, 7, 10, 25])[None, :]).ravel())
    assert out == set(NOTCHES)  # the sweep reaches every notch, so all of them are checked
    for name in out:
        rules.haircut(name), rules.rbc_factor(name)
        rules.haircut(to_sp(name)), rules.rbc_factor(to_sp(name))


def test_rating_grade_ordering_is_consistent_with_notches():
    # Worse notches never get a smaller haircut or RBC factor.
    hair = [rules.haircut(n) for n in NOTCHES]
    rbc = [rules.rbc_factor(n) for n in NOTCHES]
    assert hair == sorted(hair) and rbc == sorted(rbc)
