"""Default rule tables for holders (MODEL §6.4): repo haircuts and insurer RBC factors by rating.

This is the one place these numbers live. Sources are the figures in the project's calibration
notes (``CALIBRATION.md``, "Holders"):

* **Repo haircuts.** Farmer et al. (2020), the system-wide stress-test code, uses 2% for government
  bonds, 4% for corporate bonds and 15% for equities; Gorton–Metrick (2012) report structured-product
  haircuts rising from about 0 to 45–50% in 2007–08, with some collateral no longer accepted at all.
  No source gives a haircut per rating, so the table is anchored on those figures and the rest is
  our interpolation (an assumption, to be replaced by better data):

  | AAA | AA | A | BBB | BB | B | CCC | CC, C | D | equity |
  |---|---|---|---|---|---|---|---|---|---|
  | 2% (gov.) | 3% | 4% (corp.) | 8% | 15% (≈ equity) | 25% | 50% (G–M peak) | 50% | 100% (not repo-able) | 15% |

* **RBC factors.** NAIC's older six-category C-1 factors for bonds: NAIC 1 0.3%, 2 1%, 3 2%,
  4 4.5%, 5 10%, 6 30%. A rating maps to its NAIC designation as the NAIC Securities Valuation
  Office does for filing-exempt securities: AAA–A → 1, BBB → 2, BB → 3, B → 4, CCC → 5, CC and below
  → 6. There is no bond factor for equity; pass RBC factors explicitly for an equity asset.

Ratings are S&P/Fitch style (``"A+"``, ``"BBB-"``; the modifier is ignored) or Moody's (``"Baa2"``).
"""

from __future__ import annotations

HAIRCUT_BY_RATING: dict[str, float] = {
    "AAA": 0.02, "AA": 0.03, "A": 0.04, "BBB": 0.08, "BB": 0.15, "B": 0.25,
    "CCC": 0.50, "CC": 0.50, "C": 0.50, "D": 1.00, "equity": 0.15,
}

NAIC_RBC_FACTOR: dict[int, float] = {1: 0.003, 2: 0.01, 3: 0.02, 4: 0.045, 5: 0.10, 6: 0.30}

NAIC_BY_RATING: dict[str, int] = {
    "AAA": 1, "AA": 1, "A": 1, "BBB": 2, "BB": 3, "B": 4, "CCC": 5, "CC": 6, "C": 6, "D": 6,
}

_MOODYS = {"Aaa": "AAA", "Aa": "AA", "A": "A", "Baa": "BBB", "Ba": "BB", "B": "B", "Caa": "CCC", "Ca": "CC", "C": "C"}


def rating_grade(rating: str) -> str:
    """The letter grade of a rating (``"BBB-"`` → ``"BBB"``, ``"Baa2"`` → ``"BBB"``), or ``"equity"``.

    Raises
    ------
    ValueError
        For anything else.
    """
    r = str(rating).strip()
    if r.lower() == "equity":
        return "equity"
    core = r.rstrip("+-123")
    if core in HAIRCUT_BY_RATING:
        return core
    if core in _MOODYS:
        return _MOODYS[core]
    raise ValueError(f"unknown rating {rating!r}: expected AAA..D (S&P/Fitch), Aaa..C (Moody's) or 'equity'")


def haircut(rating: str) -> float:
    """Repo haircut for a rating (table in the module docstring)."""
    return HAIRCUT_BY_RATING[rating_grade(rating)]


def naic_designation(rating: str) -> int:
    """NAIC designation 1..6 of a bond rating."""
    g = rating_grade(rating)
    if g == "equity":
        raise ValueError("equity has no NAIC bond designation; pass rbc_factors explicitly")
    return NAIC_BY_RATING[g]


def rbc_factor(rating: str) -> float:
    """NAIC RBC factor of a bond rating (table in the module docstring)."""
    return NAIC_RBC_FACTOR[naic_designation(rating)]
