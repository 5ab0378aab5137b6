//! What the two backends need said differently: which database a URL or a connection is,
//! a query builder numbering its placeholders `$1, $2…` (which SQLite and Postgres both
//! read; sqlx's own builder writes `?` for the `Any` driver, which Postgres refuses), and
//! URLs printed without their password.

use sqlx::AnyConnection;
use sqlx::any::{Any, AnyArguments};
use sqlx::{Arguments as _, Encode, Type};

/// The SQL dialect of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The dialect a `store.url` names, if any.
    pub fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }

    /// The dialect of an open connection.
    pub(crate) fn of(c: &AnyConnection) -> Self {
        if c.backend_name().eq_ignore_ascii_case("postgresql") {
            Self::Postgres
        } else {
            Self::Sqlite
        }
    }

    /// `sqlite` or `postgres` text, by dialect.
    pub(crate) fn pick(self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match self {
            Self::Sqlite => sqlite,
            Self::Postgres => postgres,
        }
    }

    /// A pair of texts, by dialect.
    pub(crate) fn pick_pair(
        self,
        sqlite: (&'static str, &'static str),
        postgres: (&'static str, &'static str),
    ) -> (&'static str, &'static str) {
        match self {
            Self::Sqlite => sqlite,
            Self::Postgres => postgres,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// `url` with its password (if any) replaced by `***`: safe to print and log.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The authority ends at the first '/', '?' or '#'; credentials end at its last '@'.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let shown_tail = redact_query_password(tail);
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{shown_tail}"),
            None => format!("{scheme}://{credentials}@{host}{shown_tail}"),
        },
        None => format!("{scheme}://{authority}{shown_tail}"),
    }
}

/// `?password=…` in a query string (libpq accepts it there too) replaced by `***`.
fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{path}?{}", params.join("&"))
}

/// A query assembled piece by piece, with `$N` placeholders.
pub(crate) struct Builder {
    sql: String,
    args: AnyArguments<'static>,
    count: usize,
}

impl Builder {
    pub(crate) fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            args: AnyArguments::default(),
            count: 0,
        }
    }

    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: Encode<'static, Any> + Type<Any> + Send + 'static,
    {
        self.count += 1;
        self.sql.push('$');
        self.sql.push_str(&self.count.to_string());
        if let Err(e) = self.args.add(value) {
            // Encoding one of our own scalar values cannot fail; keep the query
            // well-formed and let the database refuse it if it ever does.
            tracing::error!(error = %e, "a query value could not be encoded");
        }
        self
    }

    /// Appends `v1, v2, …` as placeholders.
    pub(crate) fn push_list<T, I>(&mut self, values: I) -> &mut Self
    where
        I: IntoIterator<Item = T>,
        T: Encode<'static, Any> + Type<Any> + Send + 'static,
    {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.push_bind(v);
        }
        self
    }

    /// The query (its values are taken: build once).
    pub(crate) fn build(&mut self) -> sqlx::query::Query<'_, Any, AnyArguments<'_>> {
        sqlx::query_with(&self.sql, std::mem::take(&mut self.args))
    }

    /// The query returning one column (its values are taken: build once).
    pub(crate) fn build_scalar<O>(
        &mut self,
    ) -> sqlx::query::QueryScalar<'_, Any, O, AnyArguments<'_>>
    where
        (O,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        sqlx::query_scalar_with(&self.sql, std::mem::take(&mut self.args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_printed_without_their_password() {
        assert_eq!(
            redacted_url("postgres://app:s3cret@db.internal:5432/paybridge"),
            "postgres://app:***@db.internal:5432/paybridge"
        );
        assert_eq!(
            redacted_url("postgresql://app:p%40ss@db/x?sslmode=require&password=other"),
            "postgresql://app:***@db/x?sslmode=require&password=***"
        );
        assert_eq!(redacted_url("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(
            redacted_url("sqlite://./paybridge.db"),
            "sqlite://./paybridge.db"
        );
    }

    #[test]
    fn dialects_by_url() {
        assert_eq!(Dialect::of_url("sqlite://x.db"), Some(Dialect::Sqlite));
        assert_eq!(Dialect::of_url("postgres://h/d"), Some(Dialect::Postgres));
        assert_eq!(Dialect::of_url("PostgreSQL://h/d"), Some(Dialect::Postgres));
        assert_eq!(Dialect::of_url("mysql://h/d"), None);
    }
}
