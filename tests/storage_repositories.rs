//! Every repository function, on SQLite and on a real PostgreSQL server.

mod support;

use bifrons::storage::{
    admin_bootstrap_hint, AccountSpec, DtmfMode, NewRecording, NewStreamKey, NewUser, Page,
    RecordingFilter, RecordingKind, Role, Secret, Storage, StorageError, Timestamp, Transport,
    TrunkSpec, UserId,
};

fn assert_invalid<T: std::fmt::Debug>(r: Result<T, StorageError>, field: &str) {
    match r {
        Err(StorageError::Invalid { field: f, .. }) if f == field => {}
        other => panic!("expected Invalid({field}), got {other:?}"),
    }
}

fn assert_exists<T: std::fmt::Debug>(r: Result<T, StorageError>) {
    assert!(
        matches!(r, Err(StorageError::AlreadyExists { .. })),
        "expected AlreadyExists, got {r:?}"
    );
}

fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StorageError>) {
    assert!(
        matches!(r, Err(StorageError::NotFound { .. })),
        "expected NotFound, got {r:?}"
    );
}

async fn users_crud_and_login(s: &Storage) {
    let hint = admin_bootstrap_hint(s)
        .await
        .expect("hint on an empty registry");
    assert!(
        hint.contains("bifrons user add NAME --role admin"),
        "{hint}"
    );

    let users = s.users();
    let alice = users
        .create(
            &NewUser {
                username: "alice".into(),
                role: Role::Admin,
            },
            "correct horse",
        )
        .await
        .unwrap();
    assert_eq!(alice.role, Role::Admin);
    assert_eq!(alice.last_login, None);
    assert!(
        admin_bootstrap_hint(s).await.is_none(),
        "an admin exists now"
    );

    assert_exists(
        users
            .create(
                &NewUser {
                    username: "alice".into(),
                    role: Role::Viewer,
                },
                "whatever1",
            )
            .await,
    );
    assert_invalid(
        users
            .create(
                &NewUser {
                    username: "x".repeat(65),
                    role: Role::Viewer,
                },
                "whatever1",
            )
            .await,
        "username",
    );
    assert_invalid(
        users
            .create(
                &NewUser {
                    username: "a b/c".into(),
                    role: Role::Viewer,
                },
                "whatever1",
            )
            .await,
        "username",
    );
    assert_invalid(
        users
            .create(
                &NewUser {
                    username: "bob".into(),
                    role: Role::Viewer,
                },
                "short",
            )
            .await,
        "password",
    );

    let bob = users
        .create(
            &NewUser {
                username: "bob".into(),
                role: Role::Viewer,
            },
            "bob's password",
        )
        .await
        .unwrap();
    assert_eq!(users.get(bob.id).await.unwrap(), bob);
    assert_eq!(users.get_by_username("bob").await.unwrap(), bob);
    assert_not_found(users.get(UserId(9999)).await);
    assert_not_found(users.get_by_username("carol").await);

    let all = users.list(Page::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(),
        ["alice", "bob"]
    );
    let second = users
        .list(Page {
            offset: 1,
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(second, vec![bob.clone()]);
    assert_eq!(users.count_admins().await.unwrap(), 1);

    assert!(users
        .authenticate("alice", "wrong password")
        .await
        .unwrap()
        .is_none());
    assert!(users
        .authenticate("nobody", "correct horse")
        .await
        .unwrap()
        .is_none());
    let logged = users
        .authenticate("alice", "correct horse")
        .await
        .unwrap()
        .expect("login");
    assert!(logged.last_login.is_some());

    users
        .set_password(alice.id, "battery staple")
        .await
        .unwrap();
    assert!(users
        .authenticate("alice", "correct horse")
        .await
        .unwrap()
        .is_none());
    assert!(users
        .authenticate("alice", "battery staple")
        .await
        .unwrap()
        .is_some());
    assert_not_found(users.set_password(UserId(9999), "long enough").await);

    let at = Timestamp(1_700_000_000_000);
    assert_eq!(
        users.record_login(bob.id, at).await.unwrap().last_login,
        Some(at)
    );
    assert_eq!(
        users.set_role(bob.id, Role::Admin).await.unwrap().role,
        Role::Admin
    );
    assert_not_found(users.set_role(UserId(9999), Role::Admin).await);

    users.delete(bob.id).await.unwrap();
    assert_not_found(users.delete(bob.id).await);
    assert_not_found(users.get(bob.id).await);
}

fn trunk_spec(name: &str) -> TrunkSpec {
    TrunkSpec {
        transport: Transport::Tls,
        username: Some("1000".into()),
        auth_username: Some("auth1000".into()),
        password: Some(Secret::new("s3cret")),
        realm: Some("pbx.example.com".into()),
        register: true,
        register_expiry_s: 600,
        outbound_proxy: Some("sip:proxy.example.com:5061".into()),
        codecs: vec!["PCMA".into(), "opus".into(), "telephone-event".into()],
        dtmf_mode: DtmfMode::Info,
        srtp: bifrons::storage::TrunkSrtp::Mandatory,
        ..TrunkSpec::new(name, "sips:pbx.example.com:5061")
    }
}

async fn trunks_crud(s: &Storage) {
    let trunks = s.trunks();
    let t = trunks.create(&trunk_spec("main")).await.unwrap();
    assert_eq!(
        t.spec,
        trunk_spec("main"),
        "every field round-trips, codec order kept"
    );
    assert_eq!(
        t.spec.password.as_ref().map(Secret::expose),
        Some("s3cret"),
        "usable for digest"
    );
    assert_eq!(trunks.get(t.id).await.unwrap(), t);
    assert_eq!(trunks.get_by_name("main").await.unwrap(), t);
    assert_exists(trunks.create(&trunk_spec("main")).await);

    assert_invalid(
        trunks
            .create(&TrunkSpec::new("bad", "http://pbx.example.com"))
            .await,
        "registrar uri",
    );
    assert_invalid(
        trunks
            .create(&TrunkSpec::new("n".repeat(100), "sip:pbx"))
            .await,
        "trunk name",
    );
    assert_invalid(
        trunks
            .create(&TrunkSpec {
                outbound_proxy: Some("sip:".into()),
                ..TrunkSpec::new("p", "sip:pbx")
            })
            .await,
        "outbound proxy",
    );
    assert_invalid(
        trunks
            .create(&TrunkSpec {
                codecs: vec![],
                ..TrunkSpec::new("c", "sip:pbx")
            })
            .await,
        "codecs",
    );
    assert_invalid(
        trunks
            .create(&TrunkSpec {
                register_expiry_s: 0,
                ..TrunkSpec::new("e", "sip:pbx")
            })
            .await,
        "register expiry",
    );
    assert_eq!(
        trunks.list(Page::default()).await.unwrap().len(),
        1,
        "refused trunks left no rows"
    );

    let second = trunks
        .create(&TrunkSpec::new("backup", "sip:10.0.0.2"))
        .await
        .unwrap();
    assert_eq!(second.spec.password, None);
    assert_eq!(second.spec.transport, Transport::Udp);
    let mut changed = second.spec.clone();
    changed.enabled = false;
    changed.register = false;
    changed.codecs = vec!["PCMU".into()];
    let updated = trunks.update(second.id, &changed).await.unwrap();
    assert_eq!(updated.spec, changed);
    assert_exists(trunks.update(second.id, &trunk_spec("main")).await);
    assert_not_found(
        trunks
            .update(bifrons::storage::TrunkId(9999), &changed)
            .await,
    );

    let page = trunks
        .list(Page {
            offset: 1,
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(page, vec![updated]);

    trunks.delete(second.id).await.unwrap();
    assert_not_found(trunks.delete(second.id).await);
}

async fn accounts_crud_and_voicemail_pin(s: &Storage) {
    let trunk = s
        .trunks()
        .create(&TrunkSpec::new("pbx", "sip:pbx.example.com"))
        .await
        .unwrap();
    let user = s
        .users()
        .create(
            &NewUser {
                username: "op".into(),
                role: Role::Viewer,
            },
            "operator pw",
        )
        .await
        .unwrap();
    let spec = AccountSpec {
        extension: "1001".into(),
        display_name: "Front desk".into(),
        sip_uri: "sip:1001@pbx.example.com".into(),
        trunk_id: trunk.id,
        user_id: Some(user.id),
        access_token: Some("tok-1001".into()),
        voicemail_enabled: true,
    };
    let accounts = s.accounts();
    let a = accounts.create(&spec).await.unwrap();
    assert_eq!(a.spec, spec);
    assert!(!a.has_voicemail_pin);
    assert_eq!(accounts.get(a.id).await.unwrap(), a);
    assert_eq!(accounts.get_by_extension("1001").await.unwrap(), a);
    assert_exists(accounts.create(&spec).await);
    assert_exists(
        accounts
            .create(&AccountSpec {
                extension: "1002".into(),
                ..spec.clone()
            })
            .await,
    ); // same token

    assert_invalid(
        accounts
            .create(&AccountSpec {
                sip_uri: "1001@pbx".into(),
                extension: "9".into(),
                access_token: None,
                ..spec.clone()
            })
            .await,
        "sip uri",
    );
    assert_invalid(
        accounts
            .create(&AccountSpec {
                display_name: "d".repeat(129),
                extension: "9".into(),
                access_token: None,
                ..spec.clone()
            })
            .await,
        "display name",
    );
    assert_not_found(
        accounts
            .create(&AccountSpec {
                trunk_id: bifrons::storage::TrunkId(9999),
                extension: "9".into(),
                access_token: None,
                ..spec.clone()
            })
            .await,
    );

    // Voicemail PIN: only a hash is stored; wrong or missing PINs never open the box.
    assert!(!accounts.verify_voicemail_pin(a.id, "1234").await.unwrap());
    assert_invalid(
        accounts.set_voicemail_pin(a.id, Some("12a4")).await,
        "voicemail pin",
    );
    accounts
        .set_voicemail_pin(a.id, Some("4321"))
        .await
        .unwrap();
    assert!(accounts.get(a.id).await.unwrap().has_voicemail_pin);
    assert!(accounts.verify_voicemail_pin(a.id, "4321").await.unwrap());
    assert!(!accounts.verify_voicemail_pin(a.id, "1234").await.unwrap());
    accounts.set_voicemail_pin(a.id, None).await.unwrap();
    assert!(!accounts.verify_voicemail_pin(a.id, "4321").await.unwrap());
    assert_not_found(
        accounts
            .set_voicemail_pin(bifrons::storage::AccountId(9999), Some("1234"))
            .await,
    );
    assert_not_found(
        accounts
            .verify_voicemail_pin(bifrons::storage::AccountId(9999), "1234")
            .await,
    );

    let mut changed = spec.clone();
    changed.display_name = "Reception".into();
    changed.voicemail_enabled = false;
    changed.access_token = None;
    let updated = accounts.update(a.id, &changed).await.unwrap();
    assert_eq!(updated.spec, changed);
    assert_eq!(
        accounts.list(Page::default()).await.unwrap(),
        vec![updated.clone()]
    );

    // A trunk in use cannot be deleted; a deleted user only loses the permission.
    let r = s.trunks().delete(trunk.id).await;
    assert!(matches!(r, Err(StorageError::InUse { .. })), "{r:?}");
    s.users().delete(user.id).await.unwrap();
    assert_eq!(accounts.get(a.id).await.unwrap().spec.user_id, None);

    accounts.delete(a.id).await.unwrap();
    assert_not_found(accounts.delete(a.id).await);
    s.trunks().delete(trunk.id).await.unwrap();
}

async fn stream_keys_crud(s: &Storage) {
    let keys = s.stream_keys();
    let new = NewStreamKey {
        name: "studio".into(),
        owner: "alice".into(),
        enabled: true,
    };
    let k = keys.create(&new).await.unwrap();
    assert!(k.key.expose().len() >= 32, "keys are long random strings");
    assert_eq!(k.last_used, None);
    let other = keys
        .create(&NewStreamKey {
            name: "other".into(),
            ..new.clone()
        })
        .await
        .unwrap();
    assert_ne!(other.key, k.key, "each key is random");

    assert_eq!(keys.get(k.id).await.unwrap(), k);
    assert_eq!(keys.get_by_key(k.key.expose()).await.unwrap(), k);
    assert_not_found(keys.get_by_key("not-a-key").await);
    assert_eq!(
        keys.list(Page::default()).await.unwrap(),
        vec![k.clone(), other.clone()]
    );
    assert_eq!(
        keys.list(Page {
            offset: 1,
            limit: 5
        })
        .await
        .unwrap(),
        vec![other.clone()]
    );

    assert_exists(keys.create(&new).await);
    assert_eq!(keys.list(Page::default()).await.unwrap().len(), 2);

    let upd = keys.update(k.id, "studio-2", "bob", false).await.unwrap();
    assert_eq!(
        (upd.name.as_str(), upd.owner.as_str(), upd.enabled),
        ("studio-2", "bob", false)
    );
    assert_eq!(upd.key, k.key, "update keeps the secret");
    assert_exists(keys.update(k.id, "other", "bob", false).await);
    assert_invalid(keys.update(k.id, "", "bob", false).await, "stream key name");

    let at = Timestamp(1_700_000_000_000);
    keys.touch(k.id, at).await.unwrap();
    assert_eq!(keys.get(k.id).await.unwrap().last_used, Some(at));
    assert_not_found(keys.touch(bifrons::storage::StreamKeyId(9999), at).await);

    keys.delete(k.id).await.unwrap();
    assert_not_found(keys.delete(k.id).await);
    assert_eq!(keys.list(Page::default()).await.unwrap(), vec![other]);
}

fn recording(owner: &str, i: u32, kind: RecordingKind) -> NewRecording {
    NewRecording {
        kind,
        owner: owner.into(),
        caller: Some(format!("sip:{i}@example.com")),
        file_path: format!("{owner}/{i}.opus"),
        codec: "opus".into(),
        duration_ms: 1000 * u64::from(i),
        size_bytes: 8000 * u64::from(i),
        created: Timestamp(1_700_000_000_000 + i64::from(i)),
    }
}

async fn recordings_crud_filters_and_batches(s: &Storage) {
    let recs = s.recordings();
    let r1 = recs
        .create(&recording("1001", 1, RecordingKind::Voicemail))
        .await
        .unwrap();
    assert_eq!(r1.meta, recording("1001", 1, RecordingKind::Voicemail));
    assert!(!r1.heard);
    assert_eq!(recs.get(r1.id).await.unwrap(), r1);
    assert_exists(
        recs.create(&recording("1001", 1, RecordingKind::Voicemail))
            .await,
    );
    assert_invalid(
        recs.create(&NewRecording {
            file_path: "../etc/passwd".into(),
            ..recording("1001", 2, RecordingKind::Voicemail)
        })
        .await,
        "file path",
    );
    assert_invalid(
        recs.create(&NewRecording {
            owner: "o".repeat(65),
            ..recording("x", 2, RecordingKind::Room)
        })
        .await,
        "owner",
    );
    assert_invalid(
        recs.create(&NewRecording {
            duration_ms: u64::MAX,
            ..recording("1001", 2, RecordingKind::Voicemail)
        })
        .await,
        "duration",
    );

    let n = recs
        .create_batch(
            (2..=5)
                .map(|i| recording("1001", i, RecordingKind::Voicemail))
                .chain([recording("room1", 6, RecordingKind::Room)]),
        )
        .await
        .unwrap();
    assert_eq!(n, 5);
    // One bad row rolls the whole batch back.
    let bad_batch = vec![
        recording("1002", 7, RecordingKind::Voicemail),
        recording("1001", 1, RecordingKind::Voicemail),
    ];
    assert_exists(recs.create_batch(bad_batch).await);
    let invalid_batch = vec![
        recording("1002", 8, RecordingKind::Voicemail),
        NewRecording {
            codec: "bad codec".into(),
            ..recording("1002", 9, RecordingKind::Voicemail)
        },
    ];
    assert_invalid(recs.create_batch(invalid_batch).await, "codec");
    assert_eq!(
        recs.count(&RecordingFilter {
            owner: Some("1002".into()),
            ..Default::default()
        })
        .await
        .unwrap(),
        0
    );

    let all = RecordingFilter::default();
    assert_eq!(recs.count(&all).await.unwrap(), 6);
    let vm_1001 = RecordingFilter {
        kind: Some(RecordingKind::Voicemail),
        owner: Some("1001".into()),
        heard: None,
    };
    let listed = recs.list(&vm_1001, Page::default()).await.unwrap();
    assert_eq!(listed.len(), 5);
    assert!(listed.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let page2 = recs
        .list(
            &vm_1001,
            Page {
                offset: 2,
                limit: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(page2, listed[2..4].to_vec());
    assert_eq!(
        recs.count(&RecordingFilter {
            kind: Some(RecordingKind::Room),
            ..Default::default()
        })
        .await
        .unwrap(),
        1
    );

    let heard = recs.set_heard(r1.id, true).await.unwrap();
    assert!(heard.heard);
    let unheard = RecordingFilter {
        heard: Some(false),
        ..vm_1001.clone()
    };
    assert_eq!(recs.count(&unheard).await.unwrap(), 4);
    assert_eq!(
        recs.list(
            &RecordingFilter {
                heard: Some(true),
                ..Default::default()
            },
            Page::default()
        )
        .await
        .unwrap(),
        vec![heard.clone()]
    );
    assert_not_found(
        recs.set_heard(bifrons::storage::RecordingId(9999), true)
            .await,
    );

    let removed = recs.delete(r1.id).await.unwrap();
    assert_eq!(
        removed.meta.file_path, "1001/1.opus",
        "the caller learns which file to remove"
    );
    assert_not_found(recs.delete(r1.id).await);
    assert_not_found(recs.get(r1.id).await);
    assert_eq!(recs.delete_by_owner("1001").await.unwrap(), 4);
    assert_eq!(recs.count(&all).await.unwrap(), 1);
}

/// The recording service registers a row when a recording starts and fills in its length and
/// size when the file is closed; calls and echo tests are kinds of their own.
async fn recordings_started_then_finished(s: &Storage) {
    let recs = s.recordings();
    for (i, kind) in [RecordingKind::Call, RecordingKind::Echotest]
        .into_iter()
        .enumerate()
    {
        let started = recs
            .create(&NewRecording {
                duration_ms: 0,
                size_bytes: 0,
                ..recording("1001", 20 + i as u32, kind)
            })
            .await
            .unwrap();
        let done = recs.finish(started.id, 3000, 24_000).await.unwrap();
        assert_eq!(done.meta.kind, kind);
        assert_eq!(
            (done.meta.duration_ms, done.meta.size_bytes),
            (3000, 24_000)
        );
        assert_eq!(recs.get(started.id).await.unwrap(), done);
        let only_kind = RecordingFilter {
            kind: Some(kind),
            ..Default::default()
        };
        assert_eq!(recs.count(&only_kind).await.unwrap(), 1);
    }
    assert_not_found(recs.finish(bifrons::storage::RecordingId(9999), 1, 1).await);
    assert_invalid(
        recs.finish(bifrons::storage::RecordingId(1), u64::MAX, 1)
            .await,
        "duration",
    );
}

async fn call_recordings_carry_caller_and_callee(s: &Storage) {
    let recs = s.recordings();
    let started = recs
        .create(&recording("1001", 40, RecordingKind::Call))
        .await
        .unwrap();
    assert_eq!(started.callee, None);
    let set = recs
        .set_parties(started.id, Some("sip:alice@pbx"), Some("sip:bob@pbx"))
        .await
        .unwrap();
    assert_eq!(set.meta.caller.as_deref(), Some("sip:alice@pbx"));
    assert_eq!(set.callee.as_deref(), Some("sip:bob@pbx"));
    let done = recs.finish(started.id, 1000, 8000).await.unwrap();
    assert_eq!(
        done.callee.as_deref(),
        Some("sip:bob@pbx"),
        "finish keeps them"
    );
    assert_eq!(recs.get(started.id).await.unwrap(), done);
    assert_invalid(
        recs.set_parties(started.id, None, Some(&"x".repeat(300)))
            .await,
        "callee",
    );
    assert_not_found(
        recs.set_parties(bifrons::storage::RecordingId(9999), None, None)
            .await,
    );
}

async fn health_reports_a_current_schema(s: &Storage) {
    let h = s.health().await.unwrap();
    assert_eq!(h.integrity, "ok");
    assert!(h.schema.is_current());
    assert_eq!(h.schema.pending, 0);
    assert_eq!((h.admins, h.recordings), (0, 0));
}

on_both_backends!(
    users_crud_and_login,
    trunks_crud,
    accounts_crud_and_voicemail_pin,
    stream_keys_crud,
    recordings_crud_filters_and_batches,
    recordings_started_then_finished,
    call_recordings_carry_caller_and_callee,
    health_reports_a_current_schema,
);
