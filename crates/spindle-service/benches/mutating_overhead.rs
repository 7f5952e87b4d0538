//! What the service adds to a mutating call: `Service::handle(CreateLun)` +
//! `Service::handle(RemoveLun)` against the bare `Manager::call(create)` + `Manager::call(remove)`,
//! on the simulated array, in the same run (same machine, same moment). The service does the
//! same two plug-in calls plus input checks, the store lookups, the element insert/delete, two
//! audit rows and the metrics. Also, for information, the read actions (answered from the
//! store).
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};
use spindle_api::Method;
use spindle_manager::{CallOptions, Manager, ManagerConfig};
use spindle_plugin_sim::SimArray;
use spindle_service::{Action, AddServer, CreateLun, RequestContext, ServerSettings, Service, ServiceConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const GIB: i64 = 1 << 30;

fn ctx() -> RequestContext {
    RequestContext {
        call_id: "bench".into(),
        who: "admin".into(),
        remote: "bench".into(),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let manager = rt.block_on(async {
        Arc::new(
            Manager::new(ManagerConfig {
                builtins: vec![Arc::new(SimArray)],
                ..Default::default()
            })
            .await
            .unwrap(),
        )
    });
    let svc = rt
        .block_on(Service::open(ServiceConfig {
            data_dir: tmp.path().join("data"),
            manager: Arc::clone(&manager),
            embedded: None,
            refresh_interval: Duration::ZERO,
            job_poll_interval: Duration::from_millis(100),
        }))
        .unwrap();
    let sim_dir = tmp.path().join("sim-service");
    rt.block_on(svc.handle(
        &ctx(),
        Action::AddServer(AddServer {
            name: "bench".into(),
            plugin: Some("spindle.sim.SimArray".into()),
            storage_type: Some("SANStorage".into()),
            settings: ServerSettings {
                admin_host: Some("localhost".into()),
                admin_user: Some("admin".into()),
                admin_passwd: Some("pw".into()),
                extra_info: Some(format!("state_dir={}", sim_dir.display())),
                ..Default::default()
            },
            ..Default::default()
        }),
    ))
    .unwrap();
    // Some elements so that lookups and lists are not trivially empty.
    for i in 0..20 {
        rt.block_on(svc.handle(
            &ctx(),
            Action::CreateLun(CreateLun {
                server: "bench".into(),
                name: format!("base{i}"),
                size: GIB,
                vol_group: None,
                thin: true,
                qos: None,
            }),
        ))
        .unwrap();
    }

    // The bare manager on its own simulated array, shaped the same.
    let entry = manager.resolve("spindle.sim.SimArray").unwrap();
    let bare_dir = tmp.path().join("sim-bare");
    let ss = json!({
        "name": "bare", "uuid": "bench-bare-ss", "storage_type": "SANStorage",
        "admin_host": "localhost", "admin_user": "admin", "admin_passwd": "pw",
        "extra_info": format!("state_dir={}", bare_dir.display()),
    });
    let call = |method: Method, extra: Vec<(&str, Value)>| {
        let mut a = Map::new();
        a.insert("ss_record".into(), ss.clone());
        for (k, v) in extra {
            a.insert(k.into(), v);
        }
        let m = Arc::clone(&manager);
        async move {
            m.call(
                entry,
                method,
                a,
                CallOptions {
                    call_id: Some("bench".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .value
        }
    };
    for i in 0..20 {
        rt.block_on(call(
            Method::Create,
            vec![(
                "se_record",
                json!({"se_type": "LUNType", "ss_uuid": "bench-bare-ss", "name": format!("base{i}"), "size": GIB}),
            )],
        ));
    }

    let n = AtomicU64::new(0);
    let mut g = c.benchmark_group("mutating_overhead");
    g.sample_size(60).measurement_time(Duration::from_secs(8));
    g.bench_function("manager_create_remove", |b| {
        b.iter(|| {
            let name = format!("m{}", n.fetch_add(1, Ordering::Relaxed));
            rt.block_on(async {
                let rec = call(
                    Method::Create,
                    vec![(
                        "se_record",
                        json!({"se_type": "LUNType", "ss_uuid": "bench-bare-ss", "name": name, "size": GIB}),
                    )],
                )
                .await;
                call(Method::Remove, vec![("se_record", rec)]).await;
            })
        })
    });
    g.bench_function("service_create_remove", |b| {
        b.iter(|| {
            let name = format!("s{}", n.fetch_add(1, Ordering::Relaxed));
            rt.block_on(async {
                svc.handle(
                    &ctx(),
                    Action::CreateLun(CreateLun {
                        server: "bench".into(),
                        name: name.clone(),
                        size: GIB,
                        vol_group: None,
                        thin: true,
                        qos: None,
                    }),
                )
                .await
                .unwrap();
                svc.handle(
                    &ctx(),
                    Action::RemoveLun {
                        server: "bench".into(),
                        lun: name,
                    },
                )
                .await
                .unwrap();
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("reads");
    g.sample_size(100).measurement_time(Duration::from_secs(3));
    for (label, action) in [
        (
            "show_server",
            Action::ShowServer {
                server: "bench".into(),
            },
        ),
        (
            "list_luns_20",
            Action::ListLuns {
                server: "bench".into(),
                refresh: false,
            },
        ),
        (
            "show_lun",
            Action::ShowLun {
                server: "bench".into(),
                lun: "base7".into(),
                refresh: false,
            },
        ),
    ] {
        g.bench_function(label, |b| {
            b.iter(|| rt.block_on(svc.handle(&ctx(), action.clone())).unwrap())
        });
    }
    g.finish();
    rt.block_on(svc.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
