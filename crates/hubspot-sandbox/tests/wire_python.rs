//! Wire compatibility with clients we did not write: HubSpot's and Stripe's
//! official Python libraries run against the sandbox (scripts in tests/python/).
//!
//! The interpreter is `$PAYBRIDGE_TEST_PYTHON`, else `<workspace>/target/pyvenv/bin/python`
//! (created by `scripts/test` from tests/python/requirements.txt). Without either
//! the test fails: it must never pass silently.

mod common;

use std::path::PathBuf;

use common::spawn_with;
use serde_json::json;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PAYBRIDGE_TEST_PYTHON") {
        let p = PathBuf::from(p);
        assert!(
            p.exists(),
            "PAYBRIDGE_TEST_PYTHON={} does not exist",
            p.display()
        );
        return p;
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pyvenv/bin/python");
    assert!(
        venv.exists(),
        "no Python with the official clients: set PAYBRIDGE_TEST_PYTHON or run scripts/test \
         (it creates target/pyvenv from crates/hubspot-sandbox/tests/python/requirements.txt)"
    );
    venv
}

async fn run(script: &str, envs: &[(&str, String)]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let mut cmd = tokio::process::Command::new(python());
    cmd.arg(&path);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("python starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("OK"),
        "{script} printed:\n{stdout}\n{stderr}"
    );
}

#[tokio::test]
async fn hubspots_python_client_reads_what_the_sandbox_writes() {
    let api = spawn_with(common::unlimited()).await;
    run(
        "hubspot_client.py",
        &[
            ("SANDBOX_URL", api.sandbox.url()),
            ("SANDBOX_TOKEN", common::TOKEN.to_owned()),
        ],
    )
    .await;
    let state = api.sandbox.state();
    assert_eq!(state["contacts"].as_array().map(Vec::len), Some(3));
    assert_eq!(state["tasks"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn stripes_python_library_lists_events_and_retrieves_customers() {
    let api = spawn_with(common::unlimited()).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let fixture = |name: &str| -> serde_json::Value {
        let path = format!(
            "{}/../paybridge/fixtures/stripe/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
    };
    let names = [
        "customer.created",
        "invoice.paid",
        "charge.failed",
        "invoice.payment_failed",
        "customer.subscription.updated",
    ];
    for (i, name) in names.iter().enumerate() {
        let mut event = fixture(name);
        event["created"] = json!(now - 600 + i as i64 * 60);
        api.sandbox
            .record_stripe_event(event, *name != "invoice.payment_failed");
    }
    let customer = fixture("customer.created")["data"]["object"].clone();
    api.sandbox
        .merge_seed(
            serde_json::from_value(json!({"stripe": {"customers": [
                customer,
                {"id": "cus_gone", "object": "customer", "created": now, "deleted": true},
            ],
            // A thin event's related object and the event itself, fetched by the SDK.
            "objects": [
                fixture("api/v1.invoices.retrieve.in_1SBxE9QmT3xK8rLvR3tY6uIo"),
                // The charges list reconcile reads.
                fixture("charge.failed")["data"]["object"].clone(),
            ],
            "thin_events": [fixture(
                "api/v2.core.events.retrieve.evt_test_65TcK4xQmT3xK8rLv16TcK4pW2nB8vC3xZ9qL5sD7fG1hJ0kM4"
            )]}}))
            .expect("seed"),
        )
        .expect("seeded");
    run(
        "stripe_client.py",
        &[
            ("SANDBOX_URL", api.sandbox.url()),
            ("EXPECTED_EVENTS", names.len().to_string()),
            ("CHARGE_ID", "ch_3SBxFXQmT3xK8rLv0Yu2Io4P".to_owned()),
            ("CHARGE_CUSTOMER", "cus_T7aLp4qZ9cXn2W".to_owned()),
            (
                "THIN_FIXTURE",
                format!(
                    "{}/../paybridge/fixtures/stripe/story-2/v2.core.event.v1.invoice.payment_failed.json",
                    env!("CARGO_MANIFEST_DIR")
                ),
            ),
        ],
    )
    .await;
}
