"""What `import hlm` and a fit load: the heavy libraries stay out until a function needs them
(matplotlib for figures, statsmodels for diagnostics' smooths, snakemake for runs), so a small fit's
process stays small and a CLI call starts fast."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("matplotlib", "statsmodels", "snakemake")


def loaded_after(code):
    """The top-level modules (and scipy's submodules) loaded in a fresh interpreter after `code`."""
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env,
                         check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_hlm_loads_no_heavy_library():
    modules = loaded_after("import hlm")
    assert not {m for m in modules if m.split(".")[0] in HEAVY + ("pandas", "scipy", "numba")}


def test_a_fit_and_its_summary_load_no_plotting_workflow_or_statistics_library():
    modules = loaded_after(
        "import pandas as pd, hlm\n"
        "frame = pd.read_csv('tests/fixtures/data/sleepstudy.csv')\n"
        "model = hlm.lmer('Reaction ~ Days + (Days | Subject)', frame)\n"
        "model.summary(); model.coef_table(ddf='Kenward-Roger'); model.anova()")
    assert not {m for m in modules if m.split(".")[0] in HEAVY}
    assert not {"scipy.stats", "scipy.optimize", "scipy.interpolate"} & modules
