"""Small vector maths for embeddings: cosine similarity, nearest neighbours, 2-D PCA.

Uses numpy when it is installed and plain Python otherwise: the lessons need
only a few dozen short vectors, and both give the same answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Vector = Sequence[float]

try:  # pragma: no branch
    import numpy as _np
except ImportError:  # pragma: no cover - numpy is optional
    _np = None


def cosine(a: Vector, b: Vector) -> float:
    """Cosine similarity: 1 same direction, 0 unrelated, -1 opposite."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def nearest(query: Vector, vectors: Sequence[Vector], k: int = 3) -> list[tuple[int, float]]:
    """``(index, similarity)`` of the ``k`` vectors most similar to ``query``, best first."""
    scored = [(i, cosine(query, v)) for i, v in enumerate(vectors)]
    scored.sort(key=lambda item: -item[1])
    return scored[:k]


def pca_2d(vectors: Sequence[Vector]) -> list[tuple[float, float]]:
    """Each vector projected on the two directions along which the vectors vary most."""
    n = len(vectors)
    if n == 0:
        return []
    if n == 1:
        return [(0.0, 0.0)]
    if _np is not None:
        data = _np.asarray(vectors, dtype=float)
        data = data - data.mean(axis=0)
        _, _, vt = _np.linalg.svd(data, full_matrices=False)
        components = vt[:2]
        projected = data @ components.T
        if projected.shape[1] < 2:
            projected = _np.column_stack([projected, _np.zeros(n)])
        return [(float(x), float(y)) for x, y in projected[:, :2]]
    return _pca_2d_plain(vectors)


def _pca_2d_plain(vectors: Sequence[Vector]) -> list[tuple[float, float]]:
    dim = len(vectors[0])
    mean = [sum(v[d] for v in vectors) / len(vectors) for d in range(dim)]
    centred = [[v[d] - mean[d] for d in range(dim)] for v in vectors]
    axes: list[list[float]] = []
    for _ in range(2):
        axis = _power_iteration(centred, axes, dim)
        axes.append(axis)
    return [
        (sum(r[d] * axes[0][d] for d in range(dim)), sum(r[d] * axes[1][d] for d in range(dim)))
        for r in centred
    ]


def _power_iteration(rows: list[list[float]], found: list[list[float]], dim: int
                     ) -> list[float]:
    """The leading direction of ``rows`` orthogonal to the ``found`` ones."""
    axis = [1.0 / math.sqrt(dim) + 0.01 * ((d * 7919) % 13) for d in range(dim)]
    for _ in range(200):
        scores = [sum(r[d] * axis[d] for d in range(dim)) for r in rows]
        new = [sum(s * r[d] for s, r in zip(scores, rows, strict=True)) for d in range(dim)]
        for other in found:
            dot = sum(new[d] * other[d] for d in range(dim))
            new = [new[d] - dot * other[d] for d in range(dim)]
        norm = math.sqrt(sum(x * x for x in new))
        if norm == 0:
            return [0.0] * dim
        new = [x / norm for x in new]
        if sum(abs(a - b) for a, b in zip(new, axis, strict=True)) < 1e-10:
            return new
        axis = new
    return axis
