"""k-means, silhouette and the k smoother on toy layouts worked by hand (spec section 6)."""

from __future__ import annotations

import numpy as np
import pytest

from polis_like.conversation import VoteEvents
from polis_like.math import MathParams, Smoother, compute, update
from polis_like.math.clustering import Previous, cluster
from polis_like.math.kmeans import first_distinct, kmeans, silhouette

# Four points on a line: two near 0, two near 10.
LINE = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [11.0, 0.0]])


def test_first_distinct_keeps_the_first_k_distinct_points_in_order():
    points = np.array([[0, 0], [0, 0], [1, 0], [0, 0], [2, 2], [1, 0], [3, 3]], dtype=float)
    assert first_distinct(points, 3).tolist() == [[0, 0], [1, 0], [2, 2]]
    assert first_distinct(points, 10).tolist() == [[0, 0], [1, 0], [2, 2], [3, 3]]


def test_kmeans_starts_from_the_first_distinct_points():
    # Seeds (0,0) and (1,0). Assign: (0,0) -> c0; (1,0), (10,0), (11,0) -> c1.
    # Means: c0 (0,0), c1 (22/3, 0). Reassign: (1,0) is 1 from c0, 6.33 from c1 -> c0.
    # Means: c0 (0.5,0), c1 (10.5,0); then nothing changes. Cluster 0 is the first point's.
    result = kmeans(LINE, 2)
    assert result.centres.tolist() == [[0.5, 0.0], [10.5, 0.0]]
    assert result.labels.tolist() == [0, 0, 1, 1]


def test_kmeans_asks_for_no_more_clusters_than_distinct_points():
    points = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0]])
    result = kmeans(points, 100)
    assert result.centres.tolist() == [[0.0, 0.0], [5.0, 0.0]]
    assert result.labels.tolist() == [0, 0, 1]


def test_kmeans_centres_are_weighted_means():
    # Seeds (0,0) and (10,0); (4,0) is nearer (0,0), (12,0) nearer (10,0).
    #   c0 = (3*0 + 1*4) / 4 = 1,  c1 = (1*10 + 3*12) / 4 = 11.5   (unweighted: 2 and 11)
    # Reassign: (4,0) is 3 from c0 and 7.5 from c1: no change.
    points = np.array([[0.0, 0.0], [10.0, 0.0], [4.0, 0.0], [12.0, 0.0]])
    result = kmeans(points, 2, weights=np.array([3.0, 1.0, 1.0, 3.0]))
    assert result.centres.tolist() == [[1.0, 0.0], [11.5, 0.0]]
    assert result.labels.tolist() == [0, 1, 0, 1]
    assert result.weights.tolist() == [4.0, 4.0]


def test_kmeans_stops_once_the_sorted_centres_moved_less_than_the_threshold():
    # Seeds (0,0), (1,0); (7,0) joins c1. First step: c1 moves from 1 to (1+7)/2 = 4, by exactly 3.
    points = np.array([[0.0, 0.0], [1.0, 0.0], [7.0, 0.0]])
    # Threshold 3.01: a move of 3 is less than that, so it stops there.
    stopped = kmeans(points, 2, threshold=3.01)
    assert stopped.centres.tolist() == [[0.0, 0.0], [4.0, 0.0]]
    assert stopped.labels.tolist() == [0, 1, 1]
    assert stopped.n_iter == 1
    # Threshold 3: Pol.is needs *less* than the threshold. (1,0) moves to c0 (1 against 3),
    # centres (0.5,0) and (7,0); c1 moved 3 again; the third step moves nothing.
    converged = kmeans(points, 2, threshold=3.0)
    assert converged.centres.tolist() == [[0.5, 0.0], [7.0, 0.0]]
    assert converged.labels.tolist() == [0, 0, 1]
    assert converged.n_iter == 3


def test_kmeans_takes_at_most_max_iter_plus_one_steps_as_pol_is_counts_them():
    # Pol.is counts down from max-iters to 0 and steps before each test: max_iter 0 is one step.
    # Seeds (0,0), (1,0). Step 1: 0 -> c0; 1, 10, 11 -> c1; means (0,0) and (22/3,0).
    one = kmeans(LINE, 2, max_iter=0)
    assert (one.n_iter, one.labels.tolist()) == (1, [0, 1, 1, 1])
    assert one.centres.tolist() == [[0.0, 0.0], [22 / 3, 0.0]]
    # Step 2: 1 is 1 from c0 and 6.33 from c1 -> c0; means (0.5,0) and (10.5,0). Returned
    # centres are always the means of the returned labels.
    two = kmeans(LINE, 2, max_iter=1)
    assert (two.n_iter, two.labels.tolist()) == (2, [0, 0, 1, 1])
    assert two.centres.tolist() == [[0.5, 0.0], [10.5, 0.0]]


def test_the_group_level_runs_pol_is_s_twenty_iterations_and_the_base_level_its_hundred():
    params = MathParams()
    assert (params.kmeans_max_iter, params.group_kmeans_max_iter) == (100, 20)


def test_kmeans_warm_start_keeps_the_previous_cluster_ids():
    # The previous update had the cluster at 10 first: it stays cluster 0.
    result = kmeans(LINE, 2, init=np.array([[10.0, 0.0], [0.0, 0.0]]))
    assert result.centres.tolist() == [[10.5, 0.0], [0.5, 0.0]]
    assert result.labels.tolist() == [1, 1, 0, 0]


def test_kmeans_warm_start_drops_empty_clusters_and_renumbers():
    # Nobody is nearest (100,100): it is dropped and the cluster at 10 becomes id 1.
    result = kmeans(LINE, 2, init=np.array([[0.0, 0.0], [100.0, 100.0], [10.0, 0.0]]))
    assert result.centres.tolist() == [[0.5, 0.0], [10.5, 0.0]]
    assert result.labels.tolist() == [0, 0, 1, 1]


def test_kmeans_warm_start_splits_off_the_most_distant_point_to_get_back_to_k():
    # Previous (0,0), (100,100), (12,0); points 0, 1, 10, 11, 15 on the x axis.
    # Re-centred: (0.5,0) from {0, 1}, (12,0) from {10, 11, 15}; (100,100) empty, dropped.
    # Distances to the nearest centre: 0.5, 0.5, 2, 1, 3 -> (15,0) split off as the third centre,
    # and out of its old cluster, which is re-centred at 10.5. The new cluster takes the next id.
    points = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [11.0, 0.0], [15.0, 0.0]])
    result = kmeans(
        points,
        3,
        init=np.array([[0.0, 0.0], [100.0, 100.0], [12.0, 0.0]]),
        init_labels=np.array([0, 0, 2, 2, 2]),
    )
    assert result.centres.tolist() == [[0.5, 0.0], [10.5, 0.0], [15.0, 0.0]]
    assert result.labels.tolist() == [0, 0, 1, 1, 2]
    assert result.ids.tolist() == [0, 2, 3]
    assert result.origin.tolist() == [0, 2, -1]


def test_a_warm_start_re_centres_after_each_split_and_ties_go_to_the_last_point():
    # One previous cluster with the points at 0, 4 and 20; three clusters wanted.
    # Re-centred at 8: distances 8, 4, 12 -> 20 splits off, and the old cluster, now {0, 4},
    # is re-centred at 2. Distances 2, 2, 0: a tie between 0 and 4, which goes to the later
    # point, 4. (Without the re-centring the old centre would stay at 8 and 0 would split off.)
    points = np.array([[0.0, 0.0], [4.0, 0.0], [20.0, 0.0]])
    result = kmeans(points, 3, init=np.array([[8.0, 0.0]]), init_labels=np.array([0, 0, 0]))
    assert result.centres.tolist() == [[0.0, 0.0], [20.0, 0.0], [4.0, 0.0]]
    assert result.labels.tolist() == [0, 2, 1]
    assert result.ids.tolist() == [0, 1, 2]
    assert result.origin.tolist() == [0, -1, -1]


def test_a_cluster_left_without_points_is_dropped_at_once():
    # Previous clusters {-1, 1} (centre 0), {0, 10} (centre 5) and {9, 11} (centre 10). The
    # middle one's members are nearer the other centres, so the first step leaves it empty:
    # Pol.is drops it there, and its id (1) is gone.
    points = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [10.0, 0.0], [9.0, 0.0], [11.0, 0.0]])
    result = kmeans(
        points,
        3,
        init=np.array([[0.0, 0.0], [5.0, 0.0], [10.0, 0.0]]),
        init_labels=np.array([0, 0, 1, 1, 2, 2]),
    )
    assert result.ids.tolist() == [0, 2]
    assert result.centres.tolist() == [[0.0, 0.0], [10.0, 0.0]]
    assert result.labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_silhouette_of_a_toy_layout_with_a_singleton():
    # Clusters {0, 2}, {10, 12}, {30} on the x axis; s = (b - a) / max(a, b):
    #   x=0:  a = 2, b = min((10+12)/2, 30) = 11 -> 9/11
    #   x=2:  a = 2, b = min((8+10)/2, 28)  = 9  -> 7/9
    #   x=10: a = 2, b = min((10+8)/2, 20)  = 9  -> 7/9
    #   x=12: a = 2, b = min((12+10)/2, 18) = 11 -> 9/11
    #   x=30: alone in its cluster -> 0
    # mean = (18/11 + 14/9) / 5 = (162 + 154) / 99 / 5 = 316/495 = 0.638384
    points = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [12.0, 0.0], [30.0, 0.0]])
    assert silhouette(points, np.array([0, 0, 1, 1, 2])) == pytest.approx(0.638384, abs=1e-6)


def test_a_point_alone_in_its_cluster_scores_zero():
    # {0}, {10, 11}: x=10: a = 1, b = 10 -> 9/10; x=11: a = 1, b = 11 -> 10/11; x=0: 0.
    # mean = (0.9 + 0.909091) / 3 = 0.603030
    points = np.array([[0.0, 0.0], [10.0, 0.0], [11.0, 0.0]])
    assert silhouette(points, np.array([0, 1, 1])) == pytest.approx(0.603030, abs=1e-6)


def test_the_smoother_takes_the_first_best_k_directly():
    assert Smoother().step(3, 4) == Smoother(last_k=3, last_k_count=1, smoothed_k=3)


def _published(smoother: Smoother, bests: list[int]) -> list[int | None]:
    published = []
    for best in bests:
        smoother = smoother.step(best, 4)
        published.append(smoother.current)
    return published


def test_a_new_k_is_published_after_four_wins_in_a_row():
    assert _published(Smoother().step(3, 4), [2, 2, 2, 2]) == [3, 3, 3, 2]


def test_the_current_k_winning_again_resets_the_count():
    assert _published(Smoother().step(3, 4), [2, 2, 2, 3, 2, 2, 2, 2]) == [3] * 7 + [2]


def test_another_k_winning_in_between_resets_the_count():
    assert _published(Smoother().step(3, 4), [2, 2, 4, 2, 2, 2, 2]) == [3] * 6 + [2]


def _blobs(centres, per_blob):
    """Tight blobs of distinct points (a 3 x n grid, 0.1 apart) around the given centres.

    The points take turns between the blobs, so that the first distinct points (k-means's cold
    start) fall in different blobs.
    """
    grid = [(0.1 * i, 0.1 * j) for i in range(3) for j in range(per_blob // 3)]
    return np.array([(cx + dx, cy + dy) for dx, dy in grid for cx, cy in centres])


THREE_BLOBS = _blobs([(0, 0), (10, 0), (0, 10)], 12)
TWO_BLOBS = _blobs([(0, 0), (10, 0)], 18)


def test_groups_tried_grow_by_one_per_twelve_base_clusters_up_to_five():
    # max_k = min(5, 2 + floor(n_base / 12)); each distinct point is its own base cluster here.
    params = MathParams()
    for n, tried in [(1, [2]), (11, [2]), (12, [2, 3]), (36, [2, 3, 4, 5]), (100, [2, 3, 4, 5])]:
        points = np.column_stack([np.arange(n, dtype=float), np.zeros(n)])
        result = cluster(points, params)
        assert sorted(result.silhouettes) == tried, n


def test_clustering_publishes_a_new_k_only_on_its_fourth_win_in_a_row():
    params = MathParams()
    result = cluster(THREE_BLOBS, params)
    assert (result.best_k, result.k) == (3, 3)
    published = []
    for _ in range(4):
        result = cluster(TWO_BLOBS, params, Previous(smoother=result.smoother))
        assert result.best_k == 2
        published.append(result.k)
    assert published == [3, 3, 3, 2]


def test_a_single_base_cluster_still_records_k_2_in_the_smoother():
    # Pol.is runs k = 2 on one base cluster: one group, silhouette 0, and k = 2 enters the
    # smoother as the first best k. A later best k must then win four updates in a row.
    params = MathParams()
    first = cluster(np.zeros((5, 2)), params)
    assert (first.silhouettes, first.best_k, first.k) == ({2: 0.0}, 2, 1)
    assert first.smoother == Smoother(last_k=2, last_k_count=1, smoothed_k=2)
    result, published = first, []
    for _ in range(4):
        result = cluster(THREE_BLOBS, params, Previous(smoother=result.smoother))
        assert result.best_k == 3
        published.append(result.smoother.current)
    assert published == [2, 2, 2, 3]


def test_the_engine_publishes_a_new_k_only_on_its_fourth_update_in_a_row():
    # 36 participants in three opinion groups (participant i in group i % 3), 12 statements:
    # s0-s3 split groups 0 and 2 (agree) from group 1, s4-s7 split group 2 (agree) from the
    # rest, s8-s11 are noise. Moderating s4-s7 out merges groups 0 and 2: the best k becomes 2.
    noise = np.random.RandomState(0).randint(-1, 2, size=(36, 4))
    cells = []
    for i in range(36):
        g = i % 3
        cells += [(i, j, 1 if g != 1 else -1) for j in range(4)]
        cells += [(i, j, 1 if g == 2 else -1) for j in range(4, 8)]
        cells += [(i, 8 + j, int(noise[i, j])) for j in range(4)]
    p, s, v = zip(*cells, strict=True)
    result, state = compute(VoteEvents(np.arange(len(v)), p, s, v))
    assert (result.best_k, result.k) == (3, 3)
    truth = np.arange(36) % 3
    # the three groups found
    assert len({(g, t) for g, t in zip(result.group, truth, strict=True)}) == 3
    merged = np.zeros(12, bool)
    merged[4:8] = True
    seen = []
    for _ in range(4):
        result, state = update(state, moderated_out=merged)
        seen.append((result.best_k, result.k))
    assert seen == [(2, 3), (2, 3), (2, 3), (2, 2)]


def test_a_warm_start_follows_the_previous_members_not_the_nearest_points():
    # Cluster 0 had the participants now at x = 10 and 11, cluster 1 those now at x = 0 and 1;
    # the previous centres sit where the *other* cluster's members are today. Pol.is restarts
    # each cluster at its members' mean (10.5 and 0.5), so the ids follow the people.
    points = np.array([[10.0, 0.0], [11.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    previous_centres = np.array([[0.5, 0.0], [10.5, 0.0]])
    result = kmeans(points, 2, init=previous_centres, init_labels=np.array([0, 0, 1, 1]))
    assert result.labels.tolist() == [0, 0, 1, 1]
    assert result.centres.tolist() == [[10.5, 0.0], [0.5, 0.0]]
    assert result.origin.tolist() == [0, 1]
    # Without member lists, the same centres take today's nearest points instead.
    nearest = kmeans(points, 2, init=previous_centres)
    assert nearest.labels.tolist() == [1, 1, 0, 0]


def test_newcomers_do_not_move_a_warm_started_centre_and_a_lost_cluster_is_replaced():
    # Previous cluster 1 lost its only member (now labelled -1 as a newcomer would be): it is
    # dropped, and the point farthest from the remaining centre is split off in its place.
    points = np.array([[0.0, 0.0], [0.0, 2.0], [8.0, 0.0]])
    result = kmeans(
        points, 2, init=np.array([[0.0, 1.0], [5.0, 5.0]]), init_labels=np.array([0, 0, -1])
    )
    assert result.origin.tolist() == [0, -1]
    assert result.labels.tolist() == [0, 0, 1]
    assert result.centres.tolist() == [[0.0, 1.0], [8.0, 0.0]]
