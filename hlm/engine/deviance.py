"""The profiled deviance of a linear mixed model as a function of θ alone.

Bates et al. (2015) penalized least squares with MixedModels.jl's blocked Cholesky: the
cross-products of [Z X y] are formed once; each evaluation factors

    [Λ'Z'ZΛ + I   Λ'Z'X   Λ'Z'y]
    [   X'ZΛ       X'X     X'y ]  =  L L'
    [   y'ZΛ       y'X     y'y ]

blockwise. Terms on one grouping factor form one block, and blocks are ordered by size, the one
with most random effects first (MixedModels.jl's order). The first block is block-diagonal (J
blocks of q×q; a scalar term's stay diagonal) and is factored level by level by one compiled loop,
which also sums its share of the Schur complement of everything after it (further grouping factors,
X and y: the dense "tail" of size m) into the tail's lower triangle. For crossed and nested models
that share is sparse: level j touches only the tail rows where A21_j is not zero (the levels of the
other factors it meets, X and y), found once at construction, so it costs Σ_j (rows of j)², not
J·m². The tail is then scaled by Λ and factored in place: all of it in one compiled call
(kernels.factor_blocks), except that a tail of more than 64 columns is factored by LAPACK on one
thread. With one grouping factor an evaluation costs O(J·q²·m + m³), independent of the number of rows.

Related models share the cross-products: a new response (lme4's refit, MixedModels.jl's refit!)
forms only Z'y, X'y and y'y; a fixed-effect coefficient held fixed (profiles) is a linear map of
the [X y] rows and needs no pass over the data; ML and REML differ only in the criterion.
"""
import contextlib
import functools
import math
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp
import threadpoolctl

from .covariance import CovarianceLayout, read_only, read_only_sparse
from .derivatives import DERIVATIVE_STEP, derivatives
from .kernels import (
    criterion_derivatives,
    entry_products,
    factor_blocks,
    first_block_columns,
    level_products,
    log_determinants,
    profiled_criterion,
    tail_criterion,
    with_arguments,
)

# Tails up to this size are factored by compiled loops, larger ones by LAPACK (_lower_cholesky).
COMPILED_TAIL_SIZE = 64


@functools.cache
def _blas_controller():
    return threadpoolctl.ThreadpoolController()


@dataclass(frozen=True, eq=False)
class Block:
    """The random-effects terms on one grouping factor, factored together.

    `(1 | id) + (0 + ses | id)` is two terms for lme4's θ and output but one block of q = 2
    with a block-diagonal Λ here (MixedModels.jl amalgamates them the same way), so it costs
    what `(1 + ses | id)` costs.
    """
    members: tuple          # indices of the design's terms in this block
    offsets: tuple          # first column of each member within the block
    q: int
    nlevels: int
    codes: np.ndarray
    matrix: np.ndarray      # (n, q): the members' matrices side by side


def group_terms(terms):
    """Blocks in order of first appearance; terms on the same grouping factor share one."""
    members = {}
    for index, term in enumerate(terms):
        members.setdefault(term.group, []).append(index)
    blocks = []
    for indices in members.values():
        widths = [terms[i].q for i in indices]
        matrix = terms[indices[0]].matrix if len(indices) == 1 else np.column_stack([terms[i].matrix for i in indices])
        blocks.append(Block(tuple(indices), tuple(np.cumsum([0] + widths[:-1]).tolist()), sum(widths),
                            terms[indices[0]].nlevels, read_only(terms[indices[0]].codes), read_only(matrix)))
    return tuple(blocks)


def by_size(blocks):
    """Blocks with the most random effects first (MixedModels.jl's order): the first block is the
    one eliminated level by level, so the largest one leaves the smallest dense tail."""
    return tuple(sorted(blocks, key=lambda block: -block.nlevels * block.q))


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The pieces of one evaluation of the blocked Cholesky factor at θ (writable: the optimizer
    makes thousands; a fit keeps a read_only() one)."""
    theta: np.ndarray
    factors: tuple       # Λ_k of each term
    block_factors: tuple  # Λ of each block (block-diagonal in its members' Λ_k)
    L1: np.ndarray       # (J, q, q) diagonal blocks of the first block
    L1_inv: np.ndarray   # their inverses
    tail: np.ndarray     # (m, m) lower Cholesky factor of the tail's Schur complement
    logdet_L: float      # log |L_θ|²
    logdet_RX: float     # log |R_X|²
    r2: float            # penalized residual sum of squares


def read_only_evaluation(ev):
    """The evaluation with read-only arrays, for a fit to keep."""
    def frozen(value):
        if isinstance(value, tuple):
            return tuple(map(read_only, value))
        return read_only(value) if isinstance(value, np.ndarray) else value
    # vars(): the fields in order, without fields()' cost (Evaluation has no __slots__ and caches nothing)
    return Evaluation(*map(frozen, vars(ev).values()))


@dataclass(frozen=True, eq=False)
class ProfiledDeviance:
    """-2 log-likelihood (ML) or the REML criterion of a Design, as a function of θ.

    It holds the cross-products of [Z X y] and nothing an evaluation changes. with_response,
    with_coefficient_fixed and with_reml give the deviance of a related model that shares
    every cross-product the change leaves alone.
    """
    reml: bool
    n: int
    layout: CovarianceLayout
    blocks: tuple        # Block per grouping factor, the largest first (by_size)
    x_columns: tuple     # the columns of X (views), for the cross-products of a new response
    A11: np.ndarray      # (J, q, q): Z_j'Z_j of the first block
    A21: object          # [Z_later X y]'Z_first: (J, m, q) per level; sparse (m, J q) with later blocks
    A22: np.ndarray      # (m, m): [Z_later X y]'[Z_later X y]

    @classmethod
    def from_design(cls, design, reml):
        """The deviance of a design: every cross-product formed once, here."""
        blocks = by_size(group_terms(design.terms))
        x_columns = tuple(read_only(column) for column in design.X.T)
        if len(blocks) > 1:
            A21, A22 = _crossed_cross_products(blocks, x_columns, np.asarray(design.y, dtype=float))
        else:
            A21, A22 = _with_response(blocks, x_columns, *_x_cross_products(blocks[0], design.X), design.y)
        return cls(bool(reml), design.n, CovarianceLayout.from_terms(design.terms), blocks, x_columns,
                   read_only(_block_cross_products(blocks[0])), A21, A22)

    # ---- related models, sharing the cross-products ---------------------------------------

    def with_response(self, y):
        """The same model on response y: only Z'y, X'y and y'y are formed, from the data."""
        later = len(self.blocks) > 1
        A21 = self.A21[:-1] if later else self.A21[:, :-1]
        A21, A22 = _with_response(self.blocks, self.x_columns, A21, self.A22[:-1, :-1], y)
        return replace(self, A21=A21, A22=A22)

    def with_coefficient_fixed(self, j, value):
        """The model with β_j held at `value` (lme4's profile of a fixed effect): column j of X
        dropped and response y − value·x_j, from the cross-products alone, no pass over the data."""
        m, column = len(self.A22), self.n_random_tail + j
        keep = np.delete(np.arange(m), column)
        rows = np.append(np.arange(m - 1), m - 2)
        combine = sp.csr_matrix((np.append(np.ones(m - 1), -value), (rows, np.append(keep, column))),
                                shape=(m - 1, m))              # the old tail's rows -> the new tail's
        A22 = read_only(combine @ (combine @ self.A22).T)
        if len(self.blocks) > 1:
            A21 = read_only_sparse((combine @ self.A21).tocsc())
        else:
            J, _, q = self.A21.shape
            A21 = (combine @ self.A21.transpose(1, 0, 2).reshape(m, -1)).reshape(m - 1, J, q).transpose(1, 0, 2)
            A21 = read_only(np.ascontiguousarray(A21))
        return replace(self, x_columns=self.x_columns[:j] + self.x_columns[j + 1:], A21=A21, A22=A22)

    def with_reml(self, reml):
        """The same model under the other criterion (ML or REML)."""
        return replace(self, reml=bool(reml))

    # ---- the objective ---------------------------------------------------------------------

    @property
    def p(self):
        return len(self.x_columns)

    def objective(self, theta):
        """The profiled deviance (ML) or REML criterion at θ: what the optimizer minimises; a small
        tail's in one compiled call (tail_criterion), as its Python overhead would cost more than it."""
        theta = np.asarray(theta, dtype=float)
        if self._compiled_tail:
            value, info = self._tail_criterion(theta)
            if info:
                raise np.linalg.LinAlgError(f"Schur complement not positive definite at θ = {theta}")
            return value
        *_, logdet_L, logdet_RX, r2 = self._factor(theta, np.empty(self.A22.shape))
        return self._criterion(logdet_L, logdet_RX, r2)

    def central_derivatives(self, theta):
        """(gradient, Hessian) of the objective at θ by lme4's central differences (deriv12, its
        convergence check): a small tail's 1 + 2k² evaluations in one compiled call."""
        theta = np.asarray(theta, dtype=float)
        if not self._compiled_tail:
            return derivatives(self.objective, theta)
        grad, hess, info = self._criterion_derivatives(theta)
        if info:
            raise np.linalg.LinAlgError(f"Schur complement not positive definite near θ = {theta}")
        return grad, hess

    @cached_property
    def _criterion_derivatives(self):
        return with_arguments(criterion_derivatives, DERIVATIVE_STEP, self.degrees_of_freedom, self.reml,
                              *self._kernel_arrays, self.p)

    def objective_given_sigma(self, theta, sigma):
        """The deviance (or REML criterion) at θ and σ, not profiled over σ (lmerTest's varpar
        deviance, lme4's profile): equal to objective(θ) at σ = σ̂(θ)."""
        return self.criterion(self.evaluate(theta, np.empty(self.A22.shape)), sigma)

    def criterion(self, ev, sigma=None):
        """The objective of an evaluation: profiled over σ, or at a given σ."""
        return self._criterion(ev.logdet_L, ev.logdet_RX, ev.r2, sigma)

    def _criterion(self, logdet_L, logdet_RX, r2, sigma=None):
        """The criterion from an evaluation's three numbers: profiled over σ as the compiled
        objective computes it, or at σ (with math.log: numpy's costs more than the rest on scalars)."""
        dof = self.degrees_of_freedom
        if sigma is None:
            return profiled_criterion(logdet_L, logdet_RX, r2, dof, self.reml)
        value = logdet_L + r2 / sigma ** 2 + dof * math.log(2 * math.pi * sigma ** 2)
        return float(value + logdet_RX if self.reml else value)

    @cached_property
    def scalar_terms(self):
        """Whether every block holds one scalar term (q = 1): crossed and nested intercepts."""
        return all(block.q == 1 for block in self.blocks)

    @cached_property
    def degrees_of_freedom(self):
        """n − p (REML) or n (ML): what σ² is divided by."""
        return self.n - self.p if self.reml else self.n

    @cached_property
    def n_random_tail(self):
        """mR: the random effects of the later blocks, the first rows of the tail."""
        return sum(b.nlevels * b.q for b in self.blocks[1:])

    @cached_property
    def _first_block_rows(self):
        """A21 of the first block level by level, by its rows that are not zero: (level_ptr, rows, values)."""
        if len(self.blocks) == 1:
            J, m, q = self.A21.shape
            return read_only(np.arange(J + 1) * m), read_only(np.tile(np.arange(m), J)), self.A21.reshape(J * m, q)
        return _nonzero_rows_per_level(self.A21, self.blocks[0].q)

    @cached_property
    def _kernel_arrays(self):
        """What factor_blocks reads after θ: where each entry of the first block's Λ is in θ
        (first_index), Λ_T of the tail by rows (tail_index, group_start: see tail_scale), then the
        cross-products."""
        m = len(self.A22)
        width = max([block.q for block in self.blocks[1:]] + [1])
        tail_index = np.full((m, width), -1, dtype=np.int64)
        group_start = np.arange(m, dtype=np.int64)
        start = 0
        for block in self.blocks[1:]:
            size = block.nlevels * block.q
            tail_index[start:start + size, :block.q] = np.tile(self._theta_positions(block).T, (block.nlevels, 1))
            group_start[start:start + size] -= np.tile(np.arange(block.q), block.nlevels)   # row l of a level: its first row
            start += size
        tail_index[start:, 0] = -2                            # X and y: Λ_T is 1 there
        return (read_only(self._theta_positions(self.blocks[0])), read_only(tail_index), read_only(group_start),
                self.n_random_tail, self.A11, *self._first_block_rows, self.A22)

    def _theta_positions(self, block):
        """(q, q): the position in θ of each entry of the block's Λ (block-diagonal in its members'
        Λ_k), -1 where it is 0."""
        positions = np.full((block.q, block.q), -1, dtype=np.int64)
        for index, offset in zip(block.members, block.offsets):
            term = self.layout.terms[index]
            positions[term.rows + offset, term.cols + offset] = np.arange(term.start, term.start + len(term.rows))
        return positions

    def evaluate(self, theta, tail=None):
        """The blocked Cholesky factor at θ and what the objective and the solution read from it.

        `tail`: an m×m array to factor the tail in; only its lower triangle is written and read, so
        the optimizer passes an uninitialised one (no pass over m² zeros); by default a zeroed one,
        whose upper triangle is clean to look at.
        """
        theta = np.asarray(theta, dtype=float)
        factors = self.layout.factors(theta)
        block_factors = tuple(self._block_factor(block, factors) for block in self.blocks)
        tail = np.zeros(self.A22.shape) if tail is None else tail
        L1, L1_inv, tail, logdet_L, logdet_RX, r2 = self._factor(theta, tail)
        return Evaluation(theta.copy(), factors, block_factors, L1, L1_inv, tail, logdet_L, logdet_RX, r2)

    @cached_property
    def _compiled_tail(self):
        """Whether the compiled loops factor the tail (else LAPACK)."""
        return len(self.A22) <= COMPILED_TAIL_SIZE

    @cached_property
    def _tail_criterion(self):
        """tail_criterion as a function of θ, what it reads after θ gathered (and checked) once: the
        objective runs thousands of times."""
        return with_arguments(tail_criterion, self.degrees_of_freedom, self.reml, *self._kernel_arrays, self.p)

    def _factor(self, theta, tail):
        """(L1, L1⁻¹, tail factor, log|L_θ|², log|R_X|², r²) at θ: one compiled call (factor_blocks),
        then LAPACK for a large tail."""
        small = self._compiled_tail
        L1, L1_inv, log_det_first, info = factor_blocks(theta, tail, small, *self._kernel_arrays)
        if not small:
            tail, info = _lower_cholesky(tail)
        if info:
            raise np.linalg.LinAlgError(f"Schur complement not positive definite at θ = {theta}")
        return (L1, L1_inv, tail, *log_determinants(log_det_first, tail, self.n_random_tail, len(self.x_columns)))

    @staticmethod
    def _block_factor(block, factors):
        if len(block.members) == 1:
            return factors[block.members[0]]
        lam = np.zeros((block.q, block.q))
        for index, offset in zip(block.members, block.offsets):
            size = len(factors[index])
            lam[offset:offset + size, offset:offset + size] = factors[index]
        return lam

    def _split(self, per_block, diagonal_blocks):
        """Per-block arrays back to lme4's terms: columns (modes) or diagonal blocks (variances)."""
        out = [None] * len(self.layout.terms)
        for block, values in zip(self.blocks, per_block):
            for index, offset in zip(block.members, block.offsets):
                cols = slice(offset, offset + self.layout.terms[index].q)
                out[index] = values[:, cols, cols] if diagonal_blocks else values[:, cols]
        return out

    def _tail_factor(self, factors):
        """Block-diagonal Λ of the tail: kron(I, Λ_k) for each later block, identity for X and y."""
        blocks = [sp.kron(sp.identity(b.nlevels), lam, format="csr")
                  for b, lam in zip(self.blocks[1:], factors[1:])]
        return sp.block_diag(blocks + [sp.identity(self.p + 1)], format="csr")

    # ---- the solution at θ -------------------------------------------------------------

    def sigma(self, ev):
        return np.sqrt(ev.r2 / self.degrees_of_freedom)

    def fixed_effects(self, ev):
        return self.tail_solution(ev)[self.n_random_tail:]

    def tail_solution(self, ev):
        """[u of the later terms; β] from the last row of the tail factor."""
        if len(ev.tail) == 1:                  # y ~ 0 + (1 | g): nothing to solve for
            return np.zeros(0)
        # L'z = l as scipy's solve_triangular(L, l, lower=True, trans="T") solves it (LAPACK's trtrs on
        # L' as an upper factor: the same bits) without its checks, which cost a small fit 6 µs
        solution, info = scipy.linalg.lapack.dtrtrs(ev.tail[:-1, :-1].T, ev.tail[-1, :-1], lower=0, trans=0)
        if info:
            raise np.linalg.LinAlgError(f"the tail's Cholesky factor is singular at θ = {ev.theta}")
        return solution

    def spherical_effects(self, ev):
        """u of every block, as (J_k, q_k) arrays; the conditional modes are b = Λ u."""
        z = self.tail_solution(ev)
        w = np.concatenate([-z, [1.0]])
        mR = self.n_random_tail
        if mR:
            w = self._tail_factor(ev.block_factors) @ w
            rhs = (self.A21.T @ w).reshape(len(ev.L1), -1)
        else:
            rhs = np.einsum("jmq,m->jq", self.A21, w)
        rhs = rhs @ ev.block_factors[0]                             # Λ1' A21_j' w, per row j
        u_first = np.einsum("jba,jb->ja", ev.L1_inv, np.einsum("jab,jb->ja", ev.L1_inv, rhs))
        out, start = [u_first], 0
        for block in self.blocks[1:]:
            size = block.nlevels * block.q
            out.append(z[start:start + size].reshape(block.nlevels, block.q))
            start += size
        return out

    def conditional_modes(self, ev):
        """b = Λ u of every term of the design, as (J_k, q_k) arrays."""
        modes = [u @ lam.T for u, lam in zip(self.spherical_effects(ev), ev.block_factors)]
        return self._split(modes, diagonal_blocks=False)

    def unscaled_vcov(self, ev):
        """(R_X'R_X)^{-1}; times σ² it is Var(β̂) as vcov() reports it."""
        mR = self.n_random_tail
        rx_inv, info = scipy.linalg.lapack.dtrtri(ev.tail[mR:mR + self.p, mR:mR + self.p], lower=1)
        if info:
            raise np.linalg.LinAlgError("R_X is singular")
        rx_inv = np.tril(rx_inv)
        return rx_inv.T @ rx_inv

    def conditional_variances(self, ev):
        """Var(b_j | y) / σ² per level and term: Λ (P⁻¹)_jj Λ', P = Λ'Z'ZΛ + I (lme4's condVar)."""
        mR = self.n_random_tail
        first = ev.L1_inv.transpose(0, 2, 1) @ ev.L1_inv           # L_j^{-T} L_j^{-1}
        out = []
        if mR:
            tail_inv = scipy.linalg.solve_triangular(ev.tail[:mR, :mR], np.eye(mR), lower=True)
            lam_tail = self._tail_factor(ev.block_factors)[:mR, :mR]
            blocks = sp.bsr_matrix((ev.block_factors[0] @ ev.L1_inv.transpose(0, 2, 1),
                                    np.arange(len(ev.L1)), np.arange(len(ev.L1) + 1)))
            coupling = (lam_tail.T @ self.A21[:mR] @ blocks).toarray()  # rows R of L21
            g = (tail_inv @ coupling).reshape(mR, len(ev.L1), -1).transpose(1, 0, 2)
            first = ev.L1_inv.transpose(0, 2, 1) @ (np.eye(ev.L1.shape[1]) + g.transpose(0, 2, 1) @ g) @ ev.L1_inv
            p_inv = tail_inv.T @ tail_inv
        lam1 = ev.block_factors[0]
        out.append(lam1 @ first @ lam1.T)
        start = 0
        for block, lam in zip(self.blocks[1:], ev.block_factors[1:]):
            idx = start + np.arange(block.nlevels * block.q).reshape(block.nlevels, block.q)
            out.append(lam @ p_inv[idx[:, :, None], idx[:, None, :]] @ lam.T)
            start += block.nlevels * block.q
        return self._split(out, diagonal_blocks=True)


def _nonzero_rows_per_level(A21, q):
    """(level_ptr, rows, values) of a sparse A21 (m × J q): level j's rows that are not zero,
    ascending, at rows[level_ptr[j]:level_ptr[j + 1]], with their q values in values."""
    if q == 1 and A21.format == "csc" and A21.has_canonical_format:   # as _crossed_cross_products builds it
        kept = A21.data != 0
        level_ptr = np.concatenate([[0], np.cumsum(kept)])[A21.indptr]
        return (read_only(level_ptr.astype(np.int64)), read_only(A21.indices[kept].astype(np.int64)),
                read_only(A21.data[kept][:, None]))
    A21 = A21.tocsc(copy=True)
    A21.eliminate_zeros()
    m, levels = A21.shape[0], A21.shape[1] // q
    per_level = sp.kron(sp.identity(levels), np.ones((q, 1)), format="csc")
    pattern = (abs(A21) @ per_level).tocsc()
    pattern.sort_indices()
    keys = np.repeat(np.arange(levels), np.diff(pattern.indptr)) * m + pattern.indices
    values = np.zeros((len(keys), q))
    for a in range(q):
        column = A21[:, a::q].tocsc()
        column.sort_indices()
        positions = np.searchsorted(keys, np.repeat(np.arange(levels), np.diff(column.indptr)) * m + column.indices)
        values[positions, a] = column.data
    return (read_only(pattern.indptr.astype(np.int64)), read_only(pattern.indices.astype(np.int64)),
            read_only(values))


def _lower_cholesky(tail):
    """(L, info): the Cholesky factor of a large tail (above COMPILED_TAIL_SIZE; small ones are factored
    by the compiled loops) from its lower triangle, in its lower triangle (above it: what tail held),
    by LAPACK in place on one BLAS thread (on a busy 2-core machine OpenBLAS's spinning threads cost
    far more than they save)."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        upper, info = scipy.linalg.lapack.dpotrf(tail.T, lower=0, clean=0, overwrite_a=1)
    return upper.T, info


def _block_cross_products(term):
    """Z_j'Z_j for every level j of the first block: (J, q, q)."""
    return level_products(term.codes, term.matrix, term.matrix, term.nlevels)


def _group_cross_products(term, W):
    """W_j'Z_j for every level j of a block: (J, m, q), for the (n, m) columns W of [X y]."""
    return level_products(term.codes, term.matrix, W, term.nlevels)


def _x_cross_products(first, X):
    """The cross-products without y of a model with one block: X'Z per level, X'X (numpy's X.T @ X is
    BLAS's syrk, exactly symmetric: Exam's 8 columns in 4 µs, against 77 for 64 dot products)."""
    with _one_blas_thread(X.shape[1] >= 100):      # OpenBLAS threads syrk from 100 columns
        products = X.T @ X
    return _group_cross_products(first, X), products


def _crossed_cross_products(blocks, x_columns, y):
    """A21 = [Z_later X y]'Z_first as a canonical CSC matrix and A22 = [Z_later X y]'[Z_later X y] of
    a model with later blocks: each in one compiled pass over the entries of [Z_later X] per row, y's
    row and column summed as a new response's are (_with_response), so that a refit on y gives this
    fit's numbers (A21 keeps a level's y entry even where its sum is 0; _append_row drops it)."""
    first, later = blocks[0], blocks[1:]
    rows, values = _tail_entries(later, x_columns)
    m = sum(b.nlevels * b.q for b in later) + len(x_columns) + 1
    indptr, indices, data = first_block_columns(first.codes, first.matrix, rows, values, y, first.nlevels, m)
    A21 = sp.csc_matrix((data, indices, indptr), shape=(m, first.nlevels * first.q))
    A22 = entry_products(rows, values, m)          # y's row and column (m − 1) still 0
    A22[-1] = A22[:, -1] = _response_products(later, x_columns, y)
    return read_only_sparse(A21), read_only(A22)


def _tail_entries(later, x_columns):
    """Where each row of [Z_later X] is not (structurally) zero: (columns (n, k), values (n, k)),
    k = the later blocks' q plus X's columns; Z of a block has row i's q values in its level's columns."""
    columns, values, offset = [], [], 0
    for block in later:
        for a in range(block.q):
            columns.append(offset + block.codes * block.q + a)
            values.append(block.matrix[:, a])
        offset += block.nlevels * block.q
    columns += [np.full(len(later[0].codes), offset + c) for c in range(len(x_columns))]
    return np.column_stack(columns).astype(np.int64), np.column_stack(values + list(x_columns))


def _append_row(matrix, row):
    """A canonical CSC matrix with one more row at the bottom (its entries that are not zero), still
    canonical: in each column the new entry goes last."""
    nonzero = row != 0
    at = matrix.indptr[1:][nonzero]
    indptr = matrix.indptr + np.concatenate([[0], np.cumsum(nonzero)])
    return sp.csc_matrix((np.insert(matrix.data, at, row[nonzero]), np.insert(matrix.indices, at, matrix.shape[0]),
                          indptr), shape=(matrix.shape[0] + 1, matrix.shape[1]))


def _inner_products(columns, y):
    """x'y for each column x."""
    with _one_blas_thread(len(y) > 10_000):         # OpenBLAS threads ddot from 10,000 entries
        return [x @ y for x in columns]


def _one_blas_thread(threaded):
    """BLAS on one thread where OpenBLAS would wake its threads for a product (`threaded`): on a busy
    machine that costs milliseconds per call, far more than the work. (Elsewhere setting the limit,
    13 µs, costs more than the product.)"""
    return _blas_controller().limit(limits=1, user_api="blas") if threaded else contextlib.nullcontext()


def _with_response(blocks, x_columns, A21, A22, y):
    """A21 and A22 with the row (and column) of the response y appended: Z'y, X'y, y'y."""
    y = np.asarray(y, dtype=float)
    first, later = blocks[0], blocks[1:]
    z_first_y = _group_cross_products(first, y[:, None])          # (J, 1, q)
    if later:
        A21 = read_only_sparse(_append_row(A21, z_first_y.ravel()))
    else:
        A21 = read_only(np.concatenate([A21, z_first_y], axis=1))
    return A21, _bordered(A22, _response_products(later, x_columns, y))


def _response_products(later, x_columns, y):
    """[Z_later X y]'y: the tail's last column."""
    return np.concatenate([_group_cross_products(b, y[:, None]).ravel() for b in later]
                          + [_inner_products(x_columns + (y,), y)])


def _bordered(A22, column):
    """A22 with `column` appended as its last row and column (read-only)."""
    m = len(A22)
    bordered = np.empty((m + 1, m + 1))     # not np.block, whose Python costs a small fit 10 µs
    bordered[:m, :m] = A22
    bordered[:m, m] = bordered[m, :m] = column[:-1]
    bordered[m, m] = column[-1]
    return read_only(bordered)
