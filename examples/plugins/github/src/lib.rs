//! GitHub: list a repository's issues and comment on one, over HTTPS with the
//! install's `token` secret. The API base is the install's `api_base` config
//! (`https://api.github.com` by default; a GitHub Enterprise URL, or a test server).
//! The token goes only into the `Authorization` header: it is never returned,
//! logged or put in an error.
use tenantry_plugin_sdk::serde_json::{Value, json};
use tenantry_plugin_sdk::{Error, Plugin, config_json, export_plugin, http, secrets};

struct GitHub;

fn field<'a>(input: &'a Value, name: &str) -> Result<&'a str, Error> {
    input[name]
        .as_str()
        .filter(|s| !s.is_empty() && !s.contains(['/', '?', '#', '%']))
        .ok_or_else(|| Error::InvalidInput(format!("`{name}` is required (no '/', '?', '#' or '%')")))
}

fn api(method: &str, path: &str) -> Result<http::Request, Error> {
    let token = secrets::get("token")?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::PermissionDenied("no token: set it with `tenantry secret set @examples/github token`".into()))?;
    let base = config_json()["api_base"].as_str().unwrap_or("https://api.github.com").trim_end_matches('/').to_string();
    Ok(http::Request::new(method, &format!("{base}{path}"))
        .header("authorization", &format!("Bearer {token}"))
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .header("user-agent", "tenantry-github-example"))
}

fn check(res: http::Response) -> Result<Value, Error> {
    let body = res.json().unwrap_or(Value::Null);
    match res.status {
        200..=299 => Ok(body),
        401 | 403 => Err(Error::PermissionDenied(format!("GitHub refused the token ({}): {}", res.status, body["message"]))),
        404 => Err(Error::NotFound(format!("GitHub: {}", body["message"]))),
        s => Err(Error::Failed(format!("GitHub answered {s}: {}", body["message"]))),
    }
}

impl Plugin for GitHub {
    const ACTIONS: &'static [(&'static str, &'static str)] = &[
        ("list-issues", "Open issues of `owner`/`repo`: number, title, author, url"),
        ("create-comment", "Comments `body` on issue `number` of `owner`/`repo`"),
    ];
    fn call(action: &str, input: Value) -> Result<Value, Error> {
        let (owner, repo) = (field(&input, "owner")?, field(&input, "repo")?);
        match action {
            "list-issues" => {
                let issues = check(api("GET", &format!("/repos/{owner}/{repo}/issues?state=open&per_page=30"))?.send()?)?;
                let list: Vec<Value> = issues
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| json!({"number": i["number"], "title": i["title"], "author": i["user"]["login"], "url": i["html_url"]}))
                    .collect();
                Ok(json!({"issues": list}))
            }
            _ => {
                let number = input["number"].as_u64().ok_or_else(|| Error::InvalidInput("`number` is required".into()))?;
                let body = input["body"].as_str().filter(|b| !b.is_empty()).ok_or_else(|| Error::InvalidInput("`body` is required".into()))?;
                let created = check(api("POST", &format!("/repos/{owner}/{repo}/issues/{number}/comments"))?.json(&json!({"body": body})).send()?)?;
                Ok(json!({"id": created["id"], "url": created["html_url"]}))
            }
        }
    }
}

export_plugin!(GitHub);
