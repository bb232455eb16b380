"""The raw baseline: stream one Looker query result and write one orjson line per row.

No Singer, no type conversion: log in with requests, POST the same body the tap sends for the
window, parse the streamed body with ijson and write each row to stdout. What a hand-written
extractor that does nothing else would cost.

    python -m benchmarks.raw_baseline BASE_URL CLIENT_ID CLIENT_SECRET BODY_JSON > /dev/null
"""

from __future__ import annotations

import json
import sys

import ijson
import orjson
import requests


def main(argv: list[str]) -> int:
    base_url, client_id, client_secret, body_json = argv
    body = json.loads(body_json)
    with requests.Session() as session:
        login = session.post(
            f"{base_url}/api/4.0/login",
            data={"client_id": client_id, "client_secret": client_secret},
            timeout=60,
        )
        login.raise_for_status()
        session.headers["Authorization"] = f"token {login.json()['access_token']}"
        response = session.post(
            f"{base_url}/api/4.0/queries/run/json", json=body, stream=True, timeout=120
        )
        response.raise_for_status()
        response.raw.decode_content = True
        out = sys.stdout.buffer
        dumps = orjson.dumps
        rows = 0
        for row in ijson.items(response.raw, "item", use_float=True):
            out.write(dumps(row) + b"\n")
            rows += 1
        out.flush()
        response.close()
    print(f"rows={rows}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
