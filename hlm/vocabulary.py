"""One vocabulary for the choices that have several spellings.

Each choice has one canonical name, the config's (`ddf: Satterthwaite`); the config, the API,
the records and the report accept any of its spellings (case, spaces, '-' and '_' ignored,
plus the usual abbreviations) and print the canonical name.
"""
import re

from .errors import ModelError, did_you_mean

# denominator df of the t and F tests; lme4: none (lme4's own t table, no p-values)
DDF_METHODS = ("Satterthwaite", "Kenward-Roger", "residual", "lme4")
DDF_TITLES = {"Satterthwaite": "Satterthwaite's", "Kenward-Roger": "Kenward-Roger's",
              "residual": "residual df"}          # as lmerTest's headings name them
DDF_RECORD_KEYS = {"Satterthwaite": "df_satterthwaite", "Kenward-Roger": "df_kenward_roger",
                   "residual": "df_residual"}     # as the lme4 reference JSON names them
OPTIMIZERS = ("bobyqa", "nelder_mead", "lbfgsb")
# standardized coefficients (effectsize::standardize_parameters' methods for lmer models); none: not shown
STANDARDIZED_METHODS = ("refit", "pseudo")
# GLMM response distributions and their links, as R's family objects name them; the first link
# of each family is its default (the canonical one)
FAMILY_LINKS = {"binomial": ("logit", "probit", "cloglog"), "poisson": ("log",)}
FAMILIES = tuple(FAMILY_LINKS)
LINKS = tuple(dict.fromkeys(link for links in FAMILY_LINKS.values() for link in links))

_ALIASES = {"kr": "Kenward-Roger", "kenward": "Kenward-Roger", "satt": "Satterthwaite",
            "none": "lme4", "neldermead": "nelder_mead", "nloptwrapneldermead": "nelder_mead",
            "nloptwrap": "bobyqa", "nloptwrapbobyqa": "bobyqa", "lbfgs": "lbfgsb"}


class UnknownChoice(ModelError):
    """A name that is none of a choice's spellings."""


def _key(text):
    return re.sub(r"[\s_\-'.]", "", str(text)).lower()


def _canonical(value, names, what):
    key = _key(value)
    for name in names:
        if _key(name) == key:
            return name
    if _ALIASES.get(key) in names:
        return _ALIASES[key]
    raise UnknownChoice(f"{what} '{value}' is unknown{did_you_mean(value, names)}; use one of {', '.join(names)}")


def ddf_method(value):
    """The canonical name of a ddf method: 'satterthwaite', 'KR', 'kenward_roger' -> ..."""
    return _canonical(value, DDF_METHODS, "ddf")


def optimizer_name(value):
    """The canonical name of an optimizer: 'Nelder-Mead' -> 'nelder_mead'."""
    return _canonical(value, OPTIMIZERS, "optimizer")


def family_name(value):
    """The canonical name of a GLMM family: 'Binomial' -> 'binomial'."""
    return _canonical(value, FAMILIES, "family")


def link_name(family, value=None):
    """The canonical name of a link of `family` (its default link when value is None)."""
    links = FAMILY_LINKS[family_name(family)]
    if value is None:
        return links[0]
    link = _canonical(value, LINKS, "link")
    if link not in links:
        raise UnknownChoice(f"link '{value}' does not go with family {family_name(family)}; use one of {', '.join(links)}")
    return link
