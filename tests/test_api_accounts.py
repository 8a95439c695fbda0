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
        ("patch", "/accounts/999", {"disabled": True}),
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


# -- disabled accounts ----------------------------------------------------------------------


def _account_id(client, staff, name: str) -> int:
    accounts = client.get(f"{API}/accounts", headers=staff["admin"]).json["accounts"]
    return next(a["id"] for a in accounts if a["name"] == name)


def _set_disabled(client, headers, account_id: int, disabled: object):
    return client.patch(
        f"{API}/accounts/{account_id}", headers=headers, json={"disabled": disabled}
    )


def test_a_disabled_account_s_cookie_token_and_password_stop_working_until_it_is_enabled(
    app, client, staff
):
    browser = app.test_client()
    assert _sign_in(browser, "moderator-1", "password-1") == 200
    moderator = _account_id(client, staff, "moderator-1")

    response = _set_disabled(client, staff["admin"], moderator, True)
    assert response.status_code == 200 and response.json["disabled"] is True
    listed = client.get(f"{API}/accounts", headers=staff["admin"]).json["accounts"]
    assert {a["name"]: a["disabled"] for a in listed} == {"admin-1": False, "moderator-1": True}
    # At once: the cookie signs nobody in, the token is refused, the right password gets 403.
    assert browser.get(f"{API}/session").status_code == 401
    assert browser.get(f"{API}/conversations").status_code == 401
    refused = client.get(f"{API}/conversations", headers=staff["moderator"])
    assert refused.status_code == 401
    assert refused.json["error"]["message"] == "this account is disabled"
    right = app.test_client().post(
        f"{API}/session", json={"name": "moderator-1", "password": "password-1"}
    )
    assert right.status_code == 403
    assert right.json["error"] == {"status": 403, "message": "this account is disabled"}
    assert "polis_like" not in right.headers.get("Set-Cookie", "")
    # A wrong password reads as for any account: nothing says this one is disabled.
    wrong = app.test_client().post(
        f"{API}/session", json={"name": "moderator-1", "password": "not-the-one"}
    )
    assert wrong.status_code == 401
    assert wrong.json["error"]["message"] == "wrong name or password"

    response = _set_disabled(client, staff["admin"], moderator, False)
    assert response.status_code == 200 and response.json["disabled"] is False
    # Nothing was revoked: the same cookie, token and password work again.
    assert browser.get(f"{API}/session").json["name"] == "moderator-1"
    assert client.get(f"{API}/conversations", headers=staff["moderator"]).status_code == 200
    assert _sign_in(app.test_client(), "moderator-1", "password-1") == 200


def test_a_disabled_account_s_staff_page_asks_to_sign_in_again(app, client, staff):
    browser = app.test_client()
    admin = client.post(
        f"{API}/accounts", headers=staff["admin"], json={"name": "second", "role": "admin"}
    ).json
    assert _sign_in(browser, "second", admin["password"]) == 200
    assert browser.get("/admin").status_code == 200
    assert _set_disabled(client, staff["admin"], admin["id"], True).status_code == 200
    page = browser.get("/admin")
    assert page.status_code == 302 and page.headers["Location"] == "/signin?next=/admin"


def test_an_admin_cannot_disable_their_own_account(client, staff):
    admin = _account_id(client, staff, "admin-1")
    response = _set_disabled(client, staff["admin"], admin, True)
    assert response.status_code == 403
    assert response.json["error"] == {
        "status": 403,
        "message": "you cannot disable your own account",
    }
    # Enabling oneself is harmless (and a no-op): one is enabled to ask at all.
    assert _set_disabled(client, staff["admin"], admin, False).status_code == 200


def test_the_last_admin_who_can_sign_in_is_neither_disabled_nor_deleted(sessions, client, staff):
    from polis_like.errors import Conflict
    from polis_like.storage import accounts

    other = client.post(
        f"{API}/accounts", headers=staff["admin"], json={"name": "other", "role": "admin"}
    ).json
    # Two admins: one may disable the other; the disabled one no longer counts.
    assert _set_disabled(client, staff["admin"], other["id"], True).status_code == 200
    with sessions() as session:
        last = accounts.find_account(session, "admin-1")
        with pytest.raises(Conflict, match=r"^this is the last admin account that can sign in$"):
            accounts.set_disabled(session, last, True, by=None)  # as the command line asks
        with pytest.raises(Conflict, match="last admin"):
            accounts.delete_account(session, last, by=accounts.find_account(session, "other"))
    # A disabled admin may be deleted: the enabled one stays.
    assert client.delete(f"{API}/accounts/{other['id']}", headers=staff["admin"]).status_code == 204


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"disabled": "yes"}, "disabled must be true or false"),
        ({"disabled": 1}, "disabled must be true or false"),
        ({"disabled": None}, "disabled must be true or false"),
        ({}, "disabled must be true or false"),
        ({"disabled": True, "role": "admin"}, "unknown field: role"),
    ],
)
def test_disabling_refuses_anything_but_a_boolean(client, staff, body, message):
    moderator = _account_id(client, staff, "moderator-1")
    response = client.patch(f"{API}/accounts/{moderator}", headers=staff["admin"], json=body)
    assert response.status_code == 400
    assert response.json["error"] == {"status": 400, "message": message}
    as_text = client.patch(
        f"{API}/accounts/{moderator}", headers=staff["admin"], data='{"disabled": true}'
    )
    assert as_text.status_code == 415
    assert client.get(f"{API}/conversations", headers=staff["moderator"]).status_code == 200


# -- how long a staff sign-in lasts -----------------------------------------------------------


def test_a_staff_sign_in_ends_after_the_staff_session_hours_but_the_participant_stays(
    app, client, staff, monkeypatch
):
    from polis_like.storage import accounts
    from polis_like.storage.db import now_ms

    cid = client.post(
        f"{API}/conversations",
        headers=staff["admin"],
        json={"topic": "t", "seed_statements": ["a"]},
    ).json["id"]
    browser = app.test_client()
    vote = {"statement_id": 0, "vote": 1}
    assert browser.post(f"{API}/conversations/{cid}/votes", json=vote).status_code == 200
    assert _sign_in(browser, "moderator-1", "password-1") == 200
    # The cookie itself lasts a year, for the participant's visitor id beside the sign-in.
    expires = browser.get_cookie("polis_like").expires
    assert expires is not None and expires.timestamp() * 1000 > now_ms() + 360 * 86_400_000

    hours = app.config["STAFF_SESSION_HOURS"]
    assert hours == 12
    start = now_ms()
    monkeypatch.setattr(accounts, "now_ms", lambda: start + hours * 3_600_000 - 60_000)
    assert browser.get(f"{API}/session").status_code == 200
    monkeypatch.setattr(accounts, "now_ms", lambda: start + hours * 3_600_000 + 60_000)
    assert browser.get(f"{API}/session").status_code == 401
    assert browser.get("/admin").status_code == 302
    # The same browser is still the same participant, with its vote.
    me = browser.get(f"{API}/conversations/{cid}/me")
    assert me.status_code == 200 and (me.json["participant"], me.json["votes"]) == (0, 1)


def test_a_cookie_signed_in_longer_ago_than_the_lifetime_signs_nobody_in(app, client, staff):
    from flask.sessions import SecureCookieSessionInterface

    from polis_like.storage.db import now_ms

    moderator = _account_id(client, staff, "moderator-1")
    serializer = SecureCookieSessionInterface().get_signing_serializer(app)
    hour = 3_600_000

    def cookie(since: object) -> str:
        return serializer.dumps({"account": moderator, "epoch": 0, "since": since})

    assert _with_cookie(app, cookie(now_ms() - 11 * hour)).get(f"{API}/session").status_code == 200
    assert _with_cookie(app, cookie(now_ms() - 13 * hour)).get(f"{API}/session").status_code == 401
    assert _with_cookie(app, cookie("yesterday")).get(f"{API}/session").status_code == 401
    app.config["STAFF_SESSION_HOURS"] = 14
    assert _with_cookie(app, cookie(now_ms() - 13 * hour)).get(f"{API}/session").status_code == 200


# -- behind a reverse proxy ---------------------------------------------------------------------


@pytest.fixture
def proxied(database_url):
    """``proxied(hops)``: an app on the test database trusting ``hops`` reverse proxies, with a
    route that tells the client's address as the app sees it."""
    from flask import request

    from server.app import create_app

    made = []

    def make(hops: int):
        app = create_app(
            {
                "DATABASE_URL": database_url,
                "SECRET_KEY": "test-secret",
                "TESTING": True,
                "PROXY_HOPS": hops,
            }
        )
        app.add_url_rule("/test-remote-addr", "remote", lambda: request.remote_addr or "")
        made.append(app)
        return app.test_client()

    yield make
    for app in made:
        app.extensions["polis_like.engine"].dispose()


def _signed_in_cookie_header(browser, **headers) -> str:
    response = browser.post(
        f"{API}/session", json={"name": "admin-1", "password": "password-1"}, headers=headers
    )
    assert response.status_code == 200
    return response.headers["Set-Cookie"]


def test_behind_one_proxy_an_https_request_gets_a_secure_cross_site_cookie(proxied, staff):
    https = {"X-Forwarded-Proto": "https"}
    browser = proxied(1)
    cid = browser.post(
        f"{API}/conversations",
        headers=staff["admin"],
        json={"topic": "t", "seed_statements": ["a"]},
    ).json["id"]
    # A participant's cookie works in a page embedded on another site.
    visitor = browser.get(f"{API}/conversations/{cid}/next", headers=https).headers["Set-Cookie"]
    assert "; Secure" in visitor and "SameSite=None" in visitor and "HttpOnly" in visitor
    # A staff sign-in is Secure but never goes with another site's request (the import route
    # takes multipart bodies, which a form on another site can send).
    staff_cookie = _signed_in_cookie_header(browser, **https)
    assert "; Secure" in staff_cookie and "SameSite=Lax" in staff_cookie
    assert browser.get(f"{API}/session", headers=https).status_code == 200
    plain = proxied(1).get(f"{API}/conversations/{cid}/next", headers={"X-Forwarded-Proto": "http"})
    assert "Secure" not in plain.headers["Set-Cookie"]
    assert "SameSite=Lax" in plain.headers["Set-Cookie"]
    # Without a trusted proxy the header is anybody's: ignored.
    ignored = proxied(0).get(f"{API}/conversations/{cid}/next", headers=https)
    assert "Secure" not in ignored.headers["Set-Cookie"]
    assert "SameSite=Lax" in ignored.headers["Set-Cookie"]
    assert "Secure" not in _signed_in_cookie_header(proxied(0), **https)


def test_x_forwarded_for_names_the_client_only_behind_a_trusted_proxy(proxied):
    forwarded = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}
    # One proxy: its own entry (the last) is the client; the earlier one could be forged.
    assert proxied(1).get("/test-remote-addr", headers=forwarded).text == "203.0.113.7"
    assert proxied(2).get("/test-remote-addr", headers=forwarded).text == "198.51.100.9"
    assert proxied(0).get("/test-remote-addr", headers=forwarded).text == "127.0.0.1"
