"""The parametric bootstrap likelihood-ratio test, as pbkrtest's PBmodcomp.

Responses simulated from the smaller model (fitted by ML) are refitted with both models; the
observed LRT is compared with the LRT* of the refits. The χ² reference is conservative when the
smaller model puts a variance on its boundary (a random-slope test); the bootstrap is not.
Refits are lme4's refit (power.refit_to). pbkrtest 0.5.2's PBtest p-value is (1 + #{LRT* > LRT}) / (1 + #{LRT* > 0}): only positive LRT*
count. Replicate i draws from PCG64 seeded by SeedSequence([seed, i]) (with the comparison's
name: [seed, stable_hash(name), i]), so chunks of replicates can run anywhere and gather alike.
"""
import logging
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import scipy.stats
from tqdm import tqdm

from ..engine.simulate import simulate
from ..errors import ModelError
from ..inference.cache import ml_version
from .checks import _check_model, _check_same_likelihood, _check_same_rows
from .power import REFIT_ERRORS, CountedWarnings, message_kind, refit_to, stable_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PBResult:
    """PBmodcomp's test: the LRT with its χ² p-value and the parametric bootstrap p-value."""
    lrt: float              # 2 (logLik(large) - logLik(small)), both by ML
    df: int                 # the difference in the number of parameters
    p_chisq: float
    p_bootstrap: float      # pbkrtest's PBtest
    nsim: int               # replicates run
    failed: int             # refits that raised (left out)
    n_positive: int         # LRT* > 0: the reference distribution pbkrtest counts
    n_extreme: int          # LRT* > LRT
    messages: tuple = ()    # ({"message", "count"}, ...): why refits failed or did not converge

    def to_dict(self):
        return {**asdict(self), "messages": [dict(m) for m in self.messages]}


def pbmodcomp(large, small, nsim=1000, seed=1, progress=None, name=None):
    """pbkrtest::PBmodcomp(large, small, nsim): REML fits are refitted by ML first."""
    large, small = _ml_pair(large, small)
    with tqdm(total=int(nsim), desc="parametric bootstrap", disable=not progress) as bar:
        chunk = pb_chunk(large, small, seed, 0, int(nsim), name=name, progress=bar)
    return pb_gather([chunk], large, small, nsim)


def _ml_pair(large, small):
    """Both models by ML, after the checks anova makes; the large one must have more parameters."""
    pairs = [("large", large), ("small", small)]
    for label, model in pairs:
        _check_model(model, f"the {label} model")
    _check_same_rows(pairs)
    _check_same_likelihood(pairs)
    if large.npar <= small.npar:
        raise ModelError(f"the large model '{large.formula}' has {large.npar} parameters, the small one "
                         f"'{small.formula}' {small.npar}: pass the model with more parameters first")
    return ml_version(large), ml_version(small)


def replicate_rng(seed, index, name=None):
    """The only source of random numbers of bootstrap replicate `index`."""
    entropy = [int(seed), int(index)] if name is None else [int(seed), stable_hash(name), int(index)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def pb_chunk(large, small, seed, start, stop, name=None, progress=None):
    """Replicates [start, stop): LRT* of each (None where a refit raised), JSON-able; the reasons
    refits failed, did not converge or were singular are counted in `messages` (non-converged
    refits keep their LRT*, as pbkrtest keeps them)."""
    large, small = _ml_pair(large, small)
    values, reasons = [], Counter()
    with CountedWarnings(reasons):
        for i in range(int(start), int(stop)):
            _replicate(large, small, replicate_rng(seed, i, name), values, reasons)
            if progress:
                progress.update(1)
    return {"start": int(start), "stop": int(stop), "lrt": values,
            "messages": [{"message": m, "count": c} for m, c in sorted(reasons.items())]}


def _replicate(large, small, rng, values, reasons):
    """Append one replicate's LRT* (None where a refit raised) and count its refits' messages."""
    y = simulate(small, 1, rng=rng)[:, 0]
    try:
        refits = (refit_to(large, y), refit_to(small, y))
        values.append(float(2 * (refits[0].loglik - refits[1].loglik)))
        reasons.update(message_kind(m) for fit in refits for m in fit.messages[len(fit.design.messages):])
    except REFIT_ERRORS as exc:
        values.append(None)
        reasons[f"refit failed: {message_kind(str(exc))}"] += 1


def pb_gather(chunk_results, large, small, nsim):
    """The PBResult of chunks covering replicates 0..nsim-1 exactly once."""
    large, small = _ml_pair(large, small)
    chunk_results = sorted(chunk_results, key=lambda r: r["start"])
    if [r["start"] for r in chunk_results] != [0] + [r["stop"] for r in chunk_results[:-1]] \
            or chunk_results[-1]["stop"] != nsim or any(len(r["lrt"]) != r["stop"] - r["start"] for r in chunk_results):
        spans = ", ".join(f"[{r['start']}, {r['stop']})" for r in chunk_results)
        raise ModelError(f"the bootstrap chunks {spans} do not cover replicates 0..{nsim - 1} exactly once; "
                         "rerun the missing or repeated chunks")
    ref = np.array([v for r in chunk_results for v in r["lrt"] if v is not None], dtype=float)
    reasons = Counter()
    for r in chunk_results:
        for entry in r["messages"]:
            reasons[entry["message"]] += entry["count"]
    lrt = float(2 * (large.loglik - small.loglik))
    df = int(large.npar - small.npar)
    positive = ref[ref > 0]
    extreme = int((positive > lrt).sum())
    failed = int(nsim) - len(ref)
    if failed:
        log.warning("%d of %d bootstrap refits failed", failed, nsim)
    return PBResult(lrt, df, float(scipy.stats.chi2.sf(lrt, df)), (1 + extreme) / (1 + len(positive)), int(nsim),
                    failed, len(positive), extreme,
                    tuple({"message": m, "count": c} for m, c in sorted(reasons.items())))
