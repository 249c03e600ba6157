"""The build's one step beyond pyproject.toml: the LMM's kernels (hlm/engine/kernels.py) compiled
ahead of time into hlm.engine._native_<stamp> (kernels.build_native, numba.pycc) for the CPU that
builds them, so that an LMM fit needs neither numba nor LLVM at run time (half of a small fit's
memory) and never waits for a compilation. It is optional: where it cannot be built (no C
compiler or Python headers, not Linux, a numba without pycc), the install goes on and numba
compiles the kernels on first use.
"""
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError

os.environ["HLM_KERNELS"] = "jit"   # the kernels as numba compiles them, whatever is installed
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hlm.engine import kernels  # this source tree's, after the two lines above


class BuildExtensions(build_ext):
    def build_extension(self, extension):
        path = self.get_ext_fullpath(extension.name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            kernels.build_native(path)
        except Exception as error:  # optional=True turns a CompileError into a warning
            raise CompileError(f"hlm's native kernels were not built ({error}); numba will compile them") from error


name = kernels.native_module_name()
setup(ext_modules=[Extension(f"hlm.engine.{name}", sources=[], optional=True)] if name else [],
      cmdclass={"build_ext": BuildExtensions})
