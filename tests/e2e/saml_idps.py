"""Three SAML 2.0 identity providers for the end-to-end tests, and a checker.

- `SimpleSamlPhp`: SimpleSAMLphp 1.19 from Debian, run by `php -S` on
  127.0.0.1 as a real IdP. Responses come from IdP-initiated SSO and a
  scripted login form post, as a browser would get them.
- `PysamlIdp`: pysaml2's `Server` in this process, a second IdP
  implementation that issues unsolicited responses.
- `SamlifyIdp`: samlify in a Node script (samlify_idp.mjs) that signs
  responses built from a template. Each wrong response is validly signed
  and wrong in exactly one property, so a test of a semantic check fails
  for that check alone.

Every IdP signs the Response and the Assertion with RSA-SHA256 over
SHA-256 digests and exclusive C14N, using its own RSA-2048 key and
self-signed certificate. `check_response` verifies a response with
xmlsec1, independently of keyless, so a broken IdP setup shows up
before keyless is blamed.
"""

import base64
import datetime
import html.parser
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import textwrap
import time
import urllib.parse
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from processes import TESTS_DIR, free_port, log_tail, stop_process

ROLE_ATTRIBUTE = "https://coreweave.com/SAML/Attributes/Role"
PRINCIPAL_NAME_ATTRIBUTE = "https://coreweave.com/SAML/Attributes/PrincipalName"
AWS_ROLE_ATTRIBUTE = "https://aws.amazon.com/SAML/Attributes/Role"
# An attribute outside keyless's defaults, for attribute mapping tests.
TEAM_ATTRIBUTE = "https://keyless.test/SAML/Attributes/Team"

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
EXCLUSIVE_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
BINDING_HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
ATTRNAME_FORMAT_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"

NAMESPACES = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
}

SIMPLESAMLPHP_DIR = Path(os.environ.get("SIMPLESAMLPHP_DIR", "/usr/share/simplesamlphp"))
SAMLIFY_SCRIPT = Path(__file__).with_name("samlify_idp.mjs")
READY_TIMEOUT_SECONDS = 20


# --- keys -------------------------------------------------------------------


@dataclass
class SigningKey:
    """An IdP's RSA-2048 private key and self-signed certificate, as PEM files."""

    key_path: Path
    certificate_path: Path

    @property
    def key_pem(self):
        return self.key_path.read_text()

    @property
    def certificate_pem(self):
        return self.certificate_path.read_text()

    @property
    def certificate_base64(self):
        """Return the DER certificate in base64 on one line, as metadata carries it."""
        body = self.certificate_pem.split("-----")[2]
        return "".join(body.split())


def make_signing_key(directory, common_name, valid_days=1):
    """Write a fresh RSA-2048 key and a self-signed certificate valid for `valid_days` from now.

    A negative `valid_days` gives a certificate that has already expired.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=abs(valid_days) + 1))
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .sign(key, hashes.SHA256())
    )
    stem = common_name.replace(" ", "-")
    key_path = directory / f"{stem}.key"
    certificate_path = directory / f"{stem}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return SigningKey(key_path, certificate_path)


def sp_metadata_xml(entity_id, acs_urls):
    """Return minimal SAML metadata for a service provider, the document an IdP imports."""
    services = "\n".join(
        f'    <md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" '
        f'Location="{escape_attribute(url)}" index="{index}"/>'
        for index, url in enumerate(acs_urls)
    )
    return textwrap.dedent(
        f"""\
        <md:EntityDescriptor xmlns:md="{NAMESPACES['md']}" entityID="{escape_attribute(entity_id)}">
          <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true"
              protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
            <md:NameIDFormat>{NAMEID_PERSISTENT}</md:NameIDFormat>
        {services}
          </md:SPSSODescriptor>
        </md:EntityDescriptor>
        """
    )


def escape_attribute(value):
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def decode_response(saml_response):
    """Return the XML text of a base64 SAMLResponse."""
    return base64.b64decode(saml_response).decode()


# --- SimpleSAMLphp ----------------------------------------------------------


def php_string(value):
    """Return a single-quoted PHP string literal for `value`."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def php_value(value):
    """Return a PHP literal for a Python None, str, bool, int, list or dict."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return php_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(php_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{php_string(key)} => {php_value(item)}" for key, item in value.items())
        return "[" + items + "]"
    raise TypeError(f"no PHP literal for {type(value).__name__} value {value!r}")


# Router script for SimpleSAMLphp's www folder. PHP's built-in server does not split
# `/module.php/core/loginuserpass.php` into a script and PATH_INFO, which
# SimpleSAMLphp's module pages rely on, so this router does it.
PHP_ROUTER = """<?php
$www = getenv('SIMPLESAMLPHP_WWW');
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if (preg_match('#^(/[^?]*?\\.php)(/.*)?$#', $path, $parts) && is_file($www . $parts[1])) {
    $script = $www . $parts[1];
    $_SERVER['SCRIPT_NAME'] = $parts[1];
    $_SERVER['SCRIPT_FILENAME'] = $script;
    $_SERVER['PHP_SELF'] = $path;
    if (isset($parts[2]) && $parts[2] !== '') {
        $_SERVER['PATH_INFO'] = $parts[2];
    } else {
        unset($_SERVER['PATH_INFO']);
    }
    chdir(dirname($script));
    require $script;
    return true;
}
return false;
"""


class FormParser(html.parser.HTMLParser):
    """Collect the first form's action and its input fields from an HTML page."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = {}
        self.in_form = False
        self.form_done = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form" and not self.form_done:
            self.in_form = True
            self.action = attributes.get("action")
        elif tag == "input" and self.in_form and attributes.get("name"):
            self.fields[attributes["name"]] = attributes.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form" and self.in_form:
            self.in_form = False
            self.form_done = True


def parse_form(page):
    parser = FormParser()
    parser.feed(page)
    return parser.action, parser.fields


class SimpleSamlPhp:
    """A SimpleSAMLphp IdP served by `php -S 127.0.0.1:<port>` from a generated config.

    One user exists, with the role, principal name and team attributes given
    at construction. Service providers are registered with `register_sp`,
    which rewrites the remote SP metadata file; SimpleSAMLphp reads it on
    every request, so no restart is needed.
    """

    def __init__(self, work_dir, role="DataScience", principal_name="alice@example.org", team="vision"):
        self.work_dir = Path(work_dir) / "simplesamlphp"
        self.config_dir = self.work_dir / "config"
        self.metadata_dir = self.work_dir / "metadata"
        self.cert_dir = self.work_dir / "cert"
        self.log_path = self.work_dir / "php-server.log"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.entity_id = f"{self.base_url}/saml2/idp/metadata.php"
        self.metadata_url = self.entity_id
        self.username = "alice"
        self.password = secrets.token_urlsafe(12)
        self.attributes = {
            "uid": [self.username],
            ROLE_ATTRIBUTE: [role],
            PRINCIPAL_NAME_ATTRIBUTE: [principal_name],
            TEAM_ATTRIBUTE: [team],
        }
        self.service_providers = {}
        self.signing_key = None
        self.process = None

    def start(self):
        for directory in ("config", "metadata", "cert", "log", "data", "tmp", "sessions"):
            (self.work_dir / directory).mkdir(parents=True, exist_ok=True)
        self.signing_key = make_signing_key(self.cert_dir, "simplesamlphp-idp")
        self._write_config()
        self._write_authsources()
        self._write_idp_metadata()
        self._write_sp_metadata()
        router = self.work_dir / "router.php"
        router.write_text(PHP_ROUTER)
        env = dict(
            os.environ,
            SIMPLESAMLPHP_CONFIG_DIR=str(self.config_dir),
            SIMPLESAMLPHP_WWW=str(SIMPLESAMLPHP_DIR / "www"),
        )
        command = ["php", "-S", f"127.0.0.1:{self.port}", "-t", str(SIMPLESAMLPHP_DIR / "www"), str(router)]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.work_dir
            )
        self._wait_until_serving()
        return self

    def _wait_until_serving(self):
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last_error = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                response = requests.get(self.metadata_url, timeout=5)
                if response.status_code == 200:
                    return
                last_error = f"status {response.status_code}: {response.text[:500]}"
            except requests.ConnectionError as error:
                last_error = error
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"SimpleSAMLphp did not serve its metadata within {READY_TIMEOUT_SECONDS} s "
            f"(last error: {last_error}); log {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def stop(self):
        if self.process is not None:
            stop_process(self.process)

    def _write_php(self, path, variable, value):
        path.write_text(f"<?php\n${variable} = {php_value(value)};\n")

    def _write_config(self):
        config = {
            "baseurlpath": f"{self.base_url}/",
            "certdir": f"{self.cert_dir}/",
            "loggingdir": f"{self.work_dir / 'log'}/",
            "datadir": f"{self.work_dir / 'data'}/",
            "tempdir": str(self.work_dir / "tmp"),
            "metadatadir": f"{self.metadata_dir}/",
            "secretsalt": secrets.token_hex(16),
            "auth.adminpassword": secrets.token_hex(16),
            "admin.protectindexpage": True,
            "admin.protectmetadata": False,
            "technicalcontact_name": "keyless tests",
            "technicalcontact_email": "keyless-tests@example.org",
            "timezone": "UTC",
            "logging.handler": "file",
            "logging.logfile": "simplesamlphp.log",
            "showerrors": True,
            "errorreporting": False,
            "enable.saml20-idp": True,
            "enable.shib13-idp": False,
            "enable.adfs-idp": False,
            "module.enable": {"exampleauth": True, "core": True, "saml": True, "admin": True},
            "store.type": "phpsession",
            "session.phpsession.savepath": str(self.work_dir / "sessions"),
            "session.cookie.secure": False,
            "session.cookie.samesite": None,
            "language.default": "en",
            "metadata.sources": [{"type": "flatfile"}],
        }
        text = f"<?php\n$config = {php_value(config)};\n"
        # PHP constants cannot be written as Python literals.
        text += "$config['logging.level'] = SimpleSAML\\Logger::NOTICE;\n"
        (self.config_dir / "config.php").write_text(text)

    def _write_authsources(self):
        # The UserPass source takes its class name at index 0 and then
        # "<username>:<password>" keys mapping to the user's attributes.
        user = f"{php_string(self.username + ':' + self.password)} => {php_value(self.attributes)}"
        text = (
            "<?php\n$config = [\n"
            "    'admin' => ['core:AdminPassword'],\n"
            f"    'example-userpass' => ['exampleauth:UserPass', {user}],\n"
            "];\n"
        )
        (self.config_dir / "authsources.php").write_text(text)

    def _write_idp_metadata(self):
        hosted = {
            "host": "__DEFAULT__",
            "privatekey": self.signing_key.key_path.name,
            "certificate": self.signing_key.certificate_path.name,
            "auth": "example-userpass",
            "signature.algorithm": RSA_SHA256,
            "saml20.sign.response": True,
            "saml20.sign.assertion": True,
            "attributes.NameFormat": ATTRNAME_FORMAT_URI,
            "NameIDFormat": NAMEID_PERSISTENT,
        }
        # saml:AttributeNameID makes `uid` the persistent NameID. authproc
        # filters are keyed by priority, an integer, which php_value lacks.
        authproc = (
            "[10 => ['class' => 'saml:AttributeNameID', 'attribute' => 'uid', "
            f"'Format' => {php_string(NAMEID_PERSISTENT)}]]"
        )
        text = (
            "<?php\n"
            f"$metadata[{php_string(self.entity_id)}] = {php_value(hosted)};\n"
            f"$metadata[{php_string(self.entity_id)}]['authproc'] = {authproc};\n"
        )
        (self.metadata_dir / "saml20-idp-hosted.php").write_text(text)

    def _write_sp_metadata(self):
        lines = ["<?php"]
        for entity_id, acs_urls in self.service_providers.items():
            remote = {
                "AssertionConsumerService": [
                    {"Binding": BINDING_HTTP_POST, "Location": url, "index": index}
                    for index, url in enumerate(acs_urls)
                ],
                "NameIDFormat": NAMEID_PERSISTENT,
                "signature.algorithm": RSA_SHA256,
                "saml20.sign.response": True,
                "saml20.sign.assertion": True,
                "attributes.NameFormat": ATTRNAME_FORMAT_URI,
            }
            lines.append(f"$metadata[{php_string(entity_id)}] = {php_value(remote)};")
        path = self.metadata_dir / "saml20-sp-remote.php"
        # Write then rename, so a request in flight never reads half a file.
        temporary = path.with_suffix(".tmp")
        temporary.write_text("\n".join(lines) + "\n")
        temporary.replace(path)

    def register_sp(self, entity_id, acs_urls):
        """Register (or replace) a service provider and its ACS URLs."""
        self.service_providers[entity_id] = list(acs_urls)
        self._write_sp_metadata()

    def metadata_xml(self):
        """Return the IdP metadata document SimpleSAMLphp serves."""
        response = requests.get(self.metadata_url, timeout=10)
        response.raise_for_status()
        return response.text

    def login_response(self, sp_entity_id, acs_url):
        """Run IdP-initiated SSO for `sp_entity_id`, log in, and return the base64 SAMLResponse.

        `acs_url` must be one of the URLs registered for the SP; SimpleSAMLphp
        puts it in Destination and Recipient.
        """
        browser = requests.Session()
        query = urllib.parse.urlencode({"spentityid": sp_entity_id, "ConsumerURL": acs_url})
        page = browser.get(f"{self.base_url}/saml2/idp/SSOService.php?{query}", timeout=30)
        assert page.status_code == 200, f"SSO start failed with {page.status_code}: {page.text[:2000]}"
        action, fields = parse_form(page.text)
        assert "AuthState" in fields, f"no login form in the SSO page: {page.text[:2000]}"

        fields.update({"username": self.username, "password": self.password})
        login_url = urllib.parse.urljoin(page.url, action or "")
        page = browser.post(login_url, data=fields, timeout=30)
        assert page.status_code == 200, f"login failed with {page.status_code}: {page.text[:2000]}"
        action, fields = parse_form(page.text)
        assert "SAMLResponse" in fields, f"no SAMLResponse in the login result: {page.text[:2000]}"
        assert action == acs_url, f"the response form posts to {action}, expected {acs_url}"
        return fields["SAMLResponse"]


# --- pysaml2 ----------------------------------------------------------------


class PysamlIdp:
    """A pysaml2 IdP in this process that issues unsolicited signed responses."""

    def __init__(self, work_dir, entity_id="https://pysaml2-idp.keyless.test/idp"):
        self.work_dir = Path(work_dir) / "pysaml2"
        self.entity_id = entity_id
        self.signing_key = make_signing_key(self.work_dir, "pysaml2-idp")

    def _server(self, sp_entity_id, acs_urls, sp_metadata=None):
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2.config import IdPConfig
        from saml2.server import Server
        from saml2.sigver import get_xmlsec_binary

        metadata = sp_metadata or sp_metadata_xml(sp_entity_id, acs_urls)
        config = IdPConfig()
        config.load(
            {
                "entityid": self.entity_id,
                "service": {
                    "idp": {
                        "endpoints": {
                            "single_sign_on_service": [
                                (f"{self.entity_id}/sso", BINDING_HTTP_REDIRECT)
                            ]
                        },
                        "policy": {
                            "default": {
                                "lifetime": {"minutes": 5},
                                "name_form": ATTRNAME_FORMAT_URI,
                            }
                        },
                        "name_id_format": [NAMEID_PERSISTENT],
                    }
                },
                "key_file": str(self.signing_key.key_path),
                "cert_file": str(self.signing_key.certificate_path),
                "metadata": {"inline": [metadata]},
                "xmlsec_binary": get_xmlsec_binary(),
            }
        )
        return Server(config=config)

    def response(self, sp_entity_id, acs_url, attributes, name_id="bob", sp_metadata=None):
        """Return a base64 unsolicited Response for the SP, signed twice with RSA-SHA256.

        With `sp_metadata` (an SP metadata document) and no `acs_url`, the
        response goes to the metadata's first HTTP-POST AssertionConsumerService.
        """
        from saml2.saml import NameID
        from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

        server = self._server(sp_entity_id, [acs_url], sp_metadata)
        if acs_url is None:
            services = server.metadata.assertion_consumer_service(sp_entity_id, BINDING_HTTP_POST)
            assert services, f"the SP metadata of {sp_entity_id} has no HTTP-POST AssertionConsumerService"
            acs_url = services[0]["location"]
        response = server.create_authn_response(
            identity={name: list(values) for name, values in attributes.items()},
            in_response_to=None,
            destination=acs_url,
            sp_entity_id=sp_entity_id,
            name_id=NameID(format=NAMEID_PERSISTENT, text=name_id),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
            sign_response=True,
            sign_assertion=True,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        return base64.b64encode(str(response).encode()).decode()


# --- samlify ----------------------------------------------------------------


class SamlifyIdp:
    """samlify (Node) signing responses built from a template with chosen values.

    `mint` takes the same defaults for every response: a valid unsolicited
    response for the SP, and overrides that make it wrong in one property.
    """

    def __init__(self, work_dir, entity_id="https://samlify-idp.keyless.test/idp"):
        self.work_dir = Path(work_dir) / "samlify"
        self.entity_id = entity_id
        self.signing_key = make_signing_key(self.work_dir, "samlify-idp")

    def defaults(self, sp_entity_id, acs_url, role="DataScience"):
        """Return the fields of a valid response for the SP, for `mint` to override."""
        return {
            "issuer": self.entity_id,
            "audience": sp_entity_id,
            "destination": acs_url,
            "recipient": acs_url,
            "inResponseTo": None,
            "statusCode": STATUS_SUCCESS,
            "notBeforeOffsetSeconds": -30,
            "notOnOrAfterOffsetSeconds": 300,
            "nameId": "carol",
            "attributes": {ROLE_ATTRIBUTE: [role], PRINCIPAL_NAME_ATTRIBUTE: ["carol@example.org"]},
            "signatureAlgorithm": RSA_SHA256,
            "signResponse": True,
        }

    def mint(self, responses):
        """Sign each named response description and return {name: base64 SAMLResponse}.

        `responses` maps a name to the full field set (see `defaults`).
        """
        request = {
            "privateKeyPem": self.signing_key.key_pem,
            "certificatePem": self.signing_key.certificate_pem,
            "responses": responses,
        }
        result = subprocess.run(
            ["node", str(SAMLIFY_SCRIPT)],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            cwd=TESTS_DIR,
            timeout=60,
        )
        assert result.returncode == 0, f"samlify_idp.mjs failed: {result.stderr[-3000:]}"
        return json.loads(result.stdout)


# --- an independent check ---------------------------------------------------


@dataclass
class CheckedResponse:
    """What xmlsec1 verified, and the fields the tests compare."""

    issuer: str
    assertion_issuer: str
    destination: str
    in_response_to: str
    status: str
    audiences: list
    recipient: str
    not_before: str
    not_on_or_after: str
    attributes: dict
    signature_algorithms: list
    digest_algorithms: list
    canonicalization_algorithms: list


def xmlsec_verify(xml_path, certificate_path, signature_xpath):
    """Verify one Signature element with xmlsec1 and the given certificate only.

    Only the RSA key of the configured certificate is used: KeyInfo
    certificates in the message are not trusted, because x509 key data is
    disabled.
    """
    command = [
        shutil.which("xmlsec1") or "xmlsec1",
        "--verify",
        "--enabled-key-data",
        "rsa",
        "--pubkey-cert-pem",
        str(certificate_path),
        "--id-attr:ID",
        "urn:oasis:names:tc:SAML:2.0:protocol:Response",
        "--id-attr:ID",
        "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
        "--node-xpath",
        signature_xpath,
        str(xml_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    return result.returncode == 0, result.stderr


def check_response(saml_response, certificate_path):
    """Verify both signatures of a base64 Response with xmlsec1 and return its fields.

    Raises AssertionError naming what failed: a signature, a reference that
    does not point at its parent element, or more than one Assertion.
    """
    xml_text = decode_response(saml_response)
    root = ElementTree.fromstring(xml_text)
    assert root.tag == f"{{{NAMESPACES['samlp']}}}Response", f"root element is {root.tag}"
    assertions = root.findall("saml:Assertion", NAMESPACES)
    assert len(assertions) == 1, f"expected one Assertion, found {len(assertions)}"
    assertion = assertions[0]

    signatures = {
        "Response": (root, "/*[local-name()='Response']/*[local-name()='Signature']"),
        "Assertion": (
            assertion,
            "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']",
        ),
    }
    with tempfile.TemporaryDirectory() as directory:
        xml_path = Path(directory) / "response.xml"
        xml_path.write_text(xml_text)
        for element_name, (element, xpath) in signatures.items():
            signature = element.find("ds:Signature", NAMESPACES)
            assert signature is not None, f"the {element_name} is not signed"
            references = signature.findall("ds:SignedInfo/ds:Reference", NAMESPACES)
            assert len(references) == 1, f"the {element_name} signature has {len(references)} references"
            assert references[0].get("URI") == "#" + element.get("ID"), (
                f"the {element_name} signature references {references[0].get('URI')}, "
                f"not the {element_name} ID {element.get('ID')}"
            )
            verified, output = xmlsec_verify(xml_path, certificate_path, xpath)
            assert verified, f"xmlsec1 rejected the {element_name} signature: {output}"

    def text(path, element=assertion):
        found = element.find(path, NAMESPACES)
        return None if found is None else (found.text or "").strip()

    def algorithms(path):
        return sorted({found.get("Algorithm") for found in root.iter(f"{{{NAMESPACES['ds']}}}{path}")})

    confirmation = assertion.find(
        "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", NAMESPACES
    )
    conditions = assertion.find("saml:Conditions", NAMESPACES)
    attributes = {}
    for attribute in assertion.iterfind("saml:AttributeStatement/saml:Attribute", NAMESPACES):
        values = [value.text or "" for value in attribute.findall("saml:AttributeValue", NAMESPACES)]
        attributes[attribute.get("Name")] = values
    status = root.find("samlp:Status/samlp:StatusCode", NAMESPACES)
    return CheckedResponse(
        issuer=text("saml:Issuer", root),
        assertion_issuer=text("saml:Issuer"),
        destination=root.get("Destination"),
        in_response_to=root.get("InResponseTo"),
        status=None if status is None else status.get("Value"),
        audiences=[
            (found.text or "").strip()
            for found in assertion.iterfind(
                "saml:Conditions/saml:AudienceRestriction/saml:Audience", NAMESPACES
            )
        ],
        recipient=None if confirmation is None else confirmation.get("Recipient"),
        not_before=None if conditions is None else conditions.get("NotBefore"),
        not_on_or_after=None if conditions is None else conditions.get("NotOnOrAfter"),
        attributes=attributes,
        signature_algorithms=algorithms("SignatureMethod"),
        digest_algorithms=algorithms("DigestMethod"),
        canonicalization_algorithms=algorithms("CanonicalizationMethod"),
    )
