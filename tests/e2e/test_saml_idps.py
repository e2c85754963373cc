"""The test SAML IdPs issue what the keyless tests assume, checked without keyless.

xmlsec1 verifies every response with the IdP's certificate, so when a keyless
SAML test fails, these show whether the IdP side was sound.
"""

import base64

import pytest

from saml_idps import (
    EXCLUSIVE_C14N,
    PRINCIPAL_NAME_ATTRIBUTE,
    ROLE_ATTRIBUTE,
    RSA_SHA1,
    RSA_SHA256,
    SHA256,
    STATUS_SUCCESS,
    TEAM_ATTRIBUTE,
    check_response,
    decode_response,
)

SP_ENTITY_ID = "urn:keyless:idp-check"
ACS_URL = "http://127.0.0.1:9/v1/cwobject/temporary-credentials/saml"


def assert_signed_as_keyless_requires(checked):
    assert checked.signature_algorithms == [RSA_SHA256]
    assert checked.digest_algorithms == [SHA256]
    assert checked.canonicalization_algorithms == [EXCLUSIVE_C14N]


@pytest.fixture(scope="module")
def simplesamlphp_response(simplesamlphp):
    simplesamlphp.register_sp(SP_ENTITY_ID, [ACS_URL])
    return simplesamlphp.login_response(SP_ENTITY_ID, ACS_URL)


def test_simplesamlphp_response_verifies(simplesamlphp, simplesamlphp_response):
    checked = check_response(simplesamlphp_response, simplesamlphp.signing_key.certificate_path)

    assert checked.issuer == simplesamlphp.entity_id
    assert checked.assertion_issuer == simplesamlphp.entity_id
    assert checked.status == STATUS_SUCCESS
    assert checked.in_response_to is None
    assert checked.audiences == [SP_ENTITY_ID]
    assert checked.destination == ACS_URL
    assert checked.recipient == ACS_URL
    assert checked.attributes[ROLE_ATTRIBUTE] == ["DataScience"]
    assert checked.attributes[PRINCIPAL_NAME_ATTRIBUTE] == ["alice@example.org"]
    assert checked.attributes[TEAM_ATTRIBUTE] == ["vision"]
    assert_signed_as_keyless_requires(checked)


def test_simplesamlphp_serves_its_metadata(simplesamlphp):
    metadata = simplesamlphp.metadata_xml()

    assert f'entityID="{simplesamlphp.entity_id}"' in metadata
    assert simplesamlphp.signing_key.certificate_base64 in "".join(metadata.split())


def test_pysaml2_response_verifies(pysaml2_idp):
    attributes = {ROLE_ATTRIBUTE: ["DataScience"], TEAM_ATTRIBUTE: ["nlp"]}

    response = pysaml2_idp.response(SP_ENTITY_ID, ACS_URL, attributes)
    checked = check_response(response, pysaml2_idp.signing_key.certificate_path)

    assert checked.issuer == pysaml2_idp.entity_id
    assert checked.in_response_to is None
    assert checked.audiences == [SP_ENTITY_ID]
    assert checked.destination == ACS_URL
    assert checked.recipient == ACS_URL
    assert checked.attributes == attributes
    assert_signed_as_keyless_requires(checked)


def test_samlify_changes_only_requested_fields(samlify_idp):
    valid = samlify_idp.defaults(SP_ENTITY_ID, ACS_URL)
    changes = {
        "audience": {"audience": "urn:keyless:someone-else"},
        "in-response-to": {"inResponseTo": "_never-requested"},
        "expired": {"notBeforeOffsetSeconds": -3600, "notOnOrAfterOffsetSeconds": -1800},
        "rsa-sha1": {"signatureAlgorithm": RSA_SHA1},
    }
    minted = samlify_idp.mint({"valid": valid, **{name: {**valid, **change} for name, change in changes.items()}})
    certificate = samlify_idp.signing_key.certificate_path
    baseline = check_response(minted["valid"], certificate)

    assert baseline.audiences == [SP_ENTITY_ID]
    assert baseline.in_response_to is None
    assert_signed_as_keyless_requires(baseline)
    assert check_response(minted["audience"], certificate).audiences == ["urn:keyless:someone-else"]
    assert check_response(minted["in-response-to"], certificate).in_response_to == "_never-requested"
    expired = check_response(minted["expired"], certificate)
    assert expired.not_on_or_after < baseline.not_before
    assert expired.audiences == baseline.audiences
    assert check_response(minted["rsa-sha1"], certificate).signature_algorithms == [RSA_SHA1]


def test_checker_rejects_changed_attribute(simplesamlphp, simplesamlphp_response):
    xml = decode_response(simplesamlphp_response).replace(">DataScience<", ">Administrators<")
    tampered = base64.b64encode(xml.encode()).decode()

    with pytest.raises(AssertionError, match="xmlsec1 rejected"):
        check_response(tampered, simplesamlphp.signing_key.certificate_path)


def test_checker_rejects_other_certificate(pysaml2_idp, simplesamlphp_response):
    with pytest.raises(AssertionError, match="xmlsec1 rejected"):
        check_response(simplesamlphp_response, pysaml2_idp.signing_key.certificate_path)
