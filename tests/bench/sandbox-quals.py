#!/usr/bin/env python3
"""One run of the example workflow (workflows/quals, real Snakemake) through spe-runner, in a
fresh run directory, with the sandbox on (`bubblewrap`) or off (`none`). Used to measure what
the sandbox adds to a run's wall time (docs/benchmarks.md):

    /usr/bin/time -v tests/bench/sandbox-quals.py bubblewrap   # alternate with:
    /usr/bin/time -v tests/bench/sandbox-quals.py none

Needs SPE_TOOLS_BIN (the venv with Snakemake) and a built spe-runner (SPE_RUNNER, default
target/debug/spe-runner). Exits with spe-runner's status; 1 if the outputs are missing.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def digest(files):
    """spe-core digest.rs: SHA-256 over (path, NUL, length as u64 BE, content), by path."""
    h = hashlib.sha256()
    for rel, content in sorted(files):
        h.update(rel.encode() + b"\0" + len(content).to_bytes(8, "big") + content)
    return h.hexdigest()


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "bubblewrap"
    runner = os.environ.get("SPE_RUNNER", os.path.join(ROOT, "target/debug/spe-runner"))
    tools = os.environ["SPE_TOOLS_BIN"]
    with tempfile.TemporaryDirectory(prefix="spe-bench-") as tmp:
        wf = os.path.join(tmp, "registry/quals")
        shutil.copytree(os.path.join(ROOT, "workflows/quals"), wf)
        names = sorted(
            os.path.relpath(os.path.join(d, f), wf)
            for d, _, fs in os.walk(wf)
            for f in fs
        )
        files = [(n, open(os.path.join(wf, n), "rb").read()) for n in names]
        run_id = str(uuid.uuid4())
        run_dir = os.path.join(tmp, "runs", run_id[:4], run_id)
        os.makedirs(os.path.join(run_dir, ".spe"))
        params = os.path.join(run_dir, run_id + ".yaml")
        with open(params, "w") as f:
            f.write("min_qual: 40\n")
        spec = {
            "run_id": run_id,
            "workflow_type": "SMK",
            "engine": "snakemake",
            "engine_executable": "snakemake",
            "workflow_dir": wf,
            "entry_point": "Snakefile",
            "workflow_files": names,
            "expected_digest": digest(files),
            "run_dir": run_dir,
            "params_file": params,
            "log_dir": os.path.join(run_dir, ".weskit/bench"),
            "engine_parameters": {"cores": "1"},
            "sandbox": mode,
            "datasets": [],
        }
        spec_path = os.path.join(run_dir, ".spe/runspec.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        env = {"PATH": tools + ":/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": tmp}
        status = subprocess.run([runner, "--spec", spec_path], env=env).returncode
        if status == 0 and not os.path.exists(os.path.join(run_dir, "plots/quals.svg")):
            return 1
        return status


if __name__ == "__main__":
    sys.exit(main())
