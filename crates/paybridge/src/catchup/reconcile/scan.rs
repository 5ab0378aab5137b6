//! One reconcile run: read Stripe's state (every subscription and every charge in one
//! pass each), every contact that claims a Stripe customer (one CRM search pass, outside
//! the 10-second budget), then Stripe's customers page by page: each page's contacts read
//! from HubSpot in one batch read (fresh values; search has index lag), compared, and the
//! findings stored (with `--fix`, the repairs queued) page by page. Last, the claims
//! Stripe does not back and the customers several contacts claim.
//!
//! Stripe's lists (`limit` up to 100, `starting_after` cursors, newest first: Stripe API
//! reference "Pagination") go through the client's pager and its Stripe-side limiter, and
//! each page is retried through 429s and 5xx (`patient`). `GET /v1/subscriptions` needs
//! `status=all` for cancelled ones ("Passing in a value of `all` will return subscriptions
//! of all statuses", stripe-node `SubscriptionListParams`); `GET /v1/customers` leaves
//! deleted customers out, which is how a deleted customer's contact is found: it claims a
//! customer the pass did not see, and `GET /v1/customers/{id}` answers `deleted: true`
//! ("Returns a Customer object if a valid identifier was provided. When requesting the ID
//! of a customer that has been deleted, a subset of the customer's information is
//! returned, including a `deleted` property", Stripe API reference "Retrieve a customer").
//!
//! Resumable: after each page the customers seen, the findings and the cursor (the last
//! customer of the page) are committed together; `--resume` continues after the cursor
//! (the two passes over subscriptions and charges are read again: they are what the
//! comparison needs and are not kept).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::claims::{Known, unknown_customer, unknown_detail};
use super::compare::differences;
use super::repair::{Current, Repairs};
use super::stripe_state::{ChargeBook, SubscriptionBook, expected};
use super::{ReconcileError, read_properties};
use crate::hubspot::{Contact, HubSpot};
use crate::store::{Finding, FindingKind, LastWrite, Store};
use crate::stripe::api::{ReadError, StripeApi, StripeApiError};

#[derive(Debug, Clone, Default)]
pub struct ReconcileOptions {
    /// Only this customer (`--customer`).
    pub customer: Option<String>,
    /// Continue the last interrupted run over every customer.
    pub resume: bool,
    /// Queue a repair for each drift (and each customer without a contact).
    pub fix: bool,
    /// `command` or `schedule`.
    pub trigger: &'static str,
}

/// Where a run stands, for progress lines.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileProgress {
    pub run: String,
    pub resumed: bool,
    /// `subscriptions`, `charges`, `customers`, `contacts`, `done`.
    pub phase: &'static str,
    pub subscriptions: u64,
    pub charges: u64,
    /// Customers compared by this invocation (and by earlier ones of the same run).
    pub customers: u64,
    pub customers_before: u64,
    /// Contacts read from HubSpot (batch reads) and contacts claiming a customer (search).
    pub contacts_read: u64,
    pub claims_read: u64,
    pub drift: u64,
    pub repairs_queued: u64,
    pub stripe_requests: u64,
}

pub struct Reconciler {
    pub(super) api: StripeApi,
    pub(super) hubspot: HubSpot,
    pub(super) store: Store,
    pub(super) id_property: String,
    pub(super) repairs: Option<Repairs>,
}

/// What one page of customers is compared with.
pub(super) struct Books {
    pub(super) subscriptions: SubscriptionBook,
    pub(super) charges: ChargeBook,
    pub(super) product_names: HashMap<String, String>,
    /// Every contact claiming a customer (runs over every customer), by customer: only
    /// the id property, unless `by_search`.
    pub(super) claimed: HashMap<String, Vec<Contact>>,
    /// HubSpot refused the batch read by the id property (a portal where it is not a
    /// unique-value property): the claims are read again by search with every compared
    /// property, and the comparison uses them.
    pub(super) by_search: bool,
    /// When this invocation began reading Stripe (unix seconds): the oldest read a page's
    /// comparison rests on, and so the date of its repairs.
    pub(super) read_at: i64,
}

impl Reconciler {
    pub async fn run(
        &self,
        options: &ReconcileOptions,
        cancel: &CancellationToken,
        progress: &mut (dyn FnMut(&ReconcileProgress) + Send),
    ) -> Result<ReconcileProgress, ReconcileError> {
        let (mut state, cursor) = self.start(options).await?;
        state.phase = "starting";
        progress(&state);
        let mut books = Books {
            subscriptions: SubscriptionBook::default(),
            charges: ChargeBook::default(),
            product_names: HashMap::new(),
            claimed: HashMap::new(),
            by_search: false,
            read_at: self.store.clock().now_secs(),
        };
        // Stripe's passes and the search pass over the contacts' claims use different
        // budgets: they run side by side.
        let only_ids = [self.id_property.clone()];
        let claims = async {
            match &options.customer {
                Some(_) => Ok(HashMap::new()),
                None => self.read_claims(&only_ids, cancel).await,
            }
        };
        let passes = self.stripe_passes(
            options.customer.as_deref(),
            &mut books,
            &mut state,
            progress,
            cancel,
        );
        let (passes, claimed) = tokio::join!(passes, claims);
        passes?;
        books.claimed = claimed?;
        state.claims_read = books.claimed.values().map(|c| c.len() as u64).sum();
        state.phase = "customers";
        match &options.customer {
            Some(id) => {
                self.one_customer(id, &mut books, &mut state, cancel)
                    .await?
            }
            None => {
                let mut pages = self
                    .api
                    .pages("/v1/customers", Vec::new())
                    .patient()
                    .starting_after(cursor);
                while let Some(page) = pages.next(cancel).await? {
                    self.page(&page, &mut books, &mut state, cancel).await?;
                    self.counts(&mut state);
                    progress(&state);
                }
                self.claims(&mut books, &mut state, cancel).await?;
            }
        }
        self.store.reconcile_finish(&state.run).await?;
        if options.customer.is_none() {
            super::record_metrics(&self.store, &state, options.trigger, &self.id_property).await?;
        }
        state.phase = "done";
        self.counts(&mut state);
        progress(&state);
        Ok(state)
    }

    /// Every subscription (each customer's current one kept), the products' names, and
    /// every charge: of `scope`'s customer only, or of all.
    async fn stripe_passes(
        &self,
        scope: Option<&str>,
        books: &mut Books,
        state: &mut ReconcileProgress,
        progress: &mut (dyn FnMut(&ReconcileProgress) + Send),
        cancel: &CancellationToken,
    ) -> Result<(), ReconcileError> {
        let query = |extra: Vec<(String, String)>| {
            let mut q = extra;
            if let Some(c) = scope {
                q.push(("customer".to_owned(), c.to_owned()));
            }
            q
        };
        state.phase = "subscriptions";
        let all = vec![("status".to_owned(), "all".to_owned())];
        let mut pages = self.api.pages("/v1/subscriptions", query(all)).patient();
        while let Some(page) = pages.next(cancel).await? {
            state.subscriptions += page.len() as u64;
            books.subscriptions.add_page(&page);
            self.counts(state);
            progress(state);
        }
        books.product_names = self
            .product_names(&books.subscriptions.product_ids())
            .await?;
        state.phase = "charges";
        let mut pages = self.api.pages("/v1/charges", query(Vec::new())).patient();
        while let Some(page) = pages.next(cancel).await? {
            state.charges += page.len() as u64;
            books.charges.add_page(&page);
            self.counts(state);
            progress(state);
        }
        Ok(())
    }

    fn counts(&self, state: &mut ReconcileProgress) {
        state.stripe_requests = self.api.counts().0;
    }

    /// A new run, or the interrupted one to resume (with its cursor).
    async fn start(
        &self,
        options: &ReconcileOptions,
    ) -> Result<(ReconcileProgress, Option<String>), ReconcileError> {
        if options.resume {
            let Some(run) = self.store.reconcile_unfinished().await? else {
                return Err(ReconcileError::NothingToResume(
                    "no interrupted reconcile over every customer to resume; run `paybridge reconcile` to start one".into(),
                ));
            };
            let state = ReconcileProgress {
                run: run.run.clone(),
                resumed: true,
                customers_before: u64::try_from(run.customers).unwrap_or(0),
                ..ReconcileProgress::default()
            };
            return Ok((state, run.cursor));
        }
        let run = format!(
            "{}-{}",
            crate::domain::time::pattern(self.store.clock().now_ms(), "%Y%m%dT%H%M%S"),
            crate::domain::random_hex(2)
        );
        self.store
            .reconcile_start(
                &run,
                options.trigger,
                options.fix,
                options.customer.as_deref(),
            )
            .await?;
        Ok((
            ReconcileProgress {
                run,
                ..ReconcileProgress::default()
            },
            None,
        ))
    }

    /// Each product's name as the worker knows it: the store's copy read from Stripe's API
    /// within a day, else Stripe's answer (remembered for the worker too).
    async fn product_names(
        &self,
        ids: &[String],
    ) -> Result<HashMap<String, String>, ReconcileError> {
        let now = self.store.clock().now_ms();
        let mut names = HashMap::new();
        for id in ids {
            let cached = self
                .store
                .cached_product(id)
                .await?
                .filter(|c| now - c.fetched_at < crate::worker::PRODUCT_TTL_MS);
            let name = match cached {
                Some(c) => c.name,
                None => {
                    let (name, active) = super::stripe_retries(|| self.api.product(id))
                        .await?
                        .unwrap_or((None, None));
                    self.store
                        .remember_product(id, name.as_deref(), active)
                        .await?;
                    name
                }
            };
            if let Some(name) = name {
                names.insert(id.clone(), name);
            }
        }
        Ok(names)
    }

    /// `--customer`: the one customer, alive, deleted or unknown.
    async fn one_customer(
        &self,
        id: &str,
        books: &mut Books,
        state: &mut ReconcileProgress,
        cancel: &CancellationToken,
    ) -> Result<(), ReconcileError> {
        let path = format!("/v1/customers/{id}");
        let customer = match self.api.get_retrying(&path, &[], cancel).await {
            Ok(c) => Some(c),
            Err(ReadError::Api(StripeApiError::Refused { status: 404, .. })) => None,
            Err(e) => return Err(e.into()),
        };
        let deleted = customer
            .as_ref()
            .is_some_and(|c| c.get("deleted").and_then(Value::as_bool) == Some(true));
        match customer {
            Some(c) if !deleted => self.page(&[c], books, state, cancel).await,
            _ => {
                let contacts = self.read_contacts(&[id.to_owned()], state).await?;
                let detail = unknown_detail(if deleted {
                    Known::Deleted
                } else {
                    Known::Missing
                });
                let findings = contacts
                    .iter()
                    .map(|c| unknown_customer(&c.id, id, detail))
                    .collect();
                self.store
                    .reconcile_page(&state.run, Vec::new(), findings, None)
                    .await?;
                Ok(())
            }
        }
    }

    /// The contacts whose `id_property` is one of `ids`, with the compared properties.
    async fn read_contacts(
        &self,
        ids: &[String],
        state: &mut ReconcileProgress,
    ) -> Result<Vec<Contact>, ReconcileError> {
        let properties = read_properties(&self.id_property);
        let contacts = super::with_retries(|| {
            self.hubspot
                .read_contacts_by(&self.id_property, ids, &properties)
        })
        .await?;
        state.contacts_read += contacts.len() as u64;
        Ok(contacts)
    }

    /// The contacts claiming `ids`: one batch read (fresh values, no index lag), or, where
    /// HubSpot refuses a batch read by the id property, the contacts read by search.
    pub(super) async fn contacts_of(
        &self,
        ids: &[String],
        books: &mut Books,
        state: &mut ReconcileProgress,
        cancel: &CancellationToken,
    ) -> Result<Vec<Contact>, ReconcileError> {
        if !books.by_search {
            match self.read_contacts(ids, state).await {
                Err(ReconcileError::Hubspot(e))
                    if e.status() == Some(400) && !books.claimed.is_empty() =>
                {
                    tracing::warn!(error = %e, property = %self.id_property, "HubSpot refuses a batch read by the id property (is it a unique-value property? `paybridge check` says); comparing with the contacts read by search");
                    let properties = read_properties(&self.id_property);
                    books.claimed = self.read_claims(&properties, cancel).await?;
                    books.by_search = true;
                }
                other => return other,
            }
        }
        Ok(ids
            .iter()
            .filter_map(|id| books.claimed.get(id))
            .flatten()
            .cloned()
            .collect())
    }

    /// One page of Stripe customers: compared, stored (and repaired) together.
    async fn page(
        &self,
        customers: &[Value],
        books: &mut Books,
        state: &mut ReconcileProgress,
        cancel: &CancellationToken,
    ) -> Result<(), ReconcileError> {
        let live = crate::stripe::event::live_customers(customers);
        let ids: Vec<String> = live.iter().map(|(id, _)| id.clone()).collect();
        let contacts = self.contacts_of(&ids, books, state, cancel).await?;
        let mut by_customer: BTreeMap<&str, Vec<&Contact>> = BTreeMap::new();
        for c in &contacts {
            if let Some(customer) = c.get(&self.id_property) {
                by_customer.entry(customer).or_default().push(c);
            }
        }
        let contact_ids: Vec<String> = contacts.iter().map(|c| c.id.clone()).collect();
        let last = self.store.last_writes(&contact_ids).await?;
        let mut findings = Vec::new();
        for (id, customer) in &live {
            let id = id.as_str();
            let want = expected(
                customer,
                books.subscriptions.of(id),
                books.charges.of(id),
                &books.product_names,
            );
            let claimed = by_customer.get(id).cloned().unwrap_or_default();
            let mut found = Vec::new();
            if claimed.is_empty() {
                found.push(Finding {
                    kind: FindingKind::NoContact,
                    customer: id.to_owned(),
                    contact_id: String::new(),
                    property: String::new(),
                    stripe_value: want.get("email").cloned(),
                    hubspot_value: None,
                    last_event: None,
                    last_event_created: None,
                    detail: None,
                    repair_event: None,
                });
            }
            for contact in &claimed {
                for d in differences(&want, &contact.properties) {
                    let write = last.get(&(contact.id.clone(), d.property.clone()));
                    // An event newer than this run's read of Stripe wrote it: HubSpot is
                    // ahead of what was read, not behind.
                    if write.is_some_and(|w| w.created > books.read_at) {
                        continue;
                    }
                    found.push(drift(id, &contact.id, d, write));
                }
            }
            state.drift += found
                .iter()
                .filter(|f| f.kind == FindingKind::Drift)
                .count() as u64;
            if let Some(repairs) = &self.repairs
                && !found.is_empty()
            {
                // The repair acts on the contact just read: remembered for the customer, the
                // worker does not read it from HubSpot again.
                if let [contact] = claimed.as_slice() {
                    self.store
                        .remember_contact(id, &contact.id, contact.get("email"))
                        .await?;
                }
                let current = Current {
                    id,
                    customer,
                    properties: &want,
                    ledger: books.charges.of(id).map(|c| c.ledger()).unwrap_or(&[]),
                    read_at: books.read_at,
                };
                let queued = repairs.queue(&state.run, &current, &mut found).await?;
                state.repairs_queued += queued;
            }
            findings.extend(found);
        }
        state.customers += ids.len() as u64;
        let cursor = customers
            .last()
            .and_then(|c| c.get("id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.store
            .reconcile_page(&state.run, ids, findings, cursor)
            .await?;
        Ok(())
    }
}

pub(super) fn drift(
    customer: &str,
    contact: &str,
    d: super::compare::Difference,
    write: Option<&LastWrite>,
) -> Finding {
    Finding {
        kind: FindingKind::Drift,
        customer: customer.to_owned(),
        contact_id: contact.to_owned(),
        property: d.property,
        stripe_value: Some(d.stripe),
        hubspot_value: d.hubspot,
        last_event: write.map(|w| w.event_id.clone()),
        last_event_created: write.map(|w| w.created),
        detail: None,
        repair_event: None,
    }
}
