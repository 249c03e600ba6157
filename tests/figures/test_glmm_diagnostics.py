"""GLMM diagnostic figures: the numbers drawn (DHARMa's rank transform), both languages without
missing glyphs, byte-identical files on a second run, and a term name drawn as written."""
import dataclasses
import re
import warnings

import numpy as np
import pytest
from glmm_reference import fit

from hlm.analysis.glmm_checks import binned_residuals, dispersion_test, simulate_residuals, uniformity_test
from hlm.figures.glmm_diagnostics import (binned_quartiles, p_text, plot_binned_residuals, plot_scaled_residuals,
                                          rank_transform)


@pytest.fixture(scope="module")
def checks():
    model = fit("contraception")
    scaled = simulate_residuals(model, nsim=100, seed=1)
    return {"binned": binned_residuals(model), "scaled": scaled,
            "uniformity": uniformity_test(scaled), "dispersion": dispersion_test(scaled)}


def draw_both(checks, folder, language):
    paths = {"binned": [folder / "binned.svg", folder / "binned.png"],
             "scaled": [folder / "scaled.svg", folder / "scaled.png"]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_binned_residuals(checks["binned"], paths["binned"], language)
        plot_scaled_residuals(checks["scaled"], checks["uniformity"], checks["dispersion"], paths["scaled"], language)
    missing = [str(w.message) for w in caught if "missing from" in str(w.message) or "Glyph" in str(w.message)]
    return [path for both in paths.values() for path in both], missing


def test_rank_transform_is_dharmas():
    # R: DHARMa:::rankTransform(c(3, 1, 2, 2)) = rank(x, ties.method = "average") / max(rank) = 1, 0.25, 0.625, 0.625
    assert np.allclose(rank_transform([3, 1, 2, 2]), [1, 0.25, 0.625, 0.625])


def test_binned_quartiles_leave_out_empty_bins():
    x = np.array([0.05, 0.06, 0.07, 0.95, 0.96])
    centres, quartiles = binned_quartiles(x, np.array([0.1, 0.2, 0.3, 0.6, 0.8]))
    assert np.allclose(centres, [0.05, 0.95])
    assert np.allclose(quartiles, [[0.15, 0.2, 0.25], [0.65, 0.7, 0.75]])


def test_p_text():
    assert (p_text(0.0), p_text(0.0321), p_text(1.0)) == ("< 0.001", "0.032", "1.000")


@pytest.mark.parametrize("language", ["zh", "en"])
def test_figures_render_without_missing_glyphs_and_identically_twice(checks, tmp_path, language):
    paths, missing = draw_both(checks, tmp_path, language)
    assert missing == []
    first = {path.name: path.read_bytes() for path in paths}
    draw_both(checks, tmp_path, language)
    assert {path.name: path.read_bytes() for path in paths} == first
    assert first["binned.png"][:8] == b"\x89PNG\r\n\x1a\n" and b"tEXtSoftware" not in first["binned.png"]
    assert "<dc:date>" not in first["scaled.svg"].decode("utf-8")


def test_a_term_name_is_drawn_as_written(checks, tmp_path):
    # a predictor named like mathtext must not be parsed as math (the figure style turns mathtext off):
    # its axis label draws all 11 characters of '$age^2$ <b>', not mathtext's 4 (a, g, e, 2)
    name = "$age^2$ <b>"
    plot_binned_residuals(dataclasses.replace(checks["binned"], term=name), tmp_path / "term.svg")
    svg = (tmp_path / "term.svg").read_text(encoding="utf-8")
    label = re.search(r"<!-- \$age\^2\$ &lt;b&gt; -->(.*?)</g>\s*</g>", svg, re.S)
    assert label is not None
    assert label.group(1).count("<use ") == len(name)        # one glyph per character, the space too
