# The checked config and what the rules need from it. hlm.pipeline holds the logic.
import re
import sys

from hlm.pipeline import config as configuration  # not `config`: Snakemake's dict
from hlm.pipeline import paths
from hlm.errors import HlmError
from hlm.results.writers import file_sha256, outdate_damaged

try:  # snakemake.utils.validate with workflow/schemas/, then the data: a bad config stops
    for path in CONFIG_PATHS:  # duplicate keys and aliases, which Snakemake's loader lets through
        configuration.read_yaml(path)
    CONFIG = configuration.check_config(config)  # here, before any job, with one line naming the key
except HlmError as exc:
    sys.exit(f"hlm: error: {exc}")

CONFIG_FILES = paths.config_files(CONFIG_PATHS)  # for the report's command
SPECS = configuration.model_specs(CONFIG)
FILES = paths.result_files(CONFIG)
outdate_damaged(paths.all_paths(FILES))  # a truncated or edited result file is rebuilt, not read
PATHS = paths.PATHS
COMPARISONS = dict(zip(configuration.comparison_names(CONFIG), map(configuration.comparison_models,
                                                                   CONFIG["comparisons"])))
BOOTSTRAPS = dict(zip(configuration.comparison_names(CONFIG), map(configuration.comparison_bootstrap,
                                                                  CONFIG["comparisons"])))
DERIVED_MODELS = configuration.derived_models(CONFIG)


def one_of(names):
    """A wildcard constraint matching exactly these names."""
    return "|".join(map(re.escape, names)) or "(?!)"


wildcard_constraints:
    model=one_of(SPECS),
    comparison=one_of(COMPARISONS),


def analysis_targets():
    """Data, model, comparison and derived files: everything but figures and the report."""
    models = [path for files in FILES["models"].values() for path in files.values()]
    return [*FILES["data"]["tables"].values(), FILES["data"]["summary"], *models,
            *FILES["comparisons"].values(), FILES["derived"], *FILES["intervals"].values(),
            *FILES["power"].values()]


def log_path(step, name="{model}"):
    return PATHS["log"].format(step=step, name=name)
