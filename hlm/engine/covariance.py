"""The covariance layout of the random effects: θ <-> Λ <-> standard deviations and correlations.

One place for lme4's conventions: θ holds each term's lower-triangular relative factor Λ_k column
by column, diagonal entries bounded below by 0; VarCorr = σ²Λ_kΛ_k'; parameter names as lme4's
(oldNames = FALSE): sd_x|g, cor_x.y|g, sigma; terms repeated on one factor labelled id, id.1.
"""
import functools
from dataclasses import dataclass
from functools import cached_property

import numpy as np


def read_only(array):
    """A view of the array that cannot be written through: what a frozen fit holds cannot
    change under it (the array passed in is left as it was)."""
    view = np.asarray(array).view()
    view.flags.writeable = False
    return view


def read_only_sparse(matrix):
    """The sparse matrix with read-only data and indices, so no entry can be changed in place."""
    for array in (matrix.data, matrix.indices, matrix.indptr):
        array.flags.writeable = False
    return matrix


@functools.cache
def lower_triangle_indices(q):
    """(rows, cols) of a q×q lower triangle in lme4's θ order: column by column (read-only, shared)."""
    cols, rows = np.triu_indices(q)
    return read_only(rows), read_only(cols)


@dataclass(frozen=True, eq=False)
class TermLayout:
    """Where one random-effects term's Λ_k sits in θ."""
    group: str
    label: str            # as as.data.frame(VarCorr()) prints it: a repeated group becomes id.1
    columns: tuple
    start: int            # position of the term's first entry in θ
    rows: np.ndarray      # row and column in Λ_k of each of the term's entries of θ
    cols: np.ndarray

    @property
    def q(self):
        return len(self.columns)

    @property
    def positions(self):
        return slice(self.start, self.start + len(self.rows))


@dataclass(frozen=True, eq=False)
class CovarianceLayout:
    """θ's layout: the terms' slices of θ, their bounds and lme4's parameter names."""
    terms: tuple          # TermLayout per random-effects term, in the design's order

    @classmethod
    def from_terms(cls, terms):
        """The layout of a design's random-effects terms (anything with .group and .columns)."""
        out, start, seen = [], 0, {}
        for term in terms:
            repeat = seen.get(term.group, 0)
            seen[term.group] = repeat + 1
            rows, cols = lower_triangle_indices(len(term.columns))
            out.append(TermLayout(term.group, term.group if repeat == 0 else f"{term.group}.{repeat}",
                                  tuple(term.columns), start, read_only(rows), read_only(cols)))
            start += len(rows)
        return cls(tuple(out))

    @cached_property
    def size(self):
        """The length of θ."""
        return sum(len(t.rows) for t in self.terms)

    @property
    def labels(self):
        return tuple(t.label for t in self.terms)

    @cached_property
    def entries(self):
        """(term index, row, column) of each entry of θ, in θ's order."""
        return tuple((k, int(r), int(c)) for k, t in enumerate(self.terms) for r, c in zip(t.rows, t.cols))

    @cached_property
    def bounded(self):
        """True for the diagonal entries of Λ, the ones bounded below by 0 (read-only)."""
        return read_only(np.array([r == c for _, r, c in self.entries], dtype=bool))

    @cached_property
    def lower(self):
        """Lower bounds of θ: 0 on the diagonal of each Λ_k, -inf off it (read-only: every fit reads it)."""
        return read_only(np.where(self.bounded, 0.0, -np.inf))

    def initial_theta(self):
        """lme4's start: identity relative factors (1 on the diagonal, 0 off it)."""
        return self.bounded.astype(float)

    @property
    def names(self):
        """lme4's names of the variance parameters, sd/cor in θ's order then sigma."""
        names = []
        for term in self.terms:
            for r, c in zip(term.rows, term.cols):
                names.append(f"sd_{term.columns[r]}|{term.group}" if r == c else
                             f"cor_{term.columns[r]}.{term.columns[c]}|{term.group}")
        return tuple(names) + ("sigma",)

    def factors(self, theta):
        """Λ_k of each term, filled from θ."""
        out = []
        for term in self.terms:
            lam = np.zeros((term.q, term.q))
            lam[term.rows, term.cols] = theta[term.positions]
            out.append(lam)
        return tuple(out)

    def covariances(self, theta, sigma):
        """σ²Λ_kΛ_k' of each term."""
        return tuple(sigma ** 2 * lam @ lam.T for lam in self.factors(theta))

    def sdcor(self, theta, sigma):
        """lme4's Cv_to_Sv(θ, s = σ): standard deviations and correlations in θ's order, then σ
        (a correlation with a zero standard deviation is NaN, as in lme4)."""
        out = []
        for term, cov in zip(self.terms, self.covariances(np.asarray(theta, dtype=float), sigma)):
            sd = np.sqrt(np.diag(cov))
            for r, c in zip(term.rows, term.cols):
                if r == c:
                    out.append(sd[r])
                else:
                    out.append(cov[r, c] / (sd[r] * sd[c]) if sd[r] > 0 and sd[c] > 0 else np.nan)
        return np.array(out + [sigma])

    def theta_from_sdcor(self, sdcor):
        """lme4's Sv_to_Cv: standard deviations and correlations, then σ (as sdcor() returns
        them) -> θ, relative to σ."""
        sdcor = np.asarray(sdcor, dtype=float)
        sigma, theta = sdcor[-1], np.zeros(len(sdcor) - 1)
        for term in self.terms:
            sd, corr = np.zeros(term.q), np.eye(term.q)
            for r, c, v in zip(term.rows, term.cols, sdcor[term.positions]):
                if r == c:
                    sd[r] = v
                else:
                    corr[r, c] = corr[c, r] = v
            chol = _semidefinite_cholesky(np.outer(sd, sd) * corr / sigma ** 2)
            theta[term.positions] = chol[term.rows, term.cols]
        return theta

    def sdcor_bounds(self):
        """(lower, upper) of sdcor(): standard deviations and σ in [0, inf), correlations in [-1, 1]."""
        bounded = np.append(self.bounded, True)
        return np.where(bounded, 0.0, -1.0), np.where(bounded, np.inf, 1.0)


def _semidefinite_cholesky(m):
    """Lower Cholesky factor that leaves zero columns where m is only semidefinite."""
    q = m.shape[0]
    L = np.zeros_like(m)
    for j in range(q):
        d = m[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-14 * max(m[j, j], 1e-300):
            continue
        L[j, j] = np.sqrt(d)
        for i in range(j + 1, q):
            L[i, j] = (m[i, j] - L[i, :j] @ L[j, :j]) / L[j, j]
    return L
