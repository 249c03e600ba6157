"""Generalized linear mixed models as lme4's glmer fits them (mkGlmerDevfun -> optimizeGlmer -> mkMerMod).

The deviance -2 log L(θ, β) is approximated at the conditional modes that PIRLS finds: by Laplace
(nAGQ = 1) or by adaptive Gauss-Hermite quadrature (nAGQ up to 25, one scalar random-effect
term). As in lme4 the fit has two stages: θ alone with β found by PIRLS (bobyqa), then θ and β
together (Nelder-Mead), each evaluation starting PIRLS from the previous stage's linear predictor.
The Hessian of the stage-2 deviance gives the convergence checks and Var(β̂), as vcov.merMod
with use.hessian = TRUE. nAGQ = 0 stops after the first stage.
"""
import dataclasses
import logging
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
import scipy.special

from ..errors import ModelError
from ..vocabulary import optimizer_name
from .covariance import CovarianceLayout, lower_triangle_indices, read_only
from .derivatives import derivatives
from .deviance import _blas_controller, group_terms
from .family import deviance_residuals_array, linkinv_array, variance_array
from .model import SINGULAR_MESSAGE
from .optimize import OptSummary, at_boundary, is_singular, minimize, scaled_gradient_messages
from .pirls import MAX_ITERATIONS, TOLERANCE, agq_deviance, factor, first_step, log_likelihood, run_pirls, scaled_rows

log = logging.getLogger(__name__)

MAX_AGQ = 25                 # lme4's limit on nAGQ
BOUNDARY_TOLERANCE = 1e-5    # glmerControl's boundary.tol
OPTIMIZERS = ("bobyqa", "nelder_mead")   # glmerControl's defaults, one per stage
HESSIAN_TOLERANCE = 1e-6     # check.conv.hess
COMPLETE_SHARE = 0.5         # a first block whose levels meet this share of the later columns is stored dense
STAGE2_FTOL = 1e-9           # absolute change of the deviance at which the second stage stops
PIRLS_FAILURES = {1: "the penalized least squares system is not positive definite",
                  2: f"PIRLS did not converge in {MAX_ITERATIONS} iterations",
                  3: "PIRLS step-halvings failed to reduce the deviance"}


def gauss_hermite(order):
    """lme4's GHrule: nodes and weights of Gauss-Hermite quadrature for the standard normal."""
    if order < 2:
        return np.zeros(0), np.zeros(0)
    knots, weights = np.polynomial.hermite_e.hermegauss(order)
    knots[np.abs(knots) < 1e-12] = 0.0
    return knots, weights / np.sqrt(2 * np.pi)


@dataclass(frozen=True)
class Structure:
    """Where each row's random effects sit in the blocked factor, worked out once per design.

    The first block's level of each row (`codes`, values `z1`); each row's entries in the later
    blocks (`tail_cols`, the global column, and `tail_z`, the value of Z); and per level of the
    first block the sorted later-block columns it meets (`level_cols[level_ptr[j]:level_ptr[j+1]]`,
    each row's entry at `row_local` in that list) -- all of them when the levels meet most
    (crossed factors), so that the coupling is one dense array.
    """
    blocks: tuple
    codes: np.ndarray
    z1: np.ndarray
    tail_cols: np.ndarray
    tail_z: np.ndarray
    m_random: int
    level_ptr: np.ndarray
    level_cols: np.ndarray
    row_local: np.ndarray

    @classmethod
    def of(cls, design):
        blocks = group_terms(design.terms)
        first, rest = blocks[0], blocks[1:]
        offsets = np.cumsum([0] + [b.nlevels * b.q for b in rest])
        n = design.n
        tail_cols = np.column_stack([offsets[k] + block.codes[:, None] * block.q + np.arange(block.q)
                                     for k, block in enumerate(rest)] or [np.zeros((n, 0), dtype=np.int64)])
        tail_cols = tail_cols.astype(np.int64).reshape(n, -1)
        tail_z = np.column_stack([b.matrix for b in rest]) if rest else np.zeros((n, 0))
        m_random, width = int(offsets[-1]), max(int(offsets[-1]), 1)
        keys = (first.codes[:, None].astype(np.int64) * width + tail_cols).ravel()
        unique = np.unique(keys)
        if m_random and len(unique) >= COMPLETE_SHARE * first.nlevels * m_random:
            unique = np.arange(first.nlevels * m_random)   # crossed: every level meets every column
        level_ptr = np.searchsorted(unique // width, np.arange(first.nlevels + 1)).astype(np.int64)
        row_local = np.searchsorted(unique, keys) - level_ptr[np.repeat(first.codes, tail_cols.shape[1])]
        return cls(tuple(blocks), first.codes.astype(np.int64), np.ascontiguousarray(first.matrix, dtype=float),
                   tail_cols, np.ascontiguousarray(tail_z, dtype=float), m_random, level_ptr,
                   (unique % width).astype(np.int64), row_local.reshape(tail_cols.shape).astype(np.int64))

    @property
    def scalar(self):
        """Are all random effects one-column (random intercepts or one slope each)?"""
        return all(block.q == 1 for block in self.blocks)

    @property
    def complete(self):
        """Does every level of the first block meet every later-block column (as crossed factors do)?"""
        return bool(self.m_random) and len(self.level_cols) == self.nlevels * self.m_random

    @property
    def nlevels(self):
        return self.blocks[0].nlevels

    @property
    def q(self):
        return self.blocks[0].q

    @property
    def arrays(self):
        """The tuple the kernels take."""
        return (self.codes, self.z1, self.tail_cols, self.tail_z, self.m_random, self.level_ptr, self.level_cols,
                self.row_local)

    def layout(self, p):
        """(local_ptr, dense) with p columns of X in the tail: where each level's coupling block (its
        later-block columns, X, z) starts in C, and whether C is one dense (J, m, q) array (a
        complete structure), whose share of the tail one matrix product eliminates."""
        sizes = np.diff(self.level_ptr) + p + 1
        return np.concatenate([[0], np.cumsum(sizes * self.q)]).astype(np.int64), self.complete


@dataclass(frozen=True)
class Start:
    """A linear predictor PIRLS starts from and its μ."""
    eta: np.ndarray
    mu: np.ndarray


@dataclass(frozen=True)
class Workspace:
    """The arrays one PIRLS run fills: ZΛ, the offset, η and μ, the modes, the factors (L1, L1_inv, C, T)."""
    local_ptr: np.ndarray
    dense: bool
    zl1: np.ndarray
    zlt: np.ndarray
    offset: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    u_first: np.ndarray
    x: np.ndarray
    factors: tuple

    @property
    def arrays(self):
        return (self.zl1, self.zlt, self.offset, self.eta, self.mu, self.u_first, self.x, *self.factors)


@dataclass(frozen=True)
class Modes:
    """PIRLS's result at (θ, β): the conditional modes, the linear predictor and the factors there."""
    theta: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    u_first: np.ndarray      # (J, q) spherical modes of the first block
    x: np.ndarray            # [u of the later blocks; β if PIRLS solved for it]
    factors: tuple           # (L1, L1_inv, C, T)
    log_det_first: float
    penalized_deviance: float
    m_random: int
    iterations: int


class GlmmDeviance:
    """glmer's deviance function of a design and a GlmResponse: -2 log L at θ with β from PIRLS
    (the first stage, and nAGQ = 0), or at (θ, β) (the second stage, with Laplace or AGQ)."""

    def __init__(self, design, response, nAGQ):
        self.design, self.response, self.nAGQ = design, response, nAGQ
        self.structure = Structure.of(design)
        self.layout = CovarianceLayout.from_terms(design.terms)
        self.lower = self.layout.lower
        sizes = [t.theta_size for t in design.terms]
        self.theta_indices = [(*lower_triangle_indices(t.q), np.arange(start, start + t.theta_size))
                              for t, start in zip(design.terms, np.cumsum([0] + sizes[:-1]))]
        self.knots, self.knot_weights = gauss_hermite(nAGQ)
        self.X = read_only(np.ascontiguousarray(design.X, dtype=float))   # as build_design's: one type for the kernels
        self.layouts = {p: self.structure.layout(p) for p in (0, design.p)}
        self.lambda_index = tuple(self._lambda_index())
        self.no_beta = np.zeros(0)
        self.no_first_step = (np.zeros((0, 1, 1)), np.zeros(0), np.zeros((0, 0)), 0, np.zeros(0, dtype=np.int64),
                              np.zeros(0, dtype=np.int64))

    @property
    def n_theta(self):
        return len(self.lower)

    @property
    def terms(self):
        return self.design.terms

    def initial_theta(self):
        """lme4's start: identity relative factors."""
        return np.where(np.isfinite(self.lower), 1.0, 0.0)

    def initial_eta(self):
        """η from R's family$initialize (mustart), where PIRLS starts before the first stage."""
        return self.response.family.linkfun(self.response.initial_mu()) + self.response.offset

    def factors(self, theta):
        """Λ_k of each term, filled from θ."""
        out = []
        for (rows, cols, positions), term in zip(self.theta_indices, self.design.terms):
            lam = np.zeros((term.q, term.q))
            lam[rows, cols] = theta[positions]
            out.append(lam)
        return out

    def block_factors(self, theta):
        """Λ of each block: block-diagonal in its terms' Λ_k."""
        factors, out = self.factors(theta), []
        for block in self.structure.blocks:
            lam = np.zeros((block.q, block.q))
            for index, offset in zip(block.members, block.offsets):
                size = len(factors[index])
                lam[offset:offset + size, offset:offset + size] = factors[index]
            out.append(lam)
        return out

    def _lambda_index(self):
        """Where each entry of the first block's Λ and of the later blocks' block-diagonal Λ sits in θ
        (-1: an entry that is always 0)."""
        out = []
        for blocks in (self.structure.blocks[:1], self.structure.blocks[1:]):
            size = sum(b.q for b in blocks)
            index, start = np.full((size, size), -1, dtype=np.int64), 0
            for block in blocks:
                for member, offset in zip(block.members, block.offsets):
                    rows, cols, positions = self.theta_indices[member]
                    index[start + offset + rows, start + offset + cols] = positions
                start += block.q
            out.append(index)
        return out

    def scaled_z(self, theta):
        """ZΛ row by row: the first block's (n, q) and the later blocks' (n, r)."""
        s, theta = self.structure, np.asarray(theta, dtype=float)
        zl1, zlt = np.empty_like(s.z1), np.empty_like(s.tail_z)
        scaled_rows(theta, s.z1, self.lambda_index[0], zl1)
        scaled_rows(theta, s.tail_z, self.lambda_index[1], zlt)
        return zl1, zlt

    def workspace(self, p):
        """The arrays one PIRLS run fills, with p columns of X in the tail (solving for β) or none."""
        s, n = self.structure, self.design.n
        local_ptr, dense = self.layouts[p]
        m = s.m_random + p + 1
        return Workspace(local_ptr, dense, np.empty_like(s.z1), np.empty_like(s.tail_z), np.empty(n), np.empty(n),
                         np.empty(n), np.empty((s.nlevels, s.q)), np.empty(m - 1),
                         (np.empty((s.nlevels, s.q, s.q)), np.empty((s.nlevels, s.q, s.q)), np.empty(local_ptr[-1]),
                          np.empty((m, m))))

    def _pirls(self, theta, beta, start, work, first_step=None):
        """PIRLS into `work` from the linear predictor and μ of `start` (and first_step's products, if
        given): (iterations, log|L_1|, penalized deviance)."""
        r = self.response
        status, iterations, log_det, value = run_pirls(
            theta, self.no_beta if beta is None else np.array(beta, dtype=float), start.eta, start.mu,
            (r.y, r.weights, r.offset, r.family.code, r.family.link_code), self.structure.arrays, self.lambda_index,
            self.X, work.arrays, work.local_ptr, work.dense, TOLERANCE, first_step or self.no_first_step)
        if status:
            raise ModelError(f"{PIRLS_FAILURES[status]} at θ = {np.round(theta, 6).tolist()}; the model may be "
                             "too complex for the data (simplify the random effects) or a predictor needs rescaling")
        return iterations, log_det, value

    def start(self, eta):
        """A linear predictor PIRLS starts from, with its μ (computed once for all evaluations)."""
        eta = np.array(eta, dtype=float)
        return Start(eta, linkinv_array(eta, self.response.family.link_code))

    def stage_start(self, theta0, theta1=None):
        """Where a stage's PIRLS starts, as lme4's lp0: the modes at lme4's initial θ from
        family$initialize's μ (the first stage), then those at the first stage's θ̂ (the second)."""
        start = self.start(self.modes(theta0, None, self.start(self.initial_eta())).eta)
        return start if theta1 is None else self.start(self.modes(theta1, None, start).eta)

    def modes(self, theta, beta, start):
        """PIRLS from `start` (a Start); with beta None it solves for β as well."""
        theta = np.array(theta, dtype=float)
        work = self.workspace(self.design.p if beta is None else 0)
        iterations, log_det, value = self._pirls(theta, beta, start, work)
        beta = work.x[self.structure.m_random:] if beta is None else np.asarray(beta, dtype=float)
        return Modes(theta, beta, work.eta, work.mu, work.u_first, work.x, work.factors, log_det, value,
                     self.structure.m_random, iterations)

    def objective(self, start, solve_beta):
        """The deviance as the optimizer calls it: of θ (β from PIRLS) when solve_beta, else of
        (θ, β); PIRLS starts from `start` at every evaluation, as lme4's starts from lp0, so with
        one-column random effects its first step is prepared once (pirls.first_step). One
        workspace serves every evaluation."""
        work, n_theta = self.workspace(self.design.p if solve_beta else 0), self.n_theta
        first = None if solve_beta or not self.structure.scalar else self._first_step(start)

        def deviance(params):
            params = np.array(params, dtype=float)      # writable (nlopt's are not): one compiled kernel
            theta, beta = params[:n_theta], None if solve_beta else params[n_theta:]
            _, log_det, value = self._pirls(theta, beta, start, work, first)
            return self._value(theta, work, log_det, value, agq=not solve_beta and self.nAGQ > 1)
        return deviance

    def _first_step(self, start):
        """pirls.first_step's products for the second stage from `start`, with each column's θ."""
        r, s = self.response, self.structure
        column_theta = np.concatenate([[self.lambda_index[0][0, 0]],
                                       np.repeat([self.lambda_index[1][k, k] for k in range(len(s.blocks) - 1)],
                                                 [b.nlevels for b in s.blocks[1:]])]).astype(np.int64)
        return first_step(r.y, r.weights, r.offset, start.eta, start.mu, r.family.code, r.family.link_code, s.arrays,
                          self.X, self.layouts[self.design.p][0], column_theta)

    def value(self, modes):
        """The deviance at PIRLS's result (Laplace, or AGQ for nAGQ > 1 when β was given)."""
        work = Workspace(None, None, None, None, None, modes.eta, modes.mu, modes.u_first, modes.x, modes.factors)
        return self._value(modes.theta, work, modes.log_det_first, modes.penalized_deviance, agq=self.nAGQ > 1)

    def _value(self, theta, work, log_det_first, penalized_deviance, agq):
        r, s = self.response, self.structure
        if agq:
            return agq_deviance(r.y, r.weights, work.eta, r.family.code, r.family.link_code, s.codes,
                                self.scaled_z(theta)[0], work.u_first, work.factors[0], self.knots, self.knot_weights)
        logdet_L = 2 * (log_det_first + np.log(np.diagonal(work.factors[3])[:s.m_random]).sum())
        if np.isfinite(r.deviance_constant):          # lme4's Laplace(): log|L|² + |u|² - 2 log p(y | u)
            return logdet_L + penalized_deviance + r.deviance_constant
        sum_sq_u = float((work.u_first ** 2).sum() + (work.x[:s.m_random] ** 2).sum())
        return logdet_L + sum_sq_u - 2 * log_likelihood(work.mu, r.family.code, r.scale, r.constant, r.successes,
                                                        r.trials)

    def unscaled_vcov(self, modes):
        """(R_X'R_X)⁻¹ with the weights at the modes: lme4's pp$unsc(), vcov without the Hessian."""
        s, r, p = self.structure, self.response, self.design.p
        zl1, zlt = self.scaled_z(modes.theta)
        work = self.workspace(p)
        status, _ = factor(r.y, r.weights, r.offset, modes.eta, modes.mu, r.family.code, r.family.link_code, s.arrays,
                           zl1, zlt, self.X, work.local_ptr, work.dense, work.factors)
        if status:
            raise ModelError("the fixed-effects cross-product matrix is singular at the fit")
        T = work.factors[3]
        rx = np.tril(T[s.m_random:s.m_random + p, s.m_random:s.m_random + p])
        rx_inv = scipy.linalg.solve_triangular(rx, np.eye(p), lower=True)
        return rx_inv.T @ rx_inv

    def conditional_variances(self, modes):
        """Var(b_j | y) per level and block: Λ (P⁻¹)_jj Λ', P = Λ'Z'WZΛ + I at the modes (lme4's condVar)."""
        s = self.structure
        lams = self.block_factors(modes.theta)
        inv1 = modes.factors[1]
        first = inv1.transpose(0, 2, 1) @ inv1
        out = []
        if s.m_random:
            mR, q = s.m_random, s.q
            tail_inv = scipy.linalg.solve_triangular(np.tril(modes.factors[3][:mR, :mR]), np.eye(mR), lower=True)
            coupling = self._coupling(modes)                           # rows of L21: C_j L_j^{-T}, (mR, J q)
            g = (tail_inv @ coupling).reshape(mR, s.nlevels, q).transpose(1, 0, 2)
            first = inv1.transpose(0, 2, 1) @ (np.eye(q) + g.transpose(0, 2, 1) @ g) @ inv1
            p_inv = tail_inv.T @ tail_inv
        out.append(lams[0] @ first @ lams[0].T)
        start = 0
        for block, lam in zip(s.blocks[1:], lams[1:]):
            idx = start + np.arange(block.nlevels * block.q).reshape(block.nlevels, block.q)
            out.append(lam @ p_inv[idx[:, :, None], idx[:, None, :]] @ lam.T)
            start += block.nlevels * block.q
        return self._split(out, diagonal_blocks=True)

    def _coupling(self, modes):
        """The later blocks' rows of L21 (C_j L_j^{-T}, which the factors hold) as a dense (mR, J q) array."""
        s, q = self.structure, self.structure.q
        local_ptr, _ = self.layouts[len(modes.x) - s.m_random]
        rows, cols, values = [], [], []
        for j in range(s.nlevels):
            count = s.level_ptr[j + 1] - s.level_ptr[j]
            block = modes.factors[2][local_ptr[j]:local_ptr[j] + count * q]
            rows.append(np.repeat(s.level_cols[s.level_ptr[j]:s.level_ptr[j + 1]], q))
            cols.append(np.tile(j * q + np.arange(q), count))
            values.append(block)
        return sp.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(s.m_random, s.nlevels * q)).toarray()

    def conditional_modes(self, modes):
        """b = Λ u of every term of the design, as (J_k, q_k) arrays."""
        s = self.structure
        lams = self.block_factors(modes.theta)
        per_block, start = [modes.u_first @ lams[0].T], 0
        for block, lam in zip(s.blocks[1:], lams[1:]):
            size = block.nlevels * block.q
            per_block.append(modes.x[start:start + size].reshape(block.nlevels, block.q) @ lam.T)
            start += size
        return self._split(per_block, diagonal_blocks=False)

    def _split(self, per_block, diagonal_blocks):
        """Per-block arrays back to lme4's terms: columns (modes) or diagonal blocks (variances)."""
        out = [None] * len(self.design.terms)
        for block, values in zip(self.structure.blocks, per_block):
            for index, offset in zip(block.members, block.offsets):
                cols = slice(offset, offset + self.design.terms[index].q)
                out[index] = values[:, cols, cols] if diagonal_blocks else values[:, cols]
        return out


@dataclass(frozen=True)
class Stage:
    """One of glmer's optimizations as the optimizer sees it: the objective and its lower bounds."""
    objective: object
    lower: np.ndarray

    def __call__(self, x):
        return self.objective(x)


def check_nagq(nAGQ, design):
    """lme4's limits: nAGQ in 0..25, and nAGQ > 1 only for one scalar random-effect term."""
    if not isinstance(nAGQ, (int, np.integer)) or isinstance(nAGQ, bool) or not 0 <= nAGQ <= MAX_AGQ:
        raise ModelError(f"nAGQ = {nAGQ!r} is not allowed; use a whole number from 0 to {MAX_AGQ} "
                         "(1 = Laplace, the default)")
    terms = design.terms
    if nAGQ > 1 and (len(terms) != 1 or terms[0].q != 1):
        what = (f"{len(terms)} random-effect terms" if len(terms) != 1
                else f"the vector-valued term ({' + '.join(terms[0].columns)} | {terms[0].group})")
        raise ModelError(f"nAGQ = {nAGQ} needs a single scalar random-effect term such as (1 | {terms[0].group}); "
                         f"formula '{design.formula}' has {what}: use nAGQ = 1 (Laplace)")


def fit_glmm(design, response, nAGQ=1, optimizers=OPTIMIZERS, control=None, model_class=None):
    """Fit a built Design and GlmResponse as glmer does; `model_class` as in fit_design. BLAS
    runs on one thread: its calls are small, and on a busy machine spinning threads cost more
    than they save."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        return _fit(design, response, nAGQ, optimizers, control, model_class)


def _fit(design, response, nAGQ, optimizers, control, model_class, level=logging.WARNING):
    check_nagq(nAGQ, design)
    optimizers = _stage_optimizers(optimizers)
    deviance = GlmmDeviance(design, response, nAGQ)
    theta0 = deviance.initial_theta()
    start = deviance.stage_start(theta0)
    stage1 = Stage(deviance.objective(start, solve_beta=True), deviance.lower)
    theta, summary = minimize(stage1, theta0, stage1.lower, optimizer=optimizers[0], control=control)
    if nAGQ == 0:
        params, _ = at_boundary(stage1, theta, deviance.lower, BOUNDARY_TOLERANCE)
        summary = _with_final(summary, params, stage1(params))
        derivs, start_theta = None, theta0
    else:
        modes = deviance.modes(theta, None, start)
        start, start_theta = deviance.start(modes.eta), theta
        stage2 = Stage(deviance.objective(start, solve_beta=False),
                        np.concatenate([deviance.lower, np.full(design.p, -np.inf)]))
        params, summary = _second_stage(stage2, deviance, modes, optimizers[1], control)
        derivs = derivatives(stage2, params)
    n_theta = deviance.n_theta
    singular = is_singular(params[:n_theta], deviance.lower)
    messages = list(design.messages) + ([SINGULAR_MESSAGE] if singular else [])
    convergence = [] if singular or derivs is None else convergence_messages(*derivs)
    if summary.status == "MAXEVAL_REACHED":
        convergence.insert(0, f"failure to converge in {summary.control['maxeval']} evaluations")
    messages += convergence
    for message in messages[len(design.messages):]:
        log.log(level, message)
    model_class = model_class or GeneralizedLinearMixedModel
    return model_class(design, deviance, summary, derivs, tuple(map(float, start_theta)), start, singular,
                       not convergence, tuple(messages))


def restore_glmm(design, response, nAGQ, optsummary, start_theta, derivs, converged, messages, model_class=None,
                 rtol=1e-9):
    """The fit a record saved, at its (θ̂, β̂), without optimizing again: PIRLS starts where the fit's
    did (from the first stage's θ̂, `start_theta`), so the deviance there must be the saved one,
    else the record does not belong to this design. derivs: the saved (gradient, Hessian), or None
    to compute them again (lme4's deriv12, as the fit did)."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        deviance = GlmmDeviance(design, response, nAGQ)
        theta0 = deviance.initial_theta()
        start = deviance.stage_start(theta0, None if nAGQ == 0 else np.array(start_theta))
        stage = deviance.objective(start, solve_beta=nAGQ == 0)
        params = np.array(optsummary.final)
        value = stage(params)
        if not abs(value - optsummary.fmin) <= rtol * max(1.0, abs(optsummary.fmin)):
            raise ModelError(f"the saved fit of '{design.formula}' does not belong to this data: the deviance at its "
                             f"estimates is {value:.10g}, the record says {optsummary.fmin:.10g}; fit the model again")
        if derivs is None and nAGQ > 0:
            derivs = derivatives(stage, params)
    model_class = model_class or GeneralizedLinearMixedModel
    singular = is_singular(params[:deviance.n_theta], deviance.lower)
    return model_class(design, deviance, optsummary, derivs, tuple(map(float, start_theta)), start, singular,
                       bool(converged), tuple(messages))


def _with_counts(response, counts):
    """The GlmResponse with new successes (binomial) or counts (Poisson), refused unless they are
    whole numbers the family can take on every row."""
    counts = np.array(counts, dtype=float)
    trials = response.trials if response.family.name == "binomial" else np.full(response.n, np.inf)
    if counts.shape != (response.n,):
        raise ModelError(f"the new response has shape {counts.shape}; the model has {response.n} rows: "
                         f"pass {response.n} counts")
    bad = ~np.isfinite(counts) | (counts < 0) | (counts > trials) | (counts != np.round(counts))
    if bad.any():
        what = "successes from 0 to each row's trials" if response.family.name == "binomial" else "counts 0, 1, 2, ..."
        raise ModelError(f"the new response has {int(bad.sum())} values that are not {what}; pass {what}")
    if response.family.name == "poisson":
        return dataclasses.replace(response, y=counts, constant=-scipy.special.gammaln(counts + 1), successes=counts)
    y = np.divide(counts, trials, out=np.zeros(response.n), where=trials > 0)
    constant = scipy.special.gammaln(trials + 1) - scipy.special.gammaln(counts + 1) \
        - scipy.special.gammaln(trials - counts + 1)
    return dataclasses.replace(response, y=y, constant=constant, successes=counts)


def _stage_optimizers(optimizers):
    names = (optimizers, optimizers) if isinstance(optimizers, str) else tuple(optimizers)
    if len(names) != 2:
        raise ModelError(f"optimizer must be one name or two (one per stage), not {len(names)}")
    return tuple(optimizer_name(name) for name in names)


def _second_stage(stage, deviance, modes, optimizer, control):
    """θ and β together from the first stage's optimum, with lme4's initial Nelder-Mead steps
    (0.02 for θ, 0.2·min(se(β), 10) for β, se from the unscaled variance at the first stage).
    The tolerances are tighter than lme4's (FtolAbs 1e-5), which stops up to ~1e-4 (relative)
    short of the optimum of its own deviance; fits then agree with lme4 to what lme4 resolves."""
    start = np.concatenate([modes.theta, modes.beta])
    steps = 0.2 * np.concatenate([np.full(len(modes.theta), 0.1),
                                  np.minimum(np.sqrt(np.diag(deviance.unscaled_vcov(modes))), 10)])
    settings = {"initial_step": tuple(steps.tolist()), "xtol_abs": tuple((steps * 1e-7).tolist()),
                "ftol_abs": STAGE2_FTOL, "ftol_rel": 1e-15}
    params, summary = minimize(stage, start, stage.lower, optimizer=optimizer, control={**settings, **(control or {})})
    params, _ = at_boundary(stage, params, stage.lower, BOUNDARY_TOLERANCE)
    return params, _with_final(summary, params, stage(params))


def _with_final(summary, params, value):
    return OptSummary(summary.optimizer, summary.initial, tuple(map(float, params)), float(value),
                      summary.evaluations, summary.status, summary.settings)


def convergence_messages(gradient, hessian):
    """lme4's checkConv for a glmer fit: the scaled gradient, then the Hessian (negative or zero
    eigenvalues, a very large eigenvalue, a large eigenvalue ratio). Like lme4, which counts
    glmer's β among the variance parameters there, it does not check the Hessian of β alone."""
    try:
        messages = scaled_gradient_messages(gradient, hessian)
    except np.linalg.LinAlgError:
        messages = ["unable to evaluate scaled gradient"]
    return messages + _hessian_messages(hessian)


def _hessian_messages(hessian):
    """lme4's checkHess."""
    values = np.linalg.eigvalsh(hessian)
    if (negative := int((values < -HESSIAN_TOLERANCE).sum())):
        return [f"Model failed to converge: degenerate  Hessian with {negative} negative eigenvalues"]
    if (np.abs(values) < HESSIAN_TOLERANCE).any():
        return [" Hessian is numerically singular: parameters are not uniquely determined"]
    out = []
    if values.max() * HESSIAN_TOLERANCE > 1:
        out.append("Model is nearly unidentifiable: very large eigenvalue - Rescale variables?")
    if values.min() / values.max() < HESSIAN_TOLERANCE:
        out.append("Model is nearly unidentifiable: large eigenvalue ratio - Rescale variables?")
    return out


@dataclass(frozen=True, eq=False)
class GeneralizedLinearMixedModel:
    design: object
    deviance_function: GlmmDeviance
    optsummary: OptSummary
    derivatives: tuple          # (gradient, Hessian) of the stage-2 deviance at the optimum; None for nAGQ = 0
    start_theta: tuple          # the θ whose modes PIRLS starts from: the first stage's θ̂ (lme4's lp0)
    start: Start
    is_singular: bool
    converged: bool
    messages: tuple

    REML = False                # maximum likelihood only: anova() compares these fits as they are

    @property
    def covariance_layout(self):
        """θ's layout (names, bounds, θ <-> Λ), as the linear mixed model has it."""
        return self.deviance_function.layout

    def with_response(self, counts):
        """This model fitted to new counts on the same rows (lme4's refit(m, y)): binomial successes
        out of each row's trials (0/1 for a 0/1 outcome), or Poisson counts, as simulate() gives
        them. The design, weights and offset are reused; glmer's two stages run from lme4's start
        with its default optimizers. Messages are logged at debug level: a bootstrap refits often."""
        response = _with_counts(self.response, counts)
        with _blas_controller().limit(limits=1, user_api="blas"):
            return _fit(self.design, response, self.nAGQ, OPTIMIZERS, None, type(self), level=logging.DEBUG)

    # ---- the fit ------------------------------------------------------------------------
    @cached_property
    def _modes(self):
        x = np.array(self.optsummary.final)
        n_theta = self.deviance_function.n_theta
        beta = None if self.nAGQ == 0 else x[n_theta:]
        return self.deviance_function.modes(x[:n_theta], beta, self.start)

    @property
    def family(self):
        return self.response.family.name

    @property
    def link(self):
        return self.response.family.link

    @property
    def response(self):
        return self.deviance_function.response

    @property
    def nAGQ(self):
        return self.deviance_function.nAGQ

    @property
    def formula(self):
        return self.design.formula

    @property
    def theta(self):
        return np.array(self.optsummary.final[:self.deviance_function.n_theta])

    @property
    def sigma(self):
        """1: binomial and Poisson models have no scale parameter."""
        return 1.0

    @cached_property
    def objective(self):
        return float(self.deviance_function.value(self._modes))

    @cached_property
    def fixef(self):
        return pd.Series(self._modes.beta, index=pd.Index(self.design.fixed_names, dtype=object), name="Estimate")

    @cached_property
    def vcov(self):
        """Var(β̂): twice the inverse Hessian of the stage-2 deviance (vcov.merMod with
        use.hessian = TRUE); (R_X'R_X)⁻¹ for nAGQ = 0 or when that is not positive definite."""
        names = list(self.design.fixed_names)
        value = self._hessian_vcov()
        if value is None:
            value = self.deviance_function.unscaled_vcov(self._modes)
        return pd.DataFrame(value, index=names, columns=names)

    def _hessian_vcov(self):
        if self.derivatives is None:
            return None
        n_theta = self.deviance_function.n_theta
        try:
            inverse = np.linalg.inv(self.derivatives[1])[n_theta:, n_theta:]
        except np.linalg.LinAlgError:
            inverse = None
        if inverse is None or not np.isfinite(inverse).all() or np.linalg.eigvalsh(inverse + inverse.T).min() <= 0:
            log.warning("variance-covariance matrix computed from finite-difference Hessian is not positive definite "
                        "or contains NA values: falling back to var-cov estimated from RX")
            return None
        return inverse + inverse.T

    @property
    def nobs(self):
        return self.design.n

    @property
    def n_dropped(self):
        return self.design.n_dropped_rows

    @property
    def npar(self):
        return self.design.p + len(self.theta)

    @property
    def loglik(self):
        """-deviance/2. With nAGQ > 1 it is lme4's: built from deviance residuals, so it lacks the
        constant log-likelihood terms and does not compare with a Laplace fit's."""
        return -self.objective / 2

    @property
    def aic(self):
        return -2 * self.loglik + 2 * self.npar

    @property
    def bic(self):
        return -2 * self.loglik + np.log(self.nobs) * self.npar

    @property
    def df_resid(self):
        return self.nobs - self.npar

    @property
    def deviance(self):
        """-2 logLik, as summary() prints it (lme4's deviance() is residual_deviance)."""
        return self.objective

    @property
    def residual_deviance(self):
        """The sum of squared deviance residuals: lme4's deviance() of a GLMM."""
        return float((self.residuals("deviance") ** 2).sum())

    @property
    def ngroups(self):
        return {t.group: t.nlevels for t in self.design.terms}

    # ---- variance components -------------------------------------------------------------
    @cached_property
    def group_labels(self):
        """Term names as as.data.frame(VarCorr()) prints them: repeats become id.1, id.2."""
        seen, labels = {}, []
        for term in self.design.terms:
            count = seen.get(term.group, 0)
            labels.append(term.group if count == 0 else f"{term.group}.{count}")
            seen[term.group] = count + 1
        return labels

    @cached_property
    def covariances(self):
        """Λ_k Λ_k' for each random-effects term (the scale is 1)."""
        return [lam @ lam.T for lam in self.deviance_function.factors(self.theta)]

    @cached_property
    def varcorr(self):
        """as.data.frame(VarCorr()): no residual row, a GLMM has no residual variance."""
        rows = []
        for label, term, cov in zip(self.group_labels, self.design.terms, self.covariances):
            sd = np.sqrt(np.diag(cov))
            rows += [(label, name, None, cov[i, i], sd[i]) for i, name in enumerate(term.columns)]
            for j in range(term.q):
                for i in range(j + 1, term.q):
                    corr = cov[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan
                    rows.append((label, term.columns[j], term.columns[i], cov[i, j], corr))
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    # ---- effects and predictions ---------------------------------------------------------
    def coef_table(self):
        """Estimate, Std. Error, z value, Pr(>|z|): glmer's Wald z tests."""
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        z = self.fixef.to_numpy() / se
        return pd.DataFrame({"Estimate": self.fixef, "Std. Error": se, "z value": z,
                             "Pr(>|z|)": 2 * scipy.special.ndtr(-np.abs(z))}, index=self.fixef.index)

    @cached_property
    def _conditional_modes(self):
        return self.deviance_function.conditional_modes(self._modes)

    @cached_property
    def ranef(self):
        """Conditional modes per grouping factor (terms on one factor side by side, as lme4)."""
        out = {}
        for term, modes in zip(self.design.terms, self._conditional_modes):
            frame = pd.DataFrame(modes, index=pd.Index(term.levels, name=term.group), columns=list(term.columns))
            out[term.group] = pd.concat([out[term.group], frame], axis=1) if term.group in out else frame
        return out

    @cached_property
    def ranef_condvar(self):
        """Conditional covariance of each term's modes per level: {label: (J, q, q) array}."""
        variances = self.deviance_function.conditional_variances(self._modes)
        return dict(zip(self.group_labels, variances))

    @property
    def linear_predictor(self):
        """η = offset + Xβ + Zb at the modes (predict(m), type = "link")."""
        return self._modes.eta.copy()

    @cached_property
    def fitted(self):
        """μ: predicted probabilities (binomial) or rates (Poisson), random effects included."""
        return linkinv_array(self._modes.eta, self.response.family.link_code)

    def predict(self, type="response", random=True):
        """Predictions on the model's rows: with the random effects (as fitted()) or without them
        (lme4's re.form = NA), on the response scale or as the linear predictor ("link")."""
        if type not in ("response", "link"):
            raise ModelError(f"predict type '{type}' is unknown; use 'response' or 'link'")
        eta = self._modes.eta if random else self.response.offset + self.design.X @ self.fixef.to_numpy()
        return linkinv_array(eta, self.response.family.link_code) if type == "response" else eta.copy()

    def residuals(self, type="deviance"):
        """Deviance (lme4's default), Pearson or response residuals."""
        r, mu = self.response, self.fitted
        if type == "response":
            return r.y - mu
        if type == "pearson":
            return (r.y - mu) * np.sqrt(r.weights / variance_array(mu, r.family.code))
        if type == "deviance":
            squared = deviance_residuals_array(r.y, mu, r.weights, r.family.code)
            return np.sign(r.y - mu) * np.sqrt(np.maximum(squared, 0))
        raise ModelError(f"residual type '{type}' is unknown; use 'deviance', 'pearson' or 'response'")
