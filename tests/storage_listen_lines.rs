//! Listen-line bindings of SIP accounts (an account bound to a streaming mountpoint), on SQLite
//! and PostgreSQL.

mod support;

use bifrons::storage::{AccountId, AccountSpec, Storage, StorageError, TrunkSpec};

async fn listen_lines_bind_and_unbind(s: &Storage) {
    let trunk = s
        .trunks()
        .create(&TrunkSpec::new("kam", "sip:pbx.example.com"))
        .await
        .unwrap();
    let spec = |extension: &str| AccountSpec {
        extension: extension.into(),
        display_name: String::new(),
        sip_uri: format!("sip:{extension}@pbx.example.com"),
        trunk_id: trunk.id,
        user_id: None,
        access_token: None,
        voicemail_enabled: false,
    };
    let accounts = s.accounts();
    let radio = accounts.create(&spec("radio")).await.unwrap();
    let plain = accounts.create(&spec("plain")).await.unwrap();
    assert!(accounts.listen_lines().await.unwrap().is_empty());

    accounts
        .set_listen_mountpoint(radio.id, Some(7))
        .await
        .unwrap();
    let lines = accounts.listen_lines().await.unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0].0.spec.extension.as_str(), lines[0].1),
        ("radio", 7)
    );
    assert_eq!(
        lines[0].0,
        accounts.get(radio.id).await.unwrap(),
        "the whole account"
    );

    for bad in [0, u64::MAX] {
        assert!(matches!(
            accounts.set_listen_mountpoint(plain.id, Some(bad)).await,
            Err(StorageError::Invalid { .. })
        ));
    }
    assert!(matches!(
        accounts
            .set_listen_mountpoint(AccountId(9999), Some(1))
            .await,
        Err(StorageError::NotFound { .. })
    ));
    accounts
        .set_listen_mountpoint(radio.id, None)
        .await
        .unwrap();
    assert!(accounts.listen_lines().await.unwrap().is_empty());
}

on_both_backends!(listen_lines_bind_and_unbind);
