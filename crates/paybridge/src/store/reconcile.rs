//! What `paybridge reconcile` keeps: its runs (cursor for resuming, counts), the Stripe
//! customers each run has seen, and its findings (drift, missing contacts, unknown
//! customers, customers claimed twice) with the repair queued for each.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};

/// What a finding is about (stored as its `as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A contact property that differs from what Stripe's current state gives.
    Drift,
    /// A Stripe customer no contact claims.
    NoContact,
    /// A contact claiming a customer Stripe does not have (deleted, or never known).
    UnknownCustomer,
    /// Several contacts claim one customer (one finding per contact).
    ClaimedTwice,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drift => "drift",
            Self::NoContact => "no_contact",
            Self::UnknownCustomer => "unknown_customer",
            Self::ClaimedTwice => "claimed_twice",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Drift,
            Self::NoContact,
            Self::UnknownCustomer,
            Self::ClaimedTwice,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One finding of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub customer: String,
    /// The contact (empty for `no_contact`).
    pub contact_id: String,
    /// The property (drift only; empty otherwise).
    pub property: String,
    pub stripe_value: Option<String>,
    pub hubspot_value: Option<String>,
    /// The event whose write the contact's watermark for the property records, and its
    /// `created` (unix seconds).
    pub last_event: Option<String>,
    pub last_event_created: Option<i64>,
    /// A sentence more (e.g. "deleted in Stripe").
    pub detail: Option<String>,
    /// The `reconcile` event queued to repair it (`--fix`).
    pub repair_event: Option<String>,
}

/// A run as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRow {
    pub run: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub trigger: String,
    pub fix: bool,
    pub scope: Option<String>,
    pub cursor: Option<String>,
    pub customers: i64,
    pub complete: bool,
}

/// The last watermark of a property on a contact: the event that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWrite {
    pub event_id: String,
    pub created: i64,
}

fn run_row(row: &sqlx::any::AnyRow) -> Result<RunRow, sqlx::Error> {
    Ok(RunRow {
        run: row.try_get("run")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        trigger: row.try_get("trigger")?,
        fix: row.try_get::<i64, _>("fix")? != 0,
        scope: row.try_get("scope")?,
        cursor: row.try_get("cursor")?,
        customers: row.try_get("customers")?,
        complete: row.try_get::<i64, _>("complete")? != 0,
    })
}

const RUN_COLUMNS: &str =
    "run, started_at, finished_at, trigger, fix, scope, cursor, customers, complete";

impl Store {
    /// Runs started in the same millisecond, in the order they were recorded: SQLite's
    /// rowid, Postgres's `seq` column (its twin of the rowid).
    fn run_order(&self) -> &'static str {
        self.dialect().pick("rowid", "seq")
    }

    /// Records a new run.
    pub async fn reconcile_start(
        &self,
        run: &str,
        trigger: &str,
        fix: bool,
        scope: Option<&str>,
    ) -> Result<(), StoreError> {
        let now = self.clock().now_ms();
        let (run, trigger, scope) = (run.to_owned(), trigger.to_owned(), scope.map(str::to_owned));
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO reconcile_runs (run, started_at, trigger, fix, scope)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&run)
                .bind(now)
                .bind(&trigger)
                .bind(i64::from(fix))
                .bind(&scope)
                .execute(&mut *c)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// The newest run, if any.
    pub async fn reconcile_last_run(&self) -> Result<Option<RunRow>, StoreError> {
        let order = self.run_order();
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM reconcile_runs ORDER BY started_at DESC, {order} DESC LIMIT 1"
        ))
        .fetch_optional(self.reader())
        .await?;
        Ok(row.as_ref().map(run_row).transpose()?)
    }

    /// The newest run over every customer that did not go through them all (to resume).
    pub async fn reconcile_unfinished(&self) -> Result<Option<RunRow>, StoreError> {
        let order = self.run_order();
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM reconcile_runs WHERE scope IS NULL
             ORDER BY started_at DESC, {order} DESC LIMIT 1"
        ))
        .fetch_optional(self.reader())
        .await?;
        Ok(row
            .as_ref()
            .map(run_row)
            .transpose()?
            .filter(|r| !r.complete))
    }

    /// One page of a run, in one transaction: the customers seen, the findings, and the
    /// cursor after them (None keeps the cursor).
    pub async fn reconcile_page(
        &self,
        run: &str,
        seen: Vec<String>,
        findings: Vec<Finding>,
        cursor: Option<String>,
    ) -> Result<(), StoreError> {
        let run = run.to_owned();
        self.write(move |c| {
            Box::pin(async move {
                for customer in &seen {
                    sqlx::query(
                        "INSERT INTO reconcile_seen (run, customer) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&run)
                    .bind(customer)
                    .execute(&mut *c)
                    .await?;
                }
                for f in &findings {
                    insert_finding(c, &run, f).await?;
                }
                sqlx::query(
                    "UPDATE reconcile_runs SET cursor = COALESCE($2, cursor),
                         customers = (SELECT COUNT(*) FROM reconcile_seen WHERE run = $1)
                     WHERE run = $1",
                )
                .bind(&run)
                .bind(&cursor)
                .execute(&mut *c)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// The run went through every customer in its scope.
    pub async fn reconcile_finish(&self, run: &str) -> Result<(), StoreError> {
        let now = self.clock().now_ms();
        let run = run.to_owned();
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE reconcile_runs SET finished_at = $2, complete = 1 WHERE run = $1",
                )
                .bind(&run)
                .bind(now)
                .execute(&mut *c)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Every Stripe customer the run has seen alive.
    pub async fn reconcile_seen(&self, run: &str) -> Result<HashSet<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT customer FROM reconcile_seen WHERE run = $1")
                .bind(run)
                .fetch_all(self.reader())
                .await?
                .into_iter()
                .collect(),
        )
    }

    /// The run's findings, by kind, customer, contact and property.
    pub async fn reconcile_findings(&self, run: &str) -> Result<Vec<Finding>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, customer, contact_id, property, stripe_value, hubspot_value,
                    last_event, last_event_created, detail, repair_event
             FROM reconcile_findings WHERE run = $1
             ORDER BY kind, customer, contact_id, property",
        )
        .bind(run)
        .fetch_all(self.reader())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: String = row.try_get("kind")?;
            let Some(kind) = FindingKind::parse(&kind) else {
                continue;
            };
            out.push(Finding {
                kind,
                customer: row.try_get("customer")?,
                contact_id: row.try_get("contact_id")?,
                property: row.try_get("property")?,
                stripe_value: row.try_get("stripe_value")?,
                hubspot_value: row.try_get("hubspot_value")?,
                last_event: row.try_get("last_event")?,
                last_event_created: row.try_get("last_event_created")?,
                detail: row.try_get("detail")?,
                repair_event: row.try_get("repair_event")?,
            });
        }
        Ok(out)
    }

    /// How many findings of each kind (and, for drift, each property) the run has, and
    /// how many of them a repair was queued for: `(kind, property) → (found, repaired)`.
    pub async fn reconcile_counts(
        &self,
        run: &str,
    ) -> Result<BTreeMap<(String, String), (i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, property, COUNT(*) AS found, COUNT(repair_event) AS repaired
             FROM reconcile_findings WHERE run = $1 GROUP BY kind, property",
        )
        .bind(run)
        .fetch_all(self.reader())
        .await?;
        let mut out = BTreeMap::new();
        for row in &rows {
            out.insert(
                (row.try_get("kind")?, row.try_get("property")?),
                (row.try_get("found")?, row.try_get("repaired")?),
            );
        }
        Ok(out)
    }

    /// The last write recorded for each property of each contact (the watermarks).
    pub async fn last_writes(
        &self,
        contact_ids: &[String],
    ) -> Result<BTreeMap<(String, String), LastWrite>, StoreError> {
        let mut out = BTreeMap::new();
        for chunk in contact_ids.chunks(500) {
            let mut query = super::sql::Builder::new(
                "SELECT contact_id, property, created, event_id FROM watermarks WHERE contact_id IN (",
            );
            query.push_list(chunk.iter().cloned()).push(")");
            for row in query.build().fetch_all(self.reader()).await? {
                out.insert(
                    (row.try_get("contact_id")?, row.try_get("property")?),
                    LastWrite {
                        event_id: row.try_get("event_id")?,
                        created: row.try_get("created")?,
                    },
                );
            }
        }
        Ok(out)
    }
}

impl Store {
    /// Takes (or renews) the lease `name` for `holder` until `ttl_ms` from now, unless
    /// another holder's lease is still running. Whether `holder` holds it now.
    pub async fn lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool, StoreError> {
        let now = self.clock().now_ms();
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |c| {
            Box::pin(async move {
                let done = sqlx::query(
                    "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3)
                     ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                     WHERE leases.holder = excluded.holder OR leases.until <= $4",
                )
                .bind(&name)
                .bind(&holder)
                .bind(now + ttl_ms)
                .bind(now)
                .execute(&mut *c)
                .await?;
                Ok(done.rows_affected() == 1)
            })
        })
        .await
    }

    /// Gives the lease back (if `holder` still holds it).
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                    .bind(&name)
                    .bind(&holder)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// When the newest complete run over every customer started (unix ms).
    pub async fn reconcile_last_complete(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(started_at) FROM reconcile_runs WHERE scope IS NULL AND complete = 1",
        )
        .fetch_one(self.reader())
        .await?)
    }
}

async fn insert_finding(
    c: &mut sqlx::AnyConnection,
    run: &str,
    f: &Finding,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO reconcile_findings (run, kind, customer, contact_id, property,
             stripe_value, hubspot_value, last_event, last_event_created, detail, repair_event)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (run, kind, customer, contact_id, property) DO UPDATE SET
             stripe_value = excluded.stripe_value, hubspot_value = excluded.hubspot_value,
             last_event = excluded.last_event, last_event_created = excluded.last_event_created,
             detail = excluded.detail,
             repair_event = COALESCE(excluded.repair_event, reconcile_findings.repair_event)",
    )
    .bind(run)
    .bind(f.kind.as_str())
    .bind(&f.customer)
    .bind(&f.contact_id)
    .bind(&f.property)
    .bind(&f.stripe_value)
    .bind(&f.hubspot_value)
    .bind(&f.last_event)
    .bind(f.last_event_created)
    .bind(&f.detail)
    .bind(&f.repair_event)
    .execute(&mut *c)
    .await?;
    Ok(())
}
