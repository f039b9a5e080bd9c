//! The permanent-mountpoint repository of the streaming plugin, on SQLite and PostgreSQL.

mod support;

use bifrons::storage::{Storage, StorageError};

async fn mountpoints_save_list_delete(s: &Storage) {
    let repo = s.mountpoints();
    assert!(repo.list().await.unwrap().is_empty());
    let first = repo
        .save(7, r#"{"type":"rtp"}"#, Some("$argon2id$x"), None)
        .await
        .unwrap();
    assert_eq!(
        (first.id, first.secret_hash.as_deref()),
        (7, Some("$argon2id$x"))
    );
    assert!(repo.exists(7).await.unwrap());
    let again = repo
        .save(7, r#"{"type":"rtmp"}"#, None, Some("$argon2id$p"))
        .await
        .unwrap();
    assert_eq!(
        again.created, first.created,
        "replacing keeps the creation time"
    );
    assert_eq!(again.config, r#"{"type":"rtmp"}"#);
    assert_eq!(
        (again.secret_hash, again.pin_hash.as_deref()),
        (None, Some("$argon2id$p"))
    );
    repo.save(3, "{}", None, None).await.unwrap();
    let ids: Vec<u64> = repo.list().await.unwrap().iter().map(|m| m.id).collect();
    assert_eq!(ids, [3, 7]);
    assert!(matches!(
        repo.save(0, "{}", None, None).await,
        Err(StorageError::Invalid { .. })
    ));
    assert!(matches!(
        repo.save(u64::MAX, "{}", None, None).await,
        Err(StorageError::Invalid { .. })
    ));
    let huge = "x".repeat(70_000);
    assert!(matches!(
        repo.save(9, &huge, None, None).await,
        Err(StorageError::Invalid { .. })
    ));
    repo.delete(7).await.unwrap();
    assert!(!repo.exists(7).await.unwrap());
    assert!(matches!(
        repo.delete(7).await,
        Err(StorageError::NotFound { .. })
    ));
}

on_both_backends!(mountpoints_save_list_delete);
