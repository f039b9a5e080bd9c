//! Mailbox settings (`Storage::mailboxes`), on SQLite and on a real PostgreSQL server.

mod support;

use bifrons::storage::{
    AccountId, AccountSpec, MailboxSettings, MwiMode, Storage, StorageError, TrunkSpec,
};

fn assert_invalid<T: std::fmt::Debug>(r: Result<T, StorageError>, field: &str) {
    match r {
        Err(StorageError::Invalid { field: f, .. }) if f == field => {}
        other => panic!("expected Invalid({field}), got {other:?}"),
    }
}

async fn account(s: &Storage, extension: &str) -> AccountId {
    let trunk = match s
        .trunks()
        .create(&TrunkSpec::new("pbx", "sip:pbx.example.com"))
        .await
    {
        Ok(t) => t.id,
        Err(_) => s.trunks().list(Default::default()).await.unwrap()[0].id,
    };
    s.accounts()
        .create(&AccountSpec {
            extension: extension.into(),
            display_name: String::new(),
            sip_uri: format!("sip:{extension}@pbx.example.com"),
            trunk_id: trunk,
            user_id: None,
            access_token: None,
            voicemail_enabled: false,
        })
        .await
        .unwrap()
        .id
}

async fn mailbox_defaults_settings_and_pin(s: &Storage) {
    let id = account(s, "2001").await;
    let other = account(s, "2002").await;
    let boxes = s.mailboxes();

    let fresh = boxes.get(id).await.unwrap();
    assert_eq!(fresh.extension, "2001");
    assert_eq!(fresh.settings, MailboxSettings::default());
    assert!(!fresh.has_pin);

    let settings = MailboxSettings {
        enabled: true,
        greeting_file: Some("voicemail/greetings/2001.ogg".into()),
        max_messages: Some(3),
        max_length_s: Some(60),
        mwi: MwiMode::Subscribe,
    };
    let set = boxes.set(id, &settings).await.unwrap();
    assert_eq!(set.settings, settings);
    assert!(s.accounts().get(id).await.unwrap().spec.voicemail_enabled);
    assert_eq!(boxes.get_by_extension("2001").await.unwrap(), set);
    // Upsert: a second write replaces the row.
    let cleared = MailboxSettings {
        mwi: MwiMode::Unsolicited,
        ..MailboxSettings::default()
    };
    assert_eq!(boxes.set(id, &cleared).await.unwrap().settings, cleared);
    // The other account is untouched.
    assert_eq!(
        boxes.get(other).await.unwrap().settings,
        MailboxSettings::default()
    );

    for (bad, field) in [
        (
            MailboxSettings {
                max_messages: Some(0),
                ..MailboxSettings::default()
            },
            "max messages",
        ),
        (
            MailboxSettings {
                max_length_s: Some(3601),
                ..MailboxSettings::default()
            },
            "max length",
        ),
        (
            MailboxSettings {
                greeting_file: Some("../etc/passwd".into()),
                ..MailboxSettings::default()
            },
            "greeting file",
        ),
    ] {
        assert_invalid(boxes.set(id, &bad).await, field);
    }
    assert_eq!(
        boxes.get(id).await.unwrap().settings,
        cleared,
        "nothing written"
    );
    assert_invalid("sometimes".parse::<MwiMode>(), "message waiting");
    for m in [MwiMode::Off, MwiMode::Unsolicited, MwiMode::Subscribe] {
        assert_eq!(m.as_str().parse::<MwiMode>().unwrap(), m);
    }

    assert!(matches!(
        boxes.set(AccountId(9999), &cleared).await,
        Err(StorageError::NotFound { .. })
    ));
    assert!(matches!(
        boxes.get(AccountId(9999)).await,
        Err(StorageError::NotFound { .. })
    ));

    assert_invalid(boxes.set_pin(id, Some("12a4")).await, "voicemail pin");
    boxes.set_pin(id, Some("4321")).await.unwrap();
    let with_pin = boxes.get(id).await.unwrap();
    assert!(with_pin.has_pin);
    assert!(!format!("{with_pin:?}").contains("argon2"));
    assert!(boxes.verify_pin(id, "4321").await.unwrap());
    assert!(!boxes.verify_pin(id, "1234").await.unwrap());
    assert!(!boxes.verify_pin(other, "4321").await.unwrap());
    boxes.set_pin(id, None).await.unwrap();
    assert!(!boxes.get(id).await.unwrap().has_pin);

    // Deleting the account deletes its mailbox row.
    s.accounts().delete(id).await.unwrap();
    assert!(matches!(
        boxes.get(id).await,
        Err(StorageError::NotFound { .. })
    ));
}

on_both_backends!(mailbox_defaults_settings_and_pin);
