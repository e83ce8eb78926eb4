//! Hostile input against every route of the API, over the real socket (property-based).
//!
//! For each route of `banger_proto::routes::ALL` (as documented in `docs/openapi.json`),
//! random path parameters, query strings and JSON bodies — deep, huge numbers, wrong types,
//! the field names the API uses, paths to files that are not what they claim — are sent to a
//! daemon on a host without a VMM. Every answer must be: no internal error (500), every error
//! in the `{code, message, op_id}` envelope with a known code, and a rejected request must
//! leave the store exactly as it was.

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use banger_proto::ErrorCode;
use banger_proto::routes::{self, Route};
use common::TestDaemon;

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name".to_owned()),
        Just("spec".to_owned()),
        Just("vcpu".to_owned()),
        Just("memory_mib".to_owned()),
        Just("disk_size".to_owned()),
        Just("nat".to_owned()),
        Just("image".to_owned()),
        Just("ids".to_owned()),
        Just("rootfs".to_owned()),
        Just("work_seed".to_owned()),
        Just("kernel".to_owned()),
        Just("vmlinux".to_owned()),
        Just("initrd".to_owned()),
        Just("remote".to_owned()),
        Just("tty".to_owned()),
        Just("guest_path".to_owned()),
        Just("host_path".to_owned()),
        Just("head".to_owned()),
        "[a-z_]{0,8}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        "\\PC{0,24}".prop_map(Value::from),
        prop_oneof![
            Just("8G"),
            Just("1T"),
            Just("18446744073709551615M"),
            Just("/etc/shadow"),
            Just("/bin/true"),
            Just("/dev/zero"),
            Just("../../etc"),
            Just("web"),
            Just("-x"),
            Just(""),
        ]
        .prop_map(Value::from),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m: BTreeMap<String, Value>| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn param() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("web".to_owned()),
        Just("w".to_owned()),
        Just("aaaa0001".to_owned()),
        Just("..".to_owned()),
        "\\PC{0,40}",
        "[a-z0-9-]{0,70}",
    ]
}

/// What the store holds, to compare before and after a rejected request.
fn snapshot(d: &TestDaemon) -> String {
    let store = d.ctx.store();
    format!(
        "{:?}|{:?}|{:?}",
        store.vms().list().expect("vms"),
        store.images().list().expect("images"),
        store.kernels().list().expect("kernels")
    )
}

fn body_for(route: &Route) -> bool {
    matches!(route.method, "POST" | "PUT" | "PATCH")
}

#[test]
fn no_route_answers_hostile_input_with_an_internal_error_or_a_bare_error() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let d = rt.block_on(TestDaemon::start_default());
    d.seed_image();
    let known: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let sent = std::cell::Cell::new(0usize);
    for route in routes::ALL.iter().filter(|r| **r != routes::SHUTDOWN) {
        let mut runner = TestRunner::new(Config {
            cases: 48,
            failure_persistence: None,
            ..Config::default()
        });
        let query = prop_oneof![
            Just("offset=-1".to_owned()),
            Just("offset=18446744073709551616".to_owned()),
            Just("offset=%ff%00".to_owned()),
            "[a-z_]{0,6}=[A-Za-z0-9._~%-]{0,12}",
        ];
        let strategy = (param(), json(), prop::option::of(query));
        let result = runner.run(&strategy, |(param, body, query)| {
            let mut path = route.url(&[&param, &param]);
            if let Some(q) = &query {
                path.push('?');
                path.push_str(q);
            }
            let before = snapshot(&d);
            let body = body_for(route).then(|| body.to_string());
            let (status, answer) =
                rt.block_on(common::call(&d.socket(), route.method, &path, body.clone()));
            sent.set(sent.get() + 1);
            prop_assert_ne!(
                status,
                500,
                "{} {} {:?} -> {}",
                route.method,
                path,
                body,
                answer
            );
            if status >= 400 {
                let code = answer["code"].as_str().unwrap_or_default();
                prop_assert!(
                    known.contains(&code),
                    "{} {} -> {} without the envelope: {}",
                    route.method,
                    path,
                    status,
                    answer
                );
                prop_assert!(answer["op_id"].as_str().is_some_and(|id| !id.is_empty()));
                prop_assert!(answer["message"].is_string());
                prop_assert_eq!(
                    snapshot(&d),
                    before,
                    "{} {} was refused ({}) but changed the store",
                    route.method,
                    path,
                    status
                );
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{} {}: {e}", route.method, route.path);
        }
    }
    assert!(
        sent.get() >= 48 * 20,
        "only {} requests were sent",
        sent.get()
    );
    rt.block_on(d.stop());
}
