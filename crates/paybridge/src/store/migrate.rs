//! A minimal migration runner: numbered SQL files compiled into the binary, applied in
//! order inside one transaction each, recorded in `schema_migrations`.

use sqlx::SqlitePool;

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "intake",
        include_str!("../../migrations/sqlite/0001_intake.sql"),
    ),
    (
        2,
        "pipeline",
        include_str!("../../migrations/sqlite/0002_pipeline.sql"),
    ),
    (
        3,
        "customers",
        include_str!("../../migrations/sqlite/0003_customers.sql"),
    ),
    (
        4,
        "claim_index",
        include_str!("../../migrations/sqlite/0004_claim_index.sql"),
    ),
    (
        5,
        "counters",
        include_str!("../../migrations/sqlite/0005_counters.sql"),
    ),
    (
        11,
        "thin_events",
        include_str!("../../migrations/sqlite/0011_thin_events.sql"),
    ),
    (
        12,
        "stripe_memory",
        include_str!("../../migrations/sqlite/0012_stripe_memory.sql"),
    ),
    (
        13,
        "backfill_subscriptions",
        include_str!("../../migrations/sqlite/0013_backfill_subscriptions.sql"),
    ),
    (
        31,
        "sessions",
        include_str!("../../migrations/sqlite/0031_sessions.sql"),
    ),
    (
        51,
        "reconcile",
        include_str!("../../migrations/sqlite/0051_reconcile.sql"),
    ),
    (
        52,
        "leases",
        include_str!("../../migrations/sqlite/0052_leases.sql"),
    ),
];

pub async fn run(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    for (version, name, sql) in MIGRATIONS {
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = ?1")
                .bind(version)
                .fetch_optional(pool)
                .await?;
        if applied.is_some() {
            continue;
        }
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at)
             VALUES (?1, ?2, CAST(strftime('%s','now') AS INTEGER))",
        )
        .bind(version)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version, name, "migration applied");
    }
    Ok(())
}
