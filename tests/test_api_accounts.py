"""The accounts API (admins only) and sign-out that ends the session on the server, on SQLite
and PostgreSQL."""

from __future__ import annotations

import pytest

API = "/api/v1"


def _sign_in(client, name: str, password: str) -> int:
    return client.post(f"{API}/session", json={"name": name, "password": password}).status_code


def _cookie(client) -> str:
    return client.get_cookie("polis_like").value


def _with_cookie(app, value: str):
    """A new browser holding a copy of someone's session cookie."""
    other = app.test_client()
    other.set_cookie("polis_like", value)
    return other


def test_an_admin_lists_accounts_with_their_token_counts(client, staff):
    response = client.get(f"{API}/accounts", headers=staff["admin"])
    assert response.status_code == 200
    listed = {a["name"]: a for a in response.json["accounts"]}
    assert listed["admin-1"]["role"] == "admin" and listed["admin-1"]["tokens"] == 1
    assert listed["moderator-1"]["role"] == "moderator"
    assert "password_hash" not in listed["admin-1"]


def test_an_admin_creates_a_moderator_with_a_generated_password_that_signs_in(app, client, staff):
    response = client.post(f"{API}/accounts", headers=staff["admin"], json={"name": "mo"})
    assert response.status_code == 201
    made = response.json
    assert made["role"] == "moderator" and len(made["password"]) >= 16
    assert made["token"].startswith("pl_") and made["tokens"] == 1
    assert _sign_in(app.test_client(), "mo", made["password"]) == 200
    token = {"Authorization": f"Bearer {made['token']}"}
    assert client.get(f"{API}/conversations", headers=token).status_code == 200
    assert client.get(f"{API}/accounts", headers=token).status_code == 403


def test_an_admin_creates_an_admin_with_a_given_password(app, client, staff):
    body = {"name": "second", "role": "admin", "password": "correct horse"}
    response = client.post(f"{API}/accounts", headers=staff["admin"], json=body)
    assert response.status_code == 201 and response.json["password"] == "correct horse"
    assert response.json["role"] == "admin"
    assert _sign_in(app.test_client(), "second", "correct horse") == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "admin-1"}, 409),
        ({"name": "short", "password": "1234567"}, 400),
        ({"name": ""}, 400),
        ({"name": "x" * 81}, 400),
        ({"name": "r", "role": "owner"}, 400),
        ({"name": 5}, 400),
        ({"name": "p", "password": 12345678}, 400),
    ],
)
def test_creating_an_account_refuses_bad_input(client, staff, body, status):
    response = client.post(f"{API}/accounts", headers=staff["admin"], json=body)
    assert response.status_code == status, response.json
    assert response.json["error"]["status"] == status


def test_resetting_a_password_shows_it_once_and_the_old_one_stops_working(app, client, staff):
    accounts = client.get(f"{API}/accounts", headers=staff["admin"]).json["accounts"]
    moderator = next(a for a in accounts if a["name"] == "moderator-1")
    response = client.post(
        f"{API}/accounts/{moderator['id']}/password", headers=staff["admin"], json={}
    )
    assert response.status_code == 200
    fresh = response.json["password"]
    assert len(fresh) >= 16
    assert _sign_in(app.test_client(), "moderator-1", "password-1") == 401
    assert _sign_in(app.test_client(), "moderator-1", fresh) == 200
    given = client.post(
        f"{API}/accounts/{moderator['id']}/password",
        headers=staff["admin"],
        json={"password": "a-new-one!"},
    )
    assert given.json["password"] == "a-new-one!"
    short = client.post(
        f"{API}/accounts/{moderator['id']}/password",
        headers=staff["admin"],
        json={"password": "short"},
    )
    assert short.status_code == 400


def test_revoking_tokens_stops_them_and_a_new_token_works(client, staff):
    accounts = client.get(f"{API}/accounts", headers=staff["admin"]).json["accounts"]
    moderator = next(a for a in accounts if a["name"] == "moderator-1")
    url = f"{API}/accounts/{moderator['id']}/tokens"
    response = client.delete(url, headers=staff["admin"])
    assert response.status_code == 200 and response.json["revoked"] == 1
    assert client.get(f"{API}/conversations", headers=staff["moderator"]).status_code == 401
    issued = client.post(url, headers=staff["admin"], json={})
    assert issued.status_code == 201
    token = {"Authorization": f"Bearer {issued.json['token']}"}
    assert client.get(f"{API}/conversations", headers=token).status_code == 200
    assert client.post(url, headers=staff["admin"], data="{}").status_code == 415


def test_deleting_an_account_removes_it_and_its_tokens(client, staff):
    accounts = client.get(f"{API}/accounts", headers=staff["admin"]).json["accounts"]
    moderator = next(a for a in accounts if a["name"] == "moderator-1")
    assert (
        client.delete(f"{API}/accounts/{moderator['id']}", headers=staff["admin"]).status_code
        == 204
    )
    assert client.get(f"{API}/conversations", headers=staff["moderator"]).status_code == 401
    names = [
        a["name"] for a in client.get(f"{API}/accounts", headers=staff["admin"]).json["accounts"]
    ]
    assert names == ["admin-1"]


def test_an_admin_cannot_delete_themselves_nor_the_last_admin(client, staff):
    accounts = client.get(f"{API}/accounts", headers=staff["admin"]).json["accounts"]
    admin = next(a for a in accounts if a["name"] == "admin-1")
    assert client.delete(f"{API}/accounts/{admin['id']}", headers=staff["admin"]).status_code == 403
    other = client.post(
        f"{API}/accounts", headers=staff["admin"], json={"name": "other", "role": "admin"}
    ).json
    token = {"Authorization": f"Bearer {other['token']}"}
    assert client.delete(f"{API}/accounts/{admin['id']}", headers=token).status_code == 204
    # "other" is now the last admin; a second admin made and removed shows the 409 path.
    third = client.post(
        f"{API}/accounts", headers=token, json={"name": "third", "role": "admin"}
    ).json
    third_token = {"Authorization": f"Bearer {third['token']}"}
    assert client.delete(f"{API}/accounts/{other['id']}", headers=third_token).status_code == 204
    # only "third" is left as admin: deleting it is both oneself and the last admin
    response = client.delete(f"{API}/accounts/{third['id']}", headers=third_token)
    assert response.status_code == 403


def test_the_last_admin_cannot_be_deleted_by_another_account(sessions, client, staff):
    from polis_like.errors import Conflict
    from polis_like.storage import accounts

    with sessions() as session:
        last = accounts.find_account(session, "admin-1")
        with pytest.raises(Conflict, match="last admin"):
            accounts.delete_account(session, last, by=accounts.find_account(session, "moderator-1"))


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/accounts/999/password", {}),
        ("post", "/accounts/999/tokens", {}),
        ("delete", "/accounts/999/tokens", None),
        ("delete", "/accounts/999", None),
    ],
)
def test_an_unknown_account_is_404_and_a_moderator_gets_403(client, staff, method, path, body):
    kwargs = {} if body is None else {"json": body}
    call = getattr(client, method)
    assert call(f"{API}{path}", headers=staff["admin"], **kwargs).status_code == 404
    assert call(f"{API}{path}", headers=staff["moderator"], **kwargs).status_code == 403
    assert call(f"{API}{path}", **kwargs).status_code == 401


def test_a_moderator_gets_403_on_listing_and_creating_accounts(client, staff):
    assert client.get(f"{API}/accounts", headers=staff["moderator"]).status_code == 403
    made = client.post(f"{API}/accounts", headers=staff["moderator"], json={"name": "x"})
    assert made.status_code == 403


def test_a_copied_session_cookie_stops_working_after_sign_out(app, client, staff):
    assert _sign_in(client, "moderator-1", "password-1") == 200
    copy = _with_cookie(app, _cookie(client))
    assert copy.get(f"{API}/session").status_code == 200
    assert client.delete(f"{API}/session").status_code == 204
    assert copy.get(f"{API}/session").status_code == 401
    assert client.get(f"{API}/session").status_code == 401
    # Signing in again gives a cookie that works; the old copy still does not.
    assert _sign_in(client, "moderator-1", "password-1") == 200
    assert client.get(f"{API}/session").status_code == 200
    assert copy.get(f"{API}/session").status_code == 401
    # Bearer tokens are not sessions: sign-out leaves them alone.
    assert client.get(f"{API}/conversations", headers=staff["moderator"]).status_code == 200


def test_a_copied_session_cookie_stops_working_after_a_password_reset(app, client, staff):
    assert _sign_in(client, "moderator-1", "password-1") == 200
    copy = _with_cookie(app, _cookie(client))
    accounts = client.get(f"{API}/accounts", headers=staff["admin"]).json["accounts"]
    moderator = next(a for a in accounts if a["name"] == "moderator-1")
    reset = client.post(
        f"{API}/accounts/{moderator['id']}/password", headers=staff["admin"], json={}
    )
    assert reset.status_code == 200
    assert copy.get(f"{API}/session").status_code == 401
    assert client.get(f"{API}/session").status_code == 401


def test_a_cookie_without_an_epoch_signs_nobody_in(app, client, staff):
    """Cookies from before the epoch existed (or forged without it) are not sessions."""
    from flask.sessions import SecureCookieSessionInterface

    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    old = serializer.dumps({"account": 1})
    assert _with_cookie(app, old).get(f"{API}/session").status_code == 401
