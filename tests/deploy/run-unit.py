#!/usr/bin/env python3
"""Starts an installed systemd service the way systemd would, on a host without systemd as PID 1.

tests/deploy/apply.sh uses it on the CI machine (which has no systemd to start units) to run
the services exactly as the playbook installed them: the unit's ExecStart, as its User= and
Group= (no supplementary groups), with its UMask=, its StateDirectory= made and owned like
systemd makes it, and only the variables of its EnvironmentFile= (plus the few systemd sets).
The unit's sandboxing directives (ProtectSystem=, SystemCallFilter=, ...) need systemd and are
not applied here; tests/deploy/check.sh scores them offline instead.

Usage: run-unit.py UNIT LOG   e.g. run-unit.py wes-api /tmp/wes-api.log
Prints the started process's pid; the service's stdout and stderr go to LOG.
"""

import grp
import os
import pwd
import shlex
import subprocess
import sys
from pathlib import Path

UNITS = Path("/etc/systemd/system")
# The directives this launcher honours; any other line of [Service] is left to systemd.
HONOURED = {"User", "Group", "EnvironmentFile", "ExecStart", "UMask", "StateDirectory",
            "StateDirectoryMode", "WorkingDirectory"}


def service_section(unit: str) -> dict[str, str]:
    """The unit's [Service] directives, drop-ins applied in name order (later ones win; an empty
    assignment resets, as in systemd)."""
    files = [UNITS / f"{unit}.service"]
    dropins = UNITS / f"{unit}.service.d"
    if dropins.is_dir():
        files += sorted(dropins.glob("*.conf"))
    directives: dict[str, str] = {}
    for path in files:
        section = None
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
                continue
            if section != "[Service]" or "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            if key in HONOURED:
                directives[key] = value
    return directives


def environment_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; a value in single quotes is taken literally (systemd's rule)."""
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, value = line.split("=", 1)
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    unit, log = sys.argv[1], sys.argv[2]
    service = service_section(unit)
    user = pwd.getpwnam(service["User"])
    group = grp.getgrnam(service.get("Group", service["User"]))
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name}
    if "EnvironmentFile" in service:
        spec = service["EnvironmentFile"]
        optional = spec.startswith("-")
        path = Path(spec.lstrip("-"))
        if path.exists() or not optional:
            env.update(environment_file(path))
    cwd = "/"
    if service.get("StateDirectory"):
        state = Path("/var/lib") / service["StateDirectory"]
        state.mkdir(parents=True, exist_ok=True)
        os.chown(state, user.pw_uid, group.gr_gid)
        state.chmod(int(service.get("StateDirectoryMode", "0755"), 8))
        env["STATE_DIRECTORY"] = str(state)
        cwd = str(state)
    cwd = service.get("WorkingDirectory", cwd)
    argv = shlex.split(service["ExecStart"])
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv, env=env, cwd=cwd, user=user.pw_uid, group=group.gr_gid, extra_groups=[],
            umask=int(service.get("UMask", "0022"), 8), stdin=subprocess.DEVNULL, stdout=out,
            stderr=out, start_new_session=True)
    print(process.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
