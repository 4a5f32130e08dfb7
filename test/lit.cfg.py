# -*- Python -*-
# lit configuration of the glint test suite.

import os

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "GLINT"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir", ".test"]
config.excludes = ["CMakeLists.txt", "lit.cfg.py", "lit.site.cfg.py", "unit", "fuzz",
                   "Inputs"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.glint_obj_root, "test")

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%glint_src", config.glint_src_root))
config.substitutions.append(("%glint_obj", config.glint_obj_root))
# `%exit1 cmd ...` fails unless cmd exits with exactly 1 (a clean error),
# and `%bad-input KIND OUT ...` writes a bad input (test/Tools/Inputs).
config.substitutions.append(("%exit1", "sh " + os.path.join(
    os.path.dirname(__file__), "Tools", "Inputs", "exit-code.sh") + " 1"))
config.substitutions.append(("%bad-input", "python3 " + os.path.join(
    os.path.dirname(__file__), "Tools", "Inputs", "bad-input.py")))
# `%crash SIGNAL tool` sends the tool SIGNAL once it is running and shows
# how its crash handler reported it (test/Tools/crash-report.test).
config.substitutions.append(("%crash", "python3 " + os.path.join(
    os.path.dirname(__file__), "Tools", "Inputs", "crash-signal.py")))

# Libraries that tools compile on their own (glint-explain's compiled
# gradient) go to a cache in the build tree, not the user's home.
config.environment["GLINT_CACHE_DIR"] = os.path.join(
    config.test_exec_root, "glint-cache")

# FileCheck variables are local to a CHECK-LABEL block.
config.environment["FILECHECK_OPTS"] = "--enable-var-scope"

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

tool_dirs = [config.glint_tools_dir, config.llvm_tools_dir]
tools = [ToolSubst("glint-opt", unresolved="fatal"),
         ToolSubst("glint-compile", unresolved="fatal"),
         ToolSubst("glint-import", unresolved="fatal"),
         ToolSubst("glint-run", unresolved="fatal"),
         ToolSubst("glint-interpret", unresolved="fatal"),
         ToolSubst("glint-bench", unresolved="fatal"),
         ToolSubst("glint-explain", unresolved="fatal"), "not", "count"]
llvm_config.add_tool_substitutions(tools, tool_dirs)

# The CUDA target: ptxas validates the PTX glint-compile --target=cuda
# makes (from PATH, $CUDA_HOME or /usr/local/cuda; tests that need it are
# reported UNSUPPORTED without it), and a machine with a CUDA driver runs
# the compiled models instead of refusing them.
import shutil
ptxas = shutil.which("ptxas")
for home in [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
             "/usr/local/cuda"]:
    if not ptxas and home and os.access(os.path.join(home, "bin", "ptxas"),
                                        os.X_OK):
        ptxas = os.path.join(home, "bin", "ptxas")
if ptxas:
    config.available_features.add("ptxas")
    config.substitutions.append(("%ptxas", ptxas))
import ctypes
try:
    ctypes.CDLL("libcuda.so.1")
    config.available_features.add("cuda-driver")
except OSError:
    pass
