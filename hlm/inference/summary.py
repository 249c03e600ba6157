"""A fitted model as lme4/lmerTest print it (`summary()`) and as a JSON-ready dict (`to_dict()`).

Number formatting follows R's `format(x, digits = 4)`: a column shares one number of decimals,
the fewest that show every entry to 4 significant digits.
"""
import math

import numpy as np

from ..engine.design import nested_in
from ..vocabulary import DDF_TITLES, ddf_method

DIGITS = 4
SIGNIF_LEGEND = "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"


def format_column(values, digits=DIGITS):
    """R's format(values, digits): one shared number of decimals for the whole column."""
    decimals = max((_decimals_needed(v, digits) for v in values), default=0)
    return [f"{v:.{decimals}f}" for v in values]


def _decimals_needed(value, digits):
    if not np.isfinite(value) or value == 0:
        return 0
    exponent = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - exponent)
    text = f"{abs(value):.{decimals}f}"
    while decimals > 0 and text.endswith("0"):
        decimals, text = decimals - 1, text[:-1]
    return decimals


def format_p(p):
    """R's format.pval with lmerTest's eps: tiny values print as '< 2e-16'."""
    if p < 2.220446e-16:
        return "< 2e-16"
    return f"{p:.2e}" if p < 1e-4 else f"{p:.3g}" if p < 0.001 else f"{p:.4f}".rstrip("0").rstrip(".")


def stars(p):
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "." if p < 0.1 else ""


def abbreviate(name, length=6):
    """R's abbreviate(): drop lower-case vowels, then lower-case letters, from the right."""
    chars = list(name)
    for letters in ("aeiou", "abcdefghijklmnopqrstuvwxyz"):
        i = len(chars) - 1
        while len(chars) > length and i > 0:
            if chars[i] in letters:
                del chars[i]
            i -= 1
    return "".join(chars[:length]) if len(chars) > length else "".join(chars)


def table_lines(rows, align_right):
    """Rows of cells -> lines, each column padded to its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [" ".join(cell.rjust(w) if right else cell.ljust(w)
                     for cell, w, right in zip(row, widths, align_right)).rstrip() for row in rows]


def fit_statistics_lines(model):
    if model.REML:
        return [f"REML criterion at convergence: {model.reml_criterion:.1f}"]
    names = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    values = [f"{v:.1f}" for v in (model.aic, model.bic, model.loglik, model.deviance)] + [str(model.df_resid)]
    return table_lines([names, values], [True] * 5)


def _residual_quantiles(model):
    quantiles = np.quantile(model.residuals(scaled=True), [0, 0.25, 0.5, 0.75, 1])
    return table_lines([["Min", "1Q", "Median", "3Q", "Max"], format_column(quantiles)], [True] * 5)


def random_effects_lines(model):
    """The random-effects table; the Residual row only where the model has one (not a GLMM's)."""
    vc = model.varcorr
    variances = vc[vc.var2.isna()]
    max_q = max(t.q for t in model.design.terms)
    header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] + [""] * (max_q - 2) if max_q > 1 else [])
    rows = []
    var_text = format_column(variances.vcov.to_numpy())
    sd_text = format_column(variances.sdcor.to_numpy())
    k = 0
    for label, term, cov in zip(model.group_labels, model.design.terms, model.covariances):
        sd = np.sqrt(np.diag(cov))
        for i, name in enumerate(term.columns):
            corr = [f"{cov[i, j] / (sd[i] * sd[j]):.2f}" if sd[i] * sd[j] > 0 else "NaN" for j in range(i)]
            row = [label if i == 0 else "", name, var_text[k], sd_text[k]] + corr
            rows.append(row + [""] * (len(header) - len(row)))
            k += 1
    if k < len(var_text):
        rows.append(["Residual", "", var_text[k], sd_text[k]] + [""] * (len(header) - 4))
    lines = table_lines([header] + rows, [False, False, True, True] + [True] * (len(header) - 4))
    return [" " + line for line in lines]


def coefficient_lines(table):
    """The fixed-effects table: Estimate, Std. Error (, df), t or z value (, p-value and stars)."""
    statistic = "z" if "z value" in table else "t"
    p_name = f"Pr(>|{statistic}|)"
    has_p = p_name in table
    est_cols = ["Estimate", "Std. Error"] + (["df"] if "df" in table else [])
    shared = format_column(table[est_cols].to_numpy().ravel())
    shared = np.array(shared).reshape(len(table), len(est_cols))
    t_text = format_column(np.round(table[f"{statistic} value"].to_numpy(), 3))
    header = [""] + est_cols + [f"{statistic} value"] + ([p_name, ""] if has_p else [])
    rows = [header]
    for i, name in enumerate(table.index):
        row = [name] + list(shared[i]) + [t_text[i]]
        if has_p:
            p = table[p_name].iloc[i]
            row += [format_p(p), stars(p)]
        rows.append(row)
    lines = table_lines(rows, [False] + [True] * (len(header) - 2) + [False if has_p else True])
    return lines + (["---", SIGNIF_LEGEND] if has_p else [])


def fixed_correlation_lines(model):
    vcov = model.vcov.to_numpy()
    if len(vcov) < 2:
        return []
    sd = np.sqrt(np.diag(vcov))
    corr = vcov / np.outer(sd, sd)
    names = list(model.vcov.index)
    rows = [[""] + [abbreviate(n) for n in names[:-1]]]
    for i in range(1, len(names)):
        rows.append([names[i]] + [f"{corr[i, j]:.3f}" for j in range(i)] + [""] * (len(names) - 1 - i))
    return ["", "Correlation of Fixed Effects:"] + table_lines(rows, [False] + [True] * (len(names) - 1))


def format_summary(model, ddf=None):
    """summary(m) as lmerTest prints it; ddf None or 'lme4' prints lme4's plain t table."""
    ddf = None if ddf is None or ddf_method(ddf) == "lme4" else ddf_method(ddf)
    method = "REML" if model.REML else "maximum likelihood"
    header = f"Linear mixed model fit by {method}"
    if ddf:
        header += f". t-tests use {DDF_TITLES[ddf]} method"
    groups = "; ".join(f"{name}, {count}" for name, count in model.ngroups.items())
    lines = [header, f"Formula: {model.formula}", ""]
    lines += fit_statistics_lines(model) + ["", "Scaled residuals: "] + _residual_quantiles(model)
    lines += ["", "Random effects:"] + random_effects_lines(model)
    lines += [f"Number of obs: {model.nobs}, groups:  {groups}"]
    if model.design.p:  # lme4 prints no fixed-effects table for y ~ 0 + (1 | g)
        lines += ["", "Fixed effects:"] + coefficient_lines(model.coef_table(ddf)) + fixed_correlation_lines(model)
    if model.n_dropped:
        lines += ["", f"{model.n_dropped} rows with missing values were dropped."]
    lines += [""] + list(model.messages) if model.messages else []
    return "\n".join(lines) + "\n"


def _text(value):
    """A varcorr name, '' where R has NA (as the reference JSON writes it)."""
    return value if isinstance(value, str) else ""


def terms_dict(design):
    """The fixed terms (label, variables, columns), each variable's kind and level and which
    grouping factor is nested in which, as the model record carries them: what R's terms() and model frame know, for readers of records."""
    terms = [{"label": term.label, "variables": list(term.variables), "columns": list(design.term_columns(k))}
             for k, term in enumerate(design.fixed_terms)]
    variables = {v.label: {"kind": v.kind, "level": v.level, "constant_within": list(v.constant_within)}
                 | ({"levels": list(v.levels), "reference": v.reference} if v.kind == "factor" else {})
                 for v in design.variables}
    return {"response": design.response, "data_columns": list(design.data_columns),
            "terms": terms, "variables": variables, "nested_in": nested_in(design.terms)}


def model_dict(model):
    """The fitted model with the key names of the lme4 reference JSON (hsb_lme4.json), and its
    terms and variables (terms_dict)."""
    vcov = model.vcov.to_numpy()
    sd = np.sqrt(np.diag(vcov))
    names = list(model.fixef.index)
    table = model.coef_table()
    return {
        "formula": model.formula,
        **terms_dict(model.design),
        "REML": model.REML,
        "optimizer": model.optsummary.optimizer,
        "nobs": model.nobs,
        "n_dropped": model.n_dropped,
        "ngroups": model.ngroups,
        "logLik": model.loglik,
        "AIC": model.aic,
        "BIC": model.bic,
        "deviance": model.deviance,
        "REMLcrit": model.reml_criterion,
        "df_resid": model.df_resid,
        "npar": model.npar,
        "theta": model.theta.tolist(),
        "sigma": model.sigma,
        "fixef": dict(zip(names, model.fixef.tolist())),
        "se": dict(zip(names, sd.tolist())),
        "t": dict(zip(names, table["t value"].tolist())),
        "vcov": vcov.tolist(),
        "cor_fixef": (vcov / np.outer(sd, sd)).tolist(),
        "varcorr": [{"grp": r.grp, "var1": _text(r.var1), "var2": _text(r.var2),
                     "vcov": r.vcov, "sdcor": r.sdcor} for r in model.varcorr.itertuples()],
        "scaled_resid_quantiles": np.quantile(model.residuals(scaled=True), [0, .25, .5, .75, 1]).tolist(),
        "singular": model.is_singular,
        "converged": model.converged,
        "messages": list(model.messages),
        "ranef": {group: {"levels": [str(level) for level in frame.index],
                          "values": {column: frame[column].tolist() for column in frame.columns}}
                  for group, frame in model.ranef.items()},
        "fitted_head": model.fitted[:10].tolist(),
        "resid_head": model.residuals()[:10].tolist(),
        "optinfo": {"evaluations": model.optsummary.evaluations, "status": model.optsummary.status,
                    "fmin": model.optsummary.fmin},
        "optsummary": model.optsummary.to_dict(),
    }
