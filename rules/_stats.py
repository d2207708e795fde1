"""One-sided t-tests for the significance rule, without scipy.

The Student-t CDF comes from the regularised incomplete beta function (Lentz's continued fraction),
accurate to ~1e-12 for the small degrees of freedom (2-10 seeds) that submissions have.
"""

from __future__ import annotations

import math
from statistics import fmean, variance


def _betacf(a: float, b: float, x: float) -> float:
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(lbeta) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbeta) * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with df degrees of freedom."""
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    x = df / (df + t * t)
    tail = 0.5 * betainc(df / 2.0, 0.5, x)
    return tail if t > 0 else 1.0 - tail


def one_sample_greater(values: list[float], mu0: float) -> tuple[float, float, int]:
    """One-sided test that mean(values) < mu0 (lower is better): returns (t, p, df)."""
    n = len(values)
    m = fmean(values)
    s = math.sqrt(variance(values)) if n > 1 else 0.0
    if s == 0.0:
        return (math.inf if m < mu0 else -math.inf), (0.0 if m < mu0 else 1.0), n - 1
    t = (mu0 - m) / (s / math.sqrt(n))
    return t, t_sf(t, n - 1), n - 1


def welch_less(a: list[float], b: list[float], margin: float = 0.0) -> tuple[float, float, float]:
    """One-sided Welch test that mean(a) < mean(b) - margin: returns (t, p, df)."""
    na, nb = len(a), len(b)
    va = variance(a) if na > 1 else 0.0
    vb = variance(b) if nb > 1 else 0.0
    se2 = va / na + vb / nb
    diff = fmean(b) - margin - fmean(a)
    if se2 == 0.0:
        return (math.inf if diff > 0 else -math.inf), (0.0 if diff > 0 else 1.0), float(na + nb - 2)
    df = se2 * se2 / ((va / na) ** 2 / max(na - 1, 1) + (vb / nb) ** 2 / max(nb - 1, 1)) if (va or vb) else na + nb - 2
    t = diff / math.sqrt(se2)
    return t, t_sf(t, df), df
