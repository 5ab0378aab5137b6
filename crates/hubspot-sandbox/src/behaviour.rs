//! Switches for what HubSpot's published material does not settle. Each answer a real
//! portal may plausibly give is one setting, so a client is tested against every one of
//! them (issue 12; the facts and their sources are in the comments where each switch is
//! applied). Set at start (`SandboxConfig::behaviour`) or at run time
//! (`POST /_sandbox/behaviour`, `Sandbox::set_behaviour`); `/_sandbox/reset` keeps them.

use serde::{Deserialize, Serialize};

/// Every field has a default, so a JSON body may name only the switches it turns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Behaviour {
    /// H1: which scopes a ticket route accepts. HubSpot's specs list only the legacy
    /// `tickets`; its UI offers `crm.objects.tickets.*` / `crm.schemas.tickets.*`.
    pub ticket_scopes: TicketScopes,
    /// H3: the answer to a duplicate value of a `hasUniqueValue` property on create.
    pub unique_clash: UniqueClash,
    /// H4: whether batch-create results echo each input's `objectWriteTraceId` (the schema
    /// has the field; HubSpot's only example of a success omits it).
    pub echo_trace_ids: bool,
    /// H4: what HubSpot's rich-text sanitiser does to an API-written html property.
    pub rich_text: RichText,
    /// H5: what a v3/2026-09 write of an earlier `lifecyclestage` does.
    pub backward_lifecycle: BackwardLifecycle,
    /// H6: how a batch read answers the id of a record merged into another.
    pub merged_batch_read: MergedRead,
    /// H7: which field names `workflow-id-mappings/batch/read` accepts in its inputs.
    pub workflow_mapping_fields: MappingFields,
    /// H8: whether `/account-info/*/api-usage/daily/private-apps` answers (documented for
    /// legacy private apps; unknown for service keys). Off: 404.
    pub api_usage: bool,
    /// H2: whether an object schema's `requiredProperties` lists the portal's create-form
    /// requirements for HubSpot's own object types.
    pub schema_lists_requirements: bool,
    /// H2: whether the v3 paths enforce the portal's required and conditionally required
    /// properties too (the changelog ties enforcement to `/2026-09/`).
    pub requirements_on_v3: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            ticket_scopes: TicketScopes::Either,
            unique_clash: UniqueClash::Conflict,
            echo_trace_ids: false,
            rich_text: RichText::Verbatim,
            backward_lifecycle: BackwardLifecycle::Apply,
            merged_batch_read: MergedRead::Omit,
            workflow_mapping_fields: MappingFields::Documented,
            api_usage: true,
            schema_lists_requirements: true,
            requirements_on_v3: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketScopes {
    /// The legacy `tickets` or the granular scopes.
    Either,
    /// Only `tickets` (what the spec files say).
    Legacy,
    /// Only `crm.objects.tickets.read/write` and `crm.schemas.tickets.read/write`.
    Granular,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UniqueClash {
    /// 409 `CONFLICT`, as for a duplicate contact email.
    Conflict,
    /// 409 `OBJECT_ALREADY_EXISTS` with `errors[].in` naming the property.
    ObjectAlreadyExists,
    /// 400 `VALIDATION_ERROR` whose message says the value "already has that value".
    Validation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RichText {
    /// Stored byte for byte.
    Verbatim,
    /// Wrapped in HubSpot's editor markup (as the bodies its UI writes look).
    Wrap,
    /// HTML comments removed.
    StripComments,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackwardLifecycle {
    /// Written like any value.
    Apply,
    /// Answered 200 and silently kept at the later stage (what v1 did).
    Ignore,
    /// Refused with 400 `VALIDATION_ERROR`.
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergedRead {
    /// Left out of `results`, reported in `errors` as `OBJECT_NOT_FOUND`.
    Omit,
    /// Answered with the surviving record (its own id, the old one in
    /// `hs_merged_object_ids`).
    Surviving,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingFields {
    /// `flowId` / `workflowId` (the spec since 2026-03-26).
    Documented,
    /// `flowMigrationStatuses` / `flowMigrationStatusForClassicWorkflows` (the spec before).
    Legacy,
    /// Either.
    Both,
}
