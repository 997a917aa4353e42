//! Users, roles and tokens. Tokens are shown once and stored only as SHA-256
//! hashes: they are 160-bit random strings, so a slow hash adds nothing.

use mdc_types::{Role, UserName};
use serde::Serialize;
use serde_json::Map;
use sqlx::Row;

use crate::audit::{now_text, sha256_hex};
use crate::authz::{Action, Actor, Allowed, Resource};
use crate::db::Tx;
use crate::error::{Result, StoreError};
use crate::keys::random_bytes;
use crate::store::Store;

#[derive(Debug, Clone, Serialize)]
pub struct UserInfo {
    pub name: String,
    pub roles: Vec<Role>,
    pub display_name: Option<String>,
    pub disabled: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub user: String,
    pub label: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked: bool,
}

/// A newly issued token; `secret` is shown once and never stored.
#[derive(Clone, Serialize)]
pub struct IssuedToken {
    pub id: String,
    pub user: String,
    pub secret: String,
    pub expires_at: Option<String>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) async fn insert_user(
    store: &Store,
    tx: &mut Tx,
    actor: &Actor,
    name: &UserName,
    roles: &[Role],
    display: Option<&str>,
) -> Result<()> {
    let exists = sqlx::query("SELECT 1 FROM users WHERE name = $1")
        .bind(name.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    if exists.is_some() {
        return Err(StoreError::Conflict(format!(
            "user '{name}' already exists"
        )));
    }
    sqlx::query("INSERT INTO users (name, roles, display_name, disabled_at, created_at, created_by) VALUES ($1, $2, $3, NULL, $4, $5)")
        .bind(name.as_str())
        .bind(roles_text(roles))
        .bind(display)
        .bind(now_text())
        .bind(&actor.name)
        .execute(&mut **tx)
        .await?;
    let mut params = Map::new();
    params.insert("roles".into(), roles_text(roles).into());
    store
        .audit_in(
            tx,
            actor,
            "user.add",
            &Resource::User(name.to_string()),
            Allowed::default(),
            params,
        )
        .await?;
    Ok(())
}

pub(crate) async fn insert_token(
    store: &Store,
    tx: &mut Tx,
    actor: &Actor,
    user: &UserName,
    label: Option<&str>,
    expires_at: Option<String>,
) -> Result<IssuedToken> {
    let id = data_encoding::HEXLOWER.encode(&random_bytes::<4>());
    let secret = format!(
        "mdc_{}_{}",
        id,
        data_encoding::BASE32_NOPAD
            .encode(&random_bytes::<20>())
            .to_ascii_lowercase()
    );
    sqlx::query("INSERT INTO tokens (id, user_name, hash, label, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)")
        .bind(&id)
        .bind(user.as_str())
        .bind(sha256_hex(&[secret.as_bytes()]))
        .bind(label)
        .bind(now_text())
        .bind(expires_at.as_deref())
        .execute(&mut **tx)
        .await?;
    let mut params = Map::new();
    params.insert("token_id".into(), id.clone().into());
    params.insert("expires_at".into(), expires_at.clone().into());
    store
        .audit_in(
            tx,
            actor,
            "token.issue",
            &Resource::User(user.to_string()),
            Allowed::default(),
            params,
        )
        .await?;
    Ok(IssuedToken {
        id,
        user: user.to_string(),
        secret,
        expires_at,
    })
}

impl Store {
    pub async fn user_add(
        &self,
        actor: &Actor,
        name: &str,
        roles: &str,
        display: Option<&str>,
    ) -> Result<UserInfo> {
        let name = UserName::parse("name", name)?;
        let roles = Role::parse_list("roles", roles)?;
        self.authorize(
            actor,
            Action::ManageUsers,
            &Resource::User(name.to_string()),
        )
        .await?;
        let mut tx = self.db.write().await?;
        insert_user(self, &mut tx, actor, &name, &roles, display).await?;
        tx.commit().await?;
        self.user_get(name.as_str()).await
    }

    async fn user_get(&self, name: &str) -> Result<UserInfo> {
        let row = sqlx::query(
            "SELECT name, roles, display_name, disabled_at, created_at FROM users WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| StoreError::NotFound {
            what: "user",
            name: name.to_owned(),
        })?;
        user_from_row(&row)
    }

    pub async fn user_list(&self, actor: &Actor) -> Result<Vec<UserInfo>> {
        self.authorize(actor, Action::ListUsers, &Resource::System)
            .await?;
        let rows = sqlx::query(
            "SELECT name, roles, display_name, disabled_at, created_at FROM users ORDER BY name",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn user_disable(&self, actor: &Actor, name: &str) -> Result<UserInfo> {
        let name = UserName::parse("name", name)?;
        let resource = Resource::User(name.to_string());
        let allowed = self
            .authorize(actor, Action::ManageUsers, &resource)
            .await?;
        let mut tx = self.db.write().await?;
        let row = sqlx::query("SELECT disabled_at FROM users WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        match row {
            None => {
                return Err(StoreError::NotFound {
                    what: "user",
                    name: name.to_string(),
                })
            }
            Some(r) if r.try_get::<Option<String>, _>(0)?.is_some() => {
                return Err(StoreError::Conflict(format!(
                    "user '{name}' is already disabled"
                )));
            }
            Some(_) => {}
        }
        sqlx::query("UPDATE users SET disabled_at = $1 WHERE name = $2")
            .bind(now_text())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
        self.audit_in(
            &mut tx,
            actor,
            "user.disable",
            &resource,
            allowed,
            Map::new(),
        )
        .await?;
        tx.commit().await?;
        self.user_get(name.as_str()).await
    }

    /// Issues a token for `user` (an admin, or the user for themself).
    pub async fn token_issue(
        &self,
        actor: &Actor,
        user: &str,
        label: Option<&str>,
        expires_days: Option<u32>,
    ) -> Result<IssuedToken> {
        let user = UserName::parse("user", user)?;
        self.authorize(actor, Action::IssueToken, &Resource::User(user.to_string()))
            .await?;
        let target = self.user_get(user.as_str()).await?;
        if target.disabled {
            return Err(StoreError::Conflict(format!("user '{user}' is disabled")));
        }
        let expires = match expires_days {
            Some(0) => return Err(StoreError::invalid("expires-days", "must be at least 1")),
            Some(d) => Some(
                (chrono::Utc::now() + chrono::Duration::days(i64::from(d)))
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string(),
            ),
            None => None,
        };
        let mut tx = self.db.write().await?;
        let token = insert_token(self, &mut tx, actor, &user, label, expires).await?;
        tx.commit().await?;
        Ok(token)
    }

    pub async fn token_revoke(&self, actor: &Actor, id: &str) -> Result<TokenInfo> {
        let owner: String = sqlx::query("SELECT user_name FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "token",
                name: id.chars().take(16).collect(),
            })?
            .try_get(0)?;
        let resource = Resource::Token {
            id: id.to_owned(),
            owner,
        };
        let allowed = self
            .authorize(actor, Action::RevokeToken, &resource)
            .await?;
        let mut tx = self.db.write().await?;
        let done =
            sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_text())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "token {id} is already revoked"
            )));
        }
        self.audit_in(
            &mut tx,
            actor,
            "token.revoke",
            &resource,
            allowed,
            Map::new(),
        )
        .await?;
        tx.commit().await?;
        self.token_list(None)
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or_else(|| StoreError::NotFound {
                what: "token",
                name: id.into(),
            })
    }

    /// Tokens of one user, or all (admin); never the secrets.
    pub async fn tokens(&self, actor: &Actor, user: Option<&str>) -> Result<Vec<TokenInfo>> {
        match user {
            Some(u) => {
                self.authorize(actor, Action::IssueToken, &Resource::User(u.to_owned()))
                    .await?
            }
            None => {
                self.authorize(actor, Action::ManageUsers, &Resource::System)
                    .await?
            }
        };
        self.token_list(user).await
    }

    async fn token_list(&self, user: Option<&str>) -> Result<Vec<TokenInfo>> {
        let rows = sqlx::query("SELECT id, user_name, label, created_at, expires_at, revoked_at FROM tokens WHERE ($1 = '' OR user_name = $1) ORDER BY created_at, id")
            .bind(user.unwrap_or(""))
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.try_get(0)?,
                    user: r.try_get(1)?,
                    label: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                    expires_at: r.try_get(4)?,
                    revoked: r.try_get::<Option<String>, _>(5)?.is_some(),
                })
            })
            .collect()
    }
}

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<UserInfo> {
    let roles: String = row.try_get(1)?;
    Ok(UserInfo {
        name: row.try_get(0)?,
        roles: Role::parse_list("roles", &roles).unwrap_or_default(),
        display_name: row.try_get(2)?,
        disabled: row.try_get::<Option<String>, _>(3)?.is_some(),
        created_at: row.try_get(4)?,
    })
}
