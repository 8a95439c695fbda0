"""UMAP as an alternative to PCA for placing participants (``MathParams(reducer="umap")``)."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

#: UMAP needs a neighbourhood; below this many participants the PCA map is kept.
MIN_POINTS = 16


def umap_positions(
    centred: sp.csr_matrix, scale: np.ndarray, rows: np.ndarray, random_state: int
) -> np.ndarray | None:
    """2-D UMAP embedding of the selected participants' scaled, centred vote rows.

    Parameters
    ----------
    centred : csr_matrix of shape (n_participants, n_statements)
        The centred votes (see ``pca.centre``).
    scale : ndarray of shape (n_participants,)
        The sparsity-aware factor of each participant, applied to their row as in the projection.
    rows : ndarray of int
        The participants to embed.
    random_state : int
        Seed; UMAP is then single-threaded and reproducible.

    Returns
    -------
    ndarray of shape (len(rows), 2), or None when there are too few participants to embed.
    """
    if len(rows) < MIN_POINTS:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # it warns that its optional TensorFlow part is absent
            import umap
    except ImportError as error:  # pragma: no cover - umap-learn is a dependency
        raise ImportError("the UMAP reducer needs umap-learn: pip install umap-learn") from error
    data = sp.diags(scale[rows]) @ centred[rows]
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(15, len(rows) - 1),
        random_state=random_state,
        n_jobs=1,
        metric="euclidean",
    )
    with warnings.catch_warnings():
        # umap-learn warns about its own internals (spectral init fallbacks, numba); the
        # embedding is still the documented result.
        warnings.simplefilter("ignore")
        return np.asarray(reducer.fit_transform(data), dtype=np.float64)
