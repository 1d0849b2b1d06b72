"""Drives Galaxy's gxy-wes client library (gxy_wes.client.WesClient) against wes-api.

Run by tests/clients.rs with SPE_WES_URL (the server's root) and SPE_WES_TOKEN (a researcher's
bearer token); prints what each call answered as one JSON object, which the test asserts.

gxy-wes authenticates with Galaxy's `x-api-key` header only, which wes-api does not take (its
CLI is tested for that refusal); a library user sets the bearer token on the client's requests
session, as here.
"""

import json
import os

from gxy_wes.client import WesClient, WesError

client = WesClient(os.environ["SPE_WES_URL"])
client.session.headers["Authorization"] = "Bearer " + os.environ["SPE_WES_TOKEN"]

out = {"service_info": client.service_info()}
# With no workflow file, submit_run posts application/x-www-form-urlencoded.
out["submitted"] = [
    client.submit_run(
        workflow_type="SMK",
        workflow_type_version="9",
        workflow_url="quals@1.0.0",
        params={"min_qual": 20 + i},
        engine_parameters={"cores": "1"},
    )["run_id"]
    for i in range(3)
]
first = client.list_runs(page_size=2)
out["pages"] = [first, client.list_runs(page_size=2, page_token=first["next_page_token"])]
run_id = out["submitted"][0]
out["status"] = client.get_run_status(run_id)
out["run"] = client.get_run(run_id)
out["tasks"] = client.get_run_tasks(run_id)
out["cancel"] = client.cancel_run(run_id)
out["status_after_cancel"] = client.get_run_status(run_id)
try:
    client.cancel_run(run_id)
    out["second_cancel"] = None
except WesError as e:
    out["second_cancel"] = e.status_code
print(json.dumps(out))
