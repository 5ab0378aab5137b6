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
use crate::store::Store;

pub use schema::Table;

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
    let expected = this_builds_schema_version().await?;
    // The source first: a mistyped path stops here, before the target is touched.
    let mut source = open_source(from).await?;
    // Creates the schema (or finds it current); the store's own handle is not needed after.
    let store = Store::open(to, Clock::system())
        .await
        .with_context(|| format!("cannot open the target {}", redacted(to)))?;
    store.close().await;
    let mut target = PgConnection::connect(to)
        .await
        .with_context(|| format!("cannot connect to the target {}", redacted(to)))?;
    let copied = copy_between(&mut source, &mut target, expected).await;
    let _ = target.close().await;
    let _ = source.close().await;
    copied
}

/// The copy itself, between open connections: `target` holds this build's schema.
/// Refuses a source of another schema version than `expected` and a non-empty target.
pub async fn copy_between(
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

/// Refuses anything but a SQLite source and a Postgres target (exit 2).
pub fn check_urls(from: &str, to: &str) -> anyhow::Result<()> {
    if !from.starts_with("sqlite:") {
        return Err(UsageError(format!(
            "--from {}: the source must be a SQLite store (sqlite://PATH)",
            printable(&redacted(from))
        ))
        .into());
    }
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(UsageError(format!(
            "--to {}: the target must be a Postgres database (postgres://USER@HOST/DB)",
            printable(&redacted(to))
        ))
        .into());
    }
    Ok(())
}

/// The source, read-only (never created: a mistyped path is an error, not a new store).
async fn open_source(from: &str) -> anyhow::Result<SqliteConnection> {
    let options = SqliteConnectOptions::from_str(from)
        .with_context(|| format!("--from {} is not a SQLite URL", printable(&redacted(from))))?
        .read_only(true)
        .create_if_missing(false);
    SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open the source {}", printable(&redacted(from))))
}

/// The schema version this build's SQLite migrations end at, read from a scratch store that
/// `Store::open` migrates (the migration list is the store's own; a `store::SCHEMA_VERSION`
/// would make this unnecessary). On a thread of its own with logging off there: the
/// scratch store's migrations are no news to the operator.
async fn this_builds_schema_version() -> anyhow::Result<i64> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _quiet = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
        let version = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start a runtime")
            .and_then(|rt| rt.block_on(scratch_schema_version()));
        let _ = tx.send(version);
    });
    rx.await
        .context("the schema version check stopped before its end")?
}

async fn scratch_schema_version() -> anyhow::Result<i64> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("paybridge-schema-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let version = async {
        let url = format!("sqlite://{}", dir.join("schema.db").display());
        let store = Store::open(&url, Clock::system())
            .await
            .context("cannot create a scratch store to learn this build's schema version")?;
        store.close().await;
        let mut scratch = open_source(&url).await?;
        let version = schema::source_version(&mut scratch).await;
        let _ = scratch.close().await;
        version
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    version
}

/// `url` with its password (in the authority or a `password=` query parameter) shown as
/// `***`, for messages and logs. A URL that does not parse is not shown at all.
pub fn redacted(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "(a URL that does not parse)".into();
    };
    let mut changed = false;
    if parsed.password().is_some() {
        changed = parsed.set_password(Some("***")).is_ok();
        if !changed {
            return "(a URL with a password)".into();
        }
    }
    let secret_key = |k: &str| {
        let k = k.to_ascii_lowercase();
        k == "password" || k == "sslpassword"
    };
    if parsed.query_pairs().any(|(k, _)| secret_key(&k)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret_key(&k) {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if changed {
        parsed.to_string()
    } else {
        url.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_never_shown() {
        assert_eq!(
            redacted("postgres://app:s3cr%40t@db.internal:5432/pay"),
            "postgres://app:***@db.internal:5432/pay"
        );
        assert_eq!(
            redacted("postgres://app@db/pay?sslmode=require&password=hunter2"),
            "postgres://app@db/pay?sslmode=require&password=***"
        );
        assert_eq!(
            redacted("postgresql://app@db/pay"),
            "postgresql://app@db/pay",
            "nothing to hide: shown as given"
        );
        assert_eq!(
            redacted("sqlite://data/pay bridge.db"),
            "sqlite://data/pay bridge.db"
        );
        let odd = redacted("postgres://app:hunter2@[::1");
        assert!(!odd.contains("hunter2"), "{odd}");
    }

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
