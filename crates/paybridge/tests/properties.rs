//! Property-based tests of the parsers that read outside input: the Stripe event envelope,
//! the `Stripe-Signature` header and the config loader. On any input: no panic, and a
//! refusal that says what is wrong (a non-empty message, a code from a small set, a path).

use std::collections::HashMap;

use paybridge::basics::Secret;
use paybridge::stripe::{Envelope, sign, verify};
use proptest::prelude::*;

const SECRET: &str = "whsec_property_0123456789";
const NOW: i64 = 1_790_000_000;

/// Pieces a Stripe event is made of, shuffled into almost-events.
fn almost_event() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just("null".to_owned()),
        Just("\"\"".to_owned()),
        Just("1e309".to_owned()),
        Just("-1".to_owned()),
        Just("{}".to_owned()),
        Just("[]".to_owned()),
        "\"[a-z._*]{0,120}\"",
        "\"evt_[A-Za-z0-9]{0,40}\"",
        "[0-9]{1,25}",
        Just("{\"object\":{\"id\":\"cus_1\",\"object\":\"customer\"}}".to_owned()),
    ];
    let key = prop_oneof![
        Just("id"),
        Just("object"),
        Just("type"),
        Just("created"),
        Just("data"),
        Just("livemode"),
        Just("api_version"),
        Just("account"),
    ];
    prop::collection::vec((key, value), 0..10).prop_map(|pairs| {
        let fields: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", fields.join(",")).into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_envelope_parser_refuses_any_bytes_clearly(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Err(e) = Envelope::parse(&bytes) {
            prop_assert!(!e.to_string().is_empty());
            prop_assert!(!e.code().is_empty());
        }
    }

    #[test]
    fn the_envelope_parser_refuses_almost_events_clearly(body in almost_event()) {
        match Envelope::parse(&body) {
            Ok(envelope) => {
                prop_assert!(envelope.id.as_str().starts_with("evt_"));
                prop_assert!(!envelope.kind.is_empty());
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn the_signature_header_parser_refuses_anything_but_a_good_signature(
        header in prop_oneof![
            ".{0,300}",
            prop::collection::vec(
                prop_oneof![
                    "t=-?[0-9]{0,22}",
                    "v1=[0-9a-f]{0,70}",
                    "v0=[0-9a-f]{0,64}",
                    "[a-z0-9]{0,3}=?[ ,=]{0,3}",
                ],
                0..8,
            )
            .prop_map(|parts| parts.join(",")),
        ],
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let secrets = [Secret::new(SECRET.into())];
        match verify(&header, &body, &secrets, 300, NOW) {
            // Only a header carrying the right HMAC can pass, and then for its own time.
            Ok(t) => {
                let expected = sign(SECRET, t, &body);
                let v1 = expected.split(',').nth(1).unwrap_or_default().to_owned();
                prop_assert!(header.split(',').any(|p| p.trim() == v1));
            }
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                prop_assert!(!e.code().is_empty());
            }
        }
    }

    #[test]
    fn a_good_signature_passes_whatever_surrounds_it(
        junk in prop::collection::vec("(v0|v2|x[a-z]{0,2})=[a-z0-9]{0,10}", 0..4),
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let signed = sign(SECRET, NOW, &body);
        let header = junk.iter().cloned().chain([signed]).collect::<Vec<_>>().join(",");
        let secrets = [Secret::new(SECRET.into())];
        prop_assert_eq!(verify(&header, &body, &secrets, 300, NOW).ok(), Some(NOW));
    }

    #[test]
    fn the_config_loader_refuses_any_text_clearly(text in ".{0,400}") {
        config_reads_or_explains(&text);
    }

    #[test]
    fn the_config_loader_refuses_almost_configs_clearly(
        lines in prop::collection::vec(
            (
                prop_oneof![
                    Just("[server]"), Just("[stripe]"), Just("[hubspot]"), Just("[worker]"),
                    Just("[outbound]"), Just("[store]"), Just("[[rules]]"), Just("[nonsense]"), Just(""),
                ],
                prop_oneof![
                    Just("listen"), Just("admin_token"), Just("max_connections"), Just("admin_tls"),
                    Just("webhook_secrets"), Just("token"), Just("allow_hosts"), Just("url"),
                    Just("concurrency"), Just("name"), Just("on"), Just("actions"), Just("tls_cert"),
                ],
                prop_oneof![
                    Just("\"\"".to_owned()), Just("true".to_owned()), Just("-1".to_owned()),
                    Just("99999999999999999999".to_owned()), Just("[]".to_owned()), Just("{}".to_owned()),
                    Just("[\"env:NOPE\"]".to_owned()), Just("\"file:/nonexistent\"".to_owned()),
                    Just("[{ type = \"call_webhook\", url = \"https://{{ x }}/\" }]".to_owned()),
                    "\"[ -~]{0,40}\"",
                ],
            ),
            0..12,
        ),
    ) {
        let text: String = lines
            .iter()
            .map(|(section, key, value)| format!("{section}\n{key} = {value}\n"))
            .collect();
        config_reads_or_explains(&text);
    }
}

/// Loads `text`: either settings, or a refusal in which every problem has a path (or names
/// the file) and a message.
fn config_reads_or_explains(text: &str) {
    let env = HashMap::new();
    if let Err(e) = paybridge::app::load::load_from_str(Some(text), None, &env) {
        assert!(!e.problems.is_empty(), "a refusal lists its problems");
        for p in &e.problems {
            assert!(!p.path.is_empty(), "{p}");
            assert!(!p.message.is_empty(), "{p}");
        }
    }
}
