"""The engine: from a formula and a table to a fitted linear mixed model, as lme4 fits it.

formula (parse lme4's formula language) -> design (y, X, Z and which columns each term and
variable owns) -> covariance (θ <-> Λ <-> sd/cor) -> deviance (the profiled deviance and its
blocked Cholesky factor; kernels holds its compiled loops, built ahead of time at install) ->
optimize (the optimizer backends and their record) -> model (the fitted model). derivatives:
numerical derivatives for the convergence check and for inference. GLMMs: family (links,
variances, the response as a family reads it) -> pirls (PIRLS as compiled loops; vector_math,
their exp and log) -> glmm (the Laplace and quadrature deviance, glmer's two stages, the fitted
GLMM). simulate: responses simulated from a fitted LMM or GLMM (lme4's simulate.merMod), which
with_response refits.
"""
