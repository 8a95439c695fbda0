"""Compiled inner loops of k-means in two dimensions (numba; serial, so deterministic).

Lloyd's iterations with Hamerly's bounds: each point keeps an upper bound on the distance to its
own centre and a lower bound on the distance to any other; after the centres move, only points
whose bounds cross are measured again, and only against the centres near their own (the triangle
inequality rules out the others). Sums run in point order, so results do not depend on threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _two_nearest(x: float, y: float, centres: np.ndarray):
    best = -1
    first = np.inf
    second = np.inf
    for c in range(centres.shape[0]):
        dx = x - centres[c, 0]
        dy = y - centres[c, 1]
        d = dx * dx + dy * dy
        if d < first:
            second = first
            first = d
            best = c
        elif d < second:
            second = d
    return best, math.sqrt(first), math.sqrt(second)


@njit(cache=True, nogil=True)
def assign(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre of every point (the first, on a tie)."""
    labels = np.empty(points.shape[0], np.int32)
    for i in range(points.shape[0]):
        labels[i] = _two_nearest(points[i, 0], points[i, 1], centres)[0]
    return labels


@njit(cache=True, nogil=True)
def lloyd(
    points: np.ndarray, weights: np.ndarray, centres: np.ndarray, max_iter: int, threshold: float
):
    """Run Lloyd's iterations in place on ``centres``; return (labels, n_iter).

    Each iteration moves every centre to its members' weighted mean (a centre without members
    stays); the loop ends once no centre moved more than ``threshold``.
    """
    n = points.shape[0]
    k = centres.shape[0]
    labels = np.empty(n, np.int32)
    upper = np.empty(n)
    lower = np.empty(n)
    for i in range(n):
        labels[i], upper[i], lower[i] = _two_nearest(points[i, 0], points[i, 1], centres)
    moved = np.zeros(k)
    half_gap = np.empty(k)
    dist = np.empty(k)
    near = np.empty((k, max(k - 1, 1)), np.int64)
    gapd = np.empty((k, max(k - 1, 1)))
    n_iter = 0
    for iteration in range(max_iter):
        n_iter = iteration + 1
        total = np.zeros(k)
        sx = np.zeros(k)
        sy = np.zeros(k)
        for i in range(n):
            c = labels[i]
            w = weights[i]
            total[c] += w
            sx[c] += w * points[i, 0]
            sy[c] += w * points[i, 1]
        top, runner_up, top_index = 0.0, 0.0, -1
        for c in range(k):
            moved[c] = 0.0
            if total[c] > 0:
                nx = sx[c] / total[c]
                ny = sy[c] / total[c]
                moved[c] = math.sqrt((nx - centres[c, 0]) ** 2 + (ny - centres[c, 1]) ** 2)
                centres[c, 0] = nx
                centres[c, 1] = ny
            if moved[c] > top:
                runner_up = top
                top = moved[c]
                top_index = c
            elif moved[c] > runner_up:
                runner_up = moved[c]
        if top <= threshold:
            break
        for c in range(k):
            for o in range(k):
                dist[o] = math.sqrt(
                    (centres[c, 0] - centres[o, 0]) ** 2 + (centres[c, 1] - centres[o, 1]) ** 2
                )
            dist[c] = np.inf
            order = np.argsort(dist, kind="mergesort")
            for idx in range(k - 1):
                near[c, idx] = order[idx]
                gapd[c, idx] = dist[order[idx]]
            half_gap[c] = 0.5 * gapd[c, 0] if k > 1 else np.inf
        for i in range(n):
            c = labels[i]
            upper[i] += moved[c]
            lower[i] -= runner_up if c == top_index else top
            bound = max(lower[i], half_gap[c])
            if upper[i] > bound:
                upper[i] = math.sqrt(
                    (points[i, 0] - centres[c, 0]) ** 2 + (points[i, 1] - centres[c, 1]) ** 2
                )
                if upper[i] > bound:
                    labels[i], upper[i], lower[i] = _nearest_around(
                        points[i, 0], points[i, 1], c, centres, near, gapd, k
                    )
    return labels, n_iter


@njit(cache=True, nogil=True)
def _nearest_around(x, y, own, centres, near, gap, k):
    """Nearest and second-nearest centre of a point now labelled ``own``.

    ``near[own]`` lists the other centres by distance from ``own`` (``gap`` those distances).
    No centre farther from ``own`` than ``d(x, own) + second`` can be among the two nearest
    (triangle inequality), so the scan stops there. Ties go to the lower index.
    """
    d_own = math.sqrt((x - centres[own, 0]) ** 2 + (y - centres[own, 1]) ** 2)
    best, first, second = own, d_own, np.inf
    for idx in range(k - 1):
        if gap[own, idx] - d_own >= second:
            break
        other = near[own, idx]
        d = math.sqrt((x - centres[other, 0]) ** 2 + (y - centres[other, 1]) ** 2)
        if d < first or (d == first and other < best):
            second = first
            first = d
            best = other
        elif d < second:
            second = d
    return best, first, second


@njit(cache=True, nogil=True)
def farthest_splits(points: np.ndarray, centres: np.ndarray, wanted: int) -> np.ndarray:
    """Up to ``wanted`` extra centres: each time, the point farthest from every centre so far."""
    n = points.shape[0]
    nearest = np.empty(n)
    for i in range(n):
        nearest[i] = _two_nearest(points[i, 0], points[i, 1], centres)[1]
    extra = np.empty((wanted, 2))
    found = 0
    while found < wanted:
        far = np.argmax(nearest)
        if nearest[far] <= 0.0:
            break
        extra[found, 0] = points[far, 0]
        extra[found, 1] = points[far, 1]
        found += 1
        for i in range(n):
            d = math.sqrt(
                (points[i, 0] - points[far, 0]) ** 2 + (points[i, 1] - points[far, 1]) ** 2
            )
            if d < nearest[i]:
                nearest[i] = d
    return extra[:found]
