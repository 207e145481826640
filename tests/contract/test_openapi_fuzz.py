"""A bounded schemathesis run over the whole OpenAPI document, against `agentfn serve`'s HTTP
server on loopback with a real local runtime behind it: no request schemathesis generates,
valid or not, gets a 5xx, a status the document does not list, or a body or content type that
breaks the document; protected routes refuse requests without a key; methods the document
does not list get 405."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from agentfn.api import Api, Request
from agentfn.functions.local.server import serve
from agentfn.functions.runtime import Runtime
from agentfn.settings import Settings

KEY = "schemathesis-bootstrap-key-0123456789"
EXAMPLES = 25  # per operation: bounded, so the run stays well under a minute


class _DocumentOnly:
    def health(self) -> dict[str, Any]:
        return {}


DOCUMENT = Api(_DocumentOnly()).handle(Request("GET", "/openapi.json")).json()  # type: ignore[arg-type]
schema = schemathesis.openapi.from_dict(DOCUMENT)


@schema.auth()
class BootstrapKey:
    """The key, sent as the document's bearer scheme (so ``ignored_auth`` can leave it out)."""

    def get(self, case: Any, ctx: Any) -> str:
        return KEY

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    (tmp / "project").mkdir()
    (tmp / ".env").write_text(f"AGENTFN_API_KEY={KEY}\n")
    env = {"AGENTFN_PROJECT": str(tmp / "project"), "AGENTFN_SECRETS": f"env://{tmp / '.env'}"}
    runtime = Runtime(Settings.from_env(env, home=tmp / "home"))
    httpd = serve(runtime.api, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.ignored_auth,
    checks.unsupported_method,
]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases every run: a failure here is reproducible
    suppress_health_check=list(HealthCheck),
)
def test_no_request_breaks_the_document(case: Any, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, checks=CHECKS)
