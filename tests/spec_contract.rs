//! The spec says what the server does, in forms client generators take:
//! per-operation errors, plain `$ref`s, a typed event stream, a default
//! server, real parameter names, and a variant without multipart bodies.

mod common;

use std::collections::BTreeSet;

use common::{client, json, Api, TestServer};
use serde_json::Value;

async fn spec(s: &TestServer) -> Value {
    s.get_json("/api/openapi.json").await
}

fn operation<'a>(spec: &'a Value, id: &str) -> &'a Value {
    spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .find(|op| op["operationId"] == id)
        .unwrap_or_else(|| panic!("no operation {id}"))
}

fn statuses(op: &Value) -> BTreeSet<String> {
    op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn each_operation_declares_the_errors_it_can_answer() {
    let s = TestServer::start().await;
    let spec = spec(&s).await;
    let stats = statuses(operation(&spec, "getQueueStats"));
    for never in ["404", "409", "413", "415", "422", "429", "507"] {
        assert!(
            !stats.contains(never),
            "getQueueStats lists {never}: {stats:?}"
        );
    }
    for always in ["200", "401", "403", "431", "500", "503"] {
        assert!(stats.contains(always), "getQueueStats misses {always}");
    }
    let upload = statuses(operation(&spec, "uploadMedia"));
    for s in ["201", "200", "400", "408", "413", "415", "429", "507"] {
        assert!(upload.contains(s), "uploadMedia misses {s}: {upload:?}");
    }
    assert!(
        !upload.contains("404") && !upload.contains("422"),
        "{upload:?}"
    );
    // Open operations declare no 401; each error names its codes.
    assert!(!statuses(operation(&spec, "getAuthStatus")).contains("401"));
    let get_media = operation(&spec, "getMedia");
    let not_found = get_media["responses"]["404"]["description"]
        .as_str()
        .unwrap();
    assert!(not_found.contains("`media-not-found`"), "{not_found}");
    let bad = get_media["responses"]["400"]["description"]
        .as_str()
        .unwrap();
    assert!(bad.contains("`bad-request`"), "{bad}");
    s.stop().await;
}

/// openapi-python-client drops a model with `allOf` around an enum, and
/// every operation that uses it; schemathesis stops at a `content: null`.
#[tokio::test]
async fn no_all_of_wraps_a_single_reference() {
    fn walk(v: &Value, at: &str) {
        match v {
            Value::Object(m) => {
                assert!(
                    m.get("content") != Some(&Value::Null),
                    "content: null at {at}"
                );
                if let Some(Value::Array(parts)) = m.get("allOf") {
                    let refs = parts.iter().filter(|p| p.get("$ref").is_some()).count();
                    let others = parts
                        .iter()
                        .filter(|p| p.get("properties").is_some())
                        .count();
                    assert!(
                        !(refs == 1 && others == 0),
                        "allOf around one $ref at {at}: {v}"
                    );
                }
                for (k, v) in m {
                    walk(v, &format!("{at}/{k}"));
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, at)),
            _ => {}
        }
    }
    let s = TestServer::start().await;
    let spec = spec(&s).await;
    walk(&spec, "");
    let row = &spec["components"]["schemas"]["MediaStatusRow"]["properties"]["processing_status"];
    assert_eq!(row["nullable"], true, "{row}");
    assert_eq!(
        row["anyOf"][0]["$ref"], "#/components/schemas/Status",
        "{row}"
    );
    let kind = &spec["components"]["schemas"]["ImportRequest"]["properties"]["type"];
    assert_eq!(kind["$ref"], "#/components/schemas/SearchType", "{kind}");
    s.stop().await;
}

#[tokio::test]
async fn the_event_stream_declares_one_event_as_a_union_on_type() {
    let s = TestServer::start().await;
    let spec = spec(&s).await;
    let media =
        &operation(&spec, "streamEvents")["responses"]["200"]["content"]["text/event-stream"];
    assert_eq!(media["schema"]["$ref"], "#/components/schemas/Event");
    let event = &spec["components"]["schemas"]["Event"];
    assert_eq!(event["discriminator"]["propertyName"], "type");
    let names: BTreeSet<&str> = event["discriminator"]["mapping"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let expected = [
        "ai_endpoint",
        "generation",
        "import",
        "item",
        "library",
        "media_deleted",
        "model",
        "stats",
        "worker",
    ];
    assert_eq!(names, expected.into_iter().collect());
    assert_eq!(event["oneOf"].as_array().unwrap().len(), expected.len());
    // The whole SSE event, for tools that check live streams.
    let item = &media["itemSchema"];
    assert_eq!(
        item["properties"]["event"]["enum"]
            .as_array()
            .unwrap()
            .len(),
        expected.len()
    );
    assert_eq!(
        item["properties"]["data"]["contentSchema"]["$ref"],
        "#/components/schemas/Event"
    );
    s.stop().await;
}

#[tokio::test]
async fn servers_tags_and_parameter_names() {
    let s = TestServer::start().await;
    let spec = spec(&s).await;
    assert_eq!(spec["servers"][0]["url"], "http://localhost:3000");
    for item in spec["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let tags: Vec<&Value> = op["tags"].as_array().unwrap().iter().collect();
            let unique: BTreeSet<String> = tags.iter().map(|t| t.to_string()).collect();
            assert_eq!(tags.len(), unique.len(), "{}", op["operationId"]);
        }
    }
    for (path, name) in [
        ("/api/media/not-a-uuid", "id"),
        ("/api/queue/items/not-a-uuid", "id"),
        ("/api/immich/assets/not-a-uuid/thumbnail", "assetId"),
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status(), 400, "{path}");
        let body = json(r).await;
        let msg = body["message"].as_str().unwrap();
        assert!(msg.contains(&format!("`{name}`")), "{path}: {msg}");
        assert!(!msg.contains("param0"), "{path}: {msg}");
    }
    let r = s.post("/api/queue/enqueue/nope").await;
    let msg = json(r).await["message"].as_str().unwrap().to_string();
    assert!(msg.contains("`mediaItemId`"), "{msg}");
    s.stop().await;
}

/// `/api/health` is `/health` under `/api`, open even with a token set.
#[tokio::test]
async fn api_health_is_an_open_alias_of_health() {
    let s = TestServer::start().await;
    let a = s.get_json("/health").await;
    let b = s.get_json("/api/health").await;
    assert_eq!(a, b);
    assert_eq!(b["status"], "healthy");
    s.stop().await;

    let (mut c, tmp) = common::test_config();
    c.auth_token = Some("health-token-123".parse().unwrap());
    let s = TestServer::start_with(c, Some(tmp)).await;
    let r = client().get(s.at("/api/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(json(r).await["status"], "healthy");
    // Its neighbours stay closed.
    assert_eq!(s.get("/api/db/info").await.status(), 401);
    s.stop().await;
}

/// `immichvr openapi --without-multipart`: the same document minus the
/// multipart upload, for progenitor; the raw upload stays.
#[tokio::test]
async fn a_spec_without_multipart_operations_for_rust_generators() {
    let print = |args: &[&str]| -> Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_immichvr"))
            .args(args)
            .env("DATA_DIR", tempfile::tempdir().unwrap().path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_yaml::from_slice(&out.stdout).unwrap()
    };
    let full = print(&["openapi"]);
    let lean = print(&["openapi", "--without-multipart"]);
    let text = lean.to_string();
    assert!(!text.contains("multipart/form-data"));
    assert!(text.contains("uploadMediaRaw") && !text.contains("\"uploadMedia\""));
    let count = |v: &Value| -> usize {
        v["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|i| i.as_object().unwrap().len())
            .sum()
    };
    assert_eq!(count(&lean), count(&full) - 1);
}
