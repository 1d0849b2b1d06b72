"""The calls of wes-service's client library (wes_client.util.WESClient) that its CLI does not
offer: run status and cancel. Run by tests/clients.rs with SPE_WES_HOST (host:port),
SPE_WES_TOKEN and the run id as the only argument; prints the answers as one JSON object.
"""

import json
import os
import sys

from wes_client.util import WESClient

client = WESClient(
    {
        "auth": {"Authorization": "Bearer " + os.environ["SPE_WES_TOKEN"]},
        "proto": "http",
        "host": os.environ["SPE_WES_HOST"],
    }
)
run_id = sys.argv[1]
out = {"status": client.get_run_status(run_id)}
out["cancel"] = client.cancel(run_id)
out["status_after_cancel"] = client.get_run_status(run_id)
print(json.dumps(out))
