# lme4 + lmerTest's cost of one power replicate, the loop simr's powerSim runs:
# simulate(newparams) -> refit -> lmerTest's Satterthwaite t test of one fixed effect.
# Rscript power_time.R DATA.sav "FORMULA" TERM EFFECT SIZE NSIM ROUNDS  -> one JSON line
# The model is fitted by ML (bobyqa) to all of DATA; the replicates run on its first SIZE units
# of `id` (sorted); the median over ROUNDS of the mean seconds per replicate is reported.
suppressMessages({library(lme4); library(lmerTest); library(haven); library(jsonlite)})
a <- commandArgs(TRUE)
data <- as.data.frame(zap_labels(read_sav(a[1])))
formula <- as.formula(a[2]); term <- a[3]; effect <- as.numeric(a[4])
size <- as.integer(a[5]); nsim <- as.integer(a[6]); rounds <- as.integer(a[7])
ctl <- lmerControl(optimizer = "bobyqa")
full <- lme4::lmer(formula, data, REML = FALSE, control = ctl)
beta <- fixef(full); beta[[term]] <- effect
params <- list(beta = unname(beta), theta = unname(getME(full, "theta")), sigma = sigma(full))
subset <- data[data$id %in% sort(unique(data$id))[seq_len(size)], ]
template <- lme4::lmer(formula, subset, REML = FALSE, control = ctl)
replicate_p <- function(y) {
  fit <- suppressWarnings(suppressMessages(refit(template, y)))
  suppressWarnings(summary(as_lmerModLmerTest(fit))$coefficients[term, "Pr(>|t|)"])
}
per_replicate <- sapply(seq_len(rounds), function(round) {
  system.time({
    sims <- suppressMessages(simulate(template, nsim, seed = round, newparams = params))
    p <- vapply(sims, replicate_p, numeric(1))
  })[["elapsed"]] / nsim
})
cat(toJSON(list(seconds = median(per_replicate), rounds = per_replicate, nobs = nrow(subset),
                lme4 = as.character(packageVersion("lme4")), lmerTest = as.character(packageVersion("lmerTest")),
                R = R.version.string), auto_unbox = TRUE, digits = NA), "\n")
