//! Named RTMP egress targets in the registry (migration 0009), on SQLite and on PostgreSQL:
//! create, read, list, update (key kept, replaced or removed), delete, and what is refused
//! (the one destination rule: scheme, host, application, a key unless the URL names the
//! stream).

mod support;

use bifrons::storage::{EgressId, EgressSpec, Page, Secret, Storage, StorageError};

fn spec(name: &str, url: &str) -> EgressSpec {
    EgressSpec {
        name: name.into(),
        url: url.into(),
        key: Some(Secret::new("cdn-stream-key-1")),
        mountpoint: "studio".into(),
        enabled: true,
    }
}

async fn egress_targets_round_trip_and_refuse_bad_rows(storage: &Storage) {
    let repo = storage.egress_targets();
    assert!(repo.list(Page::first(100)).await.unwrap().is_empty());
    let a = repo
        .create(&spec("youtube", "rtmp://a.rtmp.youtube.com/live2"))
        .await
        .unwrap();
    assert_eq!(a.spec.key.as_ref().unwrap().expose(), "cdn-stream-key-1");
    assert!(
        !format!("{a:?}").contains("cdn-stream-key-1"),
        "Debug hides the key"
    );
    let b = repo
        .create(&EgressSpec {
            key: None,
            enabled: false,
            ..spec("backup", "rtmps://backup.example:443/app/backup-stream")
        })
        .await
        .unwrap();
    assert_eq!(repo.get(a.id).await.unwrap(), a);
    assert_eq!(repo.get_by_name("backup").await.unwrap(), b);
    let all = repo.list(Page::first(100)).await.unwrap();
    assert_eq!(all, vec![a.clone(), b.clone()]);

    // Update: a new key and mountpoint; without a key only when the URL names the stream.
    let mut edited = a.spec.clone();
    edited.key = Some(Secret::new("cdn-stream-key-2"));
    edited.mountpoint = "7".into();
    let a2 = repo.update(a.id, &edited).await.unwrap();
    assert_eq!(a2.spec, edited);
    edited.key = None;
    let e = repo.update(a.id, &edited).await.unwrap_err();
    assert!(
        matches!(&e, StorageError::Invalid { field: "egress key", reason } if reason.contains("a stream key is needed")),
        "{e}"
    );
    assert_eq!(
        repo.get(a.id).await.unwrap(),
        a2,
        "a refused update changes nothing"
    );
    edited.url = "rtmp://a.rtmp.youtube.com/live2/stream-name".into();
    assert_eq!(repo.update(a.id, &edited).await.unwrap().spec.key, None);

    // Refused: other schemes, no application, a taken name, unknown rows.
    for url in [
        "http://x.example/live",
        "srt://x.example:9000",
        "rtmp://x.example",
        "rtmp:///live",
        "rtmps://x.example:0/live",
    ] {
        let e = repo.create(&spec("bad", url)).await.unwrap_err();
        assert!(
            matches!(
                e,
                StorageError::Invalid {
                    field: "egress url",
                    ..
                }
            ),
            "{url}: {e}"
        );
    }
    let e = repo
        .create(&spec("youtube", "rtmp://other.example/live"))
        .await
        .unwrap_err();
    assert!(matches!(e, StorageError::AlreadyExists { .. }), "{e}");
    let e = repo
        .update(b.id, &spec("youtube", "rtmp://other.example/live"))
        .await
        .unwrap_err();
    assert!(matches!(e, StorageError::AlreadyExists { .. }), "{e}");
    let e = repo
        .create(&EgressSpec {
            mountpoint: String::new(),
            ..spec("nomount", "rtmp://x.example/live")
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            StorageError::Invalid {
                field: "mountpoint",
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        repo.get(EgressId(9999)).await.unwrap_err(),
        StorageError::NotFound { .. }
    ));

    repo.delete(a.id).await.unwrap();
    assert!(matches!(
        repo.delete(a.id).await.unwrap_err(),
        StorageError::NotFound { .. }
    ));
    assert_eq!(repo.list(Page::first(100)).await.unwrap(), vec![b]);
}

on_both_backends!(egress_targets_round_trip_and_refuse_bad_rows);
