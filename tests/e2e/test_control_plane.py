"""Control-plane API: access keys, org policies, WIF configurations."""

import secrets
import stat

import pytest

from keyless_client import (
    Api,
    exchange_statement,
    items_of,
    policy_names,
    role_principal,
    s3_client,
    s3_error_code,
    wait_for,
)

REVOCATION_SECONDS = 5


def key_ids(body):
    return [item["accessKeyId"] for item in items_of(body)]


def test_first_start_writes_private_admin_token(keyless):
    token_file = keyless.data_dir / "admin-token"

    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert keyless.admin_token


def test_healthz_and_metrics(keyless, api):
    assert api.request("GET", "/healthz", token="").status_code == 200

    metrics = api.request("GET", "/metrics", token="")
    assert metrics.status_code == 200
    assert "# TYPE" in metrics.text


# Static access keys


def test_static_key_create_list_get(api):
    created = api.create_static_key(3600)

    assert created["principalName"] == "user/admin"
    assert created["secretKey"]

    listed = api.call("GET", "/v1/cwobject/access-key?limit=1000")
    assert created["accessKeyId"] in key_ids(listed)
    assert created["secretKey"] not in str(listed)
    assert all("secretKey" not in item for item in items_of(listed))

    info = api.call("GET", f"/v1/cwobject/access-key/{created['accessKeyId']}")
    assert info["accessKeyId"] == created["accessKeyId"]
    assert info["principalName"] == "user/admin"
    assert "ACTIVE" in info["status"].upper()
    assert created["secretKey"] not in str(info)


def test_static_key_list_limit(api):
    api.create_static_key(3600)
    api.create_static_key(3600)

    one = api.call("GET", "/v1/cwobject/access-key?limit=1")
    assert len(items_of(one)) == 1

    for bad_limit in (0, 1001):
        response = api.request("GET", f"/v1/cwobject/access-key?limit={bad_limit}")
        assert response.status_code == 400, response.text
        assert "limit" in response.text


def test_unknown_access_key_info_not_found(api):
    response = api.request("GET", "/v1/cwobject/access-key/AKNOSUCHKEY000000000")

    assert response.status_code == 404, response.text


def test_revoked_key_stops_working(keyless, api):
    created = api.create_static_key(0)
    client = s3_client(keyless.s3_url, created["accessKeyId"], created["secretKey"])
    client.list_buckets()

    api.call(
        "POST", "/v1/cwobject/revoke-access-key/access-key", {"accessKey": created["accessKeyId"]}
    )

    assert wait_for(lambda: s3_error_code(client.list_buckets), REVOCATION_SECONDS) == (
        "InvalidAccessKeyId"
    )
    info = api.call("GET", f"/v1/cwobject/access-key/{created['accessKeyId']}")
    assert "REVOKED" in info["status"].upper()


@pytest.fixture
def other_user(keyless, api):
    """A `user/<name>` with its own API token, allowed to create keys and list buckets."""
    name = f"ci-{secrets.token_hex(4)}"
    token = api.call("POST", "/v1/keyless/api-tokens", {"name": name})
    assert token["principalName"] == f"user/{name}"
    policy_name = f"user-{name}"
    api.put_org_policy(
        policy_name,
        [
            {
                "name": "keys-and-listing",
                "effect": "Allow",
                "actions": ["cwobject:CreateAccessKey", "s3:ListAllMyBuckets"],
                "resources": ["*"],
                "principals": [f"user/{name}"],
            }
        ],
    )
    yield Api(keyless.api_url, token["token"]), f"user/{name}"
    api.delete_org_policy(policy_name)
    api.call("DELETE", f"/v1/keyless/api-tokens/{token['id']}")


def test_suspend_and_reactivate_principal(keyless, api, other_user):
    user_api, principal = other_user
    created = user_api.create_static_key(0)
    assert created["principalName"] == principal
    client = s3_client(keyless.s3_url, created["accessKeyId"], created["secretKey"])
    client.list_buckets()

    api.call(
        "PUT",
        "/v1/cwobject/access-key-status",
        {"principalName": principal, "status": "ACCESS_KEY_STATUS_SUSPENDED"},
    )

    assert wait_for(lambda: s3_error_code(client.list_buckets), REVOCATION_SECONDS) == (
        "InvalidAccessKeyId"
    )

    api.call(
        "PUT",
        "/v1/cwobject/access-key-status",
        {"principalName": principal, "status": "ACCESS_KEY_STATUS_ACTIVE"},
    )
    assert wait_for(lambda: s3_error_code(client.list_buckets) is None, REVOCATION_SECONDS)


def test_revoke_all_keys_of_principal(keyless, api, s3, other_user):
    user_api, principal = other_user
    clients = []
    for _ in range(2):
        created = user_api.create_static_key(0)
        clients.append(s3_client(keyless.s3_url, created["accessKeyId"], created["secretKey"]))

    api.call("POST", "/v1/cwobject/revoke-access-key/principal", {"principalName": principal})

    for client in clients:
        code = wait_for(
            lambda client=client: s3_error_code(client.list_buckets), REVOCATION_SECONDS
        )
        assert code == "InvalidAccessKeyId"
    # Keys of other principals stay valid.
    assert s3_error_code(s3.list_buckets) is None


def test_revoked_api_token_rejected(keyless, api):
    token = api.call("POST", "/v1/keyless/api-tokens", {"name": f"gone-{secrets.token_hex(4)}"})
    listed = api.call("GET", "/v1/keyless/api-tokens")
    assert token["id"] in [item["id"] for item in items_of(listed)]
    assert token["token"] not in str(listed)

    api.call("DELETE", f"/v1/keyless/api-tokens/{token['id']}")

    response = api.request("GET", "/v1/cwobject/access-key", token=token["token"])
    assert response.status_code == 401, response.text


# Org access policies


def test_org_policy_create_list_delete(api):
    name = f"p-{secrets.token_hex(4)}"
    statement = {
        "name": "read",
        "effect": "Allow",
        "actions": ["s3:GetObject"],
        "resources": ["somebucket/*"],
        "principals": ["user/nobody"],
    }

    api.put_org_policy(name, [statement])
    assert name in policy_names(api.call("GET", "/v1/cwobject/access-policy"))

    statement["actions"] = ["s3:GetObject", "s3:ListBucket"]
    api.put_org_policy(name, [statement])
    listed = items_of(api.call("GET", "/v1/cwobject/access-policy"))
    stored = [
        item.get("policy", item) for item in listed if item.get("policy", item)["name"] == name
    ]
    assert len(stored) == 1
    assert stored[0]["statements"][0]["actions"] == ["s3:GetObject", "s3:ListBucket"]

    api.delete_org_policy(name)
    assert name not in policy_names(api.call("GET", "/v1/cwobject/access-policy"))
    response = api.request("DELETE", f"/v1/cwobject/access-policy/{name}")
    assert response.status_code == 404, response.text


def test_org_policy_deny_overrides_allow(keyless, api, other_user):
    user_api, principal = other_user
    created = user_api.create_static_key(0)
    client = s3_client(keyless.s3_url, created["accessKeyId"], created["secretKey"])
    client.list_buckets()
    name = f"deny-{secrets.token_hex(4)}"

    api.put_org_policy(
        name,
        [
            {
                "name": "no-listing",
                "effect": "Deny",
                "actions": ["s3:ListAllMyBuckets"],
                "resources": ["*"],
                "principals": [principal],
            }
        ],
    )
    try:
        code = wait_for(lambda: s3_error_code(client.list_buckets), REVOCATION_SECONDS)
        assert code == "AccessDenied"
    finally:
        api.delete_org_policy(name)


def test_can_i(api):
    allowed = api.call(
        "POST",
        "/v1/cwobject/auth/can-i",
        {"actions": ["s3:GetObject", "s3:PutObject"], "resources": ["any/thing"]},
    )

    assert allowed == {"verdict": True}


# WIF configurations


def test_wif_config_create_list_get_replace_delete(api):
    created = api.create_oidc_config(
        "http://127.0.0.1:1", name=f"cfg-{secrets.token_hex(4)}", description="unused issuer"
    )
    config_id = created["id"]
    assert created["active"] is True

    listed = api.call("GET", "/v1/keyless/wif/oidc")
    assert config_id in [item["id"] for item in items_of(listed)]

    fetched = api.call("GET", f"/v1/keyless/wif/oidc/{config_id}")
    assert fetched["issuerUrl"] == "http://127.0.0.1:1"
    assert fetched["audiences"] == ["keyless"]
    assert fetched["description"] == "unused issuer"

    read_only = ("id", "createdAt", "updatedAt")
    replacement = {name: value for name, value in fetched.items() if name not in read_only}
    replacement["audiences"] = ["keyless", "other"]
    api.call("PUT", f"/v1/keyless/wif/oidc/{config_id}", replacement)
    assert api.call("GET", f"/v1/keyless/wif/oidc/{config_id}")["audiences"] == ["keyless", "other"]

    api.call("DELETE", f"/v1/keyless/wif/oidc/{config_id}")
    assert api.request("GET", f"/v1/keyless/wif/oidc/{config_id}").status_code == 404
    listed = api.call("GET", "/v1/keyless/wif/oidc")
    assert config_id not in [item["id"] for item in items_of(listed)]


def test_wif_config_rejects_plain_http_issuer_off_loopback(api):
    response = api.request(
        "POST",
        "/v1/keyless/wif/oidc",
        json={
            "orgId": "default",
            "name": "insecure",
            "issuerUrl": "http://idp.example.com",
            "audiences": ["keyless"],
        },
    )

    assert response.status_code == 400, response.text
    assert "https" in response.text.lower()


def test_deactivated_wif_config_stops_exchange(api, own_oidc):
    provider = own_oidc
    subject = "system:serviceaccount:e2e:deactivated"
    config = api.create_oidc_config(provider.issuer)
    policy_name = f"exchange-{secrets.token_hex(4)}"
    api.put_org_policy(policy_name, [exchange_statement(role_principal(provider.issuer, subject))])
    try:
        token = provider.token_for_subject(subject)
        assert api.exchange_oidc(token).status_code == 200

        read_only = ("id", "createdAt", "updatedAt")
        replacement = {name: value for name, value in config.items() if name not in read_only}
        replacement["active"] = False
        api.call("PUT", f"/v1/keyless/wif/oidc/{config['id']}", replacement)

        assert wait_for(lambda: api.exchange_oidc(token).status_code != 200, REVOCATION_SECONDS)
        response = api.exchange_oidc(token)
        assert 400 <= response.status_code < 500, response.text
    finally:
        api.delete_org_policy(policy_name)
        api.call("DELETE", f"/v1/keyless/wif/oidc/{config['id']}")
