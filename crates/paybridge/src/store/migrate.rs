//! A minimal migration runner: numbered SQL files compiled into the binary, one directory
//! per backend with the same numbers and names (`migrations/sqlite`, `migrations/postgres`),
//! applied in order inside one transaction each, recorded in `schema_migrations`. On
//! Postgres, replicas starting together take turns (a session advisory lock).

use sqlx::AnyPool;

use super::Dialect;

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: Option<&'static str>,
    postgres: Option<&'static str>,
}

/// A migration both backends have.
macro_rules! both {
    ($version:expr, $name:expr, $file:expr) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: Some(include_str!(concat!(
                "../../migrations/sqlite/",
                $file,
                ".sql"
            ))),
            postgres: Some(include_str!(concat!(
                "../../migrations/postgres/",
                $file,
                ".sql"
            ))),
        }
    };
}

const MIGRATIONS: &[Migration] = &[
    both!(1, "intake", "0001_intake"),
    both!(2, "pipeline", "0002_pipeline"),
    both!(3, "customers", "0003_customers"),
    both!(4, "claim_index", "0004_claim_index"),
    both!(5, "counters", "0005_counters"),
    both!(11, "thin_events", "0011_thin_events"),
    both!(12, "stripe_memory", "0012_stripe_memory"),
    both!(13, "backfill_subscriptions", "0013_backfill_subscriptions"),
    both!(31, "sessions", "0031_sessions"),
    both!(51, "reconcile", "0051_reconcile"),
    both!(52, "leases", "0052_leases"),
    // The replicas' shared HubSpot budget: one process on SQLite has its limiter in memory.
    Migration {
        version: 61,
        name: "hubspot_budget",
        sqlite: None,
        postgres: Some(include_str!(
            "../../migrations/postgres/0061_hubspot_budget.sql"
        )),
    },
];

/// The newest migration this build knows for `dialect` (`store copy` compares it).
pub fn latest(dialect: Dialect) -> i64 {
    MIGRATIONS
        .iter()
        .filter(|m| m.text(dialect).is_some())
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

impl Migration {
    fn text(&self, dialect: Dialect) -> Option<&'static str> {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        }
    }
}

/// An arbitrary, fixed key for the migration advisory lock.
const MIGRATION_LOCK: i64 = 0x7062_6d69_6772_6174;

pub async fn run(pool: &AnyPool, dialect: Dialect) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let result = apply(&mut conn, dialect).await;
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply(conn: &mut sqlx::AnyConnection, dialect: Dialect) -> Result<(), sqlx::Error> {
    use sqlx::Connection as _;
    sqlx::raw_sql(dialect.pick(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    ))
    .execute(&mut *conn)
    .await?;
    for migration in MIGRATIONS {
        let Some(sql) = migration.text(dialect) else {
            continue;
        };
        let applied: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(migration.version)
                .fetch_optional(&mut *conn)
                .await?;
        if applied.is_some() {
            continue;
        }
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(crate::domain::Clock::system().now_ms() / 1000)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "migration applied"
        );
    }
    Ok(())
}
