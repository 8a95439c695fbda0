"""Every staff route, walked as anonymous, as a participant, as the moderator of another
conversation, as the conversation's own moderator and as an admin: each gets the refusal (or
the answer) its role calls for, on both databases.

The walk comes from the app's URL map, so a staff route added later is walked too; a route is
a staff route when its view carries ``required_role`` (set by ``require`` and ``staff_page``),
and the OpenAPI document must say the same role.
"""

from __future__ import annotations

import pytest
from conftest import give_conversation

API = "/api/v1"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _staff_routes(app) -> list[tuple[str, str, str]]:
    """(method, rule, role) of every route behind a role."""
    routes = []
    for rule in app.url_map.iter_rules():
        role = getattr(app.view_functions[rule.endpoint], "required_role", None)
        if role is None:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes.append((method, rule.rule, role))
    return routes


def _url(rule: str, values: dict) -> str:
    for name, value in values.items():
        rule = rule.replace(f"<id:{name}>", str(value)).replace(f"<{name}>", str(value))
    assert "<" not in rule, rule
    return rule


def _send(client, method: str, url: str, headers: dict | None = None):
    kwargs = {"headers": headers or {}}
    if method in WRITES:
        kwargs["json"] = {}
    return client.open(url, method=method, **kwargs)


@pytest.fixture
def world(app, client, staff):
    """Two conversations (the moderator is given the second only), a participant of the
    first, and a spare account for the account routes to act on."""
    ids = []
    for topic in ("Buses", "Bikes"):
        body = {"topic": topic, "seed_statements": ["one", "two"]}
        response = client.post(f"{API}/conversations", json=body, headers=staff["admin"])
        ids.append(response.json["id"])
    target, other = ids
    give_conversation(client, staff, other)
    participant = app.test_client()
    voted = participant.post(
        f"{API}/conversations/{target}/votes", json={"statement_id": 0, "vote": 1}
    )
    assert voted.status_code == 200
    spare = client.post(
        f"{API}/accounts", json={"name": "spare", "role": "moderator"}, headers=staff["admin"]
    ).json["id"]
    values = {"conversation_id": target, "sid": 0, "pid": 0, "account_id": spare, "name": "votes"}
    return {"target": target, "other": other, "participant": participant, "values": values}


def test_every_staff_route_refuses_anonymous_and_participants(app, client, world):
    routes = _staff_routes(app)
    assert len(routes) >= 20  # the walk sees the staff routes (a broken walk would pass empty)
    for visitor in (client, world["participant"]):
        for method, rule, _role in routes:
            response = _send(visitor, method, _url(rule, world["values"]))
            if rule.startswith(API):
                assert response.status_code == 401, (method, rule, response.status_code)
                assert response.json["error"]["message"]
            else:  # a page: to the sign-in page, and back here afterwards
                assert response.status_code == 302, (method, rule)
                assert "/signin?next=" in response.headers["Location"]


def test_a_moderator_of_another_conversation_is_refused_everywhere_but_their_own_list(
    app, client, staff, world
):
    moderator = staff["moderator"]
    for method, rule, role in _staff_routes(app):
        url = _url(rule, world["values"])
        response = _send(client, method, url, moderator)
        if (method, rule) == ("GET", "/mine"):  # the page of their own conversations
            assert response.status_code == 200
            continue
        if (method, rule) == ("GET", f"{API}/conversations"):  # their own list only
            assert response.status_code == 200
            listed = [c["id"] for c in response.json["conversations"]]
            assert listed == [world["other"]]
            continue
        assert response.status_code == 403, (method, rule, response.status_code)
        if rule.startswith(API):
            message = response.json["error"]["message"]
            expected = "admin account" if role == "admin" else "does not moderate conversation"
            assert expected in message, (rule, message)


def test_the_conversations_moderator_passes_moderator_routes_and_not_admin_ones(
    app, client, staff, world
):
    give_conversation(client, staff, world["target"])
    for method, rule, role in _staff_routes(app):
        response = _send(client, method, _url(rule, world["values"]), staff["moderator"])
        if role == "admin":
            assert response.status_code == 403, (method, rule)
        else:
            assert response.status_code not in (401, 403), (method, rule, response.status_code)


def test_an_admin_passes_every_staff_route(app, client, staff, world):
    # The account deletion comes last: it removes the spare account the other routes use.
    routes = sorted(_staff_routes(app), key=lambda r: (r[0] == "DELETE", r[1]))
    for method, rule, _role in routes:
        response = _send(client, method, _url(rule, world["values"]), staff["admin"])
        assert response.status_code not in (401, 403, 500), (method, rule, response.status_code)


def test_the_openapi_document_names_each_routes_role(app, client):
    document = client.get(f"{API}/openapi.json").json
    for method, rule, role in _staff_routes(app):
        if not rule.startswith(API):
            continue
        path = rule.replace("<id:", "{").replace("<", "{").replace(">", "}")
        assert document["paths"][path][method.lower()].get("x-role") == role, (method, rule)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "x-role" not in operation:
                continue
            rule = path.replace("{", "<").replace("}", ">")
            assert any(
                m == method.upper() and r.replace("<id:", "<") == rule
                for m, r, _ in _staff_routes(app)
            ), (method, path)


def test_an_unknown_token_is_refused_even_on_open_routes(client, world):
    bad = {"Authorization": "Bearer pl_not-a-token"}
    response = client.get(f"{API}/conversations/{world['target']}/statements", headers=bad)
    assert response.status_code == 200  # open to everyone: a bad token is nobody here
    assert all("status" not in s for s in response.json["statements"])
    assert client.get(f"{API}/conversations", headers=bad).status_code == 401


def test_a_moderator_lands_on_the_conversations_given_to_them(app, client, staff, world):
    signin = client.get("/signin").get_data(as_text=True)
    assert 'data-next="/mine"' in signin
    moderator = app.test_client()
    moderator.post(f"{API}/session", json={"name": "moderator-1", "password": "password-1"})
    page = moderator.get("/mine").get_data(as_text=True)
    assert "Bikes" in page and "Buses" not in page  # given "Bikes" only
    assert f"/c/{world['other']}/moderate" in page and 'href="/admin"' not in page
    admin = app.test_client()
    admin.post(f"{API}/session", json={"name": "admin-1", "password": "password-1"})
    everything = admin.get("/mine").get_data(as_text=True)
    assert "Bikes" in everything and "Buses" in everything and 'href="/admin"' in everything
