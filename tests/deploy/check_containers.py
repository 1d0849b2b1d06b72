"""Asserts the properties the container files promise (issue 15), since no image can be built
here: multi-stage builds, pinned base images, a non-root numeric USER in the final stage, no
ADD of URLs, exec-form entry points, no shell left in the final image (wes-api: removed by the
last RUN; results-crawler: distroless), and a compose file whose services are wired and locked
down as the operator guide says. Usage: check_containers.py DIR (deploy/containers).
Exits 1 naming each broken property."""
import pathlib
import re
import sys

import yaml

problems = []


def fail(where, what):
    problems.append(f"{where}: {what}")


def stages(text):
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        word = s.split()[0].upper()
        if word == "FROM":
            out.append({"from": s, "lines": []})
        elif out:
            out[-1]["lines"].append(s)
    return out


def check_containerfile(path):
    text = path.read_text()
    st = stages(text)
    name = path.name
    if len(st) < 2:
        fail(name, "not a multi-stage build")
        return
    for s in st:
        m = re.match(r"FROM\s+(?:--platform=\S+\s+)?(\S+)", s["from"], re.I)
        image = m.group(1) if m else ""
        if image in {x["from"].split()[-1] for x in st if " AS " in x["from"].upper()}:
            continue
        tag = image.rsplit("/", 1)[-1]
        if "@sha256:" not in image and (":" not in tag or tag.endswith(":latest")):
            fail(name, f"base image {image} has no pinned tag")
    if not re.search(r"FROM\s+\S*rust:1\.95-bookworm\s+AS\s+build", st[0]["from"], re.I):
        fail(name, "the first stage is not the rust:1.95-bookworm builder")
    for s in st:
        for line in s["lines"]:
            if line.upper().startswith("ADD ") and re.search(r"https?://", line):
                fail(name, f"ADD of a URL: {line}")
    final = st[-1]
    users = [l for l in final["lines"] if l.upper().startswith("USER ")]
    if not users:
        fail(name, "the final stage sets no USER")
    else:
        user = users[-1].split()[1].split(":")[0]
        if not user.isdigit() or int(user) == 0:
            fail(name, f"final USER {user} is not a numeric non-root uid")
    entry = [l for l in final["lines"] if l.upper().startswith("ENTRYPOINT ")]
    if not entry or not entry[-1].split(None, 1)[1].startswith("["):
        fail(name, "the final stage has no exec-form ENTRYPOINT")
    if "COPY --from=build" not in text:
        fail(name, "the final stage does not copy the build stage's binaries")
    base = final["from"].split()[1]
    if "distroless" not in base:
        runs = [l for l in final["lines"] if l.upper().startswith("RUN ")]
        last = runs[-1] if runs else ""
        if not (last.startswith('RUN ["/bin/rm"') and '"/bin/sh"' in last and '"/bin/bash"' in last):
            fail(name, "the final stage is not distroless and its last RUN does not remove the shells")


def check_compose(path, folder):
    doc = yaml.safe_load(path.read_text())
    name = path.name
    allowed = {"name", "services", "volumes", "secrets", "networks", "configs"}
    for key in doc:
        if key not in allowed:
            fail(name, f"unknown top-level key {key}")
    services = doc.get("services") or {}
    for want in ("postgres", "s3", "wes-api", "results-crawler"):
        if want not in services:
            fail(name, f"no {want} service")
    volumes = set((doc.get("volumes") or {}).keys())
    secrets = set((doc.get("secrets") or {}).keys())
    for sname, svc in services.items():
        where = f"{name}: {sname}"
        if "image" not in svc and "build" not in svc:
            fail(where, "neither image nor build")
        if svc.get("privileged"):
            fail(where, "privileged")
        image = svc.get("image", "")
        if image and not image.startswith("localhost/"):
            tag = image.rsplit("/", 1)[-1]
            if ":" not in tag or tag.endswith(":latest"):
                fail(where, f"image {image} has no pinned tag")
        build = svc.get("build")
        if build:
            ctx = (folder / build["context"]).resolve()
            if not (ctx / build["dockerfile"]).is_file():
                fail(where, f"build file {build['dockerfile']} not found under {ctx}")
        for dep in (svc.get("depends_on") or {}):
            if dep not in services:
                fail(where, f"depends on unknown service {dep}")
        for v in svc.get("volumes") or []:
            src = v.split(":")[0]
            if not src.startswith(("/", ".")) and src not in volumes:
                fail(where, f"volume {src} is not declared")
        for s in svc.get("secrets") or []:
            if s not in secrets:
                fail(where, f"secret {s} is not declared")
        for p in svc.get("ports") or []:
            if not str(p).startswith("127.0.0.1:"):
                fail(where, f"port {p} is published beyond 127.0.0.1")
    for sname in ("wes-api", "results-crawler"):
        svc = services.get(sname) or {}
        where = f"{name}: {sname}"
        user = str(svc.get("user", "0")).split(":")[0]
        if not user.isdigit() or int(user) == 0:
            fail(where, "runs as root")
        if svc.get("read_only") is not True:
            fail(where, "root file system not read-only")
        if "ALL" not in (svc.get("cap_drop") or []):
            fail(where, "capabilities not dropped")
        if "no-new-privileges:true" not in (svc.get("security_opt") or []):
            fail(where, "no-new-privileges not set")
    api_env = services.get("wes-api", {}).get("env_file")
    crawler_env = services.get("results-crawler", {}).get("env_file")
    if not api_env or not crawler_env or api_env == crawler_env:
        fail(name, "wes-api and results-crawler must have environment files of their own (S3 keys)")
    for v in services.get("results-crawler", {}).get("volumes") or []:
        if "/runs" in v and not v.endswith(":ro"):
            fail(name, "the crawler mounts the run directories writable")


def main():
    folder = pathlib.Path(sys.argv[1])
    files = sorted(folder.glob("*.Containerfile"))
    if {f.name for f in files} != {"wes-api.Containerfile", "results-crawler.Containerfile"}:
        fail(str(folder), f"expected wes-api and results-crawler Containerfiles, found {[f.name for f in files]}")
    for f in files:
        check_containerfile(f)
    check_compose(folder / "compose.yaml", folder)
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"containers: {len(files)} Containerfiles and compose.yaml hold their properties")


main()
