"""Build switches for the C engine; all metadata is in pyproject.toml.

Environment:
  UID2FAST_NO_EXTENSIONS=1       build the pure-Python package only
  UID2FAST_REQUIRE_EXTENSIONS=1  fail the build (instead of falling back to pure Python) if the C engine
                                 cannot be compiled
  UID2FAST_DEBUG=1               -O0 -g
  UID2FAST_SANITIZE=1            AddressSanitizer + UndefinedBehaviorSanitizer (-fno-omit-frame-pointer)
  UID2FAST_NO_WERROR=1           drop -Werror (for compilers we do not test)
  UID2FAST_GENERIC=1             no AES kernels (as on a CPU family without one): the package then runs the
                                 pure-Python engine and says why (scripts/fallback_check.sh)

Flags per compiler (compiler_flags): GCC and Clang (Linux, macOS, MinGW-w64, zig cc) compile csrc/ with -Wall
-Wextra -Werror, the Cython-generated module with the same flags plus a few -Wno-* for warnings in Cython's own
code; MSVC gets /std:c11 /W3 /WX and none of the GNU flags. The extension links nothing but libc (libm on
Linux, bcrypt.dll for the OS random source on Windows). With no working compiler the build falls back to the
pure-Python package, and its wheel is tagged py3-none-any (BdistWheel).

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
from setuptools.command.bdist_wheel import bdist_wheel
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
# UID2FAST_GENERIC=1: compile no kernel family (-DUID2_FASTPATH_GENERIC), as on an architecture without one;
# the engine then reports no hardware AES and the package uses the Python engine (scripts/fallback_check.sh).
GENERIC = ["-DUID2_FASTPATH_GENERIC"] if _flag("UID2FAST_GENERIC") else []

# An explicit list (not a glob): a half-written file dropped into csrc/ must not break the engine build.
# uid2_gcm_ni.c, uid2_gcm_mb.c and uid2_b64fast.c use x86-64 intrinsics under per-function target attributes
# (no -maes etc. for the whole build) and compile to stubs elsewhere; the CPU is checked at run time.
CSRC = ["csrc/uid2_aead.c", "csrc/uid2_b64fast.c", "csrc/uid2_base64.c", "csrc/uid2_batch.c",
        "csrc/uid2_gcm_mb.c", "csrc/uid2_gcm_ni.c", "csrc/uid2_table.c", "csrc/uid2_token.c",
        "csrc/uid2_kernels.c", "csrc/uid2_gcm_arm.c", "csrc/uid2_b64_neon.c"]
CHEADERS = sorted(os.path.relpath(p, HERE) for p in glob.glob(os.path.join(HERE, "csrc", "*.h")))
# The Cython module: _engine_c.pyx includes the .pxi files along its seams; _engine_c.pxd declares the C side.
CYTHON_PARTS = sorted(os.path.relpath(p, HERE) for pat in ("_engine_c.pxd", "_engine_c_*.pxi")
                      for p in glob.glob(os.path.join(HERE, "src", "uid2fast", pat)))

# Flags per compiler family, chosen in BuildExt once the compiler is known. GCC and Clang (Linux, macOS,
# MinGW-w64, zig cc) get the GNU set; MSVC gets its own and none of the GNU flags. Warnings are errors for the
# engine's C sources under every compiler (UID2FAST_NO_WERROR=1 for a compiler we do not test).
# -ffp-contract=off / MSVC's default /fp:precise: the timestamp replay must round exactly like CPython (no
# fused multiply-add).
# -g1 (line tables: reports still name the function and line) after CPython's -g: with full debug info the
# multi-buffer kernel's unrolled code took 157 s to compile under ASan + UBSan here, 111 s with -g1.
SAN = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=undefined",
       "-g1"] if SANITIZE else []
GNU_COMMON = (["-O0", "-g"] if DEBUG else ["-O3"]) + [
    "-std=gnu11", "-ffp-contract=off", "-fvisibility=hidden", "-D_GNU_SOURCE"]
GNU_WARN = ["-Wall", "-Wextra"] + (["-Werror"] if WERROR else [])
GNU_CYTHON_QUIET = [  # warnings in Cython's generated code, not ours
    "-Wno-unused-function",
    "-Wno-unused-parameter",
    "-Wno-unused-variable",
    "-Wno-unused-but-set-variable",
    "-Wno-missing-field-initializers",
    "-Wno-sign-compare",
    "-Wno-cast-function-type",
    "-Wno-unreachable-code",
]
MSVC_COMMON = (["/Od", "/Zi"] if DEBUG else ["/O2"]) + ["/std:c11", "/fp:precise", "/D_CRT_SECURE_NO_WARNINGS"]
MSVC_WARN = ["/W3"] + (["/WX"] if WERROR else [])
# Windows: BCryptGenRandom (the OS CSPRNG); Linux: libm for the timestamp replay. Nothing else: the engine
# needs only libc and the CPU.
LIBS = ["bcrypt"] if sys.platform == "win32" else ([] if sys.platform == "darwin" else ["m"])


def compiler_flags(compiler):
    """(flags for csrc/*.c, flags for the Cython module, link flags) for a distutils compiler object."""
    if compiler.compiler_type == "msvc":
        # the Cython module at /W3 without /WX: its generated code is not ours to fix
        generic = ["/DUID2_FASTPATH_GENERIC"] if GENERIC else []
        return MSVC_COMMON + MSVC_WARN + generic, MSVC_COMMON + ["/W3"] + generic, []
    quiet = list(GNU_CYTHON_QUIET)
    if _is_clang(compiler):
        quiet.append("-Wno-unknown-warning-option")  # a -Wno-* above that this Clang does not know
    posix = compiler.compiler_type != "mingw32" and sys.platform != "win32"
    threads = ["-pthread"] if posix else []  # Windows builds use Win32 threads (csrc/uid2_port.h)
    common = GNU_COMMON + GENERIC + threads + GNU_WARN + SAN
    return common, common + quiet, threads + SAN


def _is_clang(compiler):
    import subprocess

    cmd = getattr(compiler, "compiler", None) or []
    if not cmd:
        return False
    try:
        out = subprocess.run(list(cmd) + ["--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return "clang" in out.lower()


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
                csrc_flags, cython_flags, link_flags = compiler_flags(self.compiler)
                ext.extra_compile_args = cython_flags
                ext.extra_link_args = link_flags
                objects = self.compiler.compile(
                    CSRC, output_dir=self.build_temp, include_dirs=["csrc"], extra_postargs=csrc_flags,
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


class BdistWheel(bdist_wheel):
    """A wheel built without the C engine (no compiler, a failed build) is a pure-Python wheel and says so:
    py3-none-any, not a platform tag over a package that has no extension."""

    def run(self):
        self.run_command("build")  # decides STATE before the wheel's tag and layout are fixed
        if self._pure_fallback():
            self.root_is_pure = True
        super().run()

    def get_tag(self):
        if self._pure_fallback():
            return "py3", "none", "any"
        return super().get_tag()

    def _pure_fallback(self):
        return not NO_EXTENSIONS and not STATE["accelerated"] and STATE["error"] is not None


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
        libraries=LIBS,
        depends=CSRC + CHEADERS + CYTHON_PARTS,
    )
    return cythonize(
        [ext],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
        quiet=True,
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt, "bdist_wheel": BdistWheel})

if NO_EXTENSIONS:
    print("uid2fast: built the pure-Python package (UID2FAST_NO_EXTENSIONS or not CPython)")
elif STATE["accelerated"]:
    mode = "debug" if DEBUG else "release"
    print("uid2fast: built the accelerated package (C engine, {}{})".format(mode, ", ASan+UBSan" if SANITIZE else ""))
elif STATE["error"] is not None:
    print("uid2fast: built the pure-Python package (the C engine failed to build: {})".format(STATE["error"]))
