//! The checked-in `openapi.yaml` is the spec the server serves, and the
//! spec is well-formed for client generators.

mod common;

use common::Api;

use common::{get_text, TestServer};

const CHECKED_IN: &str = include_str!("../openapi.yaml");

#[tokio::test]
async fn served_spec_equals_checked_in_file() {
    let s = TestServer::start().await;
    let served = s.get("/api/openapi.yaml").await;
    assert!(served.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("yaml"));
    let served = served.text().await.unwrap();
    assert!(
        served == CHECKED_IN,
        "openapi.yaml is out of date: run scripts/regen.sh"
    );
    let json: serde_json::Value = s.get("/api/openapi.json").await.json().await.unwrap();
    assert!(json["openapi"].as_str().unwrap().starts_with("3."));
    s.stop().await;
}

#[test]
fn every_operation_has_unique_camel_case_id_summary_tag_and_errors() {
    let spec: serde_json::Value = served_spec_json();
    let mut ids = std::collections::HashSet::new();
    let mut n = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            n += 1;
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(
                id.chars().next().unwrap().is_ascii_lowercase()
                    && !id.contains('_')
                    && !id.contains('-'),
                "{id}"
            );
            assert!(ids.insert(id.to_string()), "duplicate operationId {id}");
            assert!(op["summary"].is_string(), "{id} has no summary");
            assert!(
                op["tags"]
                    .as_array()
                    .map(|t| !t.is_empty())
                    .unwrap_or(false),
                "{id} has no tag"
            );
            // Every operation can meet an internal error or a refused
            // connection, with the error body.
            let responses = op["responses"].as_object().unwrap();
            for status in ["500", "503"] {
                let e = responses
                    .get(status)
                    .unwrap_or_else(|| panic!("{id} declares no {status}"));
                let schema = &e["content"]["application/json; charset=utf-8"]["schema"]["$ref"];
                if id != "getHealth" && id != "getApiHealth" {
                    assert_eq!(schema, "#/components/schemas/ErrorBody", "{id}");
                }
            }
        }
    }
    assert!(n >= 15, "only {n} operations");
}

/// The JSON form of the spec (equal to the checked-in YAML by the test
/// above), parsed without pulling in a YAML parser for one test.
fn served_spec_json() -> serde_json::Value {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = TestServer::start().await;
        let v = s.get("/api/openapi.json").await.json().await.unwrap();
        s.stop().await;
        v
    })
}

#[tokio::test]
async fn swagger_ui_is_served() {
    let s = TestServer::start().await;
    let nr = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = nr.get(s.at("/api/docs")).send().await.unwrap();
    assert!(r.status().is_redirection());
    assert_eq!(r.headers()["location"], "/api/docs/");
    let page = s.get("/api/docs/").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger"));
    let init = get_text(&s.at("/api/docs/swagger-initializer.js")).await;
    assert!(init.contains("/api/openapi.json"));
    s.stop().await;
}

/// Request bodies refuse a `null` member (`http::body`): that holds only
/// while no request body field is declared nullable.
#[test]
fn no_request_body_field_is_nullable() {
    let spec = served_spec_json();
    let schemas = &spec["components"]["schemas"];
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(content) = op["requestBody"]["content"].as_object() else {
                continue;
            };
            for (ty, media) in content {
                let Some(name) = media["schema"]["$ref"].as_str() else {
                    continue;
                };
                if !ty.starts_with("application/json") {
                    continue;
                }
                // A union (the sign-in body) is checked in each of its shapes.
                let mut names = vec![name.rsplit('/').next().unwrap()];
                while let Some(name) = names.pop() {
                    let schema = &schemas[name];
                    for part in ["oneOf", "anyOf", "allOf"] {
                        for shape in schema[part].as_array().into_iter().flatten() {
                            names.extend(
                                shape["$ref"]
                                    .as_str()
                                    .map(|r| r.rsplit('/').next().unwrap()),
                            );
                        }
                    }
                    let Some(props) = schema["properties"].as_object() else {
                        assert!(
                            schema["oneOf"].is_array()
                                || schema["anyOf"].is_array()
                                || schema["allOf"].is_array(),
                            "{method} {path}: {name} has neither properties nor shapes"
                        );
                        continue;
                    };
                    for (field, p) in props {
                        assert_ne!(p["nullable"], true, "{method} {path}: {name}.{field}");
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 10, "only {checked} fields checked");
}
