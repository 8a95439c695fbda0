"""Vote tallies and the Pol.is statistics: repness, majority lists, consensus, routing priority.

Formulas follow Pol.is's math/src/polismath/math/repness.clj and conversation.clj; every
function is vectorised over statements (and groups).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import _sparse_kernels as kernels
from .matrix import AGREE_CODE, DISAGREE_CODE
from .params import Z_90


@dataclass
class Tallies:
    """Agree, disagree and seen counts, each of shape (n_groups, n_statements)."""

    agree: np.ndarray
    disagree: np.ndarray
    seen: np.ndarray

    def total(self) -> Tallies:
        """The counts summed over groups, shape (1, n_statements)."""
        return Tallies(
            *(a.sum(axis=0, keepdims=True) for a in (self.agree, self.disagree, self.seen))
        )


def tally(codes: sp.csr_matrix, labels: np.ndarray, n_groups: int) -> Tallies:
    """Count each group's votes per statement; participants labelled -1 are left out.

    Parameters
    ----------
    codes : csr_matrix of shape (n_participants, n_statements), vote codes
    labels : ndarray of shape (n_participants,), int
        Group of each participant, -1 for none.
    n_groups : int
    """
    return tally_with_population(codes, labels, n_groups, np.zeros(codes.shape[0], bool))[0]


def tally_with_population(
    codes: sp.csr_matrix, labels: np.ndarray, n_groups: int, population: np.ndarray
) -> tuple[Tallies, Tallies]:
    """The groups' tallies and, in the same pass, the tallies of ``population`` (a bool mask
    of participants), shape (1, n_statements)."""
    agree, disagree, seen = kernels.tally(
        codes.indptr,
        codes.indices,
        codes.data,
        np.ascontiguousarray(labels, dtype=np.int32),
        np.ascontiguousarray(population, dtype=np.bool_),
        n_groups,
        codes.shape[1],
        AGREE_CODE,
        DISAGREE_CODE,
    )
    return (
        Tallies(agree[:n_groups], disagree[:n_groups], seen[:n_groups]),
        Tallies(agree[n_groups:], disagree[n_groups:], seen[n_groups:]),
    )


def prop_test(successes: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """Pol.is's one-proportion test against 1/2: ``2 sqrt(n+1) ((s+1)/(n+1) - 1/2)``."""
    n = trials + 1.0
    return 2.0 * np.sqrt(n) * ((successes + 1.0) / n - 0.5)


def two_prop_test(s1: np.ndarray, s2: np.ndarray, n1: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """Two-proportion z statistic with a pseudo-count of 1 on every count; 0 where p is 1."""
    s1, s2, n1, n2 = (np.asarray(a, dtype=np.float64) + 1.0 for a in (s1, s2, n1, n2))
    p1, p2 = s1 / n1, s2 / n2
    p = (s1 + s2) / (n1 + n2)
    var = p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)
    return np.divide(p1 - p2, np.sqrt(var), out=np.zeros(np.broadcast(p1, p2).shape), where=var > 0)


@dataclass
class GroupStats:
    """Repness statistics of every group and statement, each of shape (n_groups, n_statements)."""

    na: np.ndarray
    nd: np.ndarray
    ns: np.ndarray
    pa: np.ndarray
    pd: np.ndarray
    pat: np.ndarray
    pdt: np.ndarray
    ra: np.ndarray
    rd: np.ndarray
    rat: np.ndarray
    rdt: np.ndarray


def group_stats(tallies: Tallies) -> GroupStats:
    """Probabilities, tests and representativeness of each group against the rest."""
    na, nd, ns = (a.astype(np.float64) for a in (tallies.agree, tallies.disagree, tallies.seen))
    rest_a, rest_d, rest_s = (a.sum(axis=0, keepdims=True) - a for a in (na, nd, ns))
    pa = (na + 1.0) / (ns + 2.0)
    pd = (nd + 1.0) / (ns + 2.0)
    return GroupStats(
        na=na,
        nd=nd,
        ns=ns,
        pa=pa,
        pd=pd,
        pat=prop_test(na, ns),
        pdt=prop_test(nd, ns),
        ra=pa / ((rest_a + 1.0) / (rest_s + 2.0)),
        rd=pd / ((rest_d + 1.0) / (rest_s + 2.0)),
        rat=two_prop_test(na, rest_a, ns, rest_s),
        rdt=two_prop_test(nd, rest_d, ns, rest_s),
    )


@dataclass
class RepStatement:
    """One representative statement of a group, with the numbers that chose it."""

    statement: int
    direction: str  # "agree" or "disagree"
    best_agree: bool
    n_success: int
    n_trials: int
    p_success: float
    p_test: float
    repness: float
    repness_test: float
    metric: float


def representative(
    stats: GroupStats,
    group: int,
    eligible: np.ndarray,
    order: np.ndarray | None = None,
    count: int = 5,
) -> list[RepStatement]:
    """A group's representative statements, chosen by Pol.is's rules (``select-rep-comments``).

    The statements are met in ``order`` (default: index order, the statement ids' order, in
    which Pol.is meets them). The "best agree" statement comes first; then the statements
    that pass both one-sided 90 % tests for agree or for disagree, by
    ``repness * repness_test * p * p_test``, ties in ``order``; ``count`` in all, then agrees
    before disagrees. Each is labelled agree when ``rat > rdt``, else disagree (the best agree
    too). When none passes: the best agree, or else the first statement with the largest
    ``max(rat, rdt)``.
    """
    g = {name: getattr(stats, name)[group] for name in GroupStats.__dataclass_fields__}
    order = np.arange(len(eligible)) if order is None else np.asarray(order)
    order = order[eligible[order]]
    agree_side = g["rat"] > g["rdt"]
    # Pol.is keeps the chosen repness test as a 32-bit float, and ranks by it.
    test = np.where(agree_side, g["rat"], g["rdt"]).astype(np.float32).astype(np.float64)
    metric = np.where(agree_side, g["ra"] * g["pa"] * g["pat"], g["rd"] * g["pd"] * g["pdt"]) * test
    passes = ((g["rat"] > Z_90) & (g["pat"] > Z_90)) | ((g["rdt"] > Z_90) & (g["pdt"] > Z_90))
    best = _best_agree(g, order)
    sufficient = order[passes[order]]
    if len(sufficient) == 0:
        if best is not None:
            chosen = [best]
        elif len(order):
            chosen = [int(order[np.argmax(test[order])])]  # the first largest max(rat, rdt)
        else:
            chosen = []
    else:
        ranked = sufficient[sufficient != best] if best is not None else sufficient
        ranked = ranked[np.argsort(-metric[ranked], kind="stable")]
        chosen = ([best] if best is not None else []) + [int(j) for j in ranked]
        chosen = chosen[:count]
        chosen.sort(key=lambda j: not agree_side[j])  # stable: agrees before disagrees
    return [
        _rep_statement(g, j, "agree" if agree_side[j] else "disagree", j == best, metric[j])
        for j in chosen
    ]


def _best_agree(g: dict, order: np.ndarray) -> int | None:
    """Pol.is's "best agree" (``beats-best-agr?``), met in ``order``.

    A statement with no agree and no disagree never qualifies. The first to qualify needs
    ``pat > z90`` or (``ra > 1`` and ``pa > 0.5``); after that, a statement takes the place of
    the best so far when it beats it on ``ra * rat * pa * pat`` if the best so far has
    ``ra > 1``, else on ``pa * pat``. So the winner can depend on the order.
    """
    voted = order[(g["na"][order] + g["nd"][order]) > 0]
    ra, rat, pa, pat = (g[name][voted] for name in ("ra", "rat", "pa", "pat"))
    strong, weak = ra * rat * pa * pat, pa * pat
    first = (pat > Z_90) | ((ra > 1.0) & (pa > 0.5))
    best = -1
    for i in range(len(voted)):
        if best < 0:
            if first[i]:
                best = i
        elif strong[i] > strong[best] if ra[best] > 1.0 else weak[i] > weak[best]:
            best = i
    return None if best < 0 else int(voted[best])


def _rep_statement(g: dict, j: int, direction: str, best: bool, metric: float) -> RepStatement:
    a = direction == "agree"
    return RepStatement(
        statement=j,
        direction=direction,
        best_agree=best,
        n_success=int(g["na"][j] if a else g["nd"][j]),
        n_trials=int(g["ns"][j]),
        p_success=float(g["pa"][j] if a else g["pd"][j]),
        p_test=float(g["pat"][j] if a else g["pdt"][j]),
        repness=float(g["ra"][j] if a else g["rd"][j]),
        repness_test=float(g["rat"][j] if a else g["rdt"][j]),
        metric=float(metric),
    )


@dataclass
class MajorityStatement:
    """A statement of a whole-population majority list."""

    statement: int
    n_success: int
    n_trials: int
    p_success: float
    p_test: float


def majority(
    tallies: Tallies, eligible: np.ndarray, order: np.ndarray | None = None, count: int = 5
) -> dict[str, list[MajorityStatement]]:
    """Whole-population majority lists: ``{"agree": [...], "disagree": [...]}``.

    A statement is listed for agree when ``pa > 0.5`` and ``pat > z90``, ranked by ``pa * pat``
    (ties in ``order``, default index order); likewise for disagree.
    """
    order = np.arange(len(eligible)) if order is None else np.asarray(order)
    total = tallies.total()
    ns = total.seen[0].astype(np.float64)
    lists = {}
    for name, n in (("agree", total.agree[0]), ("disagree", total.disagree[0])):
        p = (n + 1.0) / (ns + 2.0)
        test = prop_test(n.astype(np.float64), ns)
        ok = order[(eligible & (p > 0.5) & (test > Z_90))[order]]
        ranked = ok[np.argsort(-(p * test)[ok], kind="stable")][:count]
        lists[name] = [
            MajorityStatement(int(j), int(n[j]), int(ns[j]), float(p[j]), float(test[j]))
            for j in ranked
        ]
    return lists


def group_informed_consensus(tallies: Tallies) -> np.ndarray:
    """``prod_g (A_gj + 1) / (S_gj + 2)`` for every statement, shape (n_statements,)."""
    return np.prod((tallies.agree + 1.0) / (tallies.seen + 2.0), axis=0)


#: Priority of a meta statement (Pol.is shows them early).
META_PRIORITY = 49.0


def priority(tallies: Tallies, extremity: np.ndarray, meta: np.ndarray) -> np.ndarray:
    """Routing priority of every statement, shape (n_statements,).

    ``importance = (1 - p) (E + 1) a`` with pass and agree rates ``p = (P+1)/(S+2)``,
    ``a = (A+1)/(S+2)``; ``priority = (importance (1 + 8 * 2^(-S/5)))^2``, which favours
    statements with few votes; meta statements get ``META_PRIORITY``.
    """
    total = tallies.total()
    a_count, d_count, seen = (
        x[0].astype(np.float64) for x in (total.agree, total.disagree, total.seen)
    )
    passes = seen - a_count - d_count
    p = (passes + 1.0) / (seen + 2.0)
    a = (a_count + 1.0) / (seen + 2.0)
    importance = (1.0 - p) * (extremity + 1.0) * a
    value = (importance * (1.0 + 8.0 * 2.0 ** (-seen / 5.0))) ** 2
    return np.where(meta, META_PRIORITY, value)
