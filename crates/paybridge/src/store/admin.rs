//! What the operator commands keep between runs: `meta` values (replay schedule, backfill
//! cursor), the progress of a backfill run, and the hourly counters `paybridge report`
//! reads (HubSpot calls and 429s, which no other table records).

use std::collections::BTreeMap;

use sqlx::Row;

use super::{Store, StoreError};

/// The hour (unix ms of its start) a moment belongs to.
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(3_600_000) * 3_600_000
}

/// How the events of one backfill run stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunProgress {
    /// Stored by this run.
    pub events: u64,
    /// Waiting for (or in) a run: pending or retrying.
    pub waiting: u64,
    /// Finished: done, dead, needs_attention or ignored.
    pub finished: u64,
    pub dead: u64,
    pub needs_attention: u64,
}

impl Store {
    /// Sets several `meta` keys in one transaction (a value of None deletes the key).
    pub async fn meta_set(&self, pairs: &[(&str, Option<String>)]) -> Result<(), StoreError> {
        let pairs: Vec<(String, Option<String>)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        self.write(move |c| {
            Box::pin(async move {
                for (key, value) in &pairs {
                    match value {
                        Some(value) => {
                            sqlx::query(
                                "INSERT INTO meta (key, value) VALUES ($1, $2)
                                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                            )
                            .bind(key)
                            .bind(value)
                            .execute(&mut *c)
                            .await?;
                        }
                        None => {
                            sqlx::query("DELETE FROM meta WHERE key = $1")
                                .bind(key)
                                .execute(&mut *c)
                                .await?;
                        }
                    }
                }
                Ok(())
            })
        })
        .await
    }

    /// The events whose id starts with `prefix` (a backfill run's), by status.
    pub async fn run_progress(&self, prefix: &str) -> Result<RunProgress, StoreError> {
        // A range on the primary key (LIKE would not use it): every id with the prefix
        // sorts between `prefix` and `prefix` + U+FFFF.
        let upper = format!("{prefix}\u{ffff}");
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM events WHERE id >= $1 AND id < $2 GROUP BY status",
        )
        .bind(prefix)
        .bind(&upper)
        .fetch_all(self.reader())
        .await?;
        let mut p = RunProgress::default();
        for row in &rows {
            let status: String = row.try_get("status")?;
            let n = u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0);
            p.events += n;
            match status.as_str() {
                "pending" | "retrying" => p.waiting += n,
                "dead" => {
                    p.dead += n;
                    p.finished += n;
                }
                "needs_attention" => {
                    p.needs_attention += n;
                    p.finished += n;
                }
                _ => p.finished += n,
            }
        }
        Ok(p)
    }

    /// Adds counts to the hour of `at_ms` (zero counts are skipped).
    pub async fn add_counters(&self, at_ms: i64, counts: &[(&str, u64)]) -> Result<(), StoreError> {
        let hour = hour_of(at_ms);
        let counts: Vec<(String, i64)> = counts
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| ((*k).to_owned(), i64::try_from(*n).unwrap_or(i64::MAX)))
            .collect();
        if counts.is_empty() {
            return Ok(());
        }
        self.write(move |c| {
            Box::pin(async move {
                for (name, n) in &counts {
                    sqlx::query(
                        "INSERT INTO counters (hour, name, value) VALUES ($1, $2, $3)
                         ON CONFLICT(hour, name) DO UPDATE SET value = counters.value + excluded.value",
                    )
                    .bind(hour)
                    .bind(name)
                    .bind(n)
                    .execute(&mut *c)
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Counter totals over the hours that start at or after the hour of `since_ms`.
    pub async fn counters_since(&self, since_ms: i64) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, CAST(SUM(value) AS BIGINT) AS total FROM counters WHERE hour >= $1 GROUP BY name",
        )
        .bind(hour_of(since_ms))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("total")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
