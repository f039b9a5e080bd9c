//! The registry side of the SIP plugin: an account's web secret (migration 0003) is stored as
//! an argon2 hash, checked in constant time, and an unknown account answers like a wrong
//! secret. On SQLite and PostgreSQL.

mod support;

use bifrons::storage::{AccountSpec, Storage, StorageError, TrunkSpec};

async fn web_secret_is_hashed_checked_and_clearable(storage: &Storage) {
    let trunk = storage
        .trunks()
        .create(&TrunkSpec::new("pbx", "sip:127.0.0.1:5060"))
        .await
        .unwrap();
    let account = storage
        .accounts()
        .create(&AccountSpec {
            extension: "100".into(),
            display_name: "Reception".into(),
            sip_uri: "sip:100@127.0.0.1".into(),
            trunk_id: trunk.id,
            user_id: None,
            access_token: None,
            voicemail_enabled: false,
        })
        .await
        .unwrap();
    assert!(!account.has_web_secret);
    let accounts = storage.accounts();
    assert!(!accounts
        .verify_web_secret(account.id, "anything-at-all")
        .await
        .unwrap());
    assert!(matches!(
        accounts.set_web_secret(account.id, Some("short")).await,
        Err(StorageError::Invalid { .. })
    ));
    accounts
        .set_web_secret(account.id, Some("correct horse battery"))
        .await
        .unwrap();
    assert!(accounts.get(account.id).await.unwrap().has_web_secret);
    assert!(accounts
        .verify_web_secret(account.id, "correct horse battery")
        .await
        .unwrap());
    assert!(!accounts
        .verify_web_secret(account.id, "correct horse")
        .await
        .unwrap());
    let found = accounts
        .authenticate_web("100", "correct horse battery")
        .await
        .unwrap();
    assert_eq!(found.map(|a| a.id), Some(account.id));
    assert!(accounts
        .authenticate_web("100", "wrong secret!")
        .await
        .unwrap()
        .is_none());
    assert!(accounts
        .authenticate_web("999", "correct horse battery")
        .await
        .unwrap()
        .is_none());
    accounts.set_web_secret(account.id, None).await.unwrap();
    assert!(!accounts
        .verify_web_secret(account.id, "correct horse battery")
        .await
        .unwrap());
    assert!(matches!(
        accounts
            .set_web_secret(bifrons::storage::AccountId(4242), Some("whatever-secret"))
            .await,
        Err(StorageError::NotFound { .. })
    ));
}

on_both_backends!(web_secret_is_hashed_checked_and_clearable);
