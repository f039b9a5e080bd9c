//! The permanent-room repository of the audio bridge, on SQLite and PostgreSQL.

mod support;

use bifrons::storage::{RoomRecord, Storage, StorageError};

fn record<'a>(id: &'a str, config: &'a str) -> RoomRecord<'a> {
    RoomRecord {
        id,
        config,
        secret_hash: None,
        pin_hash: None,
        extension: None,
    }
}

async fn rooms_save_get_list_delete(s: &Storage) {
    let repo = s.rooms();
    assert!(repo.list().await.unwrap().is_empty());
    let first = repo
        .save(RoomRecord {
            secret_hash: Some("$argon2id$s"),
            pin_hash: Some("$argon2id$p"),
            extension: Some("100"),
            ..record("1234", r#"{"sampling_rate":16000}"#)
        })
        .await
        .unwrap();
    assert_eq!(first.id, "1234");
    assert_eq!(first.extension.as_deref(), Some("100"));
    assert_eq!(repo.get("1234").await.unwrap(), first);
    let again = repo
        .save(record("1234", r#"{"sampling_rate":48000}"#))
        .await
        .unwrap();
    assert_eq!(
        again.created, first.created,
        "replacing keeps the creation time"
    );
    assert_eq!(
        (again.secret_hash, again.pin_hash, again.extension),
        (None, None, None),
        "an edit writes the whole row"
    );
    repo.save(record("lobby", "{}")).await.unwrap();
    let ids: Vec<String> = repo
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["1234", "lobby"]);
    for bad in [
        record("", "{}"),
        record("a\nb", "{}"),
        RoomRecord {
            extension: Some(""),
            ..record("7", "{}")
        },
    ] {
        assert!(
            matches!(repo.save(bad).await, Err(StorageError::Invalid { .. })),
            "{bad:?}"
        );
    }
    let long = "x".repeat(200);
    assert!(matches!(
        repo.save(record(&long, "{}")).await,
        Err(StorageError::Invalid { .. })
    ));
    let huge = "x".repeat(70_000);
    assert!(matches!(
        repo.save(record("9", &huge)).await,
        Err(StorageError::Invalid { .. })
    ));
    repo.delete("1234").await.unwrap();
    assert!(matches!(
        repo.get("1234").await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        repo.delete("1234").await,
        Err(StorageError::NotFound { .. })
    ));
}

on_both_backends!(rooms_save_get_list_delete);
