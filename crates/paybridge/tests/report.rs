//! The report from a scripted history played through the real pipeline on a manual clock:
//! every event received and finished at a chosen moment, so percentiles, recovery and
//! churn come out exact.

mod common;

use std::collections::BTreeMap;

use common::process::binary;
use common::story::event;
use common::{spawn_app_with, spawn_sandbox, use_sandbox};
use hubspot_sandbox::{Faults, SandboxConfig};
use paybridge::domain::Clock;
use paybridge::ops::report::{Actions, Churn, Durations, HubspotUsage, Latency};
use paybridge::store::Store;
use serde_json::Value;

const H: i64 = 3_600;
const D: i64 = 86_400;
/// The scripted month starts here (unix seconds); the report looks from a day before.
const T0: i64 = 1_790_000_000;

struct Scripted {
    value: Value,
    /// ms between `created` and the moment it is received and processed
    delay_ms: i64,
}

fn invoice(
    fixture: &str,
    id: &str,
    customer: &str,
    invoice: &str,
    sub: Option<&str>,
    created: i64,
    delay_ms: i64,
) -> Scripted {
    let email = format!("{customer}@example.com");
    let mut e = event(fixture, id, customer, &email, created);
    e["data"]["object"]["id"] = invoice.into();
    e["data"]["object"]["parent"]["subscription_details"]["subscription"] =
        sub.map_or(Value::Null, Value::from);
    Scripted { value: e, delay_ms }
}

fn cancelled(
    id: &str,
    customer: &str,
    sub: &str,
    reason: &str,
    created: i64,
    delay_ms: i64,
) -> Scripted {
    let email = format!("{customer}@example.com");
    let mut e = event(
        "customer.subscription.deleted.json",
        id,
        customer,
        &email,
        created,
    );
    e["data"]["object"]["id"] = sub.into();
    e["data"]["object"]["cancellation_details"]["reason"] = reason.into();
    Scripted { value: e, delay_ms }
}

/// The month: four invoices fail (A twice); A is paid 2 days after its first failure, B
/// after 5 days; C's subscription is cancelled by Stripe for non-payment, D stays unpaid;
/// G failed before the window and its subscription is cancelled in it; E cancels without
/// any failure; ten other payments go through. Twenty events act, with these delays.
fn script() -> Vec<Scripted> {
    let failed = "invoice.payment_failed.json";
    let paid = "invoice.paid.json";
    let t = T0;
    let mut s = vec![
        invoice(
            failed,
            "evt_g_fail",
            "cus_g",
            "in_g",
            Some("sub_g"),
            t - 10 * D,
            500,
        ),
        invoice(
            failed,
            "evt_a_fail1",
            "cus_a",
            "in_a",
            Some("sub_a"),
            t + H,
            150,
        ),
        invoice(
            failed,
            "evt_b_fail",
            "cus_b",
            "in_b",
            Some("sub_b"),
            t + 2 * H,
            180,
        ),
        invoice(
            failed,
            "evt_c_fail",
            "cus_c",
            "in_c",
            Some("sub_c"),
            t + 3 * H,
            200,
        ),
        invoice(
            failed,
            "evt_d_fail",
            "cus_d",
            "in_d",
            Some("sub_d"),
            t + 4 * H,
            220,
        ),
        invoice(
            failed,
            "evt_a_fail2",
            "cus_a",
            "in_a",
            Some("sub_a"),
            t + H + D,
            260,
        ),
        invoice(
            paid,
            "evt_a_paid",
            "cus_a",
            "in_a",
            Some("sub_a"),
            t + H + 2 * D,
            400,
        ),
        invoice(
            paid,
            "evt_b_paid",
            "cus_b",
            "in_b",
            Some("sub_b"),
            t + 2 * H + 5 * D,
            600,
        ),
        cancelled(
            "evt_c_cancel",
            "cus_c",
            "sub_c",
            "payment_failed",
            t + 3 * H + 7 * D,
            700,
        ),
        cancelled(
            "evt_g_cancel",
            "cus_g",
            "sub_g",
            "cancellation_requested",
            t + 12 * H,
            800,
        ),
        cancelled(
            "evt_e_cancel",
            "cus_e",
            "sub_e",
            "cancellation_requested",
            t + 13 * H,
            1_200,
        ),
    ];
    let others = [250, 300, 310, 320, 350, 450, 500, 1_500, 9_000, 30_000];
    for (k, delay) in others.into_iter().enumerate() {
        let customer = format!("cus_p{k}");
        s.push(invoice(
            paid,
            &format!("evt_p{k}_paid"),
            &customer,
            &format!("in_p{k}"),
            Some(&format!("sub_p{k}")),
            t + (5 + k as i64) * H,
            delay,
        ));
    }
    s.sort_by_key(|e| e.value["created"].as_i64());
    s
}

#[tokio::test]
async fn a_scripted_month_gives_the_exact_numbers() {
    let sandbox = spawn_sandbox(SandboxConfig::default()).await;
    let clock = Clock::manual((T0 - 20 * D) * 1000);
    let app = spawn_app_with(
        |s| {
            use_sandbox(s, &sandbox);
            s.worker.max_attempts = 3;
            s.report.minutes_per_action =
                BTreeMap::from([("default".into(), 2.0), ("update_contact".into(), 1.5)]);
        },
        clock.clone(),
    )
    .await;
    for e in script() {
        let created = e.value["created"].as_i64().expect("created");
        clock.set_ms(created * 1000 + e.delay_ms);
        let r = app
            .post_signed(&serde_json::to_vec(&e.value).expect("json"))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(app.drain().await, 1);
    }
    // F's payment meets a HubSpot that answers 5xx: three attempts, then a dead letter.
    let f = invoice(
        "invoice.paid.json",
        "evt_f_paid",
        "cus_f",
        "in_f",
        None,
        T0 + 17 * H,
        100,
    );
    clock.set_ms((T0 + 17 * H) * 1000 + 100);
    sandbox.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let r = app
        .post_signed(&serde_json::to_vec(&f.value).expect("json"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.drain().await, 3);
    sandbox.set_faults(Faults::default());
    let until = clock.now_ms();
    let dir = app.stop().await;

    let store = Store::open(&common::pg::store_url_for(dir.path()), clock.clone())
        .await
        .expect("store");
    let since_ms = (T0 - D) * 1000;
    let minutes = BTreeMap::from([("default".into(), 2.0), ("update_contact".into(), 1.5)]);
    let report = paybridge::ops::report::build(&store, since_ms, until, &minutes)
        .await
        .expect("report");
    store.close().await;

    assert_eq!(
        report.payment_to_crm,
        Latency {
            count: 20,
            p50_ms: Some(350),
            p95_ms: Some(9_000),
            p99_ms: Some(30_000),
            max_ms: Some(30_000),
        }
    );
    assert_eq!(report.payments.failed, 4);
    assert_eq!(report.payments.failed_events, 5);
    assert_eq!(report.payments.recovered, 2);
    assert_eq!(report.payments.recovery_rate, Some(0.5));
    assert_eq!(
        report.payments.time_to_recover,
        Durations {
            count: 2,
            p50_secs: Some(2 * D),
            p95_secs: Some(5 * D),
            max_secs: Some(5 * D),
        }
    );
    assert_eq!(
        report.churn,
        Churn {
            cancelled: 3,
            involuntary: 2,
            voluntary: 1,
        }
    );
    assert_eq!(
        report.actions,
        Actions {
            total: 20,
            by_kind: BTreeMap::from([("update_contact".into(), 20)]),
        }
    );
    assert_eq!(report.minutes_saved, 30.0);
    assert_eq!(report.retries, 2);
    assert_eq!(report.dead_letters, 1);
    assert_eq!(report.needs_attention, 0);
    assert_eq!(report.events.total, 21);
    assert_eq!(
        report.events.by_status,
        BTreeMap::from([("dead".into(), 1), ("done".into(), 20)])
    );
    let stats = sandbox.stats();
    let usage = &stats["tokens"][SandboxConfig::default().token.as_str()];
    assert_eq!(
        report.hubspot,
        HubspotUsage {
            calls: usage["calls"].as_u64().expect("calls"),
            rate_limited: 0,
        },
        "every call the app made, as HubSpot counted them: {stats}"
    );
    assert!(report.hubspot.calls > 20, "{:?}", report.hubspot);

    // The command prints the same report from the store.
    let config = dir.path().join("report.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = \"{}\"\n[stripe]\nwebhook_secrets = [\"whsec_unused\"]\n[hubspot]\ntoken = \"unused\"\n[report]\nminutes_per_action = {{ default = 2, update_contact = 1.5 }}\n",
            common::pg::store_url_for(dir.path())
        ),
    )
    .expect("config");
    let run = |json: bool| {
        let mut cmd = binary();
        cmd.arg("--config")
            .arg(&config)
            .args(["report", "--since", &(T0 - D).to_string()])
            .env_remove("PAYBRIDGE_CONFIG");
        if json {
            cmd.arg("--json");
        }
        cmd.output().expect("runs")
    };
    let out = run(true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut printed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut expected = serde_json::to_value(&report).expect("JSON");
    for v in [&mut printed, &mut expected] {
        v.as_object_mut().map(|o| o.remove("until"));
    }
    assert_eq!(printed, expected);
    assert_eq!(printed["payment_to_crm"]["p95_ms"], 9_000);
    assert_eq!(printed["payments"]["recovery_rate"], 0.5);

    let out = run(false);
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "payment → CRM        p50 0.35 s  p95 9.00 s  p99 30.0 s  (20 events)",
        "payments failed      4 invoices (5 failed attempts)",
        "  recovered          2 (50.0%), after 2.0 d (p50), 5.0 d (p95)",
        "involuntary churn    2 subscriptions cancelled after failed payments (3 cancelled in all)",
        "  update_contact     20",
        "time saved           0.5 h (30 min at [report] minutes_per_action)",
        "retries              2",
        "dead letters         1 (0 need attention)",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}
