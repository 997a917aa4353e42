//! The one place where access is decided (DESIGN §6).
//!
//! `decide` is a pure function of an actor, an action, a resource and the facts
//! loaded for them, so every gate is tested without a database. `Store::authorize`
//! loads the facts and records the decision in the audit log; the CLI and the
//! HTTP API both go through it.

use std::fmt;

use chrono::NaiveDate;
use mdc_types::{DuoCode, DuoList, GrantLevel, Role};
use serde::Serialize;

/// Who is calling, as resolved from a token or the local OS account.
#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    /// The user name, e.g. `alice` or `local:root`.
    pub name: String,
    /// How the caller proved it: `token:<id>` or `local`.
    pub via: String,
    /// Where the call came from: `cli` or the HTTP client address.
    pub client: String,
    pub roles: Vec<Role>,
    /// Why this actor may do nothing at all, if so.
    pub blocked: Option<Block>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Block {
    UnknownUser,
    Disabled,
    TokenRevoked,
    TokenExpired,
}

impl Actor {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// What the actor wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    ManageUsers,
    ListUsers,
    IssueToken,
    RevokeToken,
    RegisterDataset,
    ReadCatalog,
    CreateProject,
    EditProject,
    ApproveProject,
    AddGrant,
    ManageConsent,
    ReadAudit,
    Checkpoint,
    BackupKeys,
    /// Record an accelerator benchmark or parity run (issue 8).
    RunBenchmark,
    /// Read a dataset version's data inside a project, at a level.
    AccessData(GrantLevel),
    /// Hold a new output (a result meant to leave) in a project: members.
    CreateOutput,
    /// See an output inside the secure zone: its author, project members,
    /// reviewers and auditors.
    ReadOutput,
    /// Submit an output for release review: its author only.
    SubmitOutput,
    /// Review, release or reject an output: a reviewer who is not its author.
    ReviewOutput,
    /// Set a project's disclosure-control rules: stewards.
    SetDisclosure,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::ManageUsers => "user.manage",
            Action::ListUsers => "user.list",
            Action::IssueToken => "token.issue",
            Action::RevokeToken => "token.revoke",
            Action::RegisterDataset => "dataset.register",
            Action::ReadCatalog => "catalog.read",
            Action::CreateProject => "project.create",
            Action::EditProject => "project.edit",
            Action::ApproveProject => "project.approve",
            Action::AddGrant => "grant.add",
            Action::ManageConsent => "consent.manage",
            Action::ReadAudit => "audit.read",
            Action::Checkpoint => "audit.checkpoint",
            Action::BackupKeys => "key.backup",
            Action::RunBenchmark => "bench.record",
            Action::AccessData(GrantLevel::Aggregate) => "data.access.aggregate",
            Action::AccessData(GrantLevel::Record) => "data.access.record",
            Action::CreateOutput => "output.create",
            Action::ReadOutput => "output.read",
            Action::SubmitOutput => "output.submit",
            Action::ReviewOutput => "output.review",
            Action::SetDisclosure => "disclosure.set",
        }
    }
}

/// What the action is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    System,
    User(String),
    /// A token, with the user who owns it.
    Token {
        id: String,
        owner: String,
    },
    Project(String),
    /// A dataset version outside any project (registration).
    Dataset {
        dataset: String,
        version: i64,
    },
    DatasetVersion {
        project: String,
        dataset: String,
        version: i64,
    },
    /// An output held in a project, with its author (separation of duties).
    Output {
        project: String,
        id: i64,
        author: String,
    },
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::System => f.write_str("system"),
            Resource::User(u) => write!(f, "user:{u}"),
            Resource::Token { id, .. } => write!(f, "token:{id}"),
            Resource::Project(p) => write!(f, "project:{p}"),
            Resource::Dataset { dataset, version } => write!(f, "dataset:{dataset}@{version}"),
            Resource::DatasetVersion {
                dataset, version, ..
            } => write!(f, "dataset:{dataset}@{version}"),
            Resource::Output { project, id, .. } => write!(f, "output:{project}/{id}"),
        }
    }
}

impl Resource {
    pub fn project(&self) -> Option<&str> {
        match self {
            Resource::Project(p)
            | Resource::DatasetVersion { project: p, .. }
            | Resource::Output { project: p, .. } => Some(p),
            _ => None,
        }
    }
}

/// The governance facts about a project, loaded by the store.
#[derive(Debug, Clone)]
pub struct ProjectFacts {
    pub approved: bool,
    pub purpose: DuoCode,
    pub commercial: bool,
    pub country: String,
    /// The actor's membership role (`pi` or `member`), if any.
    pub membership: Option<String>,
    /// The IRB approval in force (the latest recorded).
    pub irb: Option<IrbFacts>,
    /// Grants of this project to the requested dataset, any version.
    pub grants: Vec<GrantFacts>,
}

#[derive(Debug, Clone)]
pub struct IrbFacts {
    pub id: i64,
    pub number: String,
    pub approved_on: NaiveDate,
    pub expires_on: NaiveDate,
}

#[derive(Debug, Clone)]
pub struct GrantFacts {
    pub id: i64,
    pub version: i64,
    pub level: GrantLevel,
}

#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub project: Option<ProjectFacts>,
    /// The use conditions of the requested dataset version.
    pub dataset_use: Option<DuoList>,
    pub today: Option<NaiveDate>,
}

/// Which gate said no.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    UnknownUser,
    Disabled,
    TokenRevoked,
    TokenExpired,
    MissingRole,
    NoSuchProject,
    NotMember,
    ProjectNotApproved,
    NoIrb,
    IrbExpired,
    IrbNotYetValid,
    NoGrant,
    GrantOtherVersion,
    GrantLevel,
    DuoConflict,
    /// Separation of duties: nobody reviews or releases their own output.
    OwnOutput,
    /// Only an output's author may submit it.
    NotAuthor,
}

/// A denial with the decisive reason, safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denied {
    pub gate: Gate,
    pub reason: String,
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// What allowed an access: recorded in the audit entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Allowed {
    pub grant: Option<i64>,
    pub irb: Option<i64>,
}

fn deny(gate: Gate, reason: impl Into<String>) -> Denied {
    Denied {
        gate,
        reason: reason.into(),
    }
}

fn need_any(actor: &Actor, action: Action, roles: &[Role]) -> Result<Allowed, Denied> {
    if roles.iter().any(|r| actor.has(*r)) {
        Ok(Allowed::default())
    } else {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(deny(
            Gate::MissingRole,
            format!("{} requires the {} role", action.name(), names.join(" or ")),
        ))
    }
}

/// Decides one request. Pure: no IO, no clock (the facts carry `today`).
pub fn decide(
    actor: &Actor,
    action: Action,
    resource: &Resource,
    facts: &Facts,
) -> Result<Allowed, Denied> {
    if let Some(block) = actor.blocked {
        return Err(match block {
            Block::UnknownUser => deny(
                Gate::UnknownUser,
                format!("{} is not a registered user", actor.name),
            ),
            Block::Disabled => deny(Gate::Disabled, format!("user {} is disabled", actor.name)),
            Block::TokenRevoked => deny(Gate::TokenRevoked, "the token was revoked"),
            Block::TokenExpired => deny(Gate::TokenExpired, "the token has expired"),
        });
    }
    match action {
        Action::ManageUsers | Action::BackupKeys => need_any(actor, action, &[Role::Admin]),
        Action::ListUsers => need_any(actor, action, &[Role::Admin, Role::Auditor]),
        Action::IssueToken => match resource {
            Resource::User(u) if *u == actor.name => Ok(Allowed::default()),
            _ => need_any(actor, action, &[Role::Admin]),
        },
        Action::RevokeToken => match resource {
            Resource::Token { owner, .. } if *owner == actor.name => Ok(Allowed::default()),
            _ => need_any(actor, action, &[Role::Admin]),
        },
        Action::RegisterDataset
        | Action::ApproveProject
        | Action::AddGrant
        | Action::ManageConsent => need_any(actor, action, &[Role::Steward]),
        Action::ReadCatalog => Ok(Allowed::default()),
        Action::RunBenchmark => need_any(
            actor,
            action,
            &[Role::Researcher, Role::Steward, Role::Admin],
        ),
        Action::CreateProject => need_any(
            actor,
            action,
            &[Role::Researcher, Role::Steward, Role::Admin],
        ),
        Action::EditProject => {
            if actor.has(Role::Steward) {
                return Ok(Allowed::default());
            }
            let project = facts.project.as_ref().ok_or_else(|| no_project(resource))?;
            if project.membership.as_deref() == Some("pi") {
                Ok(Allowed::default())
            } else {
                Err(deny(
                    Gate::MissingRole,
                    "only the project's PI or a steward may change the project",
                ))
            }
        }
        Action::ReadAudit | Action::Checkpoint => {
            need_any(actor, action, &[Role::Auditor, Role::Admin])
        }
        Action::AccessData(level) => decide_access(actor, level, resource, facts),
        Action::CreateOutput | Action::ReadOutput | Action::SubmitOutput | Action::ReviewOutput => {
            decide_output(actor, action, resource, facts)
        }
        Action::SetDisclosure => need_any(actor, action, &[Role::Steward]),
    }
}

/// The release workflow's gates (DESIGN §6, §8): members hold outputs, the
/// author submits, and a reviewer who is not the author reviews and releases.
fn decide_output(
    actor: &Actor,
    action: Action,
    resource: &Resource,
    facts: &Facts,
) -> Result<Allowed, Denied> {
    let member = facts
        .project
        .as_ref()
        .is_some_and(|p| p.membership.is_some());
    let author = match resource {
        Resource::Output { author, .. } => Some(author.as_str()),
        _ => None,
    };
    let is_author = author == Some(actor.name.as_str());
    match action {
        Action::CreateOutput => {
            if member {
                Ok(Allowed::default())
            } else {
                Err(deny(
                    Gate::NotMember,
                    format!(
                        "{} is not a member of project {}",
                        actor.name,
                        resource.project().unwrap_or("?")
                    ),
                ))
            }
        }
        Action::ReadOutput => {
            if is_author || member || actor.has(Role::Reviewer) || actor.has(Role::Auditor) {
                Ok(Allowed::default())
            } else {
                Err(deny(
                    Gate::NotMember,
                    "outputs are visible to the project's members, reviewers and auditors",
                ))
            }
        }
        Action::SubmitOutput => {
            if is_author {
                Ok(Allowed::default())
            } else {
                Err(deny(
                    Gate::NotAuthor,
                    "only the output's author may submit it",
                ))
            }
        }
        _ => {
            need_any(actor, action, &[Role::Reviewer])?;
            if is_author {
                Err(deny(
                    Gate::OwnOutput,
                    "separation of duties: nobody reviews or releases their own output",
                ))
            } else {
                Ok(Allowed::default())
            }
        }
    }
}

fn no_project(resource: &Resource) -> Denied {
    deny(
        Gate::NoSuchProject,
        format!("no such project '{}'", resource.project().unwrap_or("?")),
    )
}

fn decide_access(
    actor: &Actor,
    level: GrantLevel,
    resource: &Resource,
    facts: &Facts,
) -> Result<Allowed, Denied> {
    let Resource::DatasetVersion {
        project: pname,
        dataset,
        version,
    } = resource
    else {
        return Err(deny(
            Gate::NoGrant,
            "data access needs a project and a dataset version",
        ));
    };
    let project = facts.project.as_ref().ok_or_else(|| no_project(resource))?;
    if project.membership.is_none() {
        return Err(deny(
            Gate::NotMember,
            format!("{} is not a member of project {pname}", actor.name),
        ));
    }
    if !project.approved {
        return Err(deny(
            Gate::ProjectNotApproved,
            format!("project {pname} has not been approved by a steward"),
        ));
    }
    let irb = project.irb.as_ref().ok_or_else(|| {
        deny(
            Gate::NoIrb,
            format!("project {pname} has no IRB approval on file"),
        )
    })?;
    let today = facts.today.unwrap_or(NaiveDate::MIN);
    if today < irb.approved_on {
        return Err(deny(
            Gate::IrbNotYetValid,
            format!(
                "IRB approval {} is valid only from {}",
                irb.number, irb.approved_on
            ),
        ));
    }
    if today > irb.expires_on {
        return Err(deny(
            Gate::IrbExpired,
            format!("IRB approval {} expired on {}", irb.number, irb.expires_on),
        ));
    }
    let Some(grant) = project.grants.iter().find(|g| g.version == *version) else {
        let others: Vec<String> = project
            .grants
            .iter()
            .map(|g| g.version.to_string())
            .collect();
        return Err(if others.is_empty() {
            deny(
                Gate::NoGrant,
                format!("project {pname} has no grant to dataset {dataset}"),
            )
        } else {
            deny(
                Gate::GrantOtherVersion,
                format!(
                    "project {pname} is granted {dataset} version {} only, not version {version}",
                    others.join(", ")
                ),
            )
        });
    };
    if level == GrantLevel::Record && grant.level == GrantLevel::Aggregate {
        return Err(deny(Gate::GrantLevel, format!("the grant to {dataset}@{version} is aggregate-only; record-level access needs a record grant")));
    }
    let uses = facts.dataset_use.clone().unwrap_or_default();
    duo_allows(&uses, project, today)
        .map_err(|why| deny(Gate::DuoConflict, format!("{dataset}@{version}: {why}")))?;
    Ok(Allowed {
        grant: Some(grant.id),
        irb: Some(irb.id),
    })
}

/// Matches a dataset's DUO use conditions against a project's purpose and
/// attributes. Returns the first conflict found.
pub fn duo_allows(uses: &DuoList, project: &ProjectFacts, today: NaiveDate) -> Result<(), String> {
    let permissions: Vec<&DuoCode> = uses.0.iter().filter(|c| c.is_purpose()).collect();
    if permissions.is_empty() {
        return Err(
            "the dataset declares no research permission (GRU, HMB, DS-x, POA or NMDS)".into(),
        );
    }
    let purpose = &project.purpose;
    let permitted = permissions.iter().any(|p| match (p, purpose) {
        (DuoCode::Gru, _) => true,
        (DuoCode::Hmb, DuoCode::Hmb | DuoCode::Ds(_)) => true,
        (DuoCode::Ds(a), DuoCode::Ds(b)) => a == b,
        (DuoCode::Poa, DuoCode::Poa) | (DuoCode::Nmds, DuoCode::Nmds) => true,
        _ => false,
    });
    if !permitted {
        let list: Vec<String> = permissions.iter().map(ToString::to_string).collect();
        return Err(format!(
            "the project's purpose {purpose} is not covered by the dataset's permission {}",
            list.join(",")
        ));
    }
    for code in &uses.0 {
        match code {
            DuoCode::Ncu if project.commercial => {
                return Err(
                    "the dataset is NCU (not for commercial use) and the project is commercial"
                        .into(),
                );
            }
            DuoCode::Npu if project.commercial => {
                return Err(
                    "the dataset is NPU (not-for-profit use only) and the project is commercial"
                        .into(),
                );
            }
            DuoCode::Gs(countries) if !countries.contains(&project.country) => {
                return Err(format!(
                    "the dataset is restricted to {} (GS) and the project's institution is in {}",
                    countries.join("+"),
                    project.country
                ));
            }
            DuoCode::Ts(until) if today > *until => {
                return Err(format!("the dataset's use period (TS) ended on {until}"));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        mdc_types::parse_date("d", s).unwrap()
    }

    fn researcher() -> Actor {
        Actor {
            name: "alice".into(),
            via: "token:a".into(),
            client: "cli".into(),
            roles: vec![Role::Researcher],
            blocked: None,
        }
    }

    fn good_facts() -> Facts {
        Facts {
            project: Some(ProjectFacts {
                approved: true,
                purpose: DuoCode::Hmb,
                commercial: false,
                country: "KR".into(),
                membership: Some("member".into()),
                irb: Some(IrbFacts {
                    id: 7,
                    number: "SNUH-2026-01".into(),
                    approved_on: date("2026-01-01"),
                    expires_on: date("2026-12-31"),
                }),
                grants: vec![GrantFacts {
                    id: 3,
                    version: 2,
                    level: GrantLevel::Aggregate,
                }],
            }),
            dataset_use: Some(DuoList::parse("use", "GRU").unwrap()),
            today: Some(date("2026-06-01")),
        }
    }

    fn resource(version: i64) -> Resource {
        Resource::DatasetVersion {
            project: "p1".into(),
            dataset: "cxr".into(),
            version,
        }
    }

    fn check(
        actor: &Actor,
        level: GrantLevel,
        version: i64,
        facts: &Facts,
    ) -> Result<Allowed, Gate> {
        decide(actor, Action::AccessData(level), &resource(version), facts).map_err(|d| d.gate)
    }

    #[test]
    fn every_gate_denies_with_its_own_reason() {
        type Mutate = fn(&mut Actor, &mut Facts);
        let cases: Vec<(&str, Mutate, i64, GrantLevel, Gate)> = vec![
            (
                "unknown user",
                |a, _| a.blocked = Some(Block::UnknownUser),
                2,
                GrantLevel::Aggregate,
                Gate::UnknownUser,
            ),
            (
                "disabled user",
                |a, _| a.blocked = Some(Block::Disabled),
                2,
                GrantLevel::Aggregate,
                Gate::Disabled,
            ),
            (
                "revoked token",
                |a, _| a.blocked = Some(Block::TokenRevoked),
                2,
                GrantLevel::Aggregate,
                Gate::TokenRevoked,
            ),
            (
                "expired token",
                |a, _| a.blocked = Some(Block::TokenExpired),
                2,
                GrantLevel::Aggregate,
                Gate::TokenExpired,
            ),
            (
                "no such project",
                |_, f| f.project = None,
                2,
                GrantLevel::Aggregate,
                Gate::NoSuchProject,
            ),
            (
                "non-member",
                |_, f| f.project.as_mut().unwrap().membership = None,
                2,
                GrantLevel::Aggregate,
                Gate::NotMember,
            ),
            (
                "unapproved project",
                |_, f| f.project.as_mut().unwrap().approved = false,
                2,
                GrantLevel::Aggregate,
                Gate::ProjectNotApproved,
            ),
            (
                "no IRB",
                |_, f| f.project.as_mut().unwrap().irb = None,
                2,
                GrantLevel::Aggregate,
                Gate::NoIrb,
            ),
            (
                "expired IRB",
                |_, f| f.today = Some(date("2027-01-01")),
                2,
                GrantLevel::Aggregate,
                Gate::IrbExpired,
            ),
            (
                "IRB not yet valid",
                |_, f| f.today = Some(date("2025-12-31")),
                2,
                GrantLevel::Aggregate,
                Gate::IrbNotYetValid,
            ),
            (
                "no grant",
                |_, f| f.project.as_mut().unwrap().grants.clear(),
                2,
                GrantLevel::Aggregate,
                Gate::NoGrant,
            ),
            (
                "grant for another version",
                |_, _| {},
                3,
                GrantLevel::Aggregate,
                Gate::GrantOtherVersion,
            ),
            (
                "record access on an aggregate grant",
                |_, _| {},
                2,
                GrantLevel::Record,
                Gate::GrantLevel,
            ),
            (
                "NCU dataset, commercial project",
                |_, f| {
                    f.dataset_use = Some(DuoList::parse("u", "GRU,NCU").unwrap());
                    f.project.as_mut().unwrap().commercial = true;
                },
                2,
                GrantLevel::Aggregate,
                Gate::DuoConflict,
            ),
            (
                "NPU dataset, commercial project",
                |_, f| {
                    f.dataset_use = Some(DuoList::parse("u", "HMB,NPU").unwrap());
                    f.project.as_mut().unwrap().commercial = true;
                },
                2,
                GrantLevel::Aggregate,
                Gate::DuoConflict,
            ),
            (
                "GS-KR dataset, foreign institution",
                |_, f| {
                    f.dataset_use = Some(DuoList::parse("u", "GRU,GS-KR").unwrap());
                    f.project.as_mut().unwrap().country = "US".into();
                },
                2,
                GrantLevel::Aggregate,
                Gate::DuoConflict,
            ),
            (
                "disease-specific dataset, other disease",
                |_, f| {
                    f.dataset_use = Some(DuoList::parse("u", "DS-C50").unwrap());
                    f.project.as_mut().unwrap().purpose = DuoCode::Ds("I21".into());
                },
                2,
                GrantLevel::Aggregate,
                Gate::DuoConflict,
            ),
            (
                "HMB dataset, ancestry project",
                |_, f| {
                    f.dataset_use = Some(DuoList::parse("u", "HMB").unwrap());
                    f.project.as_mut().unwrap().purpose = DuoCode::Poa;
                },
                2,
                GrantLevel::Aggregate,
                Gate::DuoConflict,
            ),
            (
                "use period over",
                |_, f| f.dataset_use = Some(DuoList::parse("u", "GRU,TS-2026-05-31").unwrap()),
                2,
                GrantLevel::Aggregate,
                Gate::DuoConflict,
            ),
            (
                "no permission code",
                |_, f| f.dataset_use = Some(DuoList::parse("u", "NCU").unwrap()),
                2,
                GrantLevel::Aggregate,
                Gate::DuoConflict,
            ),
        ];
        assert_eq!(
            check(&researcher(), GrantLevel::Aggregate, 2, &good_facts()),
            Ok(Allowed {
                grant: Some(3),
                irb: Some(7)
            })
        );
        for (name, mutate, version, level, gate) in cases {
            let mut actor = researcher();
            let mut facts = good_facts();
            mutate(&mut actor, &mut facts);
            assert_eq!(
                check(&actor, level, version, &facts),
                Err(gate),
                "case: {name}"
            );
        }
    }

    #[test]
    fn boundary_days_of_the_irb_are_inside_it() {
        for day in ["2026-01-01", "2026-12-31"] {
            let mut f = good_facts();
            f.today = Some(date(day));
            assert!(
                check(&researcher(), GrantLevel::Aggregate, 2, &f).is_ok(),
                "{day}"
            );
        }
    }

    #[test]
    fn compatible_duo_combinations_are_allowed() {
        for (uses, purpose, commercial) in [
            ("HMB", DuoCode::Ds("C50".into()), false),
            ("DS-C50", DuoCode::Ds("C50".into()), false),
            ("GRU,GS-KR+JP", DuoCode::Gru, true),
            ("GRU,TS-2026-06-01,PUB", DuoCode::Hmb, true),
        ] {
            let mut f = good_facts();
            f.dataset_use = Some(DuoList::parse("u", uses).unwrap());
            let p = f.project.as_mut().unwrap();
            p.purpose = purpose;
            p.commercial = commercial;
            assert!(
                check(&researcher(), GrantLevel::Aggregate, 2, &f).is_ok(),
                "{uses}"
            );
        }
    }

    #[test]
    fn nobody_reviews_or_releases_their_own_output() {
        let output = Resource::Output {
            project: "p1".into(),
            id: 7,
            author: "alice".into(),
        };
        let mut both = researcher();
        both.roles.push(Role::Reviewer);
        let err = decide(&both, Action::ReviewOutput, &output, &good_facts()).unwrap_err();
        assert_eq!(err.gate, Gate::OwnOutput);
        let mut other = researcher();
        other.name = "bob".into();
        let err = decide(&other, Action::ReviewOutput, &output, &good_facts()).unwrap_err();
        assert_eq!(err.gate, Gate::MissingRole);
        other.roles = vec![Role::Reviewer];
        assert!(decide(&other, Action::ReviewOutput, &output, &good_facts()).is_ok());
        let err = decide(&other, Action::SubmitOutput, &output, &good_facts()).unwrap_err();
        assert_eq!(err.gate, Gate::NotAuthor);
        assert!(decide(&researcher(), Action::SubmitOutput, &output, &good_facts()).is_ok());
    }

    #[test]
    fn outputs_are_read_by_members_reviewers_and_auditors_only() {
        let output = Resource::Output {
            project: "p1".into(),
            id: 7,
            author: "carol".into(),
        };
        assert!(decide(&researcher(), Action::ReadOutput, &output, &good_facts()).is_ok());
        let mut outsider = researcher();
        outsider.name = "mallory".into();
        let mut facts = good_facts();
        if let Some(p) = facts.project.as_mut() {
            p.membership = None;
        }
        let err = decide(&outsider, Action::ReadOutput, &output, &facts).unwrap_err();
        assert_eq!(err.gate, Gate::NotMember);
        let err = decide(&outsider, Action::CreateOutput, &output, &facts).unwrap_err();
        assert_eq!(err.gate, Gate::NotMember);
        outsider.roles = vec![Role::Auditor];
        assert!(decide(&outsider, Action::ReadOutput, &output, &facts).is_ok());
        let err = decide(&outsider, Action::SetDisclosure, &output, &facts).unwrap_err();
        assert_eq!(err.gate, Gate::MissingRole);
    }

    #[test]
    fn role_gated_actions_name_the_missing_role() {
        let r = researcher();
        let err = decide(
            &r,
            Action::RegisterDataset,
            &Resource::System,
            &Facts::default(),
        )
        .unwrap_err();
        assert_eq!(err.gate, Gate::MissingRole);
        assert!(err.reason.contains("steward"), "{}", err.reason);
        assert!(decide(
            &r,
            Action::ManageUsers,
            &Resource::System,
            &Facts::default()
        )
        .is_err());
        assert!(decide(&r, Action::ReadAudit, &Resource::System, &Facts::default()).is_err());
        // Anyone may issue a token for themself, and revoke their own.
        assert!(decide(
            &r,
            Action::IssueToken,
            &Resource::User("alice".into()),
            &Facts::default()
        )
        .is_ok());
        assert!(decide(
            &r,
            Action::IssueToken,
            &Resource::User("bob".into()),
            &Facts::default()
        )
        .is_err());
        let own = Resource::Token {
            id: "t1".into(),
            owner: "alice".into(),
        };
        assert!(decide(&r, Action::RevokeToken, &own, &Facts::default()).is_ok());
    }
}
