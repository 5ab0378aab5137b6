//! A Postgres database of the test's own: created under a unique name on the admin URL
//! (`PAYBRIDGE_TEST_DATABASE_URL`, else the local default `scripts/test` provides) and
//! dropped, with whatever still holds it open, when the test lets go of it.
//!
//! No Postgres is a failure, never a skip: a suite that silently left out its Postgres half
//! would pass on a machine where that half was never run.

use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::Url;
use sqlx::{Connection, PgConnection};

/// Where the tests look for Postgres when `PAYBRIDGE_TEST_DATABASE_URL` is unset: what
/// `scripts/test` installs and starts (trust authentication for the `postgres` role).
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The admin URL: a role allowed to create and drop databases.
pub fn admin_url() -> String {
    std::env::var("PAYBRIDGE_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into())
}

/// `url` as it may be printed: without its password.
pub fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                // Cannot fail: a URL with a password has a host.
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(an unparseable URL)".into(),
    }
}

pub struct TestDatabase {
    name: String,
    url: String,
    admin: String,
}

impl TestDatabase {
    /// `postgres://…/<name>`: the admin URL's role and server, this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One connection to this database.
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", redacted(&self.url)))
    }
}

/// Connects to the admin URL, or panics saying how to provide a Postgres.
async fn admin_connection(admin: &str) -> PgConnection {
    match PgConnection::connect(admin).await {
        Ok(c) => c,
        Err(e) => panic!(
            "no Postgres answers at {} ({e}). The tests need one: run `scripts/test` (it \
             installs and starts Debian's postgresql when none answers on 127.0.0.1:5432), \
             or start one and set PAYBRIDGE_TEST_DATABASE_URL to an admin URL (a role that \
             may create and drop databases), e.g. {DEFAULT_ADMIN_URL}",
            redacted(admin)
        ),
    }
}

/// A fresh, empty database of this test's own (`pb_<pid>_<counter>_<random>`).
pub async fn database() -> TestDatabase {
    database_with_prefix("pb").await
}

/// [`database`] named `<prefix>_<pid>_<counter>_<random>`.
async fn database_with_prefix(prefix: &str) -> TestDatabase {
    let admin = admin_url();
    let name = format!(
        "{prefix}_{}_{}_{:08x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>()
    );
    let mut url = Url::parse(&admin)
        .unwrap_or_else(|e| panic!("PAYBRIDGE_TEST_DATABASE_URL is not a URL: {e}"));
    url.set_path(&format!("/{name}"));
    let mut conn = admin_connection(&admin).await;
    // The name is ours (lowercase letters, digits, underscores): no quoting needed.
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {}: {e}", redacted(&admin)));
    let _ = conn.close().await;
    TestDatabase {
        name,
        url: url.to_string(),
        admin,
    }
}

impl Drop for TestDatabase {
    /// Drops the database from a thread with its own runtime (Drop cannot await, and the
    /// test's runtime may be a current-thread one that is busy dropping us). `WITH (FORCE)`
    /// ends the connections a pool of the test may still hold.
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin = self.admin.clone();
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("runtime: {e}"))?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| format!("DROP DATABASE: {e}"))?;
                let _ = conn.close().await;
                Ok(())
            })
        })
        .join();
        // A failed drop leaves a database behind; it must not turn into a panic inside a
        // panic (which aborts and hides the test's own failure).
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test database {} left behind: {e}", self.name),
            Err(_) => eprintln!(
                "test database {} left behind: drop thread panicked",
                self.name
            ),
        }
    }
}

/// Which store the shared test wiring gives an app: SQLite, unless
/// `PAYBRIDGE_TEST_STORE=postgres` (`scripts/test` runs the store-exercising test binaries
/// a second time so).
pub fn postgres_requested() -> bool {
    std::env::var("PAYBRIDGE_TEST_STORE").is_ok_and(|v| v.eq_ignore_ascii_case("postgres"))
}

/// The `store.url` of an app whose files live in `dir`: its SQLite file, or (see
/// [`postgres_requested`]) a Postgres database of that directory's own, created on first
/// use and the same for every app started in `dir` (a restart finds its data). Those
/// databases (`pbs_…`) outlive the test process (an app may still hold them when statics
/// would be dropped); `scripts/test` drops them after the run.
pub fn store_url_for(dir: &std::path::Path) -> String {
    if !postgres_requested() {
        return format!("sqlite://{}", dir.join("paybridge.db").display());
    }
    static BY_DIR: std::sync::Mutex<Vec<(std::path::PathBuf, String)>> =
        std::sync::Mutex::new(Vec::new());
    let mut known = BY_DIR.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, url)) = known.iter().find(|(d, _)| d == dir) {
        return url.clone();
    }
    // Created from a thread with its own runtime: callers may be inside a test's runtime.
    let database = std::thread::spawn(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(database_with_prefix("pbs"))
    })
    .join()
    .expect("the test database is created");
    let url = database.url().to_owned();
    // Kept (not dropped) for the rest of the process: see above.
    std::mem::forget(database);
    known.push((dir.to_path_buf(), url.clone()));
    url
}
