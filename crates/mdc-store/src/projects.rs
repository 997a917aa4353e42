//! Projects, IRB approvals, members, grants, and the data-access check.

use mdc_types::{parse_date, DuoCode, FieldError, GrantLevel, Slug, UserName};
use serde::{Deserialize, Serialize};
use serde_json::Map;
use sqlx::Row;

use crate::audit::now_text;
use crate::authz::{Action, Actor, Allowed, Resource};
use crate::error::{Result, StoreError};
use crate::store::Store;

#[derive(Debug, Clone, Deserialize)]
pub struct NewProject {
    pub name: String,
    pub title: String,
    /// A DUO purpose code: GRU, HMB, DS-x, POA or NMDS.
    pub purpose: String,
    pub commercial: bool,
    pub institution: String,
    /// ISO 3166 alpha-2 country of the institution.
    pub country: String,
    pub pi: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NewIrb {
    pub number: String,
    pub institution: String,
    pub approved: String,
    pub expires: String,
    pub scope: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IrbInfo {
    pub id: i64,
    pub number: String,
    pub institution: String,
    pub approved_on: String,
    pub expires_on: String,
    pub scope: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberInfo {
    pub user: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GrantInfo {
    pub id: i64,
    pub dataset: String,
    pub version: i64,
    pub level: GrantLevel,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProjectInfo {
    pub name: String,
    pub title: String,
    pub purpose: String,
    pub commercial: bool,
    pub institution: String,
    pub country: String,
    pub pi: String,
    pub status: String,
    pub approved_by: Option<String>,
    pub irb: Option<IrbInfo>,
    pub members: Vec<MemberInfo>,
    pub grants: Vec<GrantInfo>,
}

/// An allowed access: what allowed it and where the data is.
#[derive(Debug, Clone, Serialize)]
pub struct AccessInfo {
    pub project: String,
    pub dataset: String,
    pub version: i64,
    pub level: GrantLevel,
    pub grant: Option<i64>,
    pub irb: Option<i64>,
    pub audit_seq: i64,
}

fn text_field(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(FieldError::new(field, format!("must be 1-{max} characters")).into());
    }
    if v.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not contain control characters").into());
    }
    Ok(v.to_owned())
}

impl Store {
    pub async fn project_create(&self, actor: &Actor, p: &NewProject) -> Result<ProjectInfo> {
        let name = Slug::parse("name", &p.name)?;
        let title = text_field("title", &p.title, 200)?;
        let purpose = DuoCode::parse("purpose", &p.purpose)?;
        if !purpose.is_purpose() {
            return Err(StoreError::invalid(
                "purpose",
                "must be a DUO purpose code: GRU, HMB, DS-x, POA or NMDS",
            ));
        }
        let institution = text_field("institution", &p.institution, 200)?;
        let country = p.country.trim().to_ascii_uppercase();
        if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(StoreError::invalid(
                "country",
                "expected an ISO 3166 alpha-2 code such as KR",
            ));
        }
        let pi = UserName::parse("pi", &p.pi)?;
        let resource = Resource::Project(name.to_string());
        let allowed = self
            .authorize(actor, Action::CreateProject, &resource)
            .await?;
        let mut tx = self.db.write().await?;
        if sqlx::query("SELECT 1 FROM projects WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!(
                "project '{name}' already exists"
            )));
        }
        if sqlx::query("SELECT 1 FROM users WHERE name = $1 AND disabled_at IS NULL")
            .bind(pi.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::invalid(
                "pi",
                "must be an existing, active user",
            ));
        }
        let now = now_text();
        sqlx::query(
            "INSERT INTO projects (name, title, purpose, commercial, institution, country, pi, status, approved_at, approved_by, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', NULL, NULL, $8, $9)",
        )
        .bind(name.as_str())
        .bind(&title)
        .bind(purpose.to_string())
        .bind(i64::from(p.commercial))
        .bind(&institution)
        .bind(&country)
        .bind(pi.as_str())
        .bind(&now)
        .bind(&actor.name)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO project_members (project, user_name, role, added_at) VALUES ($1, $2, 'pi', $3)")
            .bind(name.as_str())
            .bind(pi.as_str())
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        let mut params = Map::new();
        params.insert("purpose".into(), purpose.to_string().into());
        params.insert("commercial".into(), p.commercial.into());
        params.insert("country".into(), country.into());
        params.insert("pi".into(), pi.to_string().into());
        self.audit_in(&mut tx, actor, "project.create", &resource, allowed, params)
            .await?;
        tx.commit().await?;
        self.project_info(name.as_str()).await
    }

    pub async fn project_irb(
        &self,
        actor: &Actor,
        project: &str,
        irb: &NewIrb,
    ) -> Result<ProjectInfo> {
        let number = text_field("number", &irb.number, 100)?;
        let institution = text_field("institution", &irb.institution, 200)?;
        let scope = text_field("scope", &irb.scope, 2000)?;
        let approved = parse_date("approved", &irb.approved)?;
        let expires = parse_date("expires", &irb.expires)?;
        if expires <= approved {
            return Err(StoreError::invalid(
                "expires",
                "must be after the approval date",
            ));
        }
        let resource = self.existing_project(project).await?;
        let allowed = self
            .authorize(actor, Action::EditProject, &resource)
            .await?;
        let mut tx = self.db.write().await?;
        let id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 FROM irb_approvals")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        sqlx::query(
            "INSERT INTO irb_approvals (id, project, number, institution, approved_on, expires_on, scope, recorded_at, recorded_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(project)
        .bind(&number)
        .bind(&institution)
        .bind(approved.to_string())
        .bind(expires.to_string())
        .bind(&scope)
        .bind(now_text())
        .bind(&actor.name)
        .execute(&mut *tx)
        .await?;
        let mut params = Map::new();
        params.insert("irb_id".into(), id.into());
        params.insert("number".into(), number.into());
        params.insert("approved".into(), approved.to_string().into());
        params.insert("expires".into(), expires.to_string().into());
        self.audit_in(
            &mut tx,
            actor,
            "project.irb",
            &resource,
            Allowed {
                irb: Some(id),
                ..allowed
            },
            params,
        )
        .await?;
        tx.commit().await?;
        self.project_info(project).await
    }

    pub async fn project_member_add(
        &self,
        actor: &Actor,
        project: &str,
        user: &str,
        role: &str,
    ) -> Result<ProjectInfo> {
        let user = UserName::parse("user", user)?;
        if !matches!(role, "member" | "pi") {
            return Err(StoreError::invalid("role", "expected 'member' or 'pi'"));
        }
        let resource = self.existing_project(project).await?;
        let allowed = self
            .authorize(actor, Action::EditProject, &resource)
            .await?;
        let mut tx = self.db.write().await?;
        if sqlx::query("SELECT 1 FROM users WHERE name = $1")
            .bind(user.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound {
                what: "user",
                name: user.to_string(),
            });
        }
        if sqlx::query("SELECT 1 FROM project_members WHERE project = $1 AND user_name = $2")
            .bind(project)
            .bind(user.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!(
                "{user} is already a member of {project}"
            )));
        }
        sqlx::query("INSERT INTO project_members (project, user_name, role, added_at) VALUES ($1, $2, $3, $4)")
            .bind(project)
            .bind(user.as_str())
            .bind(role)
            .bind(now_text())
            .execute(&mut *tx)
            .await?;
        let mut params = Map::new();
        params.insert("user".into(), user.to_string().into());
        params.insert("role".into(), role.into());
        self.audit_in(
            &mut tx,
            actor,
            "project.member.add",
            &resource,
            allowed,
            params,
        )
        .await?;
        tx.commit().await?;
        self.project_info(project).await
    }

    pub async fn project_approve(&self, actor: &Actor, project: &str) -> Result<ProjectInfo> {
        let resource = self.existing_project(project).await?;
        let allowed = self
            .authorize(actor, Action::ApproveProject, &resource)
            .await?;
        let info = self.project_info(project).await?;
        if info.status == "approved" {
            return Err(StoreError::Conflict(format!(
                "project {project} is already approved"
            )));
        }
        let Some(irb) = info.irb else {
            return Err(StoreError::Conflict(format!("project {project} has no IRB approval on file; record one with `mdc project irb` first")));
        };
        let mut tx = self.db.write().await?;
        sqlx::query("UPDATE projects SET status = 'approved', approved_at = $1, approved_by = $2 WHERE name = $3")
            .bind(now_text())
            .bind(&actor.name)
            .bind(project)
            .execute(&mut *tx)
            .await?;
        self.audit_in(
            &mut tx,
            actor,
            "project.approve",
            &resource,
            Allowed {
                irb: Some(irb.id),
                ..allowed
            },
            Map::new(),
        )
        .await?;
        tx.commit().await?;
        self.project_info(project).await
    }

    /// Grants a project a dataset version (`None`: the latest version now).
    pub async fn grant_add(
        &self,
        actor: &Actor,
        project: &str,
        dataset: &str,
        version: Option<i64>,
        level: GrantLevel,
    ) -> Result<GrantInfo> {
        let resource = self.existing_project(project).await?;
        let allowed = self.authorize(actor, Action::AddGrant, &resource).await?;
        let version = self.resolve_version(dataset, version).await?;
        let mut tx = self.db.write().await?;
        if sqlx::query("SELECT 1 FROM grants WHERE project = $1 AND dataset = $2 AND version = $3")
            .bind(project)
            .bind(dataset)
            .bind(version)
            .fetch_optional(&mut *tx)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!(
                "project {project} already has a grant to {dataset}@{version}"
            )));
        }
        let id: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) + 1 FROM grants")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let now = now_text();
        sqlx::query("INSERT INTO grants (id, project, dataset, version, level, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(project)
            .bind(dataset)
            .bind(version)
            .bind(level.as_str())
            .bind(&now)
            .bind(&actor.name)
            .execute(&mut *tx)
            .await?;
        let mut params = Map::new();
        params.insert("dataset".into(), format!("{dataset}@{version}").into());
        params.insert("level".into(), level.as_str().into());
        self.audit_in(
            &mut tx,
            actor,
            "grant.add",
            &resource,
            Allowed {
                grant: Some(id),
                ..allowed
            },
            params,
        )
        .await?;
        tx.commit().await?;
        Ok(GrantInfo {
            id,
            dataset: dataset.to_owned(),
            version,
            level,
            created_at: now,
        })
    }

    /// Checks (and audits) an access to a dataset version inside a project. This
    /// is the call every read path (query, validate, bench) makes first.
    pub async fn access_check(
        &self,
        actor: &Actor,
        project: &str,
        dataset: &str,
        version: Option<i64>,
        level: GrantLevel,
    ) -> Result<AccessInfo> {
        let version = match version {
            Some(v) => v,
            None => self.granted_or_latest(project, dataset).await?,
        };
        let resource = Resource::DatasetVersion {
            project: project.to_owned(),
            dataset: dataset.to_owned(),
            version,
        };
        let allowed = self
            .authorize(actor, Action::AccessData(level), &resource)
            .await?;
        let mut tx = self.db.write().await?;
        let seq = self
            .audit_in(
                &mut tx,
                actor,
                Action::AccessData(level).name(),
                &resource,
                allowed,
                Map::new(),
            )
            .await?;
        tx.commit().await?;
        Ok(AccessInfo {
            project: project.into(),
            dataset: dataset.into(),
            version,
            level,
            grant: allowed.grant,
            irb: allowed.irb,
            audit_seq: seq,
        })
    }

    async fn granted_or_latest(&self, project: &str, dataset: &str) -> Result<i64> {
        let granted: Option<i64> =
            sqlx::query("SELECT MAX(version) FROM grants WHERE project = $1 AND dataset = $2")
                .bind(project)
                .bind(dataset)
                .fetch_one(self.db.pool())
                .await?
                .try_get(0)?;
        match granted {
            Some(v) => Ok(v),
            None => self.resolve_version(dataset, None).await,
        }
    }

    pub(crate) async fn resolve_version(&self, dataset: &str, version: Option<i64>) -> Result<i64> {
        let latest: Option<i64> =
            sqlx::query("SELECT MAX(version) FROM dataset_versions WHERE dataset = $1")
                .bind(dataset)
                .fetch_one(self.db.pool())
                .await?
                .try_get(0)?;
        let Some(latest) = latest else {
            return Err(StoreError::NotFound {
                what: "dataset",
                name: dataset.to_owned(),
            });
        };
        match version {
            None => Ok(latest),
            Some(v) if v >= 1 && v <= latest => Ok(v),
            Some(v) => Err(StoreError::NotFound {
                what: "dataset version",
                name: format!("{dataset}@{v}"),
            }),
        }
    }

    async fn existing_project(&self, project: &str) -> Result<Resource> {
        if sqlx::query("SELECT 1 FROM projects WHERE name = $1")
            .bind(project)
            .fetch_optional(self.db.pool())
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound {
                what: "project",
                name: project.chars().take(64).collect(),
            });
        }
        Ok(Resource::Project(project.to_owned()))
    }

    pub async fn project_show(&self, actor: &Actor, project: &str) -> Result<ProjectInfo> {
        let resource = self.existing_project(project).await?;
        self.authorize(actor, Action::ReadCatalog, &resource)
            .await?;
        self.project_info(project).await
    }

    pub async fn project_list(&self, actor: &Actor) -> Result<Vec<ProjectInfo>> {
        self.authorize(actor, Action::ReadCatalog, &Resource::System)
            .await?;
        let names: Vec<String> = sqlx::query("SELECT name FROM projects ORDER BY name")
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            out.push(self.project_info(&n).await?);
        }
        Ok(out)
    }

    async fn project_info(&self, project: &str) -> Result<ProjectInfo> {
        let r = sqlx::query("SELECT name, title, purpose, commercial, institution, country, pi, status, approved_by FROM projects WHERE name = $1")
            .bind(project)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound { what: "project", name: project.to_owned() })?;
        let irb = sqlx::query("SELECT id, number, institution, approved_on, expires_on, scope FROM irb_approvals WHERE project = $1 ORDER BY id DESC LIMIT 1")
            .bind(project)
            .fetch_optional(self.db.pool())
            .await?
            .map(|i| -> Result<IrbInfo> {
                Ok(IrbInfo {
                    id: i.try_get(0)?,
                    number: i.try_get(1)?,
                    institution: i.try_get(2)?,
                    approved_on: i.try_get(3)?,
                    expires_on: i.try_get(4)?,
                    scope: i.try_get(5)?,
                })
            })
            .transpose()?;
        let members = sqlx::query(
            "SELECT user_name, role FROM project_members WHERE project = $1 ORDER BY user_name",
        )
        .bind(project)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(|m| {
            Ok(MemberInfo {
                user: m.try_get(0)?,
                role: m.try_get(1)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let grants = sqlx::query("SELECT id, dataset, version, level, created_at FROM grants WHERE project = $1 ORDER BY id")
            .bind(project)
            .fetch_all(self.db.pool())
            .await?
            .iter()
            .map(|g| {
                Ok(GrantInfo {
                    id: g.try_get(0)?,
                    dataset: g.try_get(1)?,
                    version: g.try_get(2)?,
                    level: GrantLevel::parse("level", &g.try_get::<String, _>(3)?)?,
                    created_at: g.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ProjectInfo {
            name: r.try_get(0)?,
            title: r.try_get(1)?,
            purpose: r.try_get(2)?,
            commercial: r.try_get::<i64, _>(3)? != 0,
            institution: r.try_get(4)?,
            country: r.try_get(5)?,
            pi: r.try_get(6)?,
            status: r.try_get(7)?,
            approved_by: r.try_get(8)?,
            irb,
            members,
            grants,
        })
    }
}
