"""The works the report's methods come from (APA 7), and which of them a run cites: a reference is
listed when the analysis uses its method, and the text cites it where the method is used.
"""
REFERENCES = {
    "bates2015": "Bates, D., Mächler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models "
                 "using lme4. Journal of Statistical Software, 67(1), 1–48. https://doi.org/10.18637/jss.v067.i01",
    "ben-shachar2020": "Ben-Shachar, M. S., Lüdecke, D., & Makowski, D. (2020). effectsize: Estimation of effect size "
                       "indices and standardized parameters. Journal of Open Source Software, 5(56), 2815. "
                       "https://doi.org/10.21105/joss.02815",
    "cohen1988": "Cohen, J. (1988). Statistical power analysis for the behavioral sciences (2nd ed.). "
                 "Lawrence Erlbaum.",
    "enders2007": "Enders, C. K., & Tofighi, D. (2007). Centering predictor variables in cross-sectional multilevel "
                  "models: A new look at an old issue. Psychological Methods, 12(2), 121–138. "
                  "https://doi.org/10.1037/1082-989X.12.2.121",
    "halekoh2014": "Halekoh, U., & Højsgaard, S. (2014). A Kenward-Roger approximation and parametric bootstrap "
                   "methods for tests in linear mixed models: The R package pbkrtest. Journal of Statistical "
                   "Software, 59(9), 1–32. https://doi.org/10.18637/jss.v059.i09",
    "green2016": "Green, P., & MacLeod, C. J. (2016). SIMR: An R package for power analysis of generalized linear "
                 "mixed models by simulation. Methods in Ecology and Evolution, 7(4), 493–498. "
                 "https://doi.org/10.1111/2041-210X.12504",
    "hoffman2015": "Hoffman, L. (2015). Longitudinal analysis: Modeling within-person fluctuation and change. "
                   "Routledge.",
    "kenward1997": "Kenward, M. G., & Roger, J. H. (1997). Small sample inference for fixed effects from restricted "
                   "maximum likelihood. Biometrics, 53(3), 983–997. https://doi.org/10.2307/2533558",
    "kish1965": "Kish, L. (1965). Survey sampling. Wiley.",
    "kuznetsova2017": "Kuznetsova, A., Brockhoff, P. B., & Christensen, R. H. B. (2017). lmerTest package: Tests in "
                      "linear mixed effects models. Journal of Statistical Software, 82(13), 1–26. "
                      "https://doi.org/10.18637/jss.v082.i13",
    "nakagawa2013": "Nakagawa, S., & Schielzeth, H. (2013). A general and simple method for obtaining R² from "
                    "generalized linear mixed-effects models. Methods in Ecology and Evolution, 4(2), 133–142. "
                    "https://doi.org/10.1111/j.2041-210x.2012.00261.x",
    "nakagawa2017": "Nakagawa, S., Johnson, P. C. D., & Schielzeth, H. (2017). The coefficient of determination R² "
                    "and intra-class correlation coefficient from generalized linear mixed-effects models revisited "
                    "and expanded. Journal of the Royal Society Interface, 14(134), 20170213. "
                    "https://doi.org/10.1098/rsif.2017.0213",
    "raudenbush2002": "Raudenbush, S. W., & Bryk, A. S. (2002). Hierarchical linear models: Applications and data "
                      "analysis methods (2nd ed.). Sage.",
    "satterthwaite1946": "Satterthwaite, F. E. (1946). An approximate distribution of estimates of variance "
                         "components. Biometrics Bulletin, 2(6), 110–114. https://doi.org/10.2307/3002019",
}

ALWAYS = ("raudenbush2002", "bates2015", "nakagawa2013", "nakagawa2017")
BY_DDF = {"Satterthwaite": ("satterthwaite1946", "kuznetsova2017"),
          "Kenward-Roger": ("kenward1997", "halekoh2014", "kuznetsova2017")}
BY_STANDARDIZED = {"refit": ("ben-shachar2020",), "pseudo": ("hoffman2015", "ben-shachar2020")}


def cited(config, specs, has_icc, has_centering, has_power=False, has_bootstrap=False):
    """The keys of the references the report cites, in alphabetical order (APA's reference list)."""
    keys = set(ALWAYS)
    for spec in specs:
        keys.update(BY_DDF.get(spec["ddf"], ()))
    keys.update(BY_STANDARDIZED.get(config.get("report", {}).get("standardized", "none"), ()))
    if has_icc:
        keys.update(("cohen1988", "kish1965"))
    if has_centering:
        keys.add("enders2007")
    if has_power:
        keys.add("green2016")
    if has_bootstrap:
        keys.add("halekoh2014")
    return sorted(keys)


def reference_list(keys):
    return [REFERENCES[key] for key in keys]
