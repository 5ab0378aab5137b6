//! The sandbox's state: one `Crm` behind a mutex (never held across an
//! await), the rate limiter and statistics, and the fault switch.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::SandboxConfig;
use crate::behaviour::Behaviour;
use crate::clock;
use crate::faults::FaultSwitch;
use crate::inbox;
use crate::limits::Limiter;
use crate::lists::List;
use crate::objects::{ObjectStore, ObjectType};
use crate::owners::Owner;
use crate::pipelines::{self, Pipeline};
use crate::properties::{Group, PropOption, PropertyDef};
use crate::requirements::Requirement;
use crate::seed::{self, Seed};
use crate::stripe::StripeStore;
use crate::workflows::{Enrollment, Workflow};

/// The portal the sandbox pretends to be (token introspection, 429 group names).
pub(crate) const HUB_ID: u64 = 1234567;
pub(crate) const APP_ID: u64 = 7654321;
pub(crate) const USER_ID: u64 = 9101;

pub(crate) struct Shared {
    pub config: SandboxConfig,
    /// What `/_sandbox/reset` goes back to.
    baseline: Seed,
    crm: Mutex<Crm>,
    pub limiter: Limiter,
    pub faults: FaultSwitch,
}

impl Shared {
    pub fn new(config: SandboxConfig) -> anyhow::Result<Shared> {
        let baseline = config.seed.clone().unwrap_or_else(Seed::standard);
        let crm = Crm::build(&config, &baseline).map_err(anyhow::Error::msg)?;
        Ok(Shared {
            limiter: Limiter::new(&config),
            faults: FaultSwitch::new(config.faults.clone()),
            config,
            baseline,
            crm: Mutex::new(crm),
        })
    }

    /// The CRM state. A panic while it was held cannot leave it half-written
    /// in a way worse than the panic itself, so poisoning is ignored.
    pub fn crm(&self) -> MutexGuard<'_, Crm> {
        self.crm.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Back to the seed the sandbox started with; statistics and rate
    /// windows start over too.
    pub fn reset(&self) -> Result<(), String> {
        let mut fresh = Crm::build(&self.config, &self.baseline)?;
        let mut crm = self.crm();
        fresh.behaviour = crm.behaviour.clone();
        *crm = fresh;
        drop(crm);
        self.limiter.reset();
        Ok(())
    }

    /// Adds a seed to the current state; nothing is changed if any part is invalid.
    pub fn merge_seed(&self, seed: &Seed) -> Result<(), String> {
        let mut crm = self.crm();
        let mut next = crm.clone();
        next.apply(seed)?;
        *crm = next;
        Ok(())
    }
}

#[derive(Clone)]
pub(crate) struct Crm {
    pub next_id: u64,
    pub search_lag: Duration,
    pub objects: BTreeMap<ObjectType, ObjectStore>,
    pub properties: BTreeMap<ObjectType, BTreeMap<String, PropertyDef>>,
    pub groups: BTreeMap<ObjectType, BTreeMap<String, Group>>,
    pub pipelines: BTreeMap<ObjectType, Vec<Pipeline>>,
    pub lists: BTreeMap<String, List>,
    pub workflows: BTreeMap<String, Workflow>,
    pub enrollments: Vec<Enrollment>,
    pub owners: Vec<Owner>,
    /// Token → scopes.
    pub tokens: BTreeMap<String, Vec<String>>,
    pub stripe: StripeStore,
    /// What `POST /_sandbox/inbox/{name}` received, oldest first.
    pub inbox: Vec<inbox::Message>,
    /// How the sandbox answers where HubSpot's material does not settle it.
    pub behaviour: Behaviour,
    /// The portal's record-creation and conditional property rules (issue 12, H2).
    pub requirements: BTreeMap<ObjectType, Vec<Requirement>>,
}

impl Crm {
    /// HubSpot's defaults, the configured token, then the seed.
    fn build(config: &SandboxConfig, seed: &Seed) -> Result<Crm, String> {
        let mut crm = Crm {
            // Record ids start high so they never collide with owner/list ids in tests.
            next_id: 1000,
            search_lag: config.search_lag,
            objects: BTreeMap::new(),
            properties: BTreeMap::new(),
            groups: BTreeMap::new(),
            pipelines: BTreeMap::new(),
            lists: BTreeMap::new(),
            workflows: BTreeMap::new(),
            enrollments: Vec::new(),
            owners: Vec::new(),
            tokens: BTreeMap::new(),
            stripe: StripeStore::with_behaviour(config.stripe.clone()),
            inbox: Vec::new(),
            behaviour: config.behaviour.clone(),
            requirements: BTreeMap::new(),
        };
        for ty in ObjectType::ALL {
            crm.objects.insert(ty, ObjectStore::default());
            crm.groups.insert(
                ty,
                seed::builtin_groups(ty)
                    .into_iter()
                    .map(|g| (g.name.clone(), g))
                    .collect(),
            );
            crm.properties.insert(
                ty,
                seed::builtin_properties(ty)
                    .into_iter()
                    .map(|p| (p.name.clone(), p))
                    .collect(),
            );
            crm.pipelines.insert(ty, pipelines::defaults(ty));
        }
        crm.tokens.insert(
            config.token.clone(),
            seed::ALL_SCOPES.iter().map(|s| s.to_string()).collect(),
        );
        crm.apply(seed)?;
        Ok(crm)
    }

    /// Applies a seed on top of the current state.
    fn apply(&mut self, seed: &Seed) -> Result<(), String> {
        let now = clock::wall();
        for t in &seed.tokens {
            self.tokens.insert(t.token.clone(), t.scopes.clone());
        }
        for o in &seed.owners {
            let owner = Owner {
                id: o.id.clone(),
                email: o.email.clone(),
                first_name: o.first_name.clone(),
                last_name: o.last_name.clone(),
                user_id: o
                    .user_id
                    .unwrap_or_else(|| o.id.parse::<u64>().unwrap_or(0) + 9000),
                created_at: now,
            };
            self.owners.retain(|x| x.id != owner.id);
            self.owners.push(owner);
        }
        self.apply_portal_settings(seed)?;
        for (raw_type, groups) in &seed.groups {
            let ty = parse_type(raw_type)?;
            for g in groups {
                let group: Group = serde_json::from_value(g.clone())
                    .map_err(|e| format!("seed groups.{raw_type}: {e}"))?;
                self.groups
                    .entry(ty)
                    .or_default()
                    .insert(group.name.clone(), group);
            }
        }
        for (raw_type, props) in &seed.properties {
            let ty = parse_type(raw_type)?;
            for p in props {
                let mut def: PropertyDef = serde_json::from_value(p.clone())
                    .map_err(|e| format!("seed properties.{raw_type}: {e}"))?;
                if !self.groups[&ty].contains_key(&def.group_name) {
                    self.groups.entry(ty).or_default().insert(
                        def.group_name.clone(),
                        Group::new(&def.group_name, &def.group_name),
                    );
                }
                def.created_at = Some(now);
                def.updated_at = Some(now);
                self.add_property(ty, def);
            }
        }
        self.refresh_dynamic_options();
        for (ty, records) in seed.records() {
            for (i, r) in records.iter().enumerate() {
                let at =
                    |e: crate::error::ApiError| format!("seed {}[{i}]: {}", ty.name(), e.message);
                let id = match &r.id {
                    Some(id) => Some(
                        id.parse::<u64>()
                            .map_err(|_| format!("seed {}[{i}]: id must be numeric", ty.name()))?,
                    ),
                    None => None,
                };
                let changes = self.validate(ty, &r.properties, true).map_err(at)?;
                let links = self.validate_links(ty, &r.associations).map_err(at)?;
                self.create_as(ty, id, &changes, &links).map_err(at)?;
            }
        }
        for l in &seed.lists {
            let mut members = BTreeMap::new();
            for m in &l.members {
                let id: u64 = m.parse().map_err(|_| {
                    format!("seed list {}: member {m} is not a record id", l.list_id)
                })?;
                members.insert(id, now);
            }
            if !matches!(
                l.processing_type.as_str(),
                "MANUAL" | "SNAPSHOT" | "DYNAMIC"
            ) {
                return Err(format!(
                    "seed list {}: processingType must be MANUAL, SNAPSHOT or DYNAMIC",
                    l.list_id
                ));
            }
            self.lists.insert(
                l.list_id.clone(),
                List {
                    list_id: l.list_id.clone(),
                    name: l.name.clone(),
                    processing_type: l.processing_type.clone(),
                    object_type_id: l.object_type_id.clone(),
                    members,
                    created_at: now,
                    updated_at: now,
                    version: 1,
                },
            );
        }
        self.stripe.apply(&seed.stripe)?;
        Ok(())
    }

    /// Workflows, pipelines and the portal's write rules of a seed.
    fn apply_portal_settings(&mut self, seed: &Seed) -> Result<(), String> {
        for w in &seed.workflows {
            self.workflows.insert(w.id.clone(), Workflow::from_seed(w)?);
        }
        for (raw_type, pipelines) in &seed.pipelines {
            let ty = parse_type(raw_type)?;
            self.pipelines.insert(
                ty,
                pipelines
                    .iter()
                    .map(pipelines::Pipeline::from_seed)
                    .collect(),
            );
        }
        for (raw_type, rules) in &seed.requirements {
            let ty = parse_type(raw_type)?;
            for r in rules {
                self.requirements
                    .entry(ty)
                    .or_default()
                    .push(Requirement::from_seed(r));
            }
        }
        Ok(())
    }

    pub fn add_property(&mut self, ty: ObjectType, def: PropertyDef) {
        self.properties
            .entry(ty)
            .or_default()
            .insert(def.name.clone(), def);
    }

    /// Owner and pipeline enumerations take their options from the seeded owners and pipelines.
    fn refresh_dynamic_options(&mut self) {
        let owners: Vec<PropOption> = self
            .owners
            .iter()
            .zip(0..)
            .map(|(o, i)| PropOption::new(&o.id, &format!("{} {}", o.first_name, o.last_name), i))
            .collect();
        for props in self.properties.values_mut() {
            if let Some(p) = props.get_mut("hubspot_owner_id") {
                p.options = owners.clone();
            }
        }
        for (ty, pipeline_prop, stage_prop) in [
            (ObjectType::Tickets, "hs_pipeline", "hs_pipeline_stage"),
            (ObjectType::Deals, "pipeline", "dealstage"),
        ] {
            let pipelines = self.pipelines.get(&ty).cloned().unwrap_or_default();
            let pipeline_opts: Vec<PropOption> = pipelines
                .iter()
                .zip(0..)
                .map(|(p, i)| PropOption::new(&p.id, &p.label, i))
                .collect();
            let stage_opts: Vec<PropOption> = pipelines
                .iter()
                .flat_map(|p| p.stages.iter())
                .zip(0..)
                .map(|(s, i)| PropOption::new(&s.id, &s.label, i))
                .collect();
            if let Some(props) = self.properties.get_mut(&ty) {
                if let Some(p) = props.get_mut(pipeline_prop) {
                    p.options = pipeline_opts;
                }
                if let Some(p) = props.get_mut(stage_prop) {
                    p.options = stage_opts;
                }
            }
        }
    }
}

fn parse_type(raw: &str) -> Result<ObjectType, String> {
    ObjectType::parse(raw).map_err(|e| e.message)
}
