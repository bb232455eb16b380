"""Google's Pub/Sub emulator (the gcloud component, Java) and a REST client to pull from it."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
import urllib.request
from typing import TYPE_CHECKING, Any

from tests.e2e import services

if TYPE_CHECKING:
    from pathlib import Path

PROJECT = "test-project"


def start(workdir: Path) -> services.Service:
    """``gcloud beta emulators pubsub start`` on a free loopback port (its own process group)."""
    port = services.free_port()
    log = workdir / "pubsub.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [
                "gcloud",
                "beta",
                "emulators",
                "pubsub",
                "start",
                f"--host-port=127.0.0.1:{port}",
                f"--project={PROJECT}",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,  # gcloud starts java as a child: stop the whole group
        )
    svc = services.Service("pubsub", url=f"http://127.0.0.1:{port}", port=port, log=log)
    svc.proc = proc
    svc.stoppers.append(lambda: os.killpg(proc.pid, signal.SIGTERM))
    services._wait_http(svc, svc.url + "/", timeout=90)
    return svc


def _call(svc: services.Service, method: str, path: str, body: Any = None) -> Any:
    req = urllib.request.Request(
        f"{svc.url}/v1/projects/{PROJECT}/{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def create_topic_and_subscription(svc: services.Service, topic: str, subscription: str) -> str:
    """The topic's full name, with ``subscription`` attached to it."""
    _call(svc, "PUT", f"topics/{topic}")
    name = f"projects/{PROJECT}/topics/{topic}"
    _call(svc, "PUT", f"subscriptions/{subscription}", {"topic": name})
    return name


def pull(svc: services.Service, subscription: str, count: int) -> list[dict[str, Any]]:
    """``count`` messages from ``subscription``, acknowledged; each ``{"data", "attributes"}``.

    Fails when fewer arrive within 30 s; more than ``count`` waiting are returned too.
    """
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        body = {"maxMessages": 100, "returnImmediately": True}
        received = _call(svc, "POST", f"subscriptions/{subscription}:pull", body).get(
            "receivedMessages", []
        )
        if not received:
            time.sleep(0.2)
            continue
        got += [
            {
                "data": json.loads(base64.b64decode(r["message"]["data"])),
                "attributes": r["message"].get("attributes", {}),
            }
            for r in received
        ]
        ack = {"ackIds": [r["ackId"] for r in received]}
        _call(svc, "POST", f"subscriptions/{subscription}:acknowledge", ack)
    assert len(got) >= count, f"{len(got)} of {count} messages arrived: {got}"
    return got
