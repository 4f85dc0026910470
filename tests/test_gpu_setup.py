"""How ``scripts/setup.sh`` chooses the torch build, through its ``--plan`` mode (nothing is installed).

``nvidia-smi`` is put on ``PATH`` as a small script printing what the real one prints (``-L``: one
``GPU i: NAME (UUID: ...)`` line per GPU; without a driver it fails), so the automatic choice is
tested without a GPU. Cases: CPU chosen explicitly and automatically (no GPU, broken driver), CUDA
chosen automatically when a GPU is listed, the system torch (a cluster module's, here a non-venv
interpreter whose ``PYTHONPATH`` provides torch; an existing environment's), Python 3.12
(fairseq-fixed from its wheel; where a 3.12 interpreter exists), a stamp per build, and bad values
with clear errors. The expected pins are read from ``requirements/torch-*.txt``.
"""
import glob
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

SETUP = ROOT / "scripts" / "setup.sh"
GPU_LINE = "GPU {i}: NVIDIA H100 80GB HBM3 (UUID: GPU-5a1e7c9e-0000-0000-0000-00000000000{i})"


def pin(build):
    lines = [x for x in (ROOT / "requirements" / f"torch-{build}.txt").read_text().splitlines() if x.startswith("torch==")]
    assert len(lines) == 1
    return lines[0]


def fake_nvidia_smi(bin_dir: Path, listing: str, rc: int = 0) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / "nvidia-smi"
    exe.write_text(f"#!/bin/sh\n[ \"$1\" = -L ] || exit 2\ncat <<'EOF'\n{listing}\nEOF\nexit {rc}\n")
    exe.chmod(0o755)
    return bin_dir


def plan(venv, *, torch=None, python=sys.executable, nvidia=None, env=None, flag=True, rc=0):
    """Run the plan mode for ``venv``; returns its key=value lines as a dict (stderr when ``rc`` != 0)."""
    e = {k: v for k, v in os.environ.items()
         if k not in ("CSFAIR_TORCH", "PYTHON", "CSFAIR_TORCH_INDEX", "CSFAIR_TORCH_VERSION", "CSFAIR_WHEELHOUSE")}
    # no nvidia-smi on PATH but the fake one given (a real one, on a GPU machine, would decide)
    path = [p for p in e.get("PATH", "").split(os.pathsep) if p and not os.path.exists(os.path.join(p, "nvidia-smi"))]
    e["PATH"] = os.pathsep.join(([str(nvidia)] if nvidia else []) + path)
    e["CSFAIR_VENV"] = str(venv)
    if torch is not None:
        e["CSFAIR_TORCH"] = torch
    if python is not None:
        e["PYTHON"] = str(python)
    if not flag:
        e["CSFAIR_SETUP_DRY_RUN"] = "1"
    e.update(env or {})
    existed = Path(venv).exists()
    p = subprocess.run(["bash", str(SETUP)] + (["--plan"] if flag else []), capture_output=True, text=True, env=e,
                       timeout=120)
    assert p.returncode == rc, (p.returncode, p.stdout, p.stderr)
    assert Path(venv).exists() == existed  # nothing created
    if rc:
        return p.stderr
    return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)


def _version(python):
    p = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True)
    return p.stdout.strip() if p.returncode == 0 else None


def test_cpu_explicit_and_auto_without_a_gpu(tmp_path):
    got = plan(tmp_path / "venv", torch="cpu")
    assert (got["torch_build"], got["torch_spec"], got["torch_install"]) == ("cpu", pin("cpu"), "yes")
    assert got["venv_system_site_packages"] == "no" and got["python_version"] == "%d.%d" % sys.version_info[:2]
    assert got["fairseq_fixed"].startswith("build") and "--no-build-isolation --no-deps" in got["fairseq_fixed"]
    # auto: no nvidia-smi, or one that fails (no driver), is a CPU machine
    assert plan(tmp_path / "venv")["torch_build"] == "cpu"
    broken = fake_nvidia_smi(tmp_path / "broken", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.", rc=9)
    got = plan(tmp_path / "venv", nvidia=broken, flag=False)  # CSFAIR_SETUP_DRY_RUN=1 instead of --plan
    assert (got["torch_build"], got["gpus_listed"], got["torch_spec"]) == ("cpu", "0", pin("cpu"))


def test_auto_picks_cuda_when_nvidia_smi_lists_a_gpu(tmp_path):
    gpus = fake_nvidia_smi(tmp_path / "bin", "\n".join(GPU_LINE.format(i=i) for i in range(2)))
    got = plan(tmp_path / "venv", nvidia=gpus)
    assert (got["torch_build"], got["gpus_listed"], got["torch_install"]) == ("cuda", "2", "yes")
    assert got["torch_spec"] == pin("cuda") != pin("cpu") and got["torch_constraints"].endswith("torch-cuda.txt")
    # CSFAIR_TORCH overrides the detection either way; CSFAIR_TORCH_INDEX is passed on
    assert plan(tmp_path / "venv", torch="cpu", nvidia=gpus)["torch_build"] == "cpu"
    got = plan(tmp_path / "venv", torch="cuda", env={"CSFAIR_TORCH_INDEX": "file:///wheels/cu126"})
    assert got["torch_build"] == "cuda" and got["torch_index"] == "file:///wheels/cu126"


def test_system_torch_is_used_not_installed(tmp_path):
    import torch

    have = f"torch=={importlib.metadata.version('torch')}"
    # a cluster module: an interpreter outside any venv, whose PYTHONPATH provides torch
    base = getattr(sys, "_base_executable", sys.executable)
    module = {"PYTHONPATH": os.path.dirname(os.path.dirname(torch.__file__))}
    got = plan(tmp_path / "venv", torch="system", python=base, env=module)
    assert (got["torch_build"], got["torch_spec"], got["torch_install"]) == ("system", have, "no")
    assert got["venv_system_site_packages"] == "yes" and got["torch_constraints"].startswith("(generated")
    # an existing environment with torch: completed in place, its torch kept
    got = plan(sys.prefix, torch="system", python=None)
    assert (got["torch_spec"], got["venv"], got["torch_install"], got["python"]) == (
        have, sys.prefix, "no", os.path.join(sys.prefix, "bin", "python"))
    if sys.prefix != sys.base_prefix:
        # a venv's interpreter cannot lend its torch to a new venv: said, with the way out
        err = plan(tmp_path / "venv", torch="system", rc=1)
        assert "inside the virtual environment" in err and f"CSFAIR_VENV={sys.prefix}" in err
    bare = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if subprocess.run([base, "-c", "import torch"], capture_output=True, env=bare).returncode != 0:
        err = plan(tmp_path / "venv", torch="system", python=base, env={"PYTHONPATH": ""}, rc=1)
        assert "cannot import torch" in err


def test_python_312_takes_the_fairseq_fixed_wheel(tmp_path):
    cands = [shutil.which("python3.12"), *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))]
    py312 = next((c for c in cands if c and _version(c) == "3.12"), None)
    if py312 is None:
        pytest.skip("no Python 3.12 interpreter on this machine")
    got = plan(tmp_path / "venv", torch="cuda", python=py312)
    assert (got["python_version"], got["torch_spec"]) == ("3.12", pin("cuda"))
    assert got["fairseq_fixed"].startswith("wheel") and "--only-binary fairseq-fixed --no-deps" in got["fairseq_fixed"]
    assert plan(tmp_path / "venv", torch="cpu", python=py312)["fairseq_fixed"].startswith("wheel")


def test_the_stamp_is_per_build(tmp_path):
    """A venv marked up to date for one torch build is not up to date for another."""
    venv = tmp_path / "venv"
    venv.mkdir()
    cpu = plan(venv, torch="cpu")
    assert cpu["stamp"] == "missing" and Path(cpu["stamp_file"]).parent == venv
    Path(cpu["stamp_file"]).touch()  # what a finished cpu build leaves
    assert plan(venv, torch="cpu")["stamp"] == "up-to-date"
    gpus = fake_nvidia_smi(tmp_path / "bin", GPU_LINE.format(i=0))
    cuda = plan(venv, nvidia=gpus)
    assert cuda["torch_build"] == "cuda" and cuda["stamp"] == "missing" and cuda["stamp_file"] != cpu["stamp_file"]


def test_bad_values_fail_clearly(tmp_path):
    err = plan(tmp_path / "venv", torch="gpu", rc=1)
    assert "CSFAIR_TORCH must be cpu, cuda, system or auto" in err and "'gpu'" in err
    err = plan(tmp_path / "venv", torch="cpu", python=tmp_path / "no-such-python", rc=1)
    assert "cannot run the interpreter" in err
    other = next((c for c in map(shutil.which, ("python3.13", "python3.10", "python3.9"))
                  if c and _version(c) not in (None, "3.11", "3.12")), None)
    if other:
        assert "needs Python 3.11 or 3.12" in plan(tmp_path / "venv", torch="cpu", python=other, rc=1)
    p = subprocess.run(["bash", str(SETUP), "--frobnicate"], capture_output=True, text=True)
    assert p.returncode == 2 and "unknown argument" in p.stderr


def test_torch_version_variable_replaces_the_pin_without_editing_files(tmp_path):
    got = plan(tmp_path / "venv", torch="cuda", env={"CSFAIR_TORCH_VERSION": "2.11.0"})
    assert got["torch_spec"] == "torch==2.11.0" != pin("cuda") and "CSFAIR_TORCH_VERSION=2.11.0" in got["torch_constraints"]
    assert got["stamp_file"] != plan(tmp_path / "venv", torch="cuda")["stamp_file"]  # another build, another stamp
    assert plan(tmp_path / "venv", torch="cpu", env={"CSFAIR_TORCH_VERSION": "2.9.1"})["torch_spec"] == "torch==2.9.1"
    err = plan(tmp_path / "venv", torch="cuda", env={"CSFAIR_TORCH_VERSION": "latest"}, rc=1)
    assert "must be a torch release such as 2.11.0" in err
    err = plan(sys.prefix, torch="system", python=None, env={"CSFAIR_TORCH_VERSION": "2.11.0"}, rc=1)
    assert "does not apply to CSFAIR_TORCH=system" in err


def _wheelhouse(d: Path, python_version: str, torch: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "csfair-wheelhouse.txt").write_text(f"python_version={python_version}\nplatform=manylinux_2_28_x86_64\n"
                                             f"torch={torch}\n")
    return d


def test_wheelhouse_installs_with_no_index_and_refuses_a_wrong_folder(tmp_path):
    here = "%d.%d" % sys.version_info[:2]
    wh = _wheelhouse(tmp_path / "wh", here, pin("cpu"))
    got = plan(tmp_path / "venv", torch="cpu", env={"CSFAIR_WHEELHOUSE": str(wh)})
    assert got["packages_from"] == f"{wh} (no index)" and got["torch_index"] == got["packages_from"]
    assert got["fairseq_fixed"].startswith("wheelhouse") and f"--no-index --find-links {wh}" in got["fairseq_fixed"]
    # made for another Python, for another torch, unfinished (no manifest), or with a torch index too
    other = _wheelhouse(tmp_path / "other", "3.12" if here == "3.11" else "3.11", pin("cpu"))
    assert "was made for Python" in plan(tmp_path / "venv", torch="cpu", env={"CSFAIR_WHEELHOUSE": str(other)}, rc=1)
    err = plan(tmp_path / "venv", torch="cuda", env={"CSFAIR_WHEELHOUSE": str(wh)}, rc=1)
    assert f"holds {pin('cpu')}, this build wants {pin('cuda')}" in err
    (tmp_path / "empty").mkdir()
    assert "no csfair-wheelhouse.txt" in plan(tmp_path / "venv", torch="cpu",
                                              env={"CSFAIR_WHEELHOUSE": str(tmp_path / "empty")}, rc=1)
    err = plan(tmp_path / "venv", torch="cpu", env={"CSFAIR_WHEELHOUSE": str(wh), "CSFAIR_TORCH_INDEX": "file:///x"}, rc=1)
    assert "exclude each other" in err
    assert "is not a folder" in plan(tmp_path / "venv", torch="cpu",
                                     env={"CSFAIR_WHEELHOUSE": str(tmp_path / "nope")}, rc=1)


def test_wheelhouse_script_rejects_bad_arguments(tmp_path):
    script = ROOT / "scripts" / "wheelhouse.sh"
    p = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert p.returncode == 2 and "usage:" in p.stderr
    p = subprocess.run(["bash", str(script), str(tmp_path / "w"), "--platform", "win_amd64"], capture_output=True, text=True)
    assert p.returncode == 1 and "manylinux_2_N_x86_64" in p.stderr
    p = subprocess.run(["bash", str(script), str(tmp_path / "w")], capture_output=True, text=True,
                       env=dict(os.environ, CSFAIR_TORCH="system"))
    assert p.returncode == 1 and "set CSFAIR_TORCH_VERSION to the nodes' torch version" in p.stderr
    assert not (tmp_path / "w" / "csfair-wheelhouse.txt").exists()
