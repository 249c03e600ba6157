"""Inference from a fitted model: what lmerTest, pbkrtest and lme4's confint add to a fit.

satterthwaite and kenward_roger (denominator df), contrasts (t- and F-tests, the coefficient and
anova tables), type3 (the type III hypotheses), profile, bootstrap and intervals (confidence
intervals), summary (lme4's printout), lmertest (the model class with all of these), cache
(per-model results and the ML/REML versions of a fit). glmm: glmer's model class, with
glmm_summary (its printout and record) and glmm_profile (its profile intervals).
"""
