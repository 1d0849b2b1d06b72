"""Drives ai4gh's WES client (ai4gh.specs.wes.WESClient, async, JSON bodies) against wes-api.

Run by tests/clients.rs with SPE_WES_URL (the server's root) and SPE_WES_TOKEN (a researcher's
bearer token); prints what each call answered as one JSON object, which the test asserts.
ai4gh has no call for a run's log text; its RunDescription (GET /runs/{id}) is the run log.
"""

import asyncio
import json
import os

from ai4gh.core.auth import BearerTokenAuth
from ai4gh.specs.wes import WESClient


async def main():
    auth = BearerTokenAuth(os.environ["SPE_WES_TOKEN"])
    async with WESClient(os.environ["SPE_WES_URL"], auth=auth) as client:
        out = {"service_info": (await client.get_service_info()).model_dump(mode="json")}
        out["submitted"] = [
            (
                await client.submit_run(
                    workflow_url="quals@1.0.0",
                    workflow_type="SMK",
                    workflow_type_version="9",
                    workflow_params={"min_qual": 40 + i},
                    tags={"client": "ai4gh"},
                )
            ).run_id
            for i in range(3)
        ]
        first = await client.list_runs(page_size=2)
        second = await client.list_runs(page_size=2, page_token=first.next_page_token)
        out["pages"] = [p.model_dump(mode="json") for p in (first, second)]
        run_id = out["submitted"][0]
        out["status"] = (await client.get_run_status(run_id)).model_dump(mode="json")
        out["run"] = (await client.get_run(run_id)).model_dump(mode="json")
        out["cancel"] = (await client.cancel_run(run_id)).run_id
        out["status_after_cancel"] = (await client.get_run_status(run_id)).model_dump(mode="json")
    print(json.dumps(out))


asyncio.run(main())
