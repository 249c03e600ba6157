"""The build's one step beyond pyproject.toml: hlm.engine._native, the LMM's kernels
(hlm/engine/kernels.py) compiled ahead of time by numba.pycc for the CPU that builds it, so
that an LMM fit needs neither numba nor LLVM at run time (half of a small fit's memory) and
never waits for a compilation. It is optional: where it cannot be built (no C compiler, not
Linux, a numba without pycc), the install goes on and numba compiles the kernels on first use.
"""
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError

ROOT = os.path.dirname(os.path.abspath(__file__))


def build_native_kernels(path):
    """Compile every kernel of hlm.engine.kernels with its signature into the extension at path."""
    os.environ["HLM_KERNELS"] = "jit"          # the kernels as numba compiles them, whatever is built
    sys.path.insert(0, ROOT)
    import numba.pycc.compiler
    from numba.pycc import CC

    from hlm.engine import kernels

    stamp = kernels.native_stamp()
    if stamp is None:
        raise CompileError("the native kernels are built on Linux only (they are checked against its CPU flags)")
    cc = CC(kernels.NATIVE_MODULE, source_module=kernels)
    cc.output_dir, cc.output_file = os.path.dirname(path), os.path.basename(path)
    cc.target_cpu = "host"                      # as numba's JIT compiles: the stamp holds the CPU's flags
    for name, signature in kernels.SIGNATURES.items():
        cc.export(name, signature)(getattr(kernels, name).py_func)
    cc.export("native_stamp", "i8()")(lambda: stamp)
    plain = numba.pycc.compiler.compile_extra

    def numpy_errors(*args, **options):       # pycc compiles with Python's error model; the kernels use numpy's
        args[4].error_model = "numpy"
        return plain(*args, **options)
    numba.pycc.compiler.compile_extra = numpy_errors
    try:
        cc.compile()
    finally:
        numba.pycc.compiler.compile_extra = plain


class BuildExtensions(build_ext):
    def build_extension(self, extension):
        path = self.get_ext_fullpath(extension.name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            build_native_kernels(path)
        except Exception as error:  # optional=True turns a CompileError into a warning
            raise CompileError(f"hlm's native kernels were not built ({error}); numba will compile them") from error


setup(ext_modules=[Extension("hlm.engine._native", sources=[], optional=True)],
      cmdclass={"build_ext": BuildExtensions})
