"""The verifier: key sources, JWKS caching and refetching, the verified-token cache, Auth."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

import actas
from actas._jws import Algorithm, PrivateKey, encode_compact, public_jwk
from tests.sdk.tokens import APP, ISSUER, KEY, KID, NOW, at_now, claims, offline_verifier, sign


class JwksServer:
    """An in-memory JWKS endpoint (httpx.MockTransport) that counts its requests."""

    def __init__(self, *keys: tuple[str, PrivateKey, Algorithm]) -> None:
        self.keys = list(keys)
        self.requests = 0
        self.fail = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.fail:
            return httpx.Response(503)
        return httpx.Response(200, json={"keys": [public_jwk(k.public_key(), kid=kid, alg=alg)
                                                  for kid, k, alg in self.keys]})

    def verifier(self, **options: Any) -> actas.Verifier:
        client = httpx.Client(transport=httpx.MockTransport(self.handler))
        options.setdefault("now", at_now)
        return actas.Verifier(issuer=ISSUER, jwks_url="https://actas.test/.well-known/jwks.json",
                              http_client=client, **options)


def test_jwks_is_fetched_once_and_cached() -> None:
    server = JwksServer((KID, KEY, "RS256"))
    verifier = server.verifier(cache_size=0)
    for _ in range(5):
        assert verifier.verify(sign()).user_id == "user_1"
    assert server.requests == 1


def test_a_flood_of_unknown_kids_refetches_at_most_once_per_interval() -> None:
    server = JwksServer((KID, KEY, "RS256"))
    verifier = server.verifier(jwks_refetch_interval=3600)
    verifier.verify(sign())
    for i in range(200):
        token = sign(header={"kid": f"bogus-{i}", "typ": "JWT"})
        assert verifier.authenticate(token).signed_out_reason == "unknown_key"
    assert server.requests == 1  # the first fetch only: still inside the interval


def test_key_rotation_is_picked_up_by_an_unknown_kid_refetch() -> None:
    monotonic = [0.0]
    server = JwksServer((KID, KEY, "RS256"))
    client = httpx.Client(transport=httpx.MockTransport(server.handler))
    verifier = actas.Verifier(issuer=ISSUER, jwks_url="https://actas.test/jwks",
                              http_client=client, jwks_refetch_interval=60, now=at_now)
    verifier.keys._monotonic = lambda: monotonic[0]  # injected clock for the refetch throttle
    verifier.verify(sign())
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server.keys.append(("ins_key_new", new_key, "RS256"))
    rotated = encode_compact({"kid": "ins_key_new", "typ": "JWT"}, claims(), new_key, "RS256")

    monotonic[0] = 30.0
    assert verifier.authenticate(rotated).signed_out_reason == "unknown_key"  # throttled
    monotonic[0] = 61.0
    assert verifier.verify(rotated).user_id == "user_1"
    assert server.requests == 2


def test_a_failing_jwks_endpoint_gives_unknown_key_not_an_exception() -> None:
    server = JwksServer((KID, KEY, "RS256"))
    server.fail = True
    verifier = server.verifier()
    assert verifier.authenticate(sign()).signed_out_reason == "unknown_key"


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_every_algorithm_verifies_offline_from_pem(alg: Algorithm) -> None:
    key: PrivateKey = {"RS256": lambda: rsa.generate_private_key(public_exponent=65537,
                                                                key_size=2048),
                       "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
                       "EdDSA": ed25519.Ed25519PrivateKey.generate}[alg]()
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    verifier = actas.Verifier(issuer=ISSUER, pem=pem, now=at_now)
    token = encode_compact({"kid": "whatever", "typ": "JWT"}, claims(), key, alg)
    assert verifier.verify(token).user_id == "user_1"
    other_alg = "RS256" if alg != "RS256" else "ES256"
    forged = encode_compact({"typ": "JWT"}, claims(), KEY if alg != "RS256" else
                            ec.generate_private_key(ec.SECP256R1()), other_alg)
    assert verifier.authenticate(forged).signed_out_reason == "bad_signature"


def test_exactly_one_key_source() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        actas.Verifier(issuer=ISSUER)
    with pytest.raises(ValueError, match="exactly one"):
        actas.Verifier(issuer=ISSUER, jwks={"keys": []}, jwks_url="https://x")


def test_cached_tokens_still_expire_on_time() -> None:
    now = [float(NOW)]
    verifier = offline_verifier(now=lambda: now[0])
    token = sign()
    verifier.verify(token)
    second = verifier.verify(token)  # admitted to the cache on its second sighting
    assert verifier.verify(token) is second  # from the cache
    now[0] = NOW + 65
    assert verifier.authenticate(token).signed_out_reason == "expired"


def test_cache_skips_the_signature_check_for_a_repeated_token() -> None:
    from actas._token_cache import TokenCache

    verifier = offline_verifier(cache_size=2)
    calls: list[str] = []

    def counting(token: str) -> actas.Auth:
        calls.append(token)
        return verifier._verify(token)

    verifier._check = TokenCache(counting, maxsize=2)
    a, b, c = (sign(claims(jti=f"jti_{i}")) for i in range(3))
    for token in [a, a, a, a, b, b, c, c, b]:
        verifier.verify(token)
    # a: verified twice (admitted on the second sighting), then hits. b, c: the same;
    # admitting c evicts a (least recently used), and b stays a hit.
    assert calls == [a, a, b, b, c, c]
    verifier.verify(a)
    assert calls[-1] == a


def test_the_cache_is_bounded() -> None:
    from actas._token_cache import TokenCache

    cache: TokenCache[str] = TokenCache(lambda token: token.upper(), maxsize=3)
    for i in range(100):
        for _ in range(2):
            assert cache(f"t{i}") == f"T{i}"
    assert len(cache) == 3
    for i in range(10_000):
        cache(f"once-{i}")  # one-hit tokens never enter, and the doorkeeper stays bounded
    assert len(cache) == 3 and len(cache._seen_once) <= 3


def test_failures_are_not_cached() -> None:
    verifier = offline_verifier()
    bad = sign(claims(iss="https://evil.example"))
    assert verifier.authenticate(bad).signed_out_reason == "wrong_issuer"
    assert verifier.authenticate(bad).signed_out_reason == "wrong_issuer"


def test_nested_actor_chain_outermost_is_current() -> None:
    verifier = offline_verifier()
    act = {"sub": "op_bob", "iss": ISSUER, "sid": "act_2",
           "act": {"sub": "op_alice", "sid": "act_1"}}
    auth = verifier.verify(sign(claims(act=act)))
    assert auth.is_impersonated and auth.actor is not None
    assert (auth.actor.sub, auth.actor.iss, auth.actor.sid) == ("op_bob", ISSUER, "act_2")
    assert [a.sub for a in auth.actor.chain] == ["op_alice"]
    assert auth.actor.claims == act


def test_auth_repr_never_shows_the_token() -> None:
    verifier = offline_verifier()
    token = sign()
    assert token not in repr(verifier.verify(token))


def _environ(token: str, where: str) -> dict[str, str]:
    if where == "header":
        return {"REQUEST_METHOD": "GET", "HTTP_AUTHORIZATION": f"Bearer {token}"}
    return {"REQUEST_METHOD": "GET", "HTTP_COOKIE": f"theme=dark; __session={token}; x=1"}


def _scope(token: str, where: str) -> dict[str, Any]:
    header = (b"authorization", f"Bearer {token}".encode()) if where == "header" else \
        (b"cookie", f"a=b; __session={token}".encode())
    return {"type": "http", "headers": [(b"host", b"app"), header]}


class _Headers(dict[str, str]):
    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


class _RequestObject:
    def __init__(self, token: str, where: str) -> None:
        self.headers = _Headers({"authorization": f"Bearer {token}"} if where == "header"
                                else {})
        self.cookies = {"__session": token} if where == "cookie" else {}


@pytest.mark.parametrize("where", ["header", "cookie"])
@pytest.mark.parametrize("shape", [_environ, _scope, _RequestObject])
def test_authenticate_request_reads_every_request_shape(shape: Any, where: str) -> None:
    verifier = offline_verifier(authorized_parties=[APP])
    auth = actas.authenticate_request(shape(sign(), where), verifier=verifier)
    assert auth.user_id == "user_1" and auth.session_id == "sess_1"


def test_bearer_wins_over_the_cookie() -> None:
    verifier = offline_verifier()
    environ = {"HTTP_AUTHORIZATION": f"Bearer {sign(claims(sub='user_header'))}",
               "HTTP_COOKIE": f"__session={sign(claims(sub='user_cookie'))}"}
    assert actas.authenticate_request(environ, verifier=verifier).user_id == "user_header"
    assert actas.authenticate_request({}, verifier=verifier).signed_out_reason == "missing"


# How an Authorization header is read, the same whatever shape the request has: the
# scheme in the three spellings clients send, spaces around the token tolerated, any
# other scheme (or none) leaving the cookie to speak.
AUTHORIZATIONS = {
    "Bearer {t}": "user_header", "bearer {t}": "user_header", "BEARER {t}": "user_header",
    "Bearer   {t}  ": "user_header", "Bearer \t{t}": "user_header",
    "Basic {t}": "user_cookie", "Bearer ": "user_cookie", "Bearer": "user_cookie",
    "{t}": "user_cookie", "Token {t}": "user_cookie",
}


@pytest.mark.parametrize(("value", "who"), list(AUTHORIZATIONS.items()),
                         ids=list(AUTHORIZATIONS))
def test_the_authorization_header_is_read_alike_in_every_shape(value: str, who: str) -> None:
    verifier = offline_verifier()
    header = value.format(t=sign(claims(sub="user_header")))
    cookie = f"__session={sign(claims(sub='user_cookie'))}"
    environ = {"HTTP_AUTHORIZATION": header, "HTTP_COOKIE": cookie}
    scope = {"type": "http", "headers": [(b"authorization", header.encode("latin-1")),
                                         (b"cookie", cookie.encode())]}
    assert actas.authenticate_request(environ, verifier=verifier).user_id == who
    assert actas.authenticate_request(scope, verifier=verifier).user_id == who


def test_log_records_name_the_impersonator(caplog: pytest.LogCaptureFixture) -> None:
    verifier = offline_verifier()
    auth = verifier.verify(sign(claims(act={"sub": "op_alice"})))
    log = logging.getLogger("tests.sdk.app")
    caplog.handler.addFilter(actas.AuthLogFilter())
    with caplog.at_level(logging.INFO, logger="tests.sdk.app"):
        with actas.bind_auth(auth):
            log.info("refund issued")
        log.info("after the request")
    inside, after = caplog.records
    assert (inside.user_id, inside.actor_sub) == ("user_1", "op_alice")  # type: ignore[attr-defined]
    assert (after.user_id, after.actor_sub) == (None, None)  # type: ignore[attr-defined]


def test_claims_are_the_verified_payload() -> None:
    verifier = offline_verifier()
    token = sign()
    payload = json.loads(__import__("base64").urlsafe_b64decode(token.split(".")[1] + "=="))
    auth = verifier.verify(token)
    assert dict(auth.claims) == payload and auth.token == token
    assert auth.expires_at == payload["exp"]
    assert auth.expires_at == NOW + 60


def test_keys_are_never_fetched_on_a_running_event_loop() -> None:
    import asyncio

    from actas._jwks import FetchWouldBlock

    server = JwksServer((KID, KEY, "RS256"))
    verifier = server.verifier()

    async def on_the_loop() -> None:
        with pytest.raises(FetchWouldBlock):
            verifier.authenticate(sign())

    asyncio.run(on_the_loop())
    assert server.requests == 0
    assert verifier.verify(sign()).user_id == "user_1"  # off the loop it fetches


def test_the_asgi_middleware_fetches_keys_off_the_loop() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from actas.integrations.starlette import AuthMiddleware

    server = JwksServer((KID, KEY, "RS256"))

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"user_id": request.auth.user_id})

    app = Starlette(routes=[Route("/", whoami)])
    app.add_middleware(AuthMiddleware, verifier=server.verifier())
    with TestClient(app) as client:
        response = client.get("/", headers={"Authorization": f"Bearer {sign()}"})
    assert response.json() == {"user_id": "user_1"} and server.requests == 1
