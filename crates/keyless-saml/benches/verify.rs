//! Cost of `verify` on responses signed with a 2048-bit RSA key, and the
//! share of it spent in the libxmlsec1 step (parse, signature verification
//! and reduction to the signed content).
//!
//! Run: `cargo bench -p keyless-saml --bench verify`.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use criterion::{Criterion, black_box, criterion_group, criterion_main};
use samael::crypto::{
    AllowedSignatureAlgorithm, CertificateDer, CryptoProvider, ReduceMode, XmlSec,
};

fn bench_verify(c: &mut Criterion) {
    let settings = settings();
    let certificates = vec![CertificateDer::from(idp_key().certificate().der().to_vec())];
    let allowed = [AllowedSignatureAlgorithm::RsaSha256];

    for (name, signing) in [
        ("response_and_assertion_signed", Signing::both()),
        ("assertion_signed", Signing::assertion_only()),
    ] {
        let xml = response_xml(&ResponseSpec::default(), &signing);
        let posted = encode(&xml);
        keyless_saml::verify(&posted, &settings, NOW).expect("the benchmark response is valid");

        c.bench_function(&format!("verify/{name}"), |b| {
            b.iter(|| keyless_saml::verify(black_box(&posted), &settings, NOW))
        });
        c.bench_function(&format!("xmlsec_step/{name}"), |b| {
            b.iter(|| {
                XmlSec::reduce_xml_to_signed_with_allowed_algorithms(
                    black_box(&xml),
                    &certificates,
                    ReduceMode::ValidateAndMarkNoAncestors,
                    Some(&allowed),
                )
            })
        });
    }
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
