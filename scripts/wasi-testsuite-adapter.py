# Keel's runtime adapter for the WASI testsuite's Python runner
# (WebAssembly/wasi-testsuite, test-runner/wasi_test_runner.py), modelled on
# the upstream adapters/wasmtime.py. `scripts/wasi-testsuite` passes it to
# the runner with `--runtime-adapter`.
#
# The runner loads this file as a module and calls the functions below; it
# also runs it once as a script (`python adapter.py --version`) to tell a
# module from an old-style adapter, so nothing may happen at import time
# except reading the environment.
#
# KEEL names the `keel` binary (default: `keel` on PATH); like WASMTIME for
# the upstream adapter it may carry extra leading words, split as a shell
# would ("keel" or "/path/to/keel").

import os
import shlex
import subprocess
from typing import Dict, List, Optional, Tuple

KEEL = shlex.split(os.getenv("KEEL", "keel"))


def get_name() -> str:
    return "keel"


def get_version() -> str:
    # `keel --version` prints "keel 0.1.0".
    result = subprocess.run(KEEL[0:1] + ["--version"], encoding="UTF-8",
                            capture_output=True, check=True)
    return result.stdout.splitlines()[0].split(" ")[1]


def get_wasi_versions() -> List[str]:
    # Keel implements preview 1 only. The runner skips suites of other
    # versions; `scripts/wasi-testsuite` only passes wasm32-wasip1 suites
    # and fails if anything was skipped.
    return ["wasm32-wasip1"]


def get_wasi_worlds() -> List[str]:
    return ["wasi:cli/command"]


def get_timeout_seconds() -> float:
    # The runner's default is 5 s per test. The Rust tests are debug builds
    # of 2 MB each, and the test of this suite runs a debug build of Keel on
    # a small shared machine: a timeout there would be noise, not a finding.
    return float(os.getenv("KEEL_WASI_TEST_TIMEOUT", "120"))


def compute_argv(test_path: str,
                 args_env_root: Tuple[List[str], Dict[str, str], Optional[str]],
                 proposals: List[str],
                 wasi_world: str,
                 wasi_version: str) -> List[str]:
    # The same command line as `wasmtime run`: flags, the module, then the
    # guest's arguments (everything after the module goes to the guest).
    del proposals, wasi_world, wasi_version  # preview 1 commands only
    args, env, root = args_env_root
    argv = KEEL + ["run"]
    for k, v in env.items():
        argv += ["--env", f"{k}={v}"]
    if root:
        argv += ["--dir", f"{root}::/"]  # noqa: E231
    argv += [test_path]
    argv += args
    return argv
