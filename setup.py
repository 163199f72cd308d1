"""Build switches for the C engine; all metadata is in pyproject.toml.

Environment:
  UID2FAST_NO_EXTENSIONS=1       build the pure-Python package only
  UID2FAST_REQUIRE_EXTENSIONS=1  fail the build (instead of falling back to pure Python) if the C engine
                                 cannot be compiled
  UID2FAST_DEBUG=1               -O0 -g
  UID2FAST_SANITIZE=1            AddressSanitizer + UndefinedBehaviorSanitizer (-fno-omit-frame-pointer)
  UID2FAST_NO_WERROR=1           drop -Werror (for compilers we do not test)

The C sources in csrc/ are compiled with -Wall -Wextra -Werror; the Cython-generated module gets the same
flags plus a few -Wno-* for warnings in Cython's own code.

Running the tests under the sanitizers (Python itself is not instrumented, so the runtime is preloaded):

  UID2FAST_SANITIZE=1 python3 setup.py build_ext --inplace --force
  LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
  ASAN_OPTIONS=detect_leaks=0,abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1,halt_on_error=1 \
  PYTHONMALLOC=malloc python3 -m pytest tests/test_engine_c_internal.py

(detect_leaks=0: CPython keeps interned objects alive at exit, which LeakSanitizer reports.)
"""
import glob
import os
import platform
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
EXT_NAME = "uid2fast._engine_c"


def _flag(name):
    return os.environ.get(name, "") not in ("", "0")


NO_EXTENSIONS = _flag("UID2FAST_NO_EXTENSIONS") or platform.python_implementation() != "CPython"
REQUIRE = _flag("UID2FAST_REQUIRE_EXTENSIONS")
DEBUG = _flag("UID2FAST_DEBUG")
SANITIZE = _flag("UID2FAST_SANITIZE")
WERROR = not _flag("UID2FAST_NO_WERROR")

# An explicit list (not a glob): a half-written file dropped into csrc/ must not break the engine build.
# uid2_gcm_ni.c and uid2_b64fast.c use x86-64 intrinsics under per-function target attributes (no -maes etc.
# for the whole build) and compile to stubs elsewhere; the CPU is checked at run time.
CSRC = ["csrc/uid2_aead.c", "csrc/uid2_b64fast.c", "csrc/uid2_base64.c", "csrc/uid2_batch.c",
        "csrc/uid2_gcm_ni.c", "csrc/uid2_table.c", "csrc/uid2_token.c",
        "csrc/uid2_kernels.c", "csrc/uid2_gcm_arm.c", "csrc/uid2_b64_neon.c"]
CHEADERS = sorted(os.path.relpath(p, HERE) for p in glob.glob(os.path.join(HERE, "csrc", "*.h")))
# The Cython module: _engine_c.pyx includes the .pxi files along its seams; _engine_c.pxd declares the C side.
CYTHON_PARTS = sorted(os.path.relpath(p, HERE) for pat in ("_engine_c.pxd", "_engine_c_*.pxi")
                      for p in glob.glob(os.path.join(HERE, "src", "uid2fast", pat)))

OPT = ["-O0", "-g"] if DEBUG else ["-O3"]
WARN = ["-Wall", "-Wextra"] + (["-Werror"] if WERROR else [])
# -ffp-contract=off: the timestamp replay must round exactly like CPython (no fused multiply-add).
COMMON = OPT + ["-std=gnu11", "-pthread", "-ffp-contract=off", "-fvisibility=hidden", "-D_GNU_SOURCE"]
SAN = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined"] if SANITIZE else []
CSRC_FLAGS = COMMON + WARN + SAN
CYTHON_FLAGS = COMMON + WARN + SAN + [
    "-Wno-unused-function",
    "-Wno-unused-parameter",
    "-Wno-unused-variable",
    "-Wno-unused-but-set-variable",
    "-Wno-missing-field-initializers",
    "-Wno-sign-compare",
    "-Wno-cast-function-type",
    "-Wno-unreachable-code",
]
LINK = ["-pthread"] + SAN

STATE = {"accelerated": False, "error": None}


class BuildExt(build_ext):
    """Compiles csrc/*.c with the strict flags, then the Cython module; falls back to pure Python
    (unless UID2FAST_REQUIRE_EXTENSIONS) when the C engine cannot be built."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # a missing compiler surfaces here
            self._fallback(exc)

    def build_extension(self, ext):
        try:
            if ext.name == EXT_NAME:
                objects = self.compiler.compile(
                    CSRC, output_dir=self.build_temp, include_dirs=["csrc"], extra_postargs=CSRC_FLAGS,
                    depends=CHEADERS, debug=DEBUG,
                )
                ext.extra_objects = list(objects) + [o for o in ext.extra_objects if o not in objects]
            super().build_extension(ext)
            if ext.name == EXT_NAME:
                STATE["accelerated"] = True
        except Exception as exc:
            self._fallback(exc)

    def _fallback(self, exc):
        STATE["error"] = exc
        if REQUIRE:
            raise
        sys.stderr.write(
            f"\n*** uid2fast: the C engine could not be built ({type(exc).__name__}: {exc});\n"
            "*** installing the pure-Python package. Set UID2FAST_REQUIRE_EXTENSIONS=1 to make this an "
            "error.\n\n"
        )


def _extensions():
    if NO_EXTENSIONS:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        if REQUIRE:
            raise
        STATE["error"] = exc
        sys.stderr.write("*** uid2fast: Cython is not available; building the pure-Python package.\n")
        return []
    from setuptools import Extension

    ext = Extension(
        EXT_NAME,
        sources=["src/uid2fast/_engine_c.pyx"],
        include_dirs=["csrc"],
        libraries=["crypto"],
        extra_compile_args=CYTHON_FLAGS,
        extra_link_args=LINK,
        depends=CSRC + CHEADERS + CYTHON_PARTS,
    )
    return cythonize(
        [ext],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
        quiet=True,
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})

if NO_EXTENSIONS:
    print("uid2fast: built the pure-Python package (UID2FAST_NO_EXTENSIONS or not CPython)")
elif STATE["accelerated"]:
    mode = "debug" if DEBUG else "release"
    print("uid2fast: built the accelerated package (C engine, {}{})".format(mode, ", ASan+UBSan" if SANITIZE else ""))
elif STATE["error"] is not None:
    print("uid2fast: built the pure-Python package (the C engine failed to build: {})".format(STATE["error"]))
