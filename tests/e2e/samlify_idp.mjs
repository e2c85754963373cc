// Sign SAML responses with samlify, one per description, for the keyless
// end-to-end tests (saml_idps.SamlifyIdp).
//
// Reads one JSON object on stdin:
//   {"privateKeyPem": "...", "certificatePem": "...",
//    "responses": {"<name>": {issuer, audience, destination, recipient,
//                             inResponseTo, statusCode, notBeforeOffsetSeconds,
//                             notOnOrAfterOffsetSeconds, nameId, attributes,
//                             signatureAlgorithm, signResponse}}}
// and prints {"<name>": "<base64 SAMLResponse>"} on stdout.
//
// The XML is built here from the given values, escaped, and handed to
// samlify through its custom template hook, so samlify signs exactly what
// the test requested. It signs the Assertion first, then the Response
// unless `signResponse` is false, each with `signatureAlgorithm` (RSA-SHA256
// unless the test requests another), the matching digest and exclusive C14N.
// A field set to null is left out of the document.

import { randomUUID } from 'node:crypto';
import samlify from 'samlify';

const POST_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';

function escapeXml(value) {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}

function instant(offsetSeconds) {
  // Whole seconds in UTC, as SimpleSAMLphp and pysaml2 write SAML times.
  return new Date(Date.now() + offsetSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function optionalAttribute(name, value) {
  return value === null || value === undefined ? '' : ` ${name}="${escapeXml(value)}"`;
}

function attributeStatement(attributes) {
  const entries = Object.entries(attributes ?? {});
  if (entries.length === 0) {
    return '';
  }
  const rendered = entries
    .map(([name, values]) => {
      const renderedValues = values
        .map((value) => `<saml:AttributeValue xsi:type="xs:string">${escapeXml(value)}</saml:AttributeValue>`)
        .join('');
      return `<saml:Attribute Name="${escapeXml(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">${renderedValues}</saml:Attribute>`;
    })
    .join('');
  return `<saml:AttributeStatement>${rendered}</saml:AttributeStatement>`;
}

function renderResponse(fields, responseId, assertionId) {
  const issueInstant = instant(0);
  const notBefore = instant(fields.notBeforeOffsetSeconds);
  const notOnOrAfter = instant(fields.notOnOrAfterOffsetSeconds);
  const inResponseTo = optionalAttribute('InResponseTo', fields.inResponseTo);
  return [
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"',
    ` ID="${responseId}" Version="2.0" IssueInstant="${issueInstant}"`,
    `${optionalAttribute('Destination', fields.destination)}${inResponseTo}>`,
    `<saml:Issuer>${escapeXml(fields.issuer)}</saml:Issuer>`,
    `<samlp:Status><samlp:StatusCode Value="${escapeXml(fields.statusCode)}"/></samlp:Status>`,
    '<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema"',
    ` ID="${assertionId}" Version="2.0" IssueInstant="${issueInstant}">`,
    `<saml:Issuer>${escapeXml(fields.issuer)}</saml:Issuer>`,
    '<saml:Subject>',
    `<saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${escapeXml(fields.nameId)}</saml:NameID>`,
    '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">',
    `<saml:SubjectConfirmationData NotOnOrAfter="${notOnOrAfter}"`,
    `${optionalAttribute('Recipient', fields.recipient)}${inResponseTo}/>`,
    '</saml:SubjectConfirmation>',
    '</saml:Subject>',
    `<saml:Conditions NotBefore="${notBefore}" NotOnOrAfter="${notOnOrAfter}">`,
    `<saml:AudienceRestriction><saml:Audience>${escapeXml(fields.audience)}</saml:Audience></saml:AudienceRestriction>`,
    '</saml:Conditions>',
    `<saml:AuthnStatement AuthnInstant="${issueInstant}" SessionIndex="${assertionId}">`,
    '<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext>',
    '</saml:AuthnStatement>',
    attributeStatement(fields.attributes),
    '</saml:Assertion>',
    '</samlp:Response>',
  ].join('');
}

async function signResponse(request, fields) {
  const identityProvider = samlify.IdentityProvider({
    entityID: fields.issuer,
    privateKey: request.privateKeyPem,
    signingCert: request.certificatePem,
    requestSignatureAlgorithm: fields.signatureAlgorithm ?? RSA_SHA256,
    singleSignOnService: [{ Binding: POST_BINDING, Location: 'https://idp.invalid/sso' }],
  });
  // samlify reads from the SP's settings what to sign. With both flags it
  // signs the Assertion and then the whole Response, and with only
  // wantAssertionsSigned it signs the Assertion alone.
  const serviceProvider = samlify.ServiceProvider({
    entityID: fields.audience ?? 'urn:unset',
    wantAssertionsSigned: true,
    wantMessageSigned: fields.signResponse ?? true,
    assertionConsumerService: [{ Binding: POST_BINDING, Location: fields.recipient ?? 'https://sp.invalid/acs' }],
  });
  const responseId = `_${randomUUID()}`;
  const assertionId = `_${randomUUID()}`;
  const { context } = await identityProvider.createLoginResponse(serviceProvider, null, 'post', {}, () => ({
    id: responseId,
    context: renderResponse(fields, responseId, assertionId),
  }));
  return context;
}

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk);
  }
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  const output = {};
  for (const [name, fields] of Object.entries(request.responses)) {
    output[name] = await signResponse(request, fields);
  }
  process.stdout.write(JSON.stringify(output));
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
