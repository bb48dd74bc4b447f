//! A console visitor for integration tests: a cookie jar of one session,
//! pages, server functions as the page calls them, and sign-in; and access
//! grants made through the binary, as an operator makes them.

#![allow(dead_code)]

use std::process::Command;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::Value;

/// Grants access through the binary, as an operator would; the key is the
/// only line on stdout.
pub fn grant(config: &attest_server::config::Config, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_attest"))
        .args(["access", "grant", "--by", "ops-1"])
        .args(args)
        .envs(crate::common::child_env(config))
        .output()
        .expect("attest access grant runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: Option<String>,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookie: None,
        }
    }

    pub fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(c) => request.header(COOKIE, format!("attest_session={c}")),
            None => request,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.with_cookie(self.http.get(format!("{}{path}", self.base)))
            .send()
            .await
            .unwrap()
    }

    /// A server function as the page calls it; status and JSON answer.
    pub async fn call(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let response = self
            .with_cookie(self.http.post(format!("{}/api/{path}", self.base)))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Posts the sign-in form; the redirect and the session cookie, if set.
    pub async fn sign_in(&mut self, key: &str, next: &str) -> (String, Option<String>) {
        let response = self
            .http
            .post(format!("{}/login", self.base))
            .form(&[("key", key), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 303);
        let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
        let set = response
            .headers()
            .get(SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned());
        if let Some(set) = &set {
            let value = set
                .strip_prefix("attest_session=")
                .and_then(|rest| rest.split(';').next())
                .unwrap();
            self.cookie = Some(value.to_owned());
        }
        (location, set)
    }
}
