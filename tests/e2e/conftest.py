"""Fixtures: a keyless server, an OpenID Provider, SAML IdPs, and clients.

One keyless server and one provider serve the whole session, so tests use
fresh bucket names, subjects and policy names to stay independent. Tests
that need their own server flags start a server of their own.
"""

import secrets

import pytest

from idp import OidcProvider
from keyless_client import Api, empty_and_delete_bucket, s3_client, unique_name
from processes import KeylessServer
from saml_idps import PysamlIdp, SamlifyIdp, SimpleSamlPhp

# Clients registered with the session provider; client_credentials tokens
# have `sub` = client id.
OIDC_CLIENTS = {
    "keyless-e2e": "keyless-e2e-secret",
    "workload-b": "workload-b-secret",
}


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("keyless-e2e")


@pytest.fixture(scope="session")
def keyless(work_dir):
    server = KeylessServer(work_dir / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def api(keyless):
    return Api(keyless.api_url, keyless.admin_token)


@pytest.fixture(scope="session")
def admin_key(api):
    """A permanent static key for `user/admin`."""
    return api.create_static_key(0)


@pytest.fixture(scope="session")
def s3(keyless, admin_key):
    """A boto3 S3 client acting as `user/admin`."""
    return s3_client(keyless.s3_url, admin_key["accessKeyId"], admin_key["secretKey"])


@pytest.fixture
def bucket(s3):
    """A fresh empty bucket, deleted with its contents afterwards."""
    name = unique_name()
    s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete_bucket(s3, name)


@pytest.fixture(scope="session")
def oidc(work_dir):
    """An RS256 oidc-provider shared by the session."""
    provider = OidcProvider(work_dir, clients=OIDC_CLIENTS).start()
    yield provider
    provider.stop()


@pytest.fixture
def own_oidc(tmp_path):
    """A fresh RS256 oidc-provider with its own issuer, for one test."""
    provider = OidcProvider(tmp_path).start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def oidc_config(api, oidc):
    """A WIF configuration of org `default` that trusts the session provider."""
    return api.create_oidc_config(oidc.issuer, name="session-idp")


@pytest.fixture
def subject():
    """A fresh token subject, so policies of other tests never match it."""
    return f"system:serviceaccount:e2e:sa-{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def simplesamlphp(work_dir):
    """A SimpleSAMLphp IdP shared by the session; tests register their SPs with it."""
    idp = SimpleSamlPhp(work_dir).start()
    yield idp
    idp.stop()


@pytest.fixture
def own_simplesamlphp(tmp_path):
    """A fresh SimpleSAMLphp IdP with its own entity id and key, for one test."""
    idp = SimpleSamlPhp(tmp_path).start()
    yield idp
    idp.stop()


@pytest.fixture(scope="session")
def pysaml2_idp(work_dir):
    """A pysaml2 IdP (in this process) shared by the session."""
    return PysamlIdp(work_dir)


@pytest.fixture(scope="session")
def samlify_idp(work_dir):
    """A samlify IdP that signs responses built from chosen values."""
    return SamlifyIdp(work_dir)
