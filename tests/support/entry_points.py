"""Send one HTTP request through each of the four entry points and get (status, headers, body).

- Lambda: the Powertools handler with an API Gateway HTTP API (v2) event and a Lambda context.
- GCP: the HTTP function served for real by ``functions-framework`` on a loopback port.
- Azure: the v2-model function called with ``azure.functions.HttpRequest`` objects (no
  Functions host runs on this machine).
- Local: ``agentfn serve`` over HTTP.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from tests.support.emulators import free_port

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "events" / "samples"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class EntryPoint(Protocol):
    name: str

    def send(
        self, method: str, path: str, *, headers: dict[str, str], body: bytes, query: dict[str, str]
    ) -> Reply: ...

    def close(self) -> None: ...


class LambdaContext:
    function_name = "agentfn-http"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:agentfn-http"
    memory_limit_in_mb = 512
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name = "/aws/lambda/agentfn-http"
    log_stream_name = "2026/11/23/[$LATEST]abcdef"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


class LambdaEntry:
    name = "aws-lambda"

    def __init__(self) -> None:
        from agentfn.functions import runtime

        runtime.reset()
        import agentfn.functions.aws.http as module

        self.module = module
        self.template = json.loads((SAMPLES / "aws" / "apigw_http_v2.json").read_text())

    def send(
        self, method: str, path: str, *, headers: dict[str, str], body: bytes, query: dict[str, str]
    ) -> Reply:
        event = copy.deepcopy(self.template)
        event["rawPath"] = path
        event["requestContext"]["http"]["method"] = method
        event["requestContext"]["http"]["path"] = path
        event["rawQueryString"] = urlencode(query)
        event["queryStringParameters"] = query or None
        event["headers"] = {k.lower(): v for k, v in headers.items()}
        event["body"] = base64.b64encode(body).decode() if body else None
        event["isBase64Encoded"] = bool(body)
        out = self.module.handler(event, LambdaContext())
        raw = out.get("body") or ""
        data = base64.b64decode(raw) if out.get("isBase64Encoded") else raw.encode()
        return Reply(out["statusCode"], {k.lower(): v for k, v in out["headers"].items()}, data)

    def close(self) -> None:
        from agentfn.functions import runtime

        runtime.reset()


class AzureEntry:
    name = "azure-functions"

    def __init__(self) -> None:
        from agentfn.functions import runtime

        runtime.reset()
        import agentfn.functions.azure.function_app as module

        self.call = module.http.build().get_user_function()

    def send(
        self, method: str, path: str, *, headers: dict[str, str], body: bytes, query: dict[str, str]
    ) -> Reply:
        import azure.functions as func

        url = "https://agentfn.azurewebsites.net" + path + ("?" + urlencode(query) if query else "")
        request = func.HttpRequest(
            method=method,
            url=url,
            headers=headers,
            params=query,
            route_params={"path": path.lstrip("/")},
            body=body,
        )
        response = self.call(request)
        return Reply(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.get_body(),
        )

    def close(self) -> None:
        from agentfn.functions import runtime

        runtime.reset()


class ServedEntry:
    """An entry point served by a real process on a loopback port."""

    def __init__(self, name: str, command: list[str], port: int, env: dict[str, str]) -> None:
        self.name = name
        self.port = port
        log = REPO / ".emulators" / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                command,
                cwd=REPO,
                env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"{name} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)

    def send(
        self, method: str, path: str, *, headers: dict[str, str], body: bytes, query: dict[str, str]
    ) -> Reply:
        r = self.client.request(method, path, headers=headers, content=body, params=query)
        return Reply(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)

    def close(self) -> None:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def gcp_entry(env: dict[str, str]) -> ServedEntry:
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("functions-framework")),
        "--source",
        str(REPO / "functions" / "gcp" / "main.py"),
        "--target",
        "http",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    return ServedEntry("gcp-functions-framework", command, port, env)


def local_entry(env: dict[str, str]) -> ServedEntry:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "agentfn.functions.local.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        "0",
    ]
    return ServedEntry("agentfn-serve", command, port, env)
