"""OpenID Connect sign-in (services/support/web/oidc.py) against our fake provider
(devtools/fakes/oidc.py, in-process): PKCE, the id token's signature, issuer, audience,
expiry and nonce, and the role mapping; each wrong answer is refused with what was wrong.
The callback's state checks and the session are in tests/integration/test_support_oidc.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from devtools.fakes.oidc import FakeOidcProvider, FakeUser
from services.support.settings import SupportSettings
from services.support.web.oidc import OidcClient, OidcRefused, Started

ROLES = {"kortflyt-viewers": "viewer", "kortflyt-operators": "operator", "sup": "supervisor"}


@pytest.fixture
async def idp() -> AsyncIterator[FakeOidcProvider]:
    async with FakeOidcProvider() as provider:
        yield provider


def client_of(idp: FakeOidcProvider, **overrides: object) -> OidcClient:
    fields: dict[str, object] = {
        "support_oidc_issuer": idp.issuer,
        "support_oidc_client_id": idp.client_id,
        "support_oidc_client_secret": idp.client_secret,
        "support_public_url": "https://support.example",
        "support_oidc_role_map": ROLES,
    }
    settings = SupportSettings(**(fields | overrides))  # type: ignore[arg-type]
    return OidcClient(settings)


async def authorize(started: Started) -> dict[str, str]:
    """What the browser does at the issuer: follow the authorize URL to the callback."""
    async with httpx.AsyncClient() as browser:
        r = await browser.get(started.url)
    assert r.status_code == 302
    location = urlsplit(r.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        "https://support.example/login/oidc/callback"
    )
    return {k: v[0] for k, v in parse_qs(location.query).items()}


async def sign_in(client: OidcClient, verifier: str | None = None) -> object:
    started = await client.begin()
    back = await authorize(started)
    assert back["state"] == started.state
    return await client.finish(back["code"], verifier or started.code_verifier, started.nonce)


async def refusal(client: OidcClient, verifier: str | None = None) -> OidcRefused:
    with pytest.raises(OidcRefused) as caught:
        await sign_in(client, verifier)
    return caught.value


async def test_the_request_carries_pkce_s256_state_and_nonce(idp: FakeOidcProvider) -> None:
    started = await client_of(idp).begin()
    query = parse_qs(urlsplit(started.url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [started.state] and query["nonce"] == [started.nonce]
    assert started.code_verifier not in started.url  # only its S256 travels
    assert len({started.state, started.nonce, started.code_verifier}) == 3


async def test_a_good_sign_in_names_the_user_and_maps_the_highest_role(
    idp: FakeOidcProvider,
) -> None:
    idp.user = FakeUser("sub-42", "kari.support", ["kortflyt-viewers", "kortflyt-operators"])
    who = await sign_in(client_of(idp))
    assert (who.subject, who.name, who.role) == (f"{idp.issuer} sub-42", "kari.support", "operator")  # type: ignore[attr-defined]


async def test_a_user_without_a_mapped_role_is_refused(idp: FakeOidcProvider) -> None:
    idp.user = FakeUser("sub-7", "ola", ["everyone", "finance"])
    assert (await refusal(client_of(idp))).problem == "role"


async def test_a_user_name_that_is_no_staff_id_falls_back_to_the_subject(
    idp: FakeOidcProvider,
) -> None:
    idp.user = FakeUser("sub-8", "Ola Nordmann", ["sup"])
    who = await sign_in(client_of(idp))
    assert (who.name, who.role) == ("sub-8", "supervisor")  # type: ignore[attr-defined]


async def test_neither_a_valid_user_name_nor_subject_is_refused(idp: FakeOidcProvider) -> None:
    idp.user = FakeUser("sub with spaces", "Ola Nordmann", ["sup"])
    assert (await refusal(client_of(idp))).problem == "name"


async def test_a_pkce_verifier_that_does_not_match_is_refused_by_the_token_endpoint(
    idp: FakeOidcProvider,
) -> None:
    assert (await refusal(client_of(idp), verifier="x" * 64)).problem == "token"
    assert idp.refused == ["PKCE verifier does not match the challenge"]


async def test_a_wrong_client_secret_is_refused(idp: FakeOidcProvider) -> None:
    client = client_of(idp, support_oidc_client_secret="guessed")  # noqa: S106 - a wrong one
    assert (await refusal(client)).problem == "token"
    assert idp.refused == ["client authentication failed"]


@pytest.mark.parametrize(
    ("fault", "problem", "said"),
    [
        ("wrong_nonce", "nonce", "nonce"),
        ("expired", "token", "expired"),
        ("wrong_audience", "token", "aud"),
        ("wrong_issuer", "token", "iss"),
        ("bad_signature", "token", "signature"),
        ("token_error", "token", "500"),
    ],
)
async def test_a_bad_id_token_is_refused_and_says_why(
    idp: FakeOidcProvider, fault: str, problem: str, said: str
) -> None:
    idp.add_fault(fault)
    refused = await refusal(client_of(idp))
    assert refused.problem == problem
    assert said in str(refused)
    assert (await sign_in(client_of(idp))).role == "operator"  # type: ignore[attr-defined]  # a fault is once


async def test_an_unreachable_issuer_is_unavailable_not_a_crash() -> None:
    settings = SupportSettings(support_oidc_issuer="http://127.0.0.1:9", support_oidc_client_id="c")
    with pytest.raises(OidcRefused) as caught:
        await OidcClient(settings).begin()
    assert caught.value.problem == "unavailable"
