"""`Results.plot`: the report's figures as methods returning matplotlib Figures."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from engine.report.figures import FIGURES, available


class PlotAccessor:
    """The report's figures for one run, one method per entry of ``FIGURES``.

    ``res.plot.exceedance()`` returns a matplotlib ``Figure``; a figure the run has no data for
    (e.g. ``firm_defaults`` without a network) raises ``ValueError`` saying why.

    Parameters
    ----------
    tables : the run's summary tables by name, as ``Results.tables`` or ``read_run`` give them.
    """

    def __init__(self, tables: dict[str, pd.DataFrame]):
        self._tables = dict(tables)

    def __dir__(self) -> list[str]:
        return sorted(set(FIGURES) | {"available"} | {k for k in object.__dir__(self) if not k.startswith("_")})

    def available(self) -> list[str]:
        """Names of the figures this run can draw."""
        return [name for name, why in available(self._tables).items() if why is None]

    def __repr__(self) -> str:
        return f"<PlotAccessor: {', '.join(f'{n}()' for n in self.available())}>"


def _accessor_method(name: str):
    figure, title, caption = FIGURES[name]

    def method(self) -> Figure:
        return figure.draw(self._tables)

    method.__name__ = name
    method.__qualname__ = f"PlotAccessor.{name}"
    method.__doc__ = f"{title}.\n\n{caption}\n\nRaises\n------\nValueError\n    When this run has no data for the figure."
    return method


for _name in FIGURES:
    setattr(PlotAccessor, _name, _accessor_method(_name))
del _name
