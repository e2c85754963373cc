"""Trading SAML responses from real IdPs for temporary S3 credentials.

SimpleSAMLphp and pysaml2 issue real responses, and samlify signs responses
that are wrong in exactly one property. Each exchange goes through the JSON
endpoint or STS AssumeRoleWithSAML, and the credentials are used with boto3.
"""

import base64
import datetime
import re
import secrets
import xml.etree.ElementTree as ElementTree

import boto3
import botocore
import botocore.exceptions
import pytest
import requests
from botocore.config import Config

from keyless_client import (
    REGION,
    Api,
    empty_and_delete_bucket,
    items_of,
    s3_client,
    s3_error_code,
    unique_name,
    wait_for,
)
from processes import KeylessServer
from saml_idps import (
    AWS_ROLE_ATTRIBUTE,
    BINDING_HTTP_POST,
    NAMESPACES,
    ROLE_ATTRIBUTE,
    RSA_SHA1,
    TEAM_ATTRIBUTE,
    PysamlIdp,
    check_response,
    decode_response,
    SamlifyIdp,
    make_signing_key,
)

ROLE = "DataScience"
PRINCIPAL = f"role/{ROLE}"
SAML_EXCHANGE_PATH = "/v1/cwobject/temporary-credentials/saml"


# --- helpers ----------------------------------------------------------------


def json_acs_url(server):
    """Return the default Recipient/Destination of the JSON exchange endpoint."""
    return f"{server.api_url}{SAML_EXCHANGE_PATH}"


def sts_acs_url(server):
    """Return the default Recipient/Destination of the STS endpoint."""
    return f"{server.api_url}/"


def sp_entity_id(org_id="default"):
    return f"urn:keyless:{org_id}"


def create_saml_config(api, name=None, org_id="default", **fields):
    body = {"orgId": org_id, "name": name or f"saml-{secrets.token_hex(4)}", **fields}
    return api.call("POST", "/v1/keyless/wif/saml", body)


def config_from_certificate(api, idp, **fields):
    """Create a configuration trusting `idp` by its entity id and certificate."""
    return create_saml_config(
        api, idpEntityId=idp.entity_id, certificates=[idp.signing_key.certificate_pem], **fields
    )


def exchange_saml(server, saml_response, org_id="default", duration_seconds=900, **extra):
    """POST a base64 SAMLResponse to the JSON exchange endpoint and return the raw response."""
    body = {"orgId": org_id, "samlResponse": saml_response, "durationSeconds": duration_seconds, **extra}
    return requests.post(f"{server.api_url}{SAML_EXCHANGE_PATH}", json=body, timeout=30)


def sts_client(server):
    """Return a boto3 STS client for keyless that sends unsigned requests, as AssumeRoleWithSAML is."""
    return boto3.client(
        "sts",
        endpoint_url=server.api_url,
        region_name=REGION,
        config=Config(signature_version=botocore.UNSIGNED, retries={"total_max_attempts": 1}),
    )


def role_arn(role=ROLE, org_id="default"):
    return f"arn:aws:iam::{org_id}:role/{role}"


def provider_arn(config, org_id="default"):
    return f"arn:aws:iam::{org_id}:saml-provider/{config['name']}"


def assume_role_with_saml(server, saml_response, config, role=ROLE, org_id="default"):
    return sts_client(server).assume_role_with_saml(
        RoleArn=role_arn(role, org_id),
        PrincipalArn=provider_arn(config, org_id),
        SAMLAssertion=saml_response,
        DurationSeconds=900,
    )


def sts_error_code(call, *args, **kwargs):
    """Run an STS call that must fail and return its error code and message."""
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"].get("Message", "")
    raise AssertionError(f"{call.__name__} succeeded but an STS error was expected")


def assert_rejected(response, *reason_words):
    """Check a 4xx status and that the body names the reason with one of `reason_words`."""
    assert 400 <= response.status_code < 500, f"{response.status_code} {response.text}"
    text = response.text.lower()
    assert any(word in text for word in reason_words), (
        f"expected one of {reason_words} in the reason: {response.text}"
    )


def audit_events_of(api, response):
    """Return the exchange audit events of the request that got `response`."""
    request_id = response.headers["x-amz-request-id"]

    def events():
        body = api.call("GET", "/v1/keyless/audit", params={"kind": "exchange", "requestId": request_id})
        return body["events"]

    return wait_for(events, timeout_seconds=5)


def seconds_until(rfc3339):
    expiry = datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    return (expiry - datetime.datetime.now(datetime.timezone.utc)).total_seconds()


def workload_s3(server, credentials):
    return s3_client(
        server.s3_url,
        credentials["accessKeyId"],
        credentials["secretKey"],
        credentials["sessionToken"],
    )


# --- fixtures ---------------------------------------------------------------


@pytest.fixture(scope="module")
def data_bucket(s3):
    """A bucket the role may read and write under `teams/${saml:team}/` only."""
    name = unique_name("saml")
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="teams/vision/keep.txt", Body=b"keep")
    yield name
    empty_and_delete_bucket(s3, name)


@pytest.fixture(scope="module")
def role_policy(api, data_bucket):
    """Lets role/DataScience exchange SAML responses and use its team's folder."""
    name = f"saml-{data_bucket}"
    api.put_org_policy(
        name,
        [
            {
                "name": "exchange",
                "effect": "Allow",
                "actions": ["cwobject:CreateAccessKeySAML"],
                "resources": ["*"],
                "principals": [PRINCIPAL],
            },
            {
                "name": "team-folder",
                "effect": "Allow",
                "actions": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"],
                "resources": [data_bucket, f"{data_bucket}/teams/${{saml:team}}/*"],
                "principals": [PRINCIPAL],
            },
        ],
    )
    yield name
    api.delete_org_policy(name)


@pytest.fixture(scope="module")
def simplesamlphp_config(keyless, api, simplesamlphp, role_policy):
    """keyless registered with SimpleSAMLphp, and a configuration trusting it by certificate."""
    simplesamlphp.register_sp(sp_entity_id(), [json_acs_url(keyless), sts_acs_url(keyless)])
    config = config_from_certificate(
        api, simplesamlphp, name="simplesamlphp", attributeMapping={"saml:team": TEAM_ATTRIBUTE}
    )
    yield config
    api.call("DELETE", f"/v1/keyless/wif/saml/{config['id']}")


@pytest.fixture(scope="module")
def pysaml2_config(api, pysaml2_idp, role_policy):
    config = config_from_certificate(
        api, pysaml2_idp, name="pysaml2", attributeMapping={"saml:team": TEAM_ATTRIBUTE}
    )
    yield config
    api.call("DELETE", f"/v1/keyless/wif/saml/{config['id']}")


@pytest.fixture(scope="module")
def samlify_config(api, samlify_idp, role_policy):
    config = config_from_certificate(api, samlify_idp, name="samlify")
    yield config
    api.call("DELETE", f"/v1/keyless/wif/saml/{config['id']}")


@pytest.fixture
def samlify_fields(keyless, samlify_idp, samlify_config):
    """The fields of a valid samlify response to the JSON exchange endpoint."""
    return samlify_idp.defaults(sp_entity_id(), json_acs_url(keyless), role=ROLE)


# --- configurations -----------------------------------------------------------


def test_saml_config_defaults(keyless, api, simplesamlphp_config):
    config = api.call("GET", f"/v1/keyless/wif/saml/{simplesamlphp_config['id']}")

    assert config["spEntityId"] == sp_entity_id()
    assert config["acsUrls"] == [json_acs_url(keyless), sts_acs_url(keyless)]
    assert config["roleAttribute"] == ROLE_ATTRIBUTE
    assert config["principalNameAttribute"] == "https://coreweave.com/SAML/Attributes/PrincipalName"
    assert config["active"] is True
    listed = items_of(api.call("GET", "/v1/keyless/wif/saml"))
    assert simplesamlphp_config["id"] in [item["id"] for item in listed]


def test_sp_metadata_lists_acs_urls(keyless, api, simplesamlphp_config):
    response = api.request("GET", f"/v1/keyless/wif/saml/{simplesamlphp_config['id']}/metadata")

    assert response.status_code == 200, response.text
    root = ElementTree.fromstring(response.content)
    assert root.get("entityID") == sp_entity_id()
    services = root.findall("md:SPSSODescriptor/md:AssertionConsumerService", NAMESPACES)
    assert [service.get("Location") for service in services] == [json_acs_url(keyless), sts_acs_url(keyless)]
    assert {service.get("Binding") for service in services} == {BINDING_HTTP_POST}


def test_saml_config_from_metadata_xml(keyless, api, own_simplesamlphp, role_policy):
    idp = own_simplesamlphp
    idp.register_sp(sp_entity_id(), [json_acs_url(keyless)])

    config = create_saml_config(api, metadataXml=idp.metadata_xml())
    try:
        assert config["idpEntityId"] == idp.entity_id
        assert len(config["certificates"]) == 1
        assert "".join(config["certificates"][0].split("-----")[2].split()) == idp.signing_key.certificate_base64
        response = exchange_saml(keyless, idp.login_response(sp_entity_id(), json_acs_url(keyless)))
        assert response.status_code == 200, response.text
        assert response.json()["principalName"] == PRINCIPAL
    finally:
        api.call("DELETE", f"/v1/keyless/wif/saml/{config['id']}")


METADATA_WITHOUT_SIGNING_KEY = """<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    entityID="https://no-key.keyless.test/idp">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="https://no-key.keyless.test/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
"""


@pytest.mark.parametrize(
    "fields",
    [
        {"idpEntityId": "https://no-key.keyless.test/idp"},
        {"idpEntityId": "https://no-key.keyless.test/idp", "certificates": []},
        {"idpEntityId": "https://no-key.keyless.test/idp", "certificates": ["not a certificate"]},
        {"metadataXml": METADATA_WITHOUT_SIGNING_KEY},
    ],
    ids=["no-certificates", "empty-list", "not-pem", "metadata-without-key"],
)
def test_config_without_certificate_rejected(api, fields):
    response = api.request("POST", "/v1/keyless/wif/saml", {"orgId": "default", "name": "no-key", **fields})

    assert response.status_code == 400, response.text
    assert "certificate" in response.text.lower()


def test_metadata_with_only_encryption_key_rejected(api, tmp_path):
    key = make_signing_key(tmp_path, "encryption-only-idp")
    metadata = METADATA_WITHOUT_SIGNING_KEY.replace(
        "<md:SingleSignOnService",
        '<md:KeyDescriptor use="encryption"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
        f"<ds:X509Data><ds:X509Certificate>{key.certificate_base64}</ds:X509Certificate></ds:X509Data>"
        "</ds:KeyInfo></md:KeyDescriptor>\n    <md:SingleSignOnService",
    )

    response = api.request("POST", "/v1/keyless/wif/saml", {"orgId": "default", "name": "no-key", "metadataXml": metadata})

    assert response.status_code == 400, response.text
    assert "signing certificate" in response.text.lower()


def test_config_with_expired_certificate_rejected(api, tmp_path):
    key = make_signing_key(tmp_path, "expired-idp", valid_days=-1)
    body = {
        "orgId": "default",
        "name": "expired",
        "idpEntityId": "https://expired.keyless.test/idp",
        "certificates": [key.certificate_pem],
    }

    response = api.request("POST", "/v1/keyless/wif/saml", body)

    assert response.status_code == 400, response.text
    assert "expired" in response.text.lower()


# --- exchanges with real IdPs -------------------------------------------------


def test_simplesamlphp_response_buys_s3_access(keyless, api, simplesamlphp, simplesamlphp_config, data_bucket):
    saml_response = simplesamlphp.login_response(sp_entity_id(), json_acs_url(keyless))

    response = exchange_saml(keyless, saml_response)

    assert response.status_code == 200, response.text
    credentials = response.json()
    assert credentials["principalName"] == PRINCIPAL
    assert credentials["accessKeyId"]
    assert credentials["secretKey"]
    assert credentials["sessionToken"]
    assert 800 < seconds_until(credentials["expiry"]) <= 960
    assert "attributes" in credentials
    workload = workload_s3(keyless, credentials)
    workload.put_object(Bucket=data_bucket, Key="teams/vision/model.bin", Body=b"weights")
    body = workload.get_object(Bucket=data_bucket, Key="teams/vision/model.bin")["Body"].read()
    assert body == b"weights"
    assert s3_error_code(workload.delete_object, Bucket=data_bucket, Key="teams/vision/keep.txt") == "AccessDenied"
    # The team folder comes from the mapped attribute: another team's is closed.
    assert s3_error_code(workload.put_object, Bucket=data_bucket, Key="teams/nlp/x", Body=b"x") == "AccessDenied"


def test_simplesamlphp_response_through_sts(keyless, simplesamlphp, simplesamlphp_config, data_bucket):
    saml_response = simplesamlphp.login_response(sp_entity_id(), sts_acs_url(keyless))

    result = assume_role_with_saml(keyless, saml_response, simplesamlphp_config)

    credentials = result["Credentials"]
    workload = s3_client(
        keyless.s3_url, credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
    )
    workload.put_object(Bucket=data_bucket, Key="teams/vision/from-sts.bin", Body=b"sts")
    assert s3_error_code(workload.delete_object, Bucket=data_bucket, Key="teams/vision/from-sts.bin") == "AccessDenied"


def test_pysaml2_response_buys_s3_access(keyless, pysaml2_idp, pysaml2_config, data_bucket):
    attributes = {ROLE_ATTRIBUTE: [ROLE], TEAM_ATTRIBUTE: ["nlp"]}
    saml_response = pysaml2_idp.response(sp_entity_id(), json_acs_url(keyless), attributes)

    response = exchange_saml(keyless, saml_response)

    assert response.status_code == 200, response.text
    assert response.json()["principalName"] == PRINCIPAL
    workload = workload_s3(keyless, response.json())
    workload.put_object(Bucket=data_bucket, Key="teams/nlp/tokens.bin", Body=b"tokens")
    assert s3_error_code(workload.put_object, Bucket=data_bucket, Key="teams/vision/x", Body=b"x") == "AccessDenied"


def test_pysaml2_reads_keyless_sp_metadata(keyless, api, pysaml2_idp, pysaml2_config):
    """pysaml2 loads the SP metadata keyless serves and sends the response to its first ACS URL."""
    metadata = api.request("GET", f"/v1/keyless/wif/saml/{pysaml2_config['id']}/metadata").text
    saml_response = pysaml2_idp.response(sp_entity_id(), None, {ROLE_ATTRIBUTE: [ROLE]}, sp_metadata=metadata)
    assert check_response(saml_response, pysaml2_idp.signing_key.certificate_path).destination == json_acs_url(keyless)

    response = exchange_saml(keyless, saml_response)

    assert response.status_code == 200, response.text


def test_saml_response_replay_is_rejected(keyless, api, simplesamlphp, simplesamlphp_config):
    saml_response = simplesamlphp.login_response(sp_entity_id(), json_acs_url(keyless))
    first = exchange_saml(keyless, saml_response)
    assert first.status_code == 200, first.text

    replayed = exchange_saml(keyless, saml_response)

    reason_words = ("replay", "already used", "already been used")
    assert_rejected(replayed, *reason_words)
    events = audit_events_of(api, replayed)
    assert [event["decision"] for event in events] == ["deny"]
    reason = (events[0].get("reason") or "").lower()
    assert any(word in reason for word in reason_words), f"audit reason {reason!r} names no replay"


def test_replay_across_endpoints_rejected(keyless, simplesamlphp, simplesamlphp_config):
    saml_response = simplesamlphp.login_response(sp_entity_id(), sts_acs_url(keyless))
    first = exchange_saml(keyless, saml_response)
    assert first.status_code == 200, first.text

    code, message = sts_error_code(assume_role_with_saml, keyless, saml_response, simplesamlphp_config)

    assert code == "InvalidIdentityToken", message


def test_missing_saml_response_is_rejected(keyless):
    response = exchange_saml(keyless, "")

    assert_rejected(response, "missing")


# --- validly signed but wrong responses (samlify) -----------------------------


def test_samlify_valid_response_is_accepted(keyless, samlify_idp, samlify_fields):
    """The baseline of the wrong-response tests: unchanged, the response is accepted."""
    minted = samlify_idp.mint({"valid": samlify_fields, "assertion-signed": {**samlify_fields, "signResponse": False}})

    for name, saml_response in minted.items():
        response = exchange_saml(keyless, saml_response)
        assert response.status_code == 200, f"{name}: {response.text}"
        assert response.json()["principalName"] == PRINCIPAL, name


# Each case: the fields changed from a valid response, and words of which
# the rejection reason must contain one.
WRONG_RESPONSES = {
    "wrong-audience": ({"audience": "urn:keyless:someone-else"}, ("audience",)),
    "wrong-recipient": ({"recipient": "http://127.0.0.1:1/acs"}, ("recipient",)),
    "wrong-destination": ({"destination": "http://127.0.0.1:1/acs"}, ("destination",)),
    "unknown-issuer": ({"issuer": "https://unknown.keyless.test/idp"}, ("issuer",)),
    "expired": ({"notBeforeOffsetSeconds": -3600, "notOnOrAfterOffsetSeconds": -1800}, ("expired",)),
    "not-yet-valid": (
        {"notBeforeOffsetSeconds": 1800, "notOnOrAfterOffsetSeconds": 3600},
        ("not yet valid",),
    ),
    "in-response-to": ({"inResponseTo": "_request-keyless-never-sent"}, ("inresponseto",)),
    "status-not-success": (
        {"statusCode": "urn:oasis:names:tc:SAML:2.0:status:Requester"},
        ("status",),
    ),
    "no-role": ({"attributes": {TEAM_ATTRIBUTE: ["vision"]}}, ("role",)),
    "rsa-sha1": ({"signatureAlgorithm": RSA_SHA1}, ("algorithm",)),
}


@pytest.mark.parametrize("case", list(WRONG_RESPONSES))
def test_samlify_wrong_response_is_rejected(keyless, api, samlify_idp, samlify_fields, case):
    changes, reason_words = WRONG_RESPONSES[case]
    minted = samlify_idp.mint({case: {**samlify_fields, **changes}})

    response = exchange_saml(keyless, minted[case])

    assert_rejected(response, *reason_words)
    events = audit_events_of(api, response)
    assert len(events) == 1, events
    assert events[0]["decision"] == "deny"
    reason = (events[0].get("reason") or "").lower()
    assert any(word in reason for word in reason_words), f"audit reason {reason!r} names none of {reason_words}"


def test_impersonated_issuer_rejected(keyless, simplesamlphp, simplesamlphp_config, samlify_idp, samlify_fields):
    """samlify signs as if it were SimpleSAMLphp, whose configuration has another certificate."""
    minted = samlify_idp.mint({"impersonation": {**samlify_fields, "issuer": simplesamlphp.entity_id}})

    response = exchange_saml(keyless, minted["impersonation"])

    assert_rejected(response, "signature")


def test_unconfigured_signing_key_rejected(keyless, tmp_path, samlify_idp, samlify_fields):
    """Same issuer, another key: the certificate in KeyInfo is not the configured one."""
    impostor = SamlifyIdp(tmp_path, entity_id=samlify_idp.entity_id)
    minted = impostor.mint({"impostor": samlify_fields})

    response = exchange_saml(keyless, minted["impostor"])

    assert_rejected(response, "signature")


def test_aws_role_pair_selects_role(keyless, samlify_idp, samlify_config, data_bucket):
    pairs = {
        "role-first": f"{role_arn()},{provider_arn(samlify_config)}",
        "provider-first": f"{provider_arn(samlify_config)},{role_arn()}",
    }
    fields = samlify_idp.defaults(sp_entity_id(), sts_acs_url(keyless))
    minted = samlify_idp.mint(
        {name: {**fields, "attributes": {AWS_ROLE_ATTRIBUTE: [pair]}} for name, pair in pairs.items()}
    )

    for name in pairs:
        result = assume_role_with_saml(keyless, minted[name], samlify_config)
        assert result["Credentials"]["AccessKeyId"], name
        credentials = result["Credentials"]
        workload = s3_client(
            keyless.s3_url, credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
        )
        workload.list_objects_v2(Bucket=data_bucket)


def test_aws_role_pair_must_match_role(keyless, samlify_idp, samlify_config):
    fields = samlify_idp.defaults(sp_entity_id(), sts_acs_url(keyless))
    other_role_pair = f"{role_arn('Administrators')},{provider_arn(samlify_config)}"
    minted = samlify_idp.mint({"other-role": {**fields, "attributes": {AWS_ROLE_ATTRIBUTE: [other_role_pair]}}})

    code, message = sts_error_code(assume_role_with_saml, keyless, minted["other-role"], samlify_config)

    # NOTE: AWS documents no single code for a role missing from the
    # assertion; keyless may report it as a rejected claim or a denial.
    assert code in ("AccessDenied", "IDPRejectedClaim"), f"{code}: {message}"
    assert "role" in message.lower()


def test_aws_role_pair_must_match_provider(keyless, samlify_idp, samlify_config):
    fields = samlify_idp.defaults(sp_entity_id(), sts_acs_url(keyless))
    other_provider = "arn:aws:iam::default:saml-provider/someone-else"
    minted = samlify_idp.mint(
        {"other-provider": {**fields, "attributes": {AWS_ROLE_ATTRIBUTE: [f"{role_arn()},{other_provider}"]}}}
    )

    code, message = sts_error_code(assume_role_with_saml, keyless, minted["other-provider"], samlify_config)

    assert code in ("AccessDenied", "IDPRejectedClaim"), f"{code}: {message}"


def test_sts_expired_response_code(keyless, samlify_idp, samlify_config):
    fields = samlify_idp.defaults(sp_entity_id(), sts_acs_url(keyless))
    minted = samlify_idp.mint({"expired": {**fields, "notBeforeOffsetSeconds": -3600, "notOnOrAfterOffsetSeconds": -1800}})

    code, message = sts_error_code(assume_role_with_saml, keyless, minted["expired"], samlify_config)

    assert code == "ExpiredTokenException", message


# --- signed responses changed after signing ------------------------------------
#
# samlify signs the Assertion alone, for the role "Intern", which no policy
# names. The attacker then changes the document so that a careless reader
# would see "DataScience", which the policy lets exchange. keyless's unit
# tests cover each attack class in depth, and these run a few through the
# whole server.


ASSERTION_PATTERN = re.compile(r"<saml:Assertion\b.*?</saml:Assertion>", re.DOTALL)
SIGNATURE_PATTERN = re.compile(r"<ds:Signature\b.*?</ds:Signature>", re.DOTALL)


def encode_xml(xml):
    return base64.b64encode(xml.encode()).decode()


def forged_assertion(signed_assertion):
    """Return a copy of the assertion naming DataScience, with a new ID and no signature."""
    forged = SIGNATURE_PATTERN.sub("", signed_assertion).replace(">Intern<", f">{ROLE}<")
    return re.sub(r'ID="[^"]+"', 'ID="_forged"', forged, count=1)


def move_signed_assertion_to_extensions(xml):
    signed = ASSERTION_PATTERN.search(xml).group(0)
    xml = xml.replace(signed, forged_assertion(signed))
    issuer_end = xml.index("</saml:Issuer>") + len("</saml:Issuer>")
    return xml[:issuer_end] + f"<samlp:Extensions>{signed}</samlp:Extensions>" + xml[issuer_end:]


def append_forged_assertion(xml):
    signed = ASSERTION_PATTERN.search(xml).group(0)
    return xml.replace(signed, signed + forged_assertion(signed))


def wrap_signed_assertion_in_forged(xml):
    signed = ASSERTION_PATTERN.search(xml).group(0)
    forged = forged_assertion(signed)
    wrapper = forged.replace("</saml:Assertion>", f"{signed}</saml:Assertion>")
    return xml.replace(signed, wrapper)


def strip_signatures(xml):
    return SIGNATURE_PATTERN.sub("", xml).replace(">Intern<", f">{ROLE}<")


def add_internal_entity(xml):
    doctype = f'<!DOCTYPE samlp:Response [<!ENTITY role "{ROLE}">]>'
    return doctype + xml.replace(">Intern<", ">&role;<")


def inject_comment(xml):
    """Split the signed value "DataScienceIntern" with a comment, which C14N drops from the digest."""
    return xml.replace(f">{ROLE}Intern<", f">{ROLE}<!---->Intern<")


TAMPERED_RESPONSES = {
    "signed-assertion-in-extensions": (move_signed_assertion_to_extensions, ("assertion", "signature")),
    "forged-second-assertion": (append_forged_assertion, ("assertion",)),
    "signed-assertion-inside-forged": (wrap_signed_assertion_in_forged, ("assertion", "signature")),
    "signatures-stripped": (strip_signatures, ("signed", "signature")),
    "internal-entity": (add_internal_entity, ("doctype", "dtd")),
    "comment-in-role": (inject_comment, ("comment", "text")),
}


@pytest.mark.parametrize("case", list(TAMPERED_RESPONSES))
def test_tampered_response_is_rejected(keyless, samlify_idp, samlify_config, case):
    tamper, reason_words = TAMPERED_RESPONSES[case]
    role = f"{ROLE}Intern" if case == "comment-in-role" else "Intern"
    fields = {**samlify_idp.defaults(sp_entity_id(), json_acs_url(keyless), role=role), "signResponse": False}
    signed_xml = decode_response(samlify_idp.mint({case: fields})[case])
    tampered = tamper(signed_xml)
    assert tampered != signed_xml, f"{case} changed nothing"

    response = exchange_saml(keyless, encode_xml(tampered))

    assert_rejected(response, *reason_words)


# --- configuration state and organizations ----------------------------------------


def test_inactive_config_rejects_responses(keyless, api, tmp_path, role_policy):
    idp = PysamlIdp(tmp_path, entity_id=f"https://inactive-{secrets.token_hex(4)}.keyless.test/idp")
    config = config_from_certificate(api, idp, active=False)
    try:
        saml_response = idp.response(sp_entity_id(), json_acs_url(keyless), {ROLE_ATTRIBUTE: [ROLE]})
        assert_rejected(exchange_saml(keyless, saml_response), "active", "issuer")

        api.call("PUT", f"/v1/keyless/wif/saml/{config['id']}", {**config, "active": True})
        saml_response = idp.response(sp_entity_id(), json_acs_url(keyless), {ROLE_ATTRIBUTE: [ROLE]})
        response = exchange_saml(keyless, saml_response)
        assert response.status_code == 200, response.text
    finally:
        api.call("DELETE", f"/v1/keyless/wif/saml/{config['id']}")


def test_role_without_policy_is_denied(keyless, api, tmp_path):
    idp = PysamlIdp(tmp_path, entity_id=f"https://no-policy-{secrets.token_hex(4)}.keyless.test/idp")
    config = config_from_certificate(api, idp)
    try:
        saml_response = idp.response(sp_entity_id(), json_acs_url(keyless), {ROLE_ATTRIBUTE: ["Unlisted"]})

        response = exchange_saml(keyless, saml_response)

        assert response.status_code == 403, response.text
    finally:
        api.call("DELETE", f"/v1/keyless/wif/saml/{config['id']}")


@pytest.fixture(scope="module")
def org_b(work_dir, simplesamlphp):
    """A second keyless server whose only org is `orgb`, trusting the same SimpleSAMLphp."""
    server = KeylessServer(work_dir / "orgb-data", extra_args=["--org-id", "orgb"]).start()
    api = Api(server.api_url, server.admin_token)
    simplesamlphp.register_sp(sp_entity_id("orgb"), [json_acs_url(server)])
    config = config_from_certificate(api, simplesamlphp, org_id="orgb", name="simplesamlphp")
    api.put_org_policy(
        "saml-exchange",
        [
            {
                "name": "exchange",
                "effect": "Allow",
                "actions": ["cwobject:CreateAccessKeySAML"],
                "resources": ["*"],
                "principals": [PRINCIPAL],
            }
        ],
    )
    yield server, config
    server.stop()


def test_other_orgs_response_rejected(keyless, simplesamlphp, simplesamlphp_config, org_b):
    """Both orgs trust the same IdP; a response addressed to one is rejected by the other."""
    server_b, _config_b = org_b
    for_org_b = simplesamlphp.login_response(sp_entity_id("orgb"), json_acs_url(server_b))
    for_org_a = simplesamlphp.login_response(sp_entity_id(), json_acs_url(keyless))
    another_for_org_b = simplesamlphp.login_response(sp_entity_id("orgb"), json_acs_url(server_b))

    accepted_at_b = exchange_saml(server_b, for_org_b, org_id="orgb")
    org_a_response_at_b = exchange_saml(server_b, for_org_a, org_id="orgb")
    org_b_response_at_a = exchange_saml(keyless, another_for_org_b)

    assert accepted_at_b.status_code == 200, accepted_at_b.text
    # Audience, Recipient and Destination all name the other org; any may be reported first.
    assert_rejected(org_a_response_at_b, "audience", "recipient", "destination")
    assert_rejected(org_b_response_at_a, "audience", "recipient", "destination")


def test_unknown_org_is_rejected(keyless, simplesamlphp, simplesamlphp_config):
    saml_response = simplesamlphp.login_response(sp_entity_id(), json_acs_url(keyless))

    response = exchange_saml(keyless, saml_response, org_id="orgb")

    assert_rejected(response, "org")


def test_attribute_condition_gates_the_exchange(keyless, api, tmp_path, role_policy):
    """A configuration's conditions over `saml:<attribute>` keys must hold, matched literally."""
    idp = PysamlIdp(tmp_path, entity_id=f"https://conditions-{secrets.token_hex(4)}.keyless.test/idp")
    conditions = {"StringEquals": {f"saml:{TEAM_ATTRIBUTE}": "nlp"}}
    config = config_from_certificate(api, idp, conditions=conditions)
    try:
        for team in ["vision", "*", "nlp*", "NLP"]:
            saml_response = idp.response(sp_entity_id(), json_acs_url(keyless), {ROLE_ATTRIBUTE: [ROLE], TEAM_ATTRIBUTE: [team]})
            response = exchange_saml(keyless, saml_response)
            assert response.status_code == 403, f"team {team!r}: {response.text}"
            assert response.json()["code"] == "IDPRejectedClaim", response.text

        saml_response = idp.response(sp_entity_id(), json_acs_url(keyless), {ROLE_ATTRIBUTE: [ROLE], TEAM_ATTRIBUTE: ["nlp"]})
        response = exchange_saml(keyless, saml_response)
        assert response.status_code == 200, response.text
    finally:
        api.call("DELETE", f"/v1/keyless/wif/saml/{config['id']}")


def test_response_with_too_many_nodes_is_rejected_quickly(keyless, pysaml2_idp, pysaml2_config):
    """A validly signed response with 1,000 attribute values is rejected by the node cap.

    Reducing a response to its signed content costs the square of its node count, so
    the cap, not the signature check, must stop such a response.
    """
    attributes = {ROLE_ATTRIBUTE: [ROLE], TEAM_ATTRIBUTE: [f"group-{i}" for i in range(1000)]}
    saml_response = pysaml2_idp.response(sp_entity_id(), json_acs_url(keyless), attributes)

    response = exchange_saml(keyless, saml_response)

    assert_rejected(response, "nodes")
    assert response.json()["code"] == "InvalidIdentityToken", response.text
    assert requests.get(f"{keyless.api_url}/healthz", timeout=5).status_code == 200
