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
def _same_clustering(old: np.ndarray, new: np.ndarray, threshold: float) -> bool:
    """Pol.is's convergence test: both centre lists sorted (by x, then y), paired in that order
    (the shorter list decides how many pairs), and every pair closer than ``threshold``."""
    a = _sorted_rows(old)
    b = _sorted_rows(new)
    for i in range(min(a.shape[0], b.shape[0])):
        if math.sqrt((a[i, 0] - b[i, 0]) ** 2 + (a[i, 1] - b[i, 1]) ** 2) >= threshold:
            return False
    return True


@njit(cache=True, nogil=True)
def _sorted_rows(rows: np.ndarray) -> np.ndarray:
    """The rows in lexicographic order (insertion sort: a hundred rows at most)."""
    out = rows.copy()
    for i in range(1, out.shape[0]):
        x, y = out[i, 0], out[i, 1]
        j = i - 1
        while j >= 0 and (out[j, 0] > x or (out[j, 0] == x and out[j, 1] > y)):
            out[j + 1, 0] = out[j, 0]
            out[j + 1, 1] = out[j, 1]
            j -= 1
        out[j + 1, 0] = x
        out[j + 1, 1] = y
    return out


@njit(cache=True, nogil=True)
def lloyd(
    points: np.ndarray,
    weights: np.ndarray,
    centres: np.ndarray,
    max_iter: int,
    threshold: float,
    guess: np.ndarray,
):
    """Pol.is's k-means loop from ``centres``; return (labels, centres, kept, n_steps).

    Each step assigns every point to its nearest centre, drops the clusters left without a
    point at once, and moves the others to their members' weighted mean. The loop ends when the
    step left the centres where they were (:func:`_same_clustering`) or after ``max_iter + 1``
    steps (Pol.is counts its iterations down from ``max_iter`` to 0). ``labels`` are the last
    assignment and ``centres`` its means; ``kept[c]`` is the index in the starting ``centres``
    of output cluster c. ``guess[i]`` (-1: none) is a centre likely nearest point i (its cluster
    in a warm start): the first assignment then measures only the centres around it that could
    be nearer, with the same result as measuring every centre.
    """
    n = points.shape[0]
    centres = centres.copy()
    k = centres.shape[0]
    kept = np.arange(k)
    labels = np.empty(n, np.int32)
    upper = np.empty(n)
    lower = np.empty(n)
    near, gapd, _ = _neighbours(centres, True)
    for i in range(n):
        if guess[i] >= 0:
            labels[i], upper[i], lower[i] = _nearest_around(
                points[i, 0], points[i, 1], guess[i], centres, near, gapd, k
            )
        else:
            labels[i], upper[i], lower[i] = _two_nearest(points[i, 0], points[i, 1], centres)
    n_steps = 0
    while True:
        n_steps += 1
        total = np.zeros(k)
        count = np.zeros(k, np.int64)
        sx = np.zeros(k)
        sy = np.zeros(k)
        for i in range(n):
            c = labels[i]
            w = weights[i]
            count[c] += 1
            total[c] += w
            sx[c] += w * points[i, 0]
            sy[c] += w * points[i, 1]
        alive = 0
        for c in range(k):
            if count[c] > 0:
                alive += 1
        new = np.empty((alive, 2))
        renumber = np.full(k, -1, np.int32)
        moved = np.zeros(alive)
        at = 0
        for c in range(k):
            if count[c] > 0:
                new[at, 0] = sx[c] / total[c]
                new[at, 1] = sy[c] / total[c]
                moved[at] = math.sqrt(
                    (new[at, 0] - centres[c, 0]) ** 2 + (new[at, 1] - centres[c, 1]) ** 2
                )
                renumber[c] = at
                at += 1
        done = n_steps > max_iter or _same_clustering(centres, new, threshold)
        dropped = alive < k
        if dropped:
            kept_now = np.empty(alive, np.int64)
            for c in range(k):
                if renumber[c] >= 0:
                    kept_now[renumber[c]] = kept[c]
            kept = kept_now
            for i in range(n):
                labels[i] = renumber[labels[i]]
        centres = new
        k = alive
        if done:
            return labels, centres, kept, n_steps
        if dropped:
            for i in range(n):
                labels[i], upper[i], lower[i] = _two_nearest(points[i, 0], points[i, 1], centres)
            continue
        _reassign(points, centres, labels, upper, lower, moved)


#: With fewer points than this per centre, a point whose bounds cross is measured against every
#: centre; with more, against the centres near its own (sorting each centre's neighbours costs
#: k^2 log k a step, which only pays off over many points).
SORTED_NEIGHBOURS_FROM = 50


@njit(cache=True, nogil=True)
def _reassign(points, centres, labels, upper, lower, moved):
    """Hamerly's step: after the centres moved by ``moved``, relabel only the points whose
    bounds say their nearest centre may have changed."""
    n = points.shape[0]
    k = centres.shape[0]
    top, runner_up, top_index = 0.0, 0.0, -1
    for c in range(k):
        if moved[c] > top:
            runner_up = top
            top = moved[c]
            top_index = c
        elif moved[c] > runner_up:
            runner_up = moved[c]
    sorted_neighbours = n >= SORTED_NEIGHBOURS_FROM * k
    near, gapd, half_gap = _neighbours(centres, sorted_neighbours)
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
                if sorted_neighbours:
                    labels[i], upper[i], lower[i] = _nearest_around(
                        points[i, 0], points[i, 1], c, centres, near, gapd, k
                    )
                else:
                    labels[i], upper[i], lower[i] = _two_nearest(
                        points[i, 0], points[i, 1], centres
                    )


@njit(cache=True, nogil=True)
def _neighbours(centres: np.ndarray, sort: bool):
    """Half the distance from each centre to its nearest other centre, and with ``sort`` each
    centre's other centres by distance (``near``) with those distances (``gapd``)."""
    k = centres.shape[0]
    half_gap = np.empty(k)
    dist = np.empty(k)
    width = max(k - 1, 1) if sort else 1
    near = np.empty((k, width), np.int64)
    gapd = np.empty((k, width))
    for c in range(k):
        nearest = np.inf
        for o in range(k):
            d = math.sqrt(
                (centres[c, 0] - centres[o, 0]) ** 2 + (centres[c, 1] - centres[o, 1]) ** 2
            )
            dist[o] = d
            if o != c and d < nearest:
                nearest = d
        half_gap[c] = 0.5 * nearest
        if sort:
            dist[c] = np.inf
            order = np.argsort(dist, kind="mergesort")
            for idx in range(k - 1):
                near[c, idx] = order[idx]
                gapd[c, idx] = dist[order[idx]]
    return near, gapd, half_gap


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
def _member_means(points, weights, members, m):
    """Each cluster's members' weighted mean, shape (m, 2), and member counts."""
    total = np.zeros(m)
    count = np.zeros(m, np.int64)
    sx = np.zeros(m)
    sy = np.zeros(m)
    for i in range(points.shape[0]):
        c = members[i]
        if c >= 0:
            count[c] += 1
            total[c] += weights[i]
            sx[c] += weights[i] * points[i, 0]
            sy[c] += weights[i] * points[i, 1]
    centres = np.empty((m, 2))
    for c in range(m):
        centres[c, 0] = sx[c] / total[c] if count[c] > 0 else np.nan
        centres[c, 1] = sy[c] / total[c] if count[c] > 0 else np.nan
    return centres, count


@njit(cache=True, nogil=True)
def clean_start(points, weights, members, previous_ids, possible):
    """Pol.is's ``clean-start-clusters``: the clusters a warm-started k-means begins from.

    ``members[i]`` is point i's previous cluster (an index into ``previous_ids``; -1 for a
    newcomer). Each previous cluster restarts at its members' mean today, and is dropped when
    none of them is left (if none is left anywhere, every point forms one new cluster);
    clusters at the same place are merged (the merged one keeps the id of the one with more
    members, the later on a tie); then, while there are fewer than ``possible`` clusters, the
    point farthest from its nearest centre (the last such point, and of the centres it is
    nearest, the last) leaves its cluster to start a new one with the next id, and every
    cluster is re-centred. Returns (centres, members, ids, origin), ``origin[c]`` being the
    previous cluster (index) that cluster c continues, -1 for a new one.
    """
    n = points.shape[0]
    n_prev = previous_ids.shape[0]
    members = members.copy()
    means, count = _member_means(points, weights, members, n_prev)
    slot = np.full(n_prev, -1, np.int64)
    ids = np.empty(n_prev + possible + 1, np.int64)
    origin = np.empty(n_prev + possible + 1, np.int64)
    sizes = np.zeros(n_prev + possible + 1, np.int64)
    cx = np.empty(n_prev + possible + 1)
    cy = np.empty(n_prev + possible + 1)
    m = 0
    for c in range(n_prev):
        if count[c] == 0:
            continue
        same = -1
        for o in range(m):
            if cx[o] == means[c, 0] and cy[o] == means[c, 1]:
                same = o
                break
        if same >= 0:
            if count[c] >= sizes[same]:  # max-key: the later one wins a tie
                ids[same] = previous_ids[c]
                origin[same] = c
            sizes[same] += count[c]
            slot[c] = same
        else:
            ids[m] = previous_ids[c]
            origin[m] = c
            sizes[m] = count[c]
            cx[m] = means[c, 0]
            cy[m] = means[c, 1]
            slot[c] = m
            m += 1
    if m == 0:
        top = -1
        for c in range(n_prev):
            top = max(top, previous_ids[c])
        for i in range(n):
            members[i] = 0
        ids[0] = top + 1
        origin[0] = -1
        m = 1
    else:
        for i in range(n):
            if members[i] >= 0:
                members[i] = slot[members[i]]
    while True:
        centres, _ = _member_means(points, weights, members, m)
        if m >= possible:
            return centres, members, ids[:m].copy(), origin[:m].copy()
        far_d, far_i = -1.0, -1
        for i in range(n):
            best = np.inf
            for c in range(m):
                d = math.sqrt(
                    (points[i, 0] - centres[c, 0]) ** 2 + (points[i, 1] - centres[c, 1]) ** 2
                )
                if d <= best:
                    best = d
            if best >= far_d:
                far_d, far_i = best, i
        if not far_d > 0.0:
            return centres, members, ids[:m].copy(), origin[:m].copy()
        top = ids[0]
        for c in range(m):
            top = max(top, ids[c])
        members[far_i] = m
        ids[m] = top + 1
        origin[m] = -1
        m += 1
