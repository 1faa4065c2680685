"""Python references for experiments: the arm rule (macros/experiments/arms.sql) and the lift
statistics (models/experiments/experiment_lift.sql), written from their definitions with the
standard library only (math.erf for the normal CDF), for tests to hold the SQL against."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

Z_95 = 1.959963984540054
Z_POWER_80 = 0.8416212335729143


def bucket(text: str, modulus: int) -> int:
    """The MD5 digest as an unsigned 128-bit little-endian integer, mod ``modulus``."""
    return int.from_bytes(hashlib.md5(text.encode()).digest(), "little") % modulus


def assign(experiment: str, arms: Sequence[tuple[str, int]], profile_id: str) -> str:
    """The arm of ``profile_id``: ``arms`` is (name, share) with control first."""
    control_share = arms[0][1]
    if bucket(f"{experiment}:{profile_id}", 100) < control_share:
        return "control"
    others = arms[1:]
    total = sum(share for _, share in others)
    drawn = bucket(f"{experiment}:arm:{profile_id}", 10000)
    cumulative = 0
    for name, share in others[:-1]:
        cumulative += share
        if drawn * total < cumulative * 10000:
            return name
    return others[-1][0]


def normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def two_sided_p(z: float) -> float:
    return 2 * (1 - normal_cdf(abs(z)))


@dataclass(frozen=True)
class Comparison:
    conversion_lift: float
    conversion_lift_ci_low: float
    conversion_lift_ci_high: float
    conversion_relative_lift: float
    conversion_relative_lift_ci_low: float
    conversion_relative_lift_ci_high: float
    conversion_p_value: float
    conversion_mde: float
    revenue_lift: float
    revenue_lift_ci_low: float
    revenue_lift_ci_high: float
    revenue_relative_lift: float
    revenue_relative_lift_ci_low: float
    revenue_relative_lift_ci_high: float
    revenue_p_value: float
    revenue_mde: float


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, sum((v - mean) ** 2 for v in values) / (n - 1)


def compare(treated: Sequence[tuple[bool, float]], control: Sequence[tuple[bool, float]]) -> Comparison:
    """A treated arm against control, from each member's (converted, revenue)."""
    n_t, n_c = len(treated), len(control)
    x_t, x_c = sum(c for c, _ in treated), sum(c for c, _ in control)
    p_t, p_c = x_t / n_t, x_c / n_c
    lift = p_t - p_c
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    pooled = (x_t + x_c) / (n_t + n_c)
    z = lift / math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    se_log = math.sqrt((1 - p_t) / x_t + (1 - p_c) / x_c)
    m_t, v_t = _mean_var([r for _, r in treated])
    m_c, v_c = _mean_var([r for _, r in control])
    revenue_se = math.sqrt(v_t / n_t + v_c / n_c)
    revenue_se_log = math.sqrt(v_t / (n_t * m_t**2) + v_c / (n_c * m_c**2))
    return Comparison(
        conversion_lift=lift,
        conversion_lift_ci_low=lift - Z_95 * se,
        conversion_lift_ci_high=lift + Z_95 * se,
        conversion_relative_lift=p_t / p_c - 1,
        conversion_relative_lift_ci_low=math.exp(math.log(p_t / p_c) - Z_95 * se_log) - 1,
        conversion_relative_lift_ci_high=math.exp(math.log(p_t / p_c) + Z_95 * se_log) - 1,
        conversion_p_value=two_sided_p(z),
        conversion_mde=(Z_95 + Z_POWER_80) * math.sqrt(p_c * (1 - p_c) * (1 / n_t + 1 / n_c)),
        revenue_lift=m_t - m_c,
        revenue_lift_ci_low=m_t - m_c - Z_95 * revenue_se,
        revenue_lift_ci_high=m_t - m_c + Z_95 * revenue_se,
        revenue_relative_lift=m_t / m_c - 1,
        revenue_relative_lift_ci_low=math.exp(math.log(m_t / m_c) - Z_95 * revenue_se_log) - 1,
        revenue_relative_lift_ci_high=math.exp(math.log(m_t / m_c) + Z_95 * revenue_se_log) - 1,
        revenue_p_value=two_sided_p((m_t - m_c) / revenue_se),
        revenue_mde=(Z_95 + Z_POWER_80) * math.sqrt(v_c * (1 / n_t + 1 / n_c)),
    )
