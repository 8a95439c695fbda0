"""Child process: run polis_like.math once on a prepared case.

    python ours_run.py CASE.npz OUT.json [--new-votes N] [--random-state 0]

Timed: one ``compute`` (votes -> matrix -> PCA -> clusters -> statistics), or with
``--new-votes N`` one ``update`` with the latest N events (in time order) after a ``compute`` on
all the others. Not timed: imports, loading the case, and a warm-up ``compute`` and ``update``
on a tiny synthetic conversation that pay for lazy imports and JIT compilation, as a
long-running worker would have (their time is recorded as ``warmup_s``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import measure

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    """Parse the arguments, run once, write the record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case")
    parser.add_argument("out")
    parser.add_argument("--new-votes", type=int, default=0)
    parser.add_argument("--random-state", type=int, default=0)
    args = parser.parse_args()
    try:
        from polis_like.conversation import VoteEvents
        from polis_like.math import MathParams, compute, update

        import synthetic

        params = MathParams(random_state=args.random_state)
        case = measure.load_case(args.case)
        events = VoteEvents(
            case["timestamp_ms"], case["participant"], case["statement"], case["vote"]
        )
        sizes = dict(
            n_participants=int(case["n_participants"]),
            n_statements=int(case["n_statements"]),
            moderated_out=case["moderated_out"],
            meta=case["meta"],
        )
        truth = case.get("truth")
        del case

        tiny, _ = synthetic.generate(300, 40, seed=1)
        half = tiny.time_order()[: len(tiny) // 2]

        def warm_up():
            # a compute and an update: every compiled kernel (the warm start's too) is loaded
            _, tiny_state = compute(
                tiny.take(half), n_participants=300, n_statements=40, params=params
            )
            return update(tiny_state, tiny.take(tiny.time_order()[len(tiny) // 2 :]))

        _, warmup = measure.measure(warm_up)

        if args.new_votes:
            order = events.time_order()
            old, new = events.take(order[: -args.new_votes]), events.take(order[-args.new_votes :])
            _, state = compute(old, params=params, **sizes)
            del old, events
            (result, _), record = measure.measure(lambda: update(state, new))
        else:
            (result, _), record = measure.measure(lambda: compute(events, params=params, **sizes))

        timings = dict(result.timings)
        engine_total = timings.pop("total", None)
        clustered = result.group >= 0
        record.update(
            status="ok",
            timings=timings,
            engine_total_s=engine_total,
            n_votes=int(result.n_votes),
            warmup_s=warmup["wall_s"],
            k=int(result.k),
            n_clustered=int(clustered.sum()),
            ari=_ari(truth, result.group) if truth is not None else None,
        )
        measure.emit(args.out, record)
    except MemoryError as exc:
        measure.fail(args.out, exc)


def _ari(truth: np.ndarray, group: np.ndarray) -> float:
    """Adjusted Rand index of the groups against the planted ones, over clustered participants."""
    from sklearn.metrics import adjusted_rand_score

    clustered = group >= 0
    return float(adjusted_rand_score(truth[: len(group)][clustered], group[clustered]))


if __name__ == "__main__":
    main()
