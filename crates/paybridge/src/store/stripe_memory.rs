//! What paybridge remembers of Stripe beyond single events: each charge's money (the
//! lifetime value), refunds that failed, each subscription's first paying invoice, product
//! names read from the API, and the thin events that wait for an API key.

use sqlx::Row;

use super::Conn;

use super::{Store, StoreError};

/// A product name read from Stripe's API, and when (unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedProduct {
    pub name: Option<String>,
    pub fetched_at: i64,
}

/// The reason a thin event waits for a key starts with this (see `thin_waiting_for_key`).
pub const THIN_NEEDS_KEY: &str = "thin event: stripe.api_key is not set";

/// The customer's lifetime value in `currency` (minor units): paid minus refunded per
/// charge, with refunds that failed after their charge's total was read added back (never
/// more than that charge had refunded).
async fn lifetime_value(c: &mut Conn, customer: &str, currency: &str) -> Result<i64, sqlx::Error> {
    // The smaller of two values: SQLite's scalar MIN, Postgres's LEAST.
    let least = super::Dialect::of(c).pick("MIN", "LEAST");
    sqlx::query_scalar(&format!(
        "SELECT CAST(COALESCE(SUM(l.paid - l.refunded + {least}(l.refunded, COALESCE((
                SELECT SUM(f.amount) FROM refund_failures f
                WHERE f.customer = l.customer AND f.charge = l.charge AND f.failed_at > l.refunded_at
             ), 0))), 0) AS BIGINT)
         FROM ledger l WHERE l.customer = $1 AND l.currency = $2"
    ))
    .bind(customer)
    .bind(currency)
    .fetch_one(&mut *c)
    .await
}

impl Store {
    /// Records what a charge event says of its charge (`created` is the event's): the
    /// paid amount never lowers; the refunded total is the newest event's (Stripe's running
    /// `amount_refunded`, which may go down again when a refund fails). Returns the
    /// customer's lifetime value for `currency`.
    pub async fn ledger_charge(
        &self,
        customer: &str,
        charge: &str,
        currency: &str,
        paid: Option<i64>,
        refunded: Option<i64>,
        created: i64,
    ) -> Result<i64, StoreError> {
        let (customer, charge, currency) =
            (customer.to_owned(), charge.to_owned(), currency.to_owned());
        self.write(move |c| {
            Box::pin(async move {
                // The larger of two values: SQLite's scalar MAX, Postgres's GREATEST.
                let greatest = super::Dialect::of(c).pick("MAX", "GREATEST");
                sqlx::query(&format!(
                    "INSERT INTO ledger (customer, charge, currency, paid, refunded, refunded_at)
                     VALUES ($1, $2, $3, COALESCE($4, 0), COALESCE($5, 0), CASE WHEN $5 IS NULL THEN 0 ELSE $6 END)
                     ON CONFLICT(customer, charge) DO UPDATE SET
                         paid = {greatest}(ledger.paid, COALESCE($4, ledger.paid)),
                         refunded = CASE WHEN $5 IS NOT NULL AND $6 >= ledger.refunded_at THEN $5 ELSE ledger.refunded END,
                         refunded_at = CASE WHEN $5 IS NOT NULL AND $6 >= ledger.refunded_at THEN $6 ELSE ledger.refunded_at END"
                ))
                .bind(&customer)
                .bind(&charge)
                .bind(&currency)
                .bind(paid)
                .bind(refunded)
                .bind(created)
                .execute(&mut *c)
                .await?;
                lifetime_value(c, &customer, &currency).await
            })
        })
        .await
    }

    /// A refund failed or was cancelled (`failed_at`: the event's `created`). Returns the
    /// customer's lifetime value for `currency`.
    pub async fn ledger_refund_failed(
        &self,
        customer: &str,
        refund: &str,
        charge: &str,
        currency: &str,
        amount: i64,
        failed_at: i64,
    ) -> Result<i64, StoreError> {
        let (customer, refund, charge, currency) = (
            customer.to_owned(),
            refund.to_owned(),
            charge.to_owned(),
            currency.to_owned(),
        );
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO refund_failures (refund, customer, charge, currency, amount, failed_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT(refund) DO NOTHING",
                )
                .bind(&refund)
                .bind(&customer)
                .bind(&charge)
                .bind(&currency)
                .bind(amount)
                .bind(failed_at)
                .execute(&mut *c)
                .await?;
                lifetime_value(c, &customer, &currency).await
            })
        })
        .await
    }

    /// The customer a charge was recorded for (from an earlier charge event), if any.
    pub async fn customer_of_charge(&self, charge: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT customer FROM ledger WHERE charge = $1 LIMIT 1")
                .bind(charge)
                .fetch_optional(self.reader())
                .await?,
        )
    }

    /// Whether `invoice` (paid, `amount_paid` minor units) is the first invoice of
    /// `subscription` that took money. A trial's $0 first invoice is remembered and never
    /// counts; the first paying invoice counts if it is the subscription's first
    /// (`subscription_create`) or follows a trial paybridge saw. Asking again about the
    /// same invoice gives the same answer (retries, `invoice.payment_succeeded` twins).
    pub async fn first_payment(
        &self,
        subscription: &str,
        invoice: &str,
        amount_paid: i64,
        subscription_create: bool,
    ) -> Result<bool, StoreError> {
        let (subscription, invoice) = (subscription.to_owned(), invoice.to_owned());
        self.write(move |c| {
            Box::pin(async move {
                let row = sqlx::query(
                    "SELECT trial_invoice, first_paid_invoice FROM subscription_payments WHERE subscription = $1",
                )
                .bind(&subscription)
                .fetch_optional(&mut *c)
                .await?;
                let (trial, first): (Option<String>, Option<String>) = match &row {
                    Some(r) => (r.try_get("trial_invoice")?, r.try_get("first_paid_invoice")?),
                    None => (None, None),
                };
                if amount_paid <= 0 {
                    if subscription_create && trial.is_none() {
                        sqlx::query(
                            "INSERT INTO subscription_payments (subscription, trial_invoice) VALUES ($1, $2)
                             ON CONFLICT(subscription) DO UPDATE SET trial_invoice = excluded.trial_invoice",
                        )
                        .bind(&subscription)
                        .bind(&invoice)
                        .execute(&mut *c)
                        .await?;
                    }
                    return Ok(false);
                }
                if let Some(first) = first {
                    return Ok(first == invoice);
                }
                if !(subscription_create || trial.is_some()) {
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO subscription_payments (subscription, first_paid_invoice) VALUES ($1, $2)
                     ON CONFLICT(subscription) DO UPDATE SET first_paid_invoice = excluded.first_paid_invoice",
                )
                .bind(&subscription)
                .bind(&invoice)
                .execute(&mut *c)
                .await?;
                Ok(true)
            })
        })
        .await
    }

    pub async fn cached_product(&self, id: &str) -> Result<Option<CachedProduct>, StoreError> {
        let row = sqlx::query("SELECT name, fetched_at FROM products WHERE id = $1")
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.map(|r| {
            Ok(CachedProduct {
                name: r.try_get("name")?,
                fetched_at: r.try_get("fetched_at")?,
            })
        })
        .transpose()
        .map_err(|e: sqlx::Error| StoreError::from(e))
    }

    pub async fn remember_product(
        &self,
        id: &str,
        name: Option<&str>,
        active: Option<bool>,
    ) -> Result<(), StoreError> {
        let (id, name) = (id.to_owned(), name.map(str::to_owned));
        let now = self.clock().now_ms();
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO products (id, name, active, fetched_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT(id) DO UPDATE SET name = excluded.name, active = excluded.active,
                         fetched_at = excluded.fetched_at",
                )
                .bind(&id)
                .bind(&name)
                .bind(active.map(i64::from))
                .bind(now)
                .execute(&mut *c)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Thin events waiting as `needs_attention` because no API key was set.
    pub async fn thin_waiting_for_key(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM events WHERE payload_kind = 'thin' AND status = 'needs_attention'
             AND last_error LIKE $1 ORDER BY received_at",
        )
        .bind(format!("{THIN_NEEDS_KEY}%"))
        .fetch_all(self.reader())
        .await?)
    }

    /// Once a thin event's object is fetched, the event log knows its customer.
    pub async fn set_event_customer(
        &self,
        event_id: &str,
        customer: &str,
    ) -> Result<(), StoreError> {
        let (event_id, customer) = (event_id.to_owned(), customer.to_owned());
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query("UPDATE events SET customer = $1 WHERE id = $2 AND customer IS NULL")
                    .bind(&customer)
                    .bind(&event_id)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Keeps, per customer of backfill `run`, the best subscription seen so far: the lowest
    /// `rank`, then the newest. `subs`: (customer, rank, created, object as JSON).
    pub async fn backfill_keep_subscriptions(
        &self,
        run: &str,
        subs: Vec<(String, i64, i64, String)>,
    ) -> Result<(), StoreError> {
        let run = run.to_owned();
        self.write(move |c| {
            Box::pin(async move {
                for (customer, rank, created, json) in &subs {
                    sqlx::query(
                        "INSERT INTO backfill_subscriptions (run, customer, rank, created, subscription)
                         VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT(run, customer) DO UPDATE SET rank = excluded.rank,
                             created = excluded.created, subscription = excluded.subscription
                         WHERE excluded.rank < backfill_subscriptions.rank
                            OR (excluded.rank = backfill_subscriptions.rank
                                AND excluded.created > backfill_subscriptions.created)",
                    )
                    .bind(&run)
                    .bind(customer)
                    .bind(rank)
                    .bind(created)
                    .bind(json)
                    .execute(&mut *c)
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// The kept subscription (JSON) of each of `customers` that has one, for backfill `run`.
    pub async fn backfill_subscriptions_of(
        &self,
        run: &str,
        customers: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for chunk in customers.chunks(500) {
            let mut q = super::sql::Builder::new(
                "SELECT customer, subscription FROM backfill_subscriptions WHERE run = ",
            );
            q.push_bind(run.to_owned())
                .push(" AND customer IN (")
                .push_list(chunk.iter().cloned())
                .push(")");
            let rows = q.build().fetch_all(self.reader()).await?;
            for r in rows {
                out.push((r.try_get("customer")?, r.try_get("subscription")?));
            }
        }
        Ok(out)
    }

    /// Forgets the subscriptions kept by runs other than `run`.
    pub async fn backfill_forget_other_runs(&self, run: &str) -> Result<(), StoreError> {
        let run = run.to_owned();
        self.write(move |c| {
            Box::pin(async move {
                sqlx::query("DELETE FROM backfill_subscriptions WHERE run != $1")
                    .bind(&run)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }
}
