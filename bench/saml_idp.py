#!/usr/bin/env python3
"""Write signed SAML responses from a pysaml2 IdP, one base64 response a line, for bench/saml.

bench/saml runs this file with a Python that has pysaml2 (--saml-python), because
bench/.venv does not install it. pysaml2 signs through the xmlsec1 binary, which is slow,
so the responses are made by several processes before any load starts. Every response is
unsolicited (no InResponseTo) and has its own Response and Assertion IDs, so each one can
be exchanged once.

Only the count and the output file are printed, because the responses are secrets of a
kind. They go to the output file alone (mode 0600).
"""

import argparse
import base64
import multiprocessing
import os
import sys
import time

ROLE_ATTRIBUTE = "https://coreweave.com/SAML/Attributes/Role"
PRINCIPAL_NAME_ATTRIBUTE = "https://coreweave.com/SAML/Attributes/PrincipalName"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
ATTRNAME_FORMAT_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
BINDING_HTTP_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
KINDS = ("response-and-assertion", "assertion-only")


def sp_metadata(sp_entity_id, acs_url):
    """Return minimal metadata for the service provider (keyless), which pysaml2 needs to address it."""
    return (
        f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{sp_entity_id}">'
        '<md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"<md:NameIDFormat>{NAMEID_PERSISTENT}</md:NameIDFormat>"
        f'<md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" Location="{acs_url}" index="0"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )


def idp_server(options):
    from saml2 import BINDING_HTTP_REDIRECT
    from saml2.config import IdPConfig
    from saml2.server import Server
    from saml2.sigver import get_xmlsec_binary

    config = IdPConfig()
    config.load({
        "entityid": options.idp_entity_id,
        "service": {"idp": {
            "endpoints": {"single_sign_on_service": [(f"{options.idp_entity_id}/sso", BINDING_HTTP_REDIRECT)]},
            "policy": {"default": {"lifetime": {"minutes": options.lifetime_minutes}, "name_form": ATTRNAME_FORMAT_URI}},
            "name_id_format": [NAMEID_PERSISTENT],
        }},
        "key_file": options.key,
        "cert_file": options.cert,
        "metadata": {"inline": [sp_metadata(options.sp_entity_id, options.destination)]},
        "xmlsec_binary": get_xmlsec_binary(),
    })
    return Server(config=config)


def make_responses(arguments):
    """Return `count` base64 responses of `kind`, signed with RSA-SHA256 over SHA-256 digests."""
    options, kind, count, first_index = arguments
    from saml2.saml import NameID
    from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

    server = idp_server(options)
    responses = []
    for index in range(first_index, first_index + count):
        response = server.create_authn_response(
            identity={ROLE_ATTRIBUTE: [options.role], PRINCIPAL_NAME_ATTRIBUTE: [f"bench-{index}@example.org"]},
            in_response_to=None,
            destination=options.destination,
            sp_entity_id=options.sp_entity_id,
            name_id=NameID(format=NAMEID_PERSISTENT, text=f"bench-{index}"),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
            sign_response=kind == "response-and-assertion",
            sign_assertion=True,
            sign_alg=SIG_RSA_SHA256,
            digest_alg=DIGEST_SHA256,
        )
        responses.append(base64.b64encode(str(response).encode()).decode())
    return responses


def main():
    parser = argparse.ArgumentParser(prog="bench/saml_idp.py", description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True, help="IdP RSA private key, PEM")
    parser.add_argument("--cert", required=True, help="IdP certificate, PEM")
    parser.add_argument("--idp-entity-id", required=True)
    parser.add_argument("--sp-entity-id", required=True)
    parser.add_argument("--destination", required=True, help="Destination and Recipient (keyless's ACS URL)")
    parser.add_argument("--role", required=True, help="value of the Role attribute")
    parser.add_argument("--kind", choices=KINDS, required=True,
                        help="which elements are signed: the Response and the Assertion, or the Assertion only")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--lifetime-minutes", type=int, default=60, help="assertion lifetime in minutes (default 60)")
    parser.add_argument("--out", required=True, help="output file, one base64 response a line")
    options = parser.parse_args()
    if options.count < 1 or options.processes < 1:
        parser.error(f"invalid --count {options.count} or --processes {options.processes}: both must be at least 1")

    started = time.monotonic()
    processes = min(options.processes, options.count)
    shares = [options.count // processes + (1 if index < options.count % processes else 0) for index in range(processes)]
    starts = [sum(shares[:index]) for index in range(processes)]
    jobs = [(options, options.kind, share, start) for share, start in zip(shares, starts)]
    if processes == 1:
        batches = [make_responses(jobs[0])]
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            batches = pool.map(make_responses, jobs)
    descriptor = os.open(options.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        for batch in batches:
            for response in batch:
                out.write(response + "\n")
    print(f"{options.count} {options.kind} responses in {time.monotonic() - started:.1f} s -> {options.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
