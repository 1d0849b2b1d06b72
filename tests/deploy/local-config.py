#!/usr/bin/env python3
"""Writes the config tests/deploy/apply.sh installs: deploy/config/spe.example.yaml, the file an
operator starts from, with its CHANGE values set to this machine's peers (the same edits an
operator makes) and nothing else changed but what a one-node test needs, each said below.

Usage: local-config.py EXAMPLE OUT   (reads SPE_DEPLOY_* variables; see apply.sh)
"""

import os
import sys

import yaml


def main() -> int:
    example, out = sys.argv[1], sys.argv[2]
    with open(example) as f:
        config = yaml.safe_load(f)
    e = os.environ
    config["server"]["listen"] = e["SPE_DEPLOY_LISTEN"]
    config["server"]["metrics_listen"] = e["SPE_DEPLOY_METRICS_LISTEN"]
    config["data_dir"] = e["SPE_DEPLOY_RUNS_DIR"]
    oidc = config["auth"]["oidc"]
    oidc["issuer"] = e["SPE_DEPLOY_ISSUER"]
    # The test provider's audience and LS-Login-shaped groups (tests/peers/oidc/server.mjs).
    oidc["audience"] = "spe-api"
    group = "urn:geant:lifescience-ri.eu:group:spe-demo:{}#login.aai.lifescience-ri.eu"
    oidc["roles"]["entitlements"] = {
        group.format("researchers"): ["researcher"],
        group.format("data-controllers:role=manager"): ["data_controller"],
        group.format("collaborators"): ["collaborator"],
    }
    oidc["browser"]["client_id"] = "spe-web"
    oidc["browser"]["redirect_url"] = f"http://{e['SPE_DEPLOY_LISTEN']}/auth/callback"
    oidc["browser"]["cookie_secure"] = False  # plain HTTP on 127.0.0.1, no TLS proxy in front
    config["workflows"]["upload_dir"] = e["SPE_DEPLOY_REGISTRY_DIR"]
    # The one-node cluster's partition and size.
    config["workflows"]["engine_parameters"] = [
        {"name": "cores", "type": "integer", "default": "1", "min": 1, "max": 2},
        {"name": "memory_mb", "type": "integer", "default": "512", "min": 256, "max": 8192},
        {"name": "runtime_minutes", "type": "integer", "default": "10", "min": 1, "max": 60},
        {"name": "partition", "type": "string", "default": e["SPE_DEPLOY_PARTITION"],
         "allowed": [e["SPE_DEPLOY_PARTITION"]]},
    ]
    crawler = config["crawler"]
    crawler["bucket"] = "spe-results"
    crawler["endpoint"] = e["SPE_DEPLOY_S3_URL"]
    crawler["region"] = "us-east-1"
    crawler["metrics_listen"] = e["SPE_DEPLOY_CRAWLER_METRICS_LISTEN"]
    crawler["poll_interval_seconds"] = 1  # a test waits for the release, not ten seconds
    # No mail server or webhook receiver here, and no test talks to another address.
    del config["notifications"]
    with open(out, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
