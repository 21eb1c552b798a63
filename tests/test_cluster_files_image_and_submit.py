"""Offline checks of how a job reaches the cluster: the image (cluster/Dockerfile), the job's
runtime environment (cluster/runtime_env.yaml) and the submit script (cluster/submit.sh); and
that cluster/README.md says how these files were validated.

Nothing here touches the network or a cloud account, and no Ray runtime is started.
runtime_env.yaml is parsed the way ``ray job submit`` parses it and validated by
``ray.runtime_env.RuntimeEnv``; its excludes are applied by Ray's own packaging code. submit.sh
is syntax-checked (bash -n, shellcheck when installed) and run against a stand-in ``ray``
executable that only prints its arguments.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile

import pytest

from helpers import CLUSTER, ROOT


# --------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------


def test_dockerfile():
    text = (CLUSTER / "Dockerfile").read_text()
    assert "ARG RAY_IMAGE=rayproject/ray:2.60.0-py311-cu128" in text
    assert re.search(r"^FROM \$\{RAY_IMAGE\}$", text, re.M)
    assert "ARG VLLM_VERSION=0.29.0" in text and '"vllm==${VLLM_VERSION}"' in text
    assert re.search(r"^COPY (--chown=\S+ )?\. /app$", text, re.M)
    # the package without the hf extra, whose CPU torch pin would fight vLLM's torch
    assert '"/app"' in text and "/app[hf]" not in text
    # torch must come with vLLM (CUDA build): no CPU index, no separate torch install.
    assert "download.pytorch.org" not in text and "--index-url" not in text
    assert not re.search(r"pip install[^\n]*\btorch\b", text)
    ignore = (CLUSTER / "Dockerfile.dockerignore").read_text().split()
    for entry in (".git", "runs", "tests"):
        assert entry in ignore


# --------------------------------------------------------------------------------------
# runtime_env.yaml
# --------------------------------------------------------------------------------------


def _runtime_env() -> dict:
    """Parsed exactly as `ray job submit --working-dir . --runtime-env ...` does."""
    sdk = pytest.importorskip("ray.dashboard.modules.dashboard_sdk")
    return sdk.parse_runtime_env_args(
        runtime_env=str(CLUSTER / "runtime_env.yaml"), working_dir="."
    )


def test_runtime_env_is_valid_and_installs_nothing():
    runtime_env = pytest.importorskip("ray.runtime_env")
    env = _runtime_env()
    runtime_env.RuntimeEnv(**env)  # Ray's own field validation
    assert env["working_dir"] == "."
    for field in ("pip", "uv", "conda", "container", "image_uri", "py_modules"):
        assert field not in env, f"{field}: dependencies belong in the image"
    raw = (CLUSTER / "runtime_env.yaml").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in raw.splitlines())
    assert not re.search(r"\b(vllm|torch)\b", code, re.I)
    env_vars = env["env_vars"]
    assert env_vars["TOKENIZERS_PARALLELISM"] == "false"
    assert env_vars["HF_HUB_ENABLE_HF_TRANSFER"] == "0"
    assert all(isinstance(v, str) for v in env_vars.values())
    assert not any("TOKEN" in k and "PARALLELISM" not in k for k in env_vars), "no secrets"


def test_runtime_env_excludes_outputs_and_git(tmp_path):
    """Ray's packaging code (what uploads --working-dir) applies the excludes."""
    packaging = pytest.importorskip("ray._private.runtime_env.packaging")
    excludes = _runtime_env()["excludes"]
    repo = tmp_path / "repo"
    for rel in (
        "disco_ray/__init__.py",
        "disco_ray/cli.py",
        "configs/mmlu_vllm.yaml",
        "examples/benchmarks/tiny.csv",
        "runs/mmlu/report.html",
        "disco_runs/x/predictions.json",
        ".git/HEAD",
        "tests/test_x.py",
        "disco_ray/__pycache__/cli.cpython-311.pyc",
    ):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("x")
    pkg = tmp_path / "pkg.zip"
    packaging.create_package(str(repo), pkg, include_gitignore=False, excludes=excludes)
    names = set(zipfile.ZipFile(pkg).namelist())
    assert {"disco_ray/__init__.py", "disco_ray/cli.py", "configs/mmlu_vllm.yaml",
            "examples/benchmarks/tiny.csv"} <= names
    for prefix in ("runs/", "disco_runs/", ".git/", "tests/", "disco_ray/__pycache__/"):
        assert not any(n.startswith(prefix) for n in names), prefix


# --------------------------------------------------------------------------------------
# submit.sh
# --------------------------------------------------------------------------------------

SUBMIT = CLUSTER / "submit.sh"


def test_submit_script_syntax():
    assert os.access(SUBMIT, os.X_OK), "cluster/submit.sh is not executable"
    text = SUBMIT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(SUBMIT)], check=True, timeout=10)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_submit_script_shellcheck():
    result = subprocess.run(["shellcheck", str(SUBMIT)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def _run_submit(tmp_path, *args, env_extra=None):
    """Run submit.sh with a stand-in `ray` that prints its arguments and auth env."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake_ray = bin_dir / "ray"
    fake_ray.write_text(
        "#!/usr/bin/env bash\n"
        'printf "ARGV"; printf " %s" "$@"; printf "\\n"\n'
        'echo "AUTH_MODE=${RAY_AUTH_MODE:-} TOKEN_PATH=${RAY_AUTH_TOKEN_PATH:-} CWD=$PWD"\n'
    )
    fake_ray.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home)}
    env.update(env_extra or {})
    return subprocess.run(
        ["bash", str(SUBMIT), *args], capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=30
    )


def test_submit_script_builds_the_job_submit_command(tmp_path):
    # Any file under the repository root stands in for the config (configs/ may not exist).
    config = "cluster/runtime_env.yaml"
    result = _run_submit(
        tmp_path, "--address", "http://head:8265", "--no-wait", "--submission-id", "job1",
        config, "--", "--output", "/home/ray/disco_runs/x",
    )
    assert result.returncode == 0, result.stderr
    argv = next(line for line in result.stdout.splitlines() if line.startswith("ARGV")).split()[1:]
    assert argv[:2] == ["job", "submit"]
    sep = argv.index("--")
    options, entrypoint = argv[2:sep], argv[sep + 1:]
    assert options[options.index("--address") + 1] == "http://head:8265"
    assert options[options.index("--working-dir") + 1] == "."
    assert options[options.index("--runtime-env") + 1] == "cluster/runtime_env.yaml"
    assert options[options.index("--submission-id") + 1] == "job1"
    assert "--no-wait" in options
    assert entrypoint == ["python", "-m", "disco_ray", "run", config,
                          "--output", "/home/ray/disco_runs/x"]
    assert f"CWD={ROOT}" in result.stdout  # --working-dir . is the repository root
    assert "AUTH_MODE= " in result.stdout  # no token anywhere: auth left alone
    assert "ray job logs -f" in result.stderr


def test_submit_script_token_auth_and_defaults(tmp_path):
    token_dir = tmp_path / "home" / ".disco_ray"
    token_dir.mkdir(parents=True)
    (token_dir / "auth_token").write_text("0" * 64)
    result = _run_submit(tmp_path, "cluster/runtime_env.yaml",
                         env_extra={"RAY_ADDRESS": "http://x:8265"})
    assert result.returncode == 0, result.stderr
    assert f"AUTH_MODE=token TOKEN_PATH={token_dir / 'auth_token'}" in result.stdout
    argv = next(line for line in result.stdout.splitlines() if line.startswith("ARGV")).split()
    assert argv[argv.index("--address") + 1] == "http://x:8265"
    assert "--no-wait" not in argv


def test_submit_script_usage_errors(tmp_path):
    assert _run_submit(tmp_path).returncode == 2
    assert _run_submit(tmp_path, "--help").returncode == 0
    assert _run_submit(tmp_path, "no/such/config.yaml").returncode == 2
    assert _run_submit(tmp_path, "--bogus", "cluster/runtime_env.yaml").returncode == 2


# --------------------------------------------------------------------------------------
# README
# --------------------------------------------------------------------------------------


def test_cluster_readme_states_how_it_was_validated():
    text = (CLUSTER / "README.md").read_text().lower()
    assert "validated offline" in text
    assert "never launched" in text
    for needle in ("ray up cluster/aws.yaml", "kubectl apply", "cluster/submit.sh", "ray status",
                   "ray down"):
        assert needle in text
