//! A Confluent-compatible schema registry run by someone else. When one is
//! configured, the ids in Attest's messages are that registry's: Attest looks
//! its schema up there (it never registers one; that is the registry owner's
//! decision) and fetches unknown ids from it when decoding.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ExternalError {
    #[error("the schema registry at {url} cannot be reached: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("the schema registry at {url} does not hold Attest's schema under subject {subject}; register it there first")]
    NotRegistered { url: String, subject: String },
    #[error("the schema registry at {url} answered {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
}

pub struct External {
    base: String,
    /// `base` without credentials: the only form that reaches errors and logs.
    shown: String,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Registered {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaText {
    schema: String,
}

const MEDIA: &str = "application/vnd.schemaregistry.v1+json";

impl External {
    pub fn new(base: &str, timeout: Duration) -> External {
        External {
            base: base.trim_end_matches('/').to_owned(),
            shown: crate::config::redact_url(base.trim_end_matches('/')),
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_default(),
        }
    }

    /// The registry's address for messages, credentials redacted.
    pub fn url(&self) -> &str {
        &self.shown
    }

    fn unreachable(&self, e: reqwest::Error) -> ExternalError {
        ExternalError::Unreachable {
            url: self.shown.clone(),
            // reqwest's message repeats the URL, credentials included.
            detail: e.without_url().to_string(),
        }
    }

    /// The id under which `schema` is registered for `subject`
    /// (`POST /subjects/{subject}`, Confluent's lookup).
    pub async fn lookup(&self, subject: &str, schema: &str) -> Result<u32, ExternalError> {
        let response = self
            .client
            .post(format!("{}/subjects/{subject}", self.base))
            .header("content-type", MEDIA)
            .json(&serde_json::json!({ "schema": schema }))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        match response.status().as_u16() {
            200 => Ok(response
                .json::<Registered>()
                .await
                .map_err(|e| self.unreachable(e))?
                .id),
            404 => Err(ExternalError::NotRegistered {
                url: self.shown.clone(),
                subject: subject.to_owned(),
            }),
            status => Err(ExternalError::Refused {
                url: self.shown.clone(),
                status,
                body: response.text().await.unwrap_or_default(),
            }),
        }
    }

    /// The schema text of `id`, `None` if the registry does not know it.
    pub async fn schema(&self, id: u32) -> Result<Option<String>, ExternalError> {
        let response = self
            .client
            .get(format!("{}/schemas/ids/{id}", self.base))
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        match response.status().as_u16() {
            200 => Ok(Some(
                response
                    .json::<SchemaText>()
                    .await
                    .map_err(|e| self.unreachable(e))?
                    .schema,
            )),
            404 => Ok(None),
            status => Err(ExternalError::Refused {
                url: self.shown.clone(),
                status,
                body: response.text().await.unwrap_or_default(),
            }),
        }
    }
}
