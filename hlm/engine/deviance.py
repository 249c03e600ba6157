"""The profiled deviance of a linear mixed model as a function of θ alone.

Bates et al. (2015) penalized least squares with MixedModels.jl's blocked Cholesky: the
cross-products of [Z X y] are formed once; each evaluation factors

    [Λ'Z'ZΛ + I   Λ'Z'X   Λ'Z'y]
    [   X'ZΛ       X'X     X'y ]  =  L L'
    [   y'ZΛ       y'X     y'y ]

blockwise. Terms on one grouping factor form one block; the first block (the factor with most
levels) is block-diagonal: J blocks of q×q, factored by one compiled loop. Everything after it
(further grouping factors, X and y) is the dense "tail" of size m, updated by a Schur
complement. With one grouping factor an evaluation costs O(J·q²·m + m³), independent of the
number of rows.
"""
import functools
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.linalg.lapack
import scipy.sparse as sp
import threadpoolctl

from .covariance import lower_triangle_indices, theta_lower_bounds
from .kernels import factor_first_block, small_cholesky

# Tails up to this size are factored by compiled loops (a LAPACK call costs more than the work);
# larger ones by LAPACK on one thread: on a busy 2-core machine OpenBLAS's spinning threads
# cost far more than they save.
THREADED_SIZE = 64


@functools.cache
def _blas_controller():
    return threadpoolctl.ThreadpoolController()


@dataclass(frozen=True)
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
        blocks.append(Block(tuple(indices), tuple(np.cumsum([0] + widths[:-1]).tolist()), sum(widths),
                            terms[indices[0]].nlevels, terms[indices[0]].codes,
                            np.column_stack([terms[i].matrix for i in indices])))
    return blocks


@dataclass(frozen=True)
class Evaluation:
    """The pieces of one evaluation of the blocked Cholesky factor at θ."""
    theta: np.ndarray
    factors: list        # Λ_k of each term
    block_factors: list  # Λ of each block (block-diagonal in its members' Λ_k)
    L1: np.ndarray       # (J, q, q) diagonal blocks of the first block
    L1_inv: np.ndarray   # their inverses
    tail: np.ndarray     # (m, m) lower Cholesky factor of the tail's Schur complement
    logdet_L: float      # log |L_θ|²
    logdet_RX: float     # log |R_X|²
    r2: float            # penalized residual sum of squares


class ProfiledDeviance:
    """-2 log-likelihood (ML) or the REML criterion of a Design, evaluated at θ."""

    def __init__(self, design, reml):
        self.reml = reml
        self.n, self.p = design.n, design.p
        self.terms = design.terms
        sizes = [t.theta_size for t in design.terms]
        # (rows, cols, positions in θ) of each term's Λ entries
        self.theta_indices = [(*lower_triangle_indices(t.q), np.arange(start, start + t.theta_size))
                              for t, start in zip(design.terms, np.cumsum([0] + sizes[:-1]))]
        self.lower = theta_lower_bounds(design.terms)
        self.blocks = group_terms(design.terms)
        first, rest = self.blocks[0], self.blocks[1:]
        self.n_random_tail = sum(b.nlevels * b.q for b in rest)   # mR
        self._random_diagonal = (np.arange(self.n_random_tail),) * 2
        dense_tail = [*design.X.T, design.y]                       # the columns of [X y], no copy
        self.A11 = _block_cross_products(first)
        if rest:
            z_first = _sparse_z(first)
            tail = sp.hstack([_sparse_z(t) for t in rest] + [sp.csr_matrix(np.column_stack(dense_tail))]).tocsc()
            self.A21 = (tail.T @ z_first).tocsc()                  # (m, J q), sparse
            self.A21_per_level = np.zeros((first.nlevels, 0, first.q))
            self.outer_products = _level_outer_products(self.A21, first.q)
            self.A22 = (tail.T @ tail).toarray()
        else:
            self.A21 = self.A21_per_level = _group_cross_products(first, dense_tail)  # (J, m, q)
            self.A22 = np.array([[a @ b for b in dense_tail] for a in dense_tail])

    def initial_theta(self):
        """lme4's start: identity relative factors (1 on the diagonal, 0 off it)."""
        return np.where(np.isfinite(self.lower), 1.0, 0.0)

    def __call__(self, theta):
        return self.objective(self.evaluate(theta))

    def objective(self, ev):
        if self.reml:
            dof = self.n - self.p
            return ev.logdet_L + ev.logdet_RX + dof * (1 + np.log(2 * np.pi * ev.r2 / dof))
        return ev.logdet_L + self.n * (1 + np.log(2 * np.pi * ev.r2 / self.n))

    def evaluate(self, theta):
        theta = np.asarray(theta, dtype=float)
        factors = self.factors(theta)
        block_factors = [self._block_factor(block, factors) for block in self.blocks]
        lam1 = block_factors[0]
        L1, L1_inv, log_det_first, eliminated = factor_first_block(self.A11, self.A21_per_level, lam1)
        mR = self.n_random_tail
        if mR:
            right = lam1 @ L1_inv.transpose(0, 2, 1)              # Λ1 L_j^{-T}
            weights = right @ right.transpose(0, 2, 1)            # Λ1 (L_j L_j')^{-1} Λ1'
            eliminated = (self.outer_products @ weights.ravel()).reshape(self.A22.shape)
        schur = np.subtract(self.A22, eliminated, out=eliminated if mR else None)
        if mR:
            schur = self._scale_tail(schur, block_factors)
            schur[self._random_diagonal] += 1.0
        if len(schur) > THREADED_SIZE:
            with _blas_controller().limit(limits=1, user_api="blas"):
                tail, info = scipy.linalg.lapack.dpotrf(schur, lower=1, clean=1)
        else:
            tail, info = small_cholesky(schur)
        if info:
            raise np.linalg.LinAlgError(f"Schur complement not positive definite at θ = {theta}")
        log_diag = np.log(np.diagonal(tail))
        logdet_L = 2 * (log_det_first + log_diag[:mR].sum())
        logdet_RX = 2 * log_diag[mR:mR + self.p].sum()
        return Evaluation(theta, factors, block_factors, L1, L1_inv, tail, logdet_L, logdet_RX,
                          tail[-1, -1] ** 2)

    def factors(self, theta):
        """Λ_k of each term, filled from θ."""
        out = []
        for (rows, cols, positions), term in zip(self.theta_indices, self.terms):
            lam = np.zeros((term.q, term.q))
            lam[rows, cols] = theta[positions]
            out.append(lam)
        return out

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
        out = [None] * len(self.terms)
        for block, values in zip(self.blocks, per_block):
            for index, offset in zip(block.members, block.offsets):
                cols = slice(offset, offset + self.terms[index].q)
                out[index] = values[:, cols, cols] if diagonal_blocks else values[:, cols]
        return out

    def _scale_tail(self, matrix, factors):
        """Λ_T' M Λ_T for the symmetric tail matrix M (in place when every later block has q = 1,
        the usual crossed or nested model: then Λ_T is a diagonal scaling)."""
        if all(block.q == 1 for block in self.blocks[1:]):
            scale = np.concatenate([np.full(b.nlevels, lam[0, 0]) for b, lam in zip(self.blocks[1:], factors[1:])]
                                   + [np.ones(self.p + 1)])
            matrix *= scale[:, None]
            matrix *= scale[None, :]
            return matrix
        return self._scale_rows(self._scale_rows(matrix, factors).T, factors)

    def _scale_rows(self, matrix, factors):
        """Λ_T' M: rows of each later block multiplied by its Λ' level by level."""
        out, start = matrix.copy(), 0
        for block, lam in zip(self.blocks[1:], factors[1:]):
            stop = start + block.nlevels * block.q
            rows = matrix[start:stop].reshape(block.nlevels, block.q, -1)
            out[start:stop] = (lam.T @ rows).reshape(stop - start, -1)
            start = stop
        return out

    def _tail_factor(self, factors):
        """Block-diagonal Λ of the tail: kron(I, Λ_k) for each later block, identity for X and y."""
        blocks = [sp.kron(sp.identity(b.nlevels), lam, format="csr")
                  for b, lam in zip(self.blocks[1:], factors[1:])]
        return sp.block_diag(blocks + [sp.identity(self.p + 1)], format="csr")

    # ---- the solution at θ -------------------------------------------------------------

    def sigma(self, ev):
        return np.sqrt(ev.r2 / (self.n - self.p if self.reml else self.n))

    def fixed_effects(self, ev):
        return self._tail_solution(ev)[self.n_random_tail:]

    def _tail_solution(self, ev):
        """[u of the later terms; β] from the last row of the tail factor."""
        return scipy.linalg.solve_triangular(ev.tail[:-1, :-1], ev.tail[-1, :-1], lower=True, trans="T")

    def spherical_effects(self, ev):
        """u of every block, as (J_k, q_k) arrays; the conditional modes are b = Λ u."""
        z = self._tail_solution(ev)
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


def _sparse_z(term):
    """Z of a block as an n × (J q) sparse matrix: row i holds term.matrix[i] in its group's columns."""
    n, q = term.matrix.shape
    cols = (term.codes[:, None] * q + np.arange(q)).ravel()
    rows = np.repeat(np.arange(n), q)
    return sp.csr_matrix((term.matrix.ravel(), (rows, cols)), shape=(n, term.nlevels * q))


def _level_outer_products(A21, q):
    """Sparse P with P @ vec(K) = Σ_j A21_j K_j A21_j' for any per-level q×q matrices K_j.

    The sparsity of A21 is fixed, so the first block's share of the tail (the expensive part
    of a crossed model's evaluation) becomes one sparse matrix-vector product.
    """
    m, levels = A21.shape[0], A21.shape[1] // q
    A21 = A21.tocsc()
    rows, cols, values = [], [], []
    for column_a in range(levels * q):
        j = column_a // q
        rows_a = A21.indices[A21.indptr[column_a]:A21.indptr[column_a + 1]]
        values_a = A21.data[A21.indptr[column_a]:A21.indptr[column_a + 1]]
        for b in range(q):
            column_b = j * q + b
            rows_b = A21.indices[A21.indptr[column_b]:A21.indptr[column_b + 1]]
            values_b = A21.data[A21.indptr[column_b]:A21.indptr[column_b + 1]]
            rows.append((rows_a[:, None] * m + rows_b[None, :]).ravel())
            cols.append(np.full(len(rows_a) * len(rows_b), column_a * q + b))
            values.append(np.outer(values_a, values_b).ravel())
    return sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(m * m, levels * q * q))


def _block_cross_products(term):
    """Z_j'Z_j for every level j of the first block: (J, q, q)."""
    q = term.q
    out = np.empty((term.nlevels, q, q))
    for a in range(q):
        for b in range(a, q):
            out[:, a, b] = out[:, b, a] = np.bincount(
                term.codes, weights=term.matrix[:, a] * term.matrix[:, b], minlength=term.nlevels)
    return out


def _group_cross_products(term, columns):
    """[X y]'Z_j for every level j of the first block: (J, m, q), from the columns of [X y]."""
    out = np.empty((term.nlevels, len(columns), term.q))
    for c, column in enumerate(columns):
        for a in range(term.q):
            out[:, c, a] = np.bincount(term.codes, weights=column * term.matrix[:, a],
                                       minlength=term.nlevels)
    return out
