"""The `hlm` command: `hlm fit` (one model), `hlm run` (the declared analysis), `hlm init` (a starter
config), `hlm verify` (did any number drift from a saved run?).

User mistakes (hlm.errors.HlmError) print one line and exit with code 2, never a traceback.
"""
import argparse
import json
import logging
import sys
from importlib import metadata

from .data import read_data
from .errors import HlmError
from .inference.glmm import glmer
from .inference.lmertest import lmer
from .pipeline.run import run_workflow
from .pipeline.starter import write_starter_config
from .results.verify import format_differences, tolerances, verify
from .results.writers import jsonable


def _fit(args):
    dataset = read_data(args.data)
    if args.family:
        model = glmer(args.formula, dataset.frame, family=args.family, link=args.link, nAGQ=args.nagq,
                      weights=args.weights, control={"optimizer": args.optimizer} if args.optimizer else None)
    else:
        model = lmer(args.formula, dataset.frame, REML=args.reml, optimizer=args.optimizer)
    if args.json:
        print(json.dumps(jsonable(model.to_dict()), indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print(model.summary())


def _run(args):
    return run_workflow(args.config, cores=args.cores, dry_run=args.dry_run, forceall=args.forceall,
                        until=args.until or (), profile=args.profile)


def _init(args):
    path = write_starter_config(args.data, args.output, force=args.force)
    print(f"wrote {path}")


def _verify(args):
    table = tolerances(rtol=args.rtol or (), atol=args.atol or ())
    outcome = verify(args.expected, args.results, table)
    if outcome.ok:
        print(f"hlm verify: all {outcome.numbers} numbers in {outcome.files} records of {args.results} "
              f"agree with {args.expected}")
        return 0
    print(format_differences(outcome.differences))
    print(f"hlm verify: {len(outcome.differences)} difference(s) from {args.expected} "
          f"({outcome.numbers} numbers in {outcome.files} records compared)")
    return 1


def _version():
    try:
        return metadata.version("hlm")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser():
    parser = argparse.ArgumentParser(prog="hlm", description="Multilevel models with lme4's numbers.")
    parser.add_argument("--version", action="version", version=f"hlm {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    fit = commands.add_parser("fit", help="fit one model and print it as lme4 does")
    fit.add_argument("formula", help='lme4 formula, e.g. "mathach ~ ses + (ses | id)"')
    fit.add_argument("data", help="data file: .sav, .csv, .dta or .parquet")
    method = fit.add_mutually_exclusive_group()
    method.add_argument("--ml", dest="reml", action="store_false", help="maximum likelihood")
    method.add_argument("--reml", dest="reml", action="store_true", help="REML (the default)")
    fit.set_defaults(reml=True, handler=_fit)
    fit.add_argument("--optimizer", help="bobyqa, nelder_mead or lbfgsb (default: bobyqa; lbfgsb with the exact "
                     "gradient for large crossed models of intercepts; a GLMM's: bobyqa, then nelder_mead)")
    fit.add_argument("--json", action="store_true", help="print the fitted model as JSON")
    fit.add_argument("--family", help="fit a GLMM (glmer): binomial or poisson")
    fit.add_argument("--link", help="the GLMM's link: logit (default), probit or cloglog; log for poisson")
    fit.add_argument("--nagq", type=int, default=1, help="GLMM quadrature points: 1 = Laplace (default), up to 25")
    fit.add_argument("--weights", help="GLMM prior weights: a column of the data (e.g. trials of a proportion)")

    run = commands.add_parser("run", help="run the analysis a config file declares (through Snakemake)",
                              description="Run the analysis a config declares, through Snakemake; after an "
                              "interrupted run it clears the stale lock and reruns incomplete outputs.")
    run.add_argument("config", nargs="?", default="config/config.yaml",
                     help="the analysis config (default: config/config.yaml)")
    run.add_argument("--cores", type=int, help="CPU cores to use (default 2, or what --profile sets)")
    run.add_argument("--dry-run", "-n", action="store_true", help="show what would run")
    run.add_argument("--forceall", action="store_true", help="rerun every step, even those up to date")
    run.add_argument("--until", action="append", metavar="RULE",
                     help="run only up to this rule, e.g. --until fit; repeatable")
    run.add_argument("--profile", help="a Snakemake profile (folder or name), e.g. profiles/slurm")
    run.set_defaults(handler=_run)

    check = commands.add_parser("verify", help="compare the results with a results folder saved earlier",
                                description="Compare every number in the JSON records of --results with "
                                "EXPECTED at the design's tolerances (README.md); exit 1 if anything differs or is missing.")
    check.add_argument("expected", metavar="EXPECTED_DIR", help="a results folder saved from an earlier run")
    check.add_argument("--results", default="results", help="the results folder to check (default: results)")
    check.add_argument("--rtol", action="append", metavar="KEY=VALUE",
                       help="compare numbers under KEY relatively, e.g. --rtol fixef=1e-6 ('*': every other key)")
    check.add_argument("--atol", action="append", metavar="KEY=VALUE",
                       help="compare numbers under KEY absolutely, e.g. --atol logLik=1e-2 (inf: not at all)")
    check.set_defaults(handler=_verify)

    init = commands.add_parser("init", help="write a starter config for a data file")
    init.add_argument("data")
    init.add_argument("--output", "-o", default="config/config.yaml")
    init.add_argument("--force", action="store_true", help="replace the output file if it exists")
    init.set_defaults(handler=_init)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        status = args.handler(args)
    except HlmError as exc:
        print(f"hlm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hlm: interrupted; a plain 'hlm run' picks up where it stopped", file=sys.stderr)
        return 130
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
