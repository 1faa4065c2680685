"""Reading an experiment's lift (the dbt model ``experiment_lift``) for people: `cdp lift NAME` and
the sync's Dagster metadata. The numbers are computed in the warehouse; this module only reads and
words them (counts, rates and intervals: no personal data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: the public model holding one row per (experiment, arm)
LIFT_MODEL = "main.experiment_lift"


class UnknownExperimentError(LookupError):
    """No experiment of that name in the lift model."""


@dataclass(frozen=True)
class ArmLift:
    """One row of experiment_lift."""

    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError as error:
            raise AttributeError(name) from error


def read_lift(warehouse: Any, experiment: str) -> list[ArmLift]:
    """The arms of ``experiment``, control first; raises UnknownExperimentError naming the known ones.

    ``warehouse`` is a destinations.warehouse.Warehouse (any engine)."""
    names, rows = warehouse.query(
        f"select * from {LIFT_MODEL} where experiment = :experiment order by is_control desc, arm",
        {"experiment": experiment},
    )
    if not rows:
        known = sorted(row[0] for row in warehouse.fetch(f"select distinct experiment from {LIFT_MODEL}"))
        raise UnknownExperimentError(
            f"no experiment '{experiment}' in {LIFT_MODEL} (known: {', '.join(known) or 'none'}); "
            "experiments are declared in dbt_project.yml vars.experiments (or a sync's holdout_percent) "
            "and appear after `cdp build`"
        )
    columns = [name.lower() for name in names]
    return [ArmLift(dict(zip(columns, row, strict=True))) for row in rows]


def _percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _points(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:+.2f} pp"


def _interval(low: float | None, high: float | None, render) -> str:
    return "–" if low is None or high is None else f"[{render(low)}, {render(high)}]"


def _money(value: float | None) -> str:
    return "–" if value is None else f"{value:,.2f}"


def _p(value: float | None) -> str:
    return "–" if value is None else ("< 0.0001" if value < 0.0001 else f"{value:.4f}")


#: (column heading, how to render an arm) — shared by the CLI table and the Dagster markdown
COLUMNS: tuple[tuple[str, Any], ...] = (
    ("arm", lambda a: a.arm),
    ("members", lambda a: f"{a.members:,}"),
    ("in window", lambda a: f"{a.members_in_window:,}"),
    ("conversion", lambda a: _percent(a.conversion_rate, 2)),
    ("lift", lambda a: _points(a.conversion_lift)),
    ("95% CI", lambda a: _interval(a.conversion_lift_ci_low, a.conversion_lift_ci_high, _points)),
    ("relative", lambda a: _percent(a.conversion_relative_lift)),
    (
        "relative 95% CI",
        lambda a: _interval(a.conversion_relative_lift_ci_low, a.conversion_relative_lift_ci_high, _percent),
    ),
    ("p", lambda a: _p(a.conversion_p_value)),
    ("revenue/member", lambda a: _money(a.revenue_per_member)),
    ("revenue lift", lambda a: _money(a.revenue_lift)),
    ("revenue 95% CI", lambda a: _interval(a.revenue_lift_ci_low, a.revenue_lift_ci_high, _money)),
    ("revenue p", lambda a: _p(a.revenue_p_value)),
)


def rendered_rows(arms: list[ArmLift]) -> list[list[str]]:
    return [[render(arm) for _, render in COLUMNS] for arm in arms]


def lift_markdown(experiment: str, arms: list[ArmLift]) -> str:
    """The lift as a Markdown table with its notes (Dagster metadata)."""
    headings = [heading for heading, _ in COLUMNS]
    lines = [
        f"**{experiment}**: purchases within {arms[0].outcome_days} days of entering, each arm against control",
        "",
        "| " + " | ".join(headings) + " |",
        "|" + "---|" * len(headings),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rendered_rows(arms)]
    lines += [f"- {arm.arm}: {arm.note}" for arm in arms if arm.note and not arm.is_control]
    return "\n".join(lines)
