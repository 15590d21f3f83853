"""Plain helpers: vector maths (numpy and plain Python agree), the catalog, prices."""

from __future__ import annotations

import math

import pytest
from classroom import _vectors
from classroom._catalog import Catalog, format_cost, parameters_for, provider_of


def test_cosine_and_nearest():
    assert _vectors.cosine([1, 0], [1, 0]) == pytest.approx(1)
    assert _vectors.cosine([1, 0], [0, 1]) == pytest.approx(0)
    assert _vectors.nearest([1, 0.1], [[0, 1], [1, 0], [-1, 0]], k=2)[0][0] == 1


def test_pca_with_and_without_numpy(monkeypatch):
    vectors = [[1, 2, 0.5], [2, 4.1, 1], [3, 6, 1.4], [0, 0.2, 3], [5, 1, 1]]
    fast = _vectors.pca_2d(vectors)
    monkeypatch.setattr(_vectors, "_np", None)
    plain = _vectors.pca_2d(vectors)
    for (a, b), (c, d) in zip(fast, plain, strict=True):
        # Components are defined up to their sign.
        assert abs(a) == pytest.approx(abs(c), abs=1e-6)
        assert abs(b) == pytest.approx(abs(d), abs=1e-6)
    assert _vectors.pca_2d([]) == [] and _vectors.pca_2d([[1, 2]]) == [(0.0, 0.0)]
    assert not any(math.isnan(x) for p in plain for x in p)


def test_catalog_prices_and_kinds():
    catalog = Catalog.from_json({"data": [
        {"id": "gpt-4o-mini", "provider": "openai", "kind": "chat",
         "pricing": {"input_per_mtok": "0.15", "output_per_mtok": "0.60"}},
        {"id": "mock/echo", "provider": "mock", "kind": "chat",
         "pricing": {"input_per_mtok": "0", "output_per_mtok": "0"}},
        {"id": "mock/embed", "provider": "mock", "kind": "embedding"},
        {"id": "tts-1", "provider": "openai", "kind": "tts"},
    ]})
    assert catalog.cost("gpt-4o-mini", 1000, 1000) == pytest.approx(0.00075)
    assert catalog.cost("mock/embed", 10, 0) is None
    assert catalog.ids("chat", mock_only=True) == ["mock/echo"]
    assert catalog.ids("speech") == ["tts-1"]
    assert catalog.cheapest() == "mock/echo"
    assert format_cost(None) == "unpriced" and format_cost(0) == "free"
    assert format_cost(0.00075) == "$0.000750" and format_cost(2.5) == "$2.50"


def test_providers_and_their_parameters():
    assert provider_of("claude-haiku-4-5") == "anthropic"
    assert provider_of("gemini-2.5-flash") == "google"
    assert provider_of("mock/lorem") == "mock"
    assert {p.name for p in parameters_for("anthropic")} == {"temperature", "top_p", "top_k",
                                                             "max_tokens"}
    assert "top_k" not in {p.name for p in parameters_for("openai")}
