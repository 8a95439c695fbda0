"""Every operation of the OpenAPI document, walked by schemathesis on SQLite and PostgreSQL,
anonymously and as an admin, on a conversation with statements, votes and a result: no request
it makes gets a server error.

Seeded (``derandomize``) and bounded, so that CI sees the same requests every run and the walk
takes about half a minute per database.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

API = "/api/v1"
#: Requests per operation and database.
EXAMPLES = 25


@pytest.fixture
def conversation(app, client, staff, engine) -> int:
    """A conversation with statements, two participants' votes and a computed result."""
    from worker.runner import Worker

    response = client.post(
        f"{API}/conversations",
        headers=staff["admin"],
        json={"topic": "Fuzzing", "seed_statements": ["one", "two", "three"]},
    )
    assert response.status_code == 201
    cid = response.json["id"]
    for browser, votes in ((app.test_client(), (1, -1, 0)), (app.test_client(), (1, 1, -1))):
        for sid, vote in enumerate(votes):
            assert (
                browser.post(
                    f"{API}/conversations/{cid}/votes", json={"statement_id": sid, "vote": vote}
                ).status_code
                == 200
            )
    Worker(engine).step()
    # The event stream must end quickly: a walk cannot wait five minutes for it.
    app.config.update(STREAM_MAX_S=0.05, STREAM_PING_S=0.05)
    return cid


def test_no_request_of_the_openapi_document_gets_a_server_error(app, staff, conversation):
    schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        walk(operation, staff["admin"], conversation)


def walk(operation, admin: dict, conversation: int) -> None:
    """Call ``operation`` with generated requests; half of them name the real conversation
    (and statement or participant 0), half of them come from an admin."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), real_ids=st.booleans(), as_admin=st.booleans())
    def call(case, real_ids: bool, as_admin: bool) -> None:
        if real_ids:
            ids = {"conversation_id": conversation, "sid": 0, "pid": 0}
            for name in case.path_parameters or {}:
                if name in ids:
                    case.path_parameters[name] = ids[name]
        response = case.call(headers=admin if as_admin else None)
        assert response.status_code < 500, (
            f"{response.status_code} from {case.as_curl_command()}\n{response.text[:2000]}"
        )

    call()
