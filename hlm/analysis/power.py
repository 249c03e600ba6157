"""Power by simulation, as simr's powerSim and powerCurve: responses simulated from a fitted
model with one fixed effect set to the assumed `effect`, refitted, and that effect tested (the
model's t test with Satterthwaite or Kenward-Roger df, Wald z for a GLMM) at each number of
units of a grouping factor.

A size of n units takes the first n units in sorted id order (simr's powerCurve); a size above
the data's number of units J repeats units (as simr's extend): unit k >= J is a copy of unit
k mod J in that order, with a new id. The work is split into chunks of replicates (one job
each) whose results do not depend on the chunking: replicate i at size s draws from
numpy's PCG64 seeded by SeedSequence([seed, stable_hash(name), s, i]) and nothing else.
"""
import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
import scipy.stats
from tqdm import tqdm

from ..engine.design import build_design
from ..engine.glmm import GeneralizedLinearMixedModel, fit_glmm
from ..engine.model import SINGULAR_MESSAGE, fit_design
from ..engine.simulate import simulate
from ..errors import ConfigError, HlmError, ModelError, did_you_mean
from ..inference.bootstrap import REFIT_ERRORS
from ..inference.contrasts import contrast_test
from ..inference.glmm import glmer_design
from ..vocabulary import ddf_method

log = logging.getLogger(__name__)

CONFIDENCE = 0.95            # of the Clopper-Pearson interval of each power
METHODS = {"Satterthwaite": "Satterthwaite t", "Kenward-Roger": "Kenward-Roger", "residual": "residual t",
           "lme4": "z"}
TARGET_POWER = 0.80     # the conventional target: the report names the smallest size reaching it
KEYS = ("model", "term", "effect", "along", "sizes", "nsim", "alpha", "seed", "chunk", "ddf")


@dataclass(frozen=True)
class PowerSpec:
    """One power analysis: test `term` of the model with its value set to `effect`, at each
    number of units of `along` in `sizes`, nsim replicates each, in chunks of `chunk`."""
    name: str
    term: str
    effect: float
    along: str
    sizes: tuple
    nsim: int
    alpha: float = 0.05
    seed: int = 1
    chunk: int = 250
    model: str = None            # the declared model whose fit gives the parameters (config key)
    ddf: str = "Satterthwaite"   # the linear mixed model's t test: Satterthwaite, Kenward-Roger, ...

    def __post_init__(self):
        key = f"config key 'power.{self.name}"
        if isinstance(self.sizes, (str, bytes)) or not self.sizes or not all(_whole(s) for s in self.sizes):
            raise ConfigError(f"{key}.sizes': {self.sizes!r} must be a list of whole numbers of units, e.g. [20, 40]")
        if min(self.sizes) < 2:
            raise ConfigError(f"{key}.sizes': {min(self.sizes)} units is too few; each size needs 2 units or more")
        if len(set(self.sizes)) != len(self.sizes):
            raise ConfigError(f"{key}.sizes': {list(self.sizes)} lists a size twice; list each once")
        for field, low in (("nsim", 1), ("chunk", 1)):
            if not _whole(getattr(self, field)) or getattr(self, field) < low:
                raise ConfigError(f"{key}.{field}': {getattr(self, field)!r} must be a whole number of {low} or more")
        if not _whole(self.seed) or self.seed < 0:
            raise ConfigError(f"{key}.seed': {self.seed!r} must be a whole number of 0 or more")
        if not _number(self.alpha) or not 0 < self.alpha < 1:
            raise ConfigError(f"{key}.alpha': {self.alpha!r} must be a number between 0 and 1, e.g. 0.05")
        if not _number(self.effect):
            raise ConfigError(f"{key}.effect': {self.effect!r} must be a number (the assumed value of the term)")
        for field in ("term", "along"):
            if not isinstance(getattr(self, field), str) or not getattr(self, field):
                raise ConfigError(f"{key}.{field}': {getattr(self, field)!r} must be a name")
        try:
            ddf_method(self.ddf)
        except HlmError as exc:
            raise ConfigError(f"{key}.ddf': {exc}") from None

    @classmethod
    def from_config(cls, name, mapping):
        """The spec of config entry power.<name>; ConfigError (one line naming the key) for bad values."""
        if not isinstance(mapping, dict):
            raise ConfigError(f"config key 'power.{name}' must be a mapping with term, effect, along, sizes and nsim")
        unknown = sorted(set(mapping) - set(KEYS))
        if unknown:
            raise ConfigError(f"config key 'power.{name}.{unknown[0]}' is unknown{did_you_mean(unknown[0], KEYS)}; "
                              f"a power analysis takes {', '.join(KEYS)}")
        missing = [key for key in ("term", "effect", "along", "sizes", "nsim") if key not in mapping]
        if missing:
            raise ConfigError(f"config key 'power.{name}.{missing[0]}' is missing; a power analysis needs term, "
                              "effect, along, sizes and nsim")
        values = dict(mapping)
        sizes = values.pop("sizes")
        sizes = tuple(sorted(sizes)) if isinstance(sizes, (list, tuple)) and all(_whole(s) for s in sizes) else sizes
        return cls(name=name, sizes=sizes, **values)


def _whole(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and bool(np.isfinite(value))


def stable_hash(name):
    """A number from the analysis name that is the same in every process (Python's hash() is not)."""
    return int.from_bytes(hashlib.sha256(str(name).encode("utf-8")).digest()[:8], "big")


def replicate_rng(spec, size, index):
    """The only source of random numbers of replicate `index` at `size`."""
    sequence = np.random.SeedSequence([int(spec.seed), stable_hash(spec.name), int(size), int(index)])
    return np.random.Generator(np.random.PCG64(sequence))


def chunks(spec):
    """The jobs (size, start, stop), replicates [start, stop) at that size, sizes ascending."""
    return [(size, start, min(start + spec.chunk, spec.nsim)) for size in spec.sizes
            for start in range(0, spec.nsim, spec.chunk)]


# ---- one chunk of replicates -------------------------------------------------------------------

def run_chunk(model, data, spec, size, start, stop, progress=None):
    """Replicates [start, stop) at `size` units: each simulated from the model's estimates with
    `term` = `effect`, refitted on the same design and tested. p is None where the refit failed
    or did not converge; `messages` counts why, and counts singular refits (which are kept).
    progress: True for a tqdm bar of this chunk, or a bar to advance (power_curve's)."""
    if not (_whole(start) and _whole(stop) and 0 <= start < stop <= spec.nsim):
        raise ModelError(f"replicates [{start}, {stop}) are not within the analysis' {spec.nsim} replicates")
    params = simulation_parameters(model, spec)
    sized = sized_model(model, data, spec.along, size)
    index = list(sized.design.fixed_names).index(spec.term)
    p, reasons = [], Counter()
    bar = tqdm(total=stop - start, desc=f"power {spec.name} at {size}", leave=False) if progress is True else progress
    with CountedWarnings(reasons):
        for i in range(start, stop):
            y = simulate(sized, 1, rng=replicate_rng(spec, size, i), newparams=params)[:, 0]
            value, why = _replicate_test(sized, y, index, spec.ddf)
            p.append(value)
            reasons.update(why)
            if bar:
                bar.update(1)
    if progress is True:
        bar.close()
    return {"size": int(size), "start": int(start), "stop": int(stop), "method": method_name(model, spec), "p": p,
            "messages": [{"message": m, "count": c} for m, c in sorted(reasons.items())]}


def method_name(model, spec):
    """The test of each replicate, as the result names it."""
    return "z" if isinstance(model, GeneralizedLinearMixedModel) else METHODS[ddf_method(spec.ddf)]


class CountedWarnings(logging.Filter):
    """Within `with`, the warnings the tests and refits of replicates log (Satterthwaite's Hessian,
    a GLMM's vcov) are counted in `counter` instead of written to the log thousands of times."""
    LOGGERS = ("hlm.inference.satterthwaite", "hlm.inference.kenward_roger", "hlm.engine.glmm")

    def __init__(self, counter):
        super().__init__()
        self.counter = counter

    def filter(self, record):
        if record.levelno < logging.WARNING:
            return True
        self.counter[f"warning (p kept): {message_kind(record.getMessage())}"] += 1
        return False

    def __enter__(self):
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)
        return self

    def __exit__(self, *exc_info):
        for name in self.LOGGERS:
            logging.getLogger(name).removeFilter(self)


def simulation_parameters(model, spec):
    """newparams of the simulation: the fit's estimates with the tested term set to the effect."""
    names = list(model.design.fixed_names)
    if spec.term not in names:
        raise ModelError(f"term '{spec.term}' of power analysis '{spec.name}' is not a fixed effect of "
                         f"'{model.formula}'{did_you_mean(spec.term, names)}; its terms are {', '.join(names)}")
    beta = np.array(model.fixef.to_numpy(), dtype=float)
    beta[names.index(spec.term)] = float(spec.effect)
    params = {"beta": beta, "theta": model.theta}
    return params if isinstance(model, GeneralizedLinearMixedModel) else {**params, "sigma": model.sigma}


def _replicate_test(model, y, index, ddf):
    """(p, reasons) of one replicate: the test of coefficient `index` after refitting to y."""
    try:
        refit = refit_to(model, y)
        if not refit.converged:
            return None, [message_kind(_first_problem(refit))]
        if isinstance(refit, GeneralizedLinearMixedModel):
            p = float(refit.coef_table()["Pr(>|z|)"].iloc[index])
        else:
            p = float(contrast_test(refit, np.eye(refit.design.p)[index], ddf)["Pr(>|t|)"])
    except REFIT_ERRORS as exc:
        return None, [f"refit failed: {message_kind(str(exc))}"]
    if not np.isfinite(p):
        return None, ["the test gave no p-value"]
    return p, ["singular fit (kept)"] if refit.is_singular else []


def _first_problem(refit):
    """The first of a refit's own messages that says why it did not converge."""
    own = [m for m in refit.messages[len(refit.design.messages):] if m != SINGULAR_MESSAGE]
    return own[0] if own else "the refit did not converge"


def refit_to(model, y):
    """The model refitted to a simulated response as lme4's refit does it: one optimization from
    lme4's start, without the restarts a fresh hlm fit makes after a boundary optimum (a
    simulation refits thousands of times, and lme4's loop does not restart either)."""
    return model.with_response(y) if isinstance(model, GeneralizedLinearMixedModel) else \
        model.with_response(y, restart=False)


def message_kind(message):
    """A message with its numbers taken out, so that alike failures count as one reason."""
    return re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "#", message.splitlines()[0])[:200]


# ---- the design at a number of units -----------------------------------------------------------

def sized_model(model, data, along, size):
    """The model refitted (once) on the rows of the first `size` units of `along`, or on the data
    extended by copies of its units: its design is what each replicate simulates on and refits."""
    frame = sized_frame(model, data, along, size)
    design_check = list(model.design.fixed_names)
    if isinstance(model, GeneralizedLinearMixedModel):
        response = model.response
        if response.weights_name is None and not np.array_equal(response.weights, response.trials):
            raise ModelError("a model fitted with weights given as numbers cannot be resized; "
                             "give the weights as a column of the data")
        design, resp = glmer_design(model.formula, frame, model.family, model.link, response.weights_name)
        sized = fit_glmm(design, resp, model.nAGQ, model_class=type(model))
    else:
        sized = fit_design(build_design(model.formula, frame), REML=model.REML, optimizer=model.optsummary.optimizer,
                           control=model.optsummary.control, model_class=type(model))
    if list(sized.design.fixed_names) != design_check:
        raise ModelError(f"at {size} units of '{along}' the model has fixed effects "
                         f"{', '.join(sized.design.fixed_names)}, not those of the fit ({', '.join(design_check)}): "
                         "a category is missing from those units; use larger sizes")
    return sized


def sized_frame(model, data, along, size):
    """The rows of the first `size` units of `along` (sorted as the model's levels), or, for more
    units than the data has, all units followed by copies: unit k copies unit k mod J, and its
    rows get new ids for `along` and for every grouping column nested in it (the units' rank
    codes, then J, J+1, ...; nested ids offset likewise), crossed grouping columns kept."""
    term = _along_term(model, along)
    frame = data.iloc[np.asarray(model.design.rows)].reset_index(drop=True)
    codes, units = np.asarray(term.codes), term.nlevels
    if size <= units:
        return frame[codes < size].reset_index(drop=True)
    copies = np.arange(size)
    order = np.concatenate([np.flatnonzero(codes == unit % units) for unit in copies])
    new_unit = np.concatenate([np.full(int((codes == unit % units).sum()), unit) for unit in copies])
    extended = frame.iloc[order].reset_index(drop=True)
    extended[along] = new_unit
    copy_number = new_unit // units
    for other in model.design.terms:
        if other.group != along and other.group in frame.columns and _nested(other.codes, codes):
            extended[other.group] = np.asarray(other.codes)[order] + other.nlevels * copy_number
    return extended


def _along_term(model, along):
    groups = list(dict.fromkeys(t.group for t in model.design.terms))
    if along not in groups:
        raise ModelError(f"'{along}' is not a grouping factor of '{model.formula}'{did_you_mean(along, groups)}; "
                         f"its grouping factors are {', '.join(groups)}")
    return next(t for t in model.design.terms if t.group == along)


def _nested(inner, outer):
    """Is each level of `inner` within one level of `outer`?"""
    pairs = np.unique(np.column_stack([inner, outer]), axis=0)
    return len(pairs) == len(np.unique(inner))


# ---- gathering -------------------------------------------------------------------------------

def gather(spec, chunk_results):
    """The power curve from the chunks of every size: power = share of p < alpha among the
    replicates whose refit succeeded, with its Clopper-Pearson 95% interval and the failures
    counted. The chunks must cover replicates 0..nsim-1 of each size exactly once."""
    by_size = {size: [] for size in spec.sizes}
    for result in chunk_results:
        if result["size"] not in by_size:
            raise ModelError(f"a chunk of power analysis '{spec.name}' has size {result['size']}, "
                             f"which is not among its sizes {list(spec.sizes)}; rerun its chunks")
        by_size[result["size"]].append(result)
    curve = [_curve_row(spec, size, _covering(spec, size, results)) for size, results in by_size.items()]
    methods = sorted({result["method"] for result in chunk_results})
    if len(methods) != 1:
        raise ModelError(f"the chunks of power analysis '{spec.name}' used different tests ({', '.join(methods)}); "
                         "rerun its chunks")
    out = {"name": spec.name, "term": spec.term, "effect": float(spec.effect), "along": spec.along,
           "alpha": float(spec.alpha), "nsim": int(spec.nsim), "seed": int(spec.seed), "method": methods[0],
           "curve": curve}
    return out if spec.model is None else {"name": spec.name, "model": spec.model, **out}


def _covering(spec, size, results):
    """The chunks of one size in order, refused unless they cover 0..nsim-1 exactly once."""
    results = sorted(results, key=lambda r: r["start"])
    position = 0
    for result in results:
        if result["start"] != position or result["stop"] <= result["start"] \
                or len(result["p"]) != result["stop"] - result["start"]:
            what = "overlap" if result["start"] < position else "leave a gap"
            raise ModelError(f"the chunks of power analysis '{spec.name}' at size {size} {what} at replicate "
                             f"{min(position, result['start'])}; rerun its chunks")
        position = result["stop"]
    if position != spec.nsim:
        raise ModelError(f"the chunks of power analysis '{spec.name}' at size {size} cover {position} of "
                         f"{spec.nsim} replicates; rerun the missing chunks")
    return results


def _curve_row(spec, size, results):
    """power, its interval and the failures at one size; the power counts the refits that worked."""
    p = [value for r in results for value in r["p"]]
    ok = [value for value in p if value is not None]
    reasons = Counter()
    for r in results:
        for entry in r["messages"]:
            reasons[entry["message"]] += entry["count"]
    failed = len(p) - len(ok)
    if failed > len(p) / 2:
        log.warning("power analysis '%s' at %d units: %d of %d refits failed or did not converge", spec.name, size,
                    failed, len(p))
    row = {"size": int(size), "nsim": len(p), "failed": failed,
           "messages": [{"message": m, "count": c} for m, c in sorted(reasons.items())]}
    if not ok:
        return {**row, "power": None, "ci_low": None, "ci_high": None}
    hits = sum(value < spec.alpha for value in ok)
    low, high = clopper_pearson(hits, len(ok))
    return {**row, "power": hits / len(ok), "ci_low": low, "ci_high": high}


def clopper_pearson(hits, n, level=CONFIDENCE):
    """The exact binomial interval of hits/n (scipy's binomtest, method 'exact')."""
    interval = scipy.stats.binomtest(int(hits), int(n)).proportion_ci(confidence_level=level, method="exact")
    return float(interval.low), float(interval.high)


def power_curve(model, data, spec, progress=None):
    """The power analysis in this process: every chunk, then gather; with progress, one tqdm bar
    over all replicates."""
    with tqdm(total=spec.nsim * len(spec.sizes), desc=f"power {spec.name}", disable=not progress) as bar:
        return gather(spec, [run_chunk(model, data, spec, size, start, stop, bar)
                             for size, start, stop in chunks(spec)])
