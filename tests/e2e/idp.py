"""Run the test OpenID Provider (tests/idp/oidc_provider.js) and get tokens from it.

Real tokens come from the provider's token endpoint. Crafted tokens (expired,
`alg: none`, HMAC) are signed here, some with the provider's own private key,
so that only the property under test is wrong.
"""

import base64
import hashlib
import hmac
import json
import secrets
import selectors
import subprocess
import time
import urllib.parse

import jwt
import requests

from processes import TESTS_DIR, log_tail, stop_process

PROVIDER_SCRIPT = TESTS_DIR / "idp" / "oidc_provider.js"
READY_TIMEOUT_SECONDS = 20
REDIRECT_URI = "http://127.0.0.1/callback"
DEFAULT_CLIENT_ID = "keyless-e2e"
DEFAULT_CLIENT_SECRET = "keyless-e2e-secret"


def resource_for(audience):
    """Return the resource indicator whose JWT access tokens carry `audience` as `aud`.

    Resource indicators must be absolute URIs, so the provider maps
    `urn:audience:<name>` to the plain audience `<name>`.
    """
    if "://" in audience:
        return audience
    return f"urn:audience:{audience}"


def read_ready_line(process):
    """Return the JSON line a test server prints once listening, or None if it
    exits or stays silent for READY_TIMEOUT_SECONDS."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if selector.select(timeout=0.2):
            line = process.stdout.readline()
            if line:
                return json.loads(line)
        if process.poll() is not None:
            break
    return None


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode_segment(segment):
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def jwt_header(token):
    return decode_segment(token.split(".")[0])


def jwt_claims(token):
    return decode_segment(token.split(".")[1])


class OidcProvider:
    """A running oidc-provider process and the clients registered with it."""

    def __init__(self, work_dir, alg="RS256", clients=None, ttl_seconds=600):
        self.work_dir = work_dir
        self.alg = alg
        self.clients = clients or {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET}
        self.ttl_seconds = ttl_seconds
        self.key_path = work_dir / f"oidc-{alg.lower()}-key.json"
        self.claims_path = work_dir / f"oidc-{alg.lower()}-claims.json"
        self.log_path = work_dir / f"oidc-{alg.lower()}.log"
        self.process = None
        self.issuer = None
        self.kid = None

    def start(self):
        command = [
            "node",
            str(PROVIDER_SCRIPT),
            "--port",
            "0",
            "--alg",
            self.alg,
            "--ttl",
            str(self.ttl_seconds),
            "--key-out",
            str(self.key_path),
            "--claims",
            str(self.claims_path),
        ]
        for client_id, secret in self.clients.items():
            command += ["--client", f"{client_id}:{secret}"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, cwd=TESTS_DIR
            )
        ready = self._read_ready_line()
        self.issuer = ready["issuer"]
        self.kid = ready["kid"]
        return self

    def _read_ready_line(self):
        ready = read_ready_line(self.process)
        if ready is None:
            self.stop()
            raise RuntimeError(
                f"oidc-provider did not print its ready line within {READY_TIMEOUT_SECONDS} s; "
                f"log {self.log_path}:\n{log_tail(self.log_path)}"
            )
        return ready

    def stop(self):
        if self.process is not None:
            stop_process(self.process)
            self.process.stdout.close()

    def set_extra_claims(self, subject, claims):
        """Add `claims` to every token issued to `subject` from now on."""
        extra = json.loads(self.claims_path.read_text()) if self.claims_path.exists() else {}
        extra[subject] = claims
        self.claims_path.write_text(json.dumps(extra))

    def client_credentials_token(self, client_id=DEFAULT_CLIENT_ID, audience="keyless"):
        """Return a JWT access token whose `sub` is `client_id`."""
        response = requests.post(
            f"{self.issuer}/token",
            auth=(client_id, self.clients[client_id]),
            data={"grant_type": "client_credentials", "resource": resource_for(audience)},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def tokens_for_subject(self, subject, audience="keyless", client_id=DEFAULT_CLIENT_ID):
        """Run the authorization code flow with `login_hint=subject`.

        Returns the token endpoint's JSON: `access_token` is a JWT with
        `aud` = `audience`, and `id_token` has `aud` = the client id. Both have
        `sub` = `subject`.
        """
        verifier = secrets.token_urlsafe(48)
        challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        query = {
            "client_id": client_id,
            "response_type": "code",
            "scope": "openid api",
            "redirect_uri": REDIRECT_URI,
            "login_hint": subject,
            "resource": resource_for(audience),
            "state": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        url = f"{self.issuer}/auth?{urllib.parse.urlencode(query)}"
        browser = requests.Session()
        for _ in range(10):
            response = browser.get(url, allow_redirects=False, timeout=10)
            assert response.status_code in (302, 303), response.text
            url = urllib.parse.urljoin(url, response.headers["location"])
            if url.startswith(REDIRECT_URI):
                break
        redirect_query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        assert "code" in redirect_query, f"authorization failed: {url}"

        response = requests.post(
            f"{self.issuer}/token",
            auth=(client_id, self.clients[client_id]),
            data={
                "grant_type": "authorization_code",
                "code": redirect_query["code"][0],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "resource": resource_for(audience),
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()

    def token_for_subject(self, subject, audience="keyless"):
        """Return a JWT access token with the given `sub` and `aud`."""
        return self.tokens_for_subject(subject, audience)["access_token"]

    def private_jwk(self):
        return json.loads(self.key_path.read_text())["keys"][0]

    def sign(self, claims, headers=None):
        """Sign `claims` with the provider's own key, as the provider would."""
        jwk = self.private_jwk()
        key = jwt.PyJWK(jwk).key
        header = {"kid": jwk["kid"], **(headers or {})}
        return jwt.encode(claims, key, algorithm=jwk["alg"], headers=header)

    def claims(self, subject, audience="keyless", lifetime_seconds=300, issued_ago_seconds=0):
        """Return a claim set like the provider's access tokens, with chosen times."""
        now = int(time.time()) - issued_ago_seconds
        return {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime_seconds,
            "jti": secrets.token_urlsafe(12),
        }

    def public_key_pem(self):
        """Return the provider's public signing key as PEM, as a key confusion attacker would."""
        from cryptography.hazmat.primitives import serialization

        public_key = jwt.PyJWK(self.private_jwk()).key.public_key()
        return public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def unsigned_token(claims, kid=None, signature=""):
    """Return a JWS with `alg: none` and the given signature part (empty by default)."""
    header = {"alg": "none", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    encoded_header = b64url(json.dumps(header).encode())
    return ".".join([encoded_header, b64url(json.dumps(claims).encode()), signature])


def hmac_token(claims, secret, kid=None):
    """Return an HS256 JWS keyed with `secret` (any bytes, even a public key PEM)."""
    header = {"alg": "HS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    signing_input = ".".join(
        [b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode())]
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def with_changed_claims(token, **changes):
    """Return the token with some claims changed and the original signature kept."""
    header, _payload, signature = token.split(".")
    claims = {**jwt_claims(token), **changes}
    return ".".join([header, b64url(json.dumps(claims).encode()), signature])


def flip_payload_character(token):
    """Return the token with one base64 character of the payload replaced."""
    header, payload, signature = token.split(".")
    middle = len(payload) // 2
    replacement = "A" if payload[middle] != "A" else "B"
    return ".".join([header, payload[:middle] + replacement + payload[middle + 1 :], signature])


MOCK_ISSUER_SCRIPT = TESTS_DIR / "e2e" / "mock_issuer.mjs"


class MockIssuer:
    """A running oauth2-mock-server (tests/e2e/mock_issuer.mjs).

    Its tokens are real JWS signed by the server's own key, whose JWKS it
    publishes, with whatever claims a test requests. That makes it the
    source of well-signed tokens with bad or unusual claims.
    """

    def __init__(self, work_dir, alg="RS256"):
        self.alg = alg
        self.log_path = work_dir / f"mock-issuer-{alg.lower()}-{secrets.token_hex(3)}.log"
        self.process = None
        self.issuer = None
        self.kid = None

    def start(self):
        command = ["node", str(MOCK_ISSUER_SCRIPT), "--port", "0", "--alg", self.alg]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, cwd=TESTS_DIR
            )
        ready = read_ready_line(self.process)
        if ready is None:
            self.stop()
            raise RuntimeError(
                f"oauth2-mock-server did not print its ready line within "
                f"{READY_TIMEOUT_SECONDS} s; log {self.log_path}:\n{log_tail(self.log_path)}"
            )
        self.issuer = ready["issuer"]
        self.kid = ready["kid"]
        return self

    def stop(self):
        if self.process is not None:
            stop_process(self.process)
            self.process.stdout.close()

    def token(self, **claims):
        """Return a token signed by the issuer with `claims` set over its defaults.

        The defaults are `iss`, `iat` (now), `nbf` (now - 10 s) and `exp`
        (now + 1 h). A claim given as None is removed from the token.
        """
        response = requests.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials", "claims": json.dumps(claims)},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def jwks(self):
        """Return the issuer's public JWK set, as keyless fetches it."""
        response = requests.get(f"{self.issuer}/jwks", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def rotate_key(self):
        """Replace the signing key; the JWKS then lists only the new key. Returns its kid."""
        response = requests.post(f"{self.issuer}/_test/rotate", timeout=10)
        assert response.status_code == 200, response.text
        self.kid = response.json()["kid"]
        return self.kid

    def key_set_requests(self):
        """Return how many times the key set has been fetched from this issuer."""
        response = requests.get(f"{self.issuer}/_test/stats", timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["jwksRequests"]
