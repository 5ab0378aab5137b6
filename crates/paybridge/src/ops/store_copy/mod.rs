//! `paybridge store copy`: a SQLite store copied into an empty Postgres database, to move
//! from one process to several replicas (issue 16).
//!
//! - The target's schema is this build's: `Store::open` runs its Postgres migrations.
//! - The source is opened read-only and read inside one read transaction: in WAL mode a
//!   reader sees the database as of its first read until the transaction ends ("snapshot
//!   isolation", <https://www.sqlite.org/isolation.html>), so a `serve` writing meanwhile
//!   cannot tear the copy (an event without its job, a job without its steps).
//! - Everything is written in one Postgres transaction: a failure leaves the target empty.
//!   Identity sequences are moved past the copied ids before the commit.
//! - Jobs running at the time (status `running`, a lease until `locked_until`) are copied as
//!   they are: when the lease expires, a replica reclaims the job as it would a dead
//!   worker's.

mod rows;
mod schema;

use std::str::FromStr as _;

use anyhow::Context as _;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection as _, PgConnection, SqliteConnection};

use crate::UsageError;
use crate::basics::printable;
use crate::domain::Clock;
use crate::store::{Dialect, Store, latest_migration, redacted_url};

use schema::Table;

/// Rows of one table at both ends after the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: String,
    pub source: u64,
    pub target: u64,
}

/// What a copy did, table by table (in the order they were filled).
#[derive(Debug, Clone)]
pub struct Copied {
    pub schema_version: i64,
    pub tables: Vec<TableCount>,
}

/// Copies the SQLite store at `from` into the empty Postgres database at `to`.
pub async fn copy(from: &str, to: &str) -> anyhow::Result<Copied> {
    check_urls(from, to)?;
    let expected = latest_migration(Dialect::Sqlite);
    // The source first: a mistyped path stops here, before the target is touched.
    let mut source = open_source(from).await?;
    // Creates the schema (or finds it current); the store's own handle is not needed after.
    // Its errors name the URL (without the password) and keep their exit code: unreachable
    // is a ConfigError (exit 2), so no context is wrapped around them.
    let store = Store::open(to, Clock::system()).await?;
    store.close().await;
    let mut target = PgConnection::connect(to)
        .await
        .with_context(|| format!("cannot connect to the target {}", shown(to)))?;
    let copied = copy_between(&mut source, &mut target, expected).await;
    let _ = target.close().await;
    let _ = source.close().await;
    copied
}

/// The copy itself, between open connections: `target` holds this build's schema.
/// Refuses a source of another schema version than `expected` and a non-empty target.
async fn copy_between(
    source: &mut SqliteConnection,
    target: &mut PgConnection,
    expected: i64,
) -> anyhow::Result<Copied> {
    // The snapshot starts at the first read below and lasts until `read` ends.
    let mut read = source
        .begin()
        .await
        .context("cannot start reading the source")?;
    let version = schema::source_version(&mut read).await?;
    if version != expected {
        let what = if version < expected {
            "migrate it first by starting this paybridge on it once (it migrates at start)"
        } else {
            "copy it with the paybridge that wrote it"
        };
        return Err(UsageError(format!(
            "the source store is at schema version {version} and this paybridge at \
             {expected}: {what}"
        ))
        .into());
    }
    let tables = schema::source_tables(&mut read).await?;
    let mut write = target
        .begin()
        .await
        .context("cannot start a transaction on the target")?;
    // Waiting for a lock held by a running paybridge is not worth more than this.
    sqlx::query("SET LOCAL lock_timeout = '10s'")
        .execute(&mut *write)
        .await
        .context("cannot set the target's lock timeout")?;
    let tables = schema::match_target(&mut write, tables).await?;
    schema::lock_and_refuse_rows(&mut write, &tables).await?;
    let mut counts = Vec::with_capacity(tables.len());
    for table in &tables {
        let written = rows::copy_table(&mut read, &mut write, table).await?;
        let count = count_both(&mut read, &mut write, table).await?;
        if count.source != count.target || written != count.source {
            anyhow::bail!(
                "{}: {} rows in the source, {written} written, {} in the target; nothing was \
                 committed",
                printable(&table.name),
                count.source,
                count.target
            );
        }
        move_sequences(&mut write, table).await?;
        tracing::info!(table = %printable(&table.name), rows = written, "table copied");
        counts.push(count);
    }
    write
        .commit()
        .await
        .context("cannot commit the copy to the target")?;
    read.rollback()
        .await
        .context("cannot end the read of the source")?;
    Ok(Copied {
        schema_version: version,
        tables: counts,
    })
}

async fn count_both(
    source: &mut SqliteConnection,
    target: &mut PgConnection,
    table: &Table,
) -> anyhow::Result<TableCount> {
    let sql = format!("SELECT count(*) FROM {}", schema::quoted(&table.name));
    let shown = printable(&table.name);
    let source_rows: i64 = sqlx::query_scalar(&sql)
        .fetch_one(&mut *source)
        .await
        .with_context(|| format!("cannot count the source's {shown}"))?;
    let target_rows: i64 = sqlx::query_scalar(&sql)
        .fetch_one(&mut *target)
        .await
        .with_context(|| format!("cannot count the target's {shown}"))?;
    Ok(TableCount {
        table: table.name.clone(),
        source: u64::try_from(source_rows).unwrap_or(0),
        target: u64::try_from(target_rows).unwrap_or(0),
    })
}

/// Every identity (or serial) sequence of `table` set past the largest id copied, and past
/// the largest id SQLite's AUTOINCREMENT ever gave (it never reuses one).
async fn move_sequences(target: &mut PgConnection, table: &Table) -> anyhow::Result<()> {
    for (column, sequence) in &table.sequences {
        let max: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT max({})::bigint FROM {}",
            schema::quoted(column),
            schema::quoted(&table.name)
        ))
        .fetch_one(&mut *target)
        .await
        .with_context(|| format!("cannot read the largest {}", printable(column)))?;
        let last = max.max(table.autoincrement).unwrap_or(0);
        // setval(seq, n, true): the next value is n + 1; (seq, 1, false): it is 1.
        let (value, called) = if last >= 1 { (last, true) } else { (1, false) };
        sqlx::query("SELECT setval($1::regclass, $2, $3)")
            .bind(sequence)
            .bind(value)
            .bind(called)
            .execute(&mut *target)
            .await
            .with_context(|| format!("cannot move the sequence {}", printable(sequence)))?;
    }
    Ok(())
}

/// `url` as it may be printed: without its password, safe for a terminal.
pub fn shown(url: &str) -> String {
    printable(&redacted_url(url)).into_owned()
}

/// Refuses anything but a SQLite source and a Postgres target (exit 2).
pub fn check_urls(from: &str, to: &str) -> anyhow::Result<()> {
    if !from.starts_with("sqlite:") {
        return Err(UsageError(format!(
            "--from {}: the source must be a SQLite store (sqlite://PATH)",
            shown(from)
        ))
        .into());
    }
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(UsageError(format!(
            "--to {}: the target must be a Postgres database (postgres://USER@HOST/DB)",
            shown(to)
        ))
        .into());
    }
    Ok(())
}

/// The source, read-only (never created: a mistyped path is an error, not a new store).
async fn open_source(from: &str) -> anyhow::Result<SqliteConnection> {
    let options = SqliteConnectOptions::from_str(from)
        .with_context(|| format!("--from {} is not a SQLite URL", shown(from)))?
        .read_only(true)
        .create_if_missing(false);
    if !options.get_filename().is_file() {
        return Err(UsageError(format!("--from {}: no such file", shown(from))).into());
    }
    SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open the source {}", shown(from)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sqlite_to_postgres_is_accepted() {
        assert!(check_urls("sqlite://a.db", "postgres://u@h/d").is_ok());
        assert!(check_urls("sqlite://a.db", "postgresql://u@h/d").is_ok());
        for (from, to) in [
            ("postgres://u@h/d", "postgres://u@h/e"),
            ("sqlite://a.db", "sqlite://b.db"),
        ] {
            let e = check_urls(from, to).expect_err("refused");
            assert!(e.is::<UsageError>(), "{e}");
        }
        let e = check_urls("sqlite://a.db", "mysql://u:hunter2@h/d").expect_err("refused");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
