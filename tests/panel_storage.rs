//! The registry queries the admin panel adds, on SQLite and on PostgreSQL:
//! `Recordings::search` (filters, creation-time range, paging and the total).

mod support;

use bifrons::storage::{
    CreatedRange, NewRecording, Page, RecordingFilter, RecordingKind, Storage, Timestamp,
};

fn rec(kind: RecordingKind, owner: &str, n: u32, created: i64) -> NewRecording {
    NewRecording {
        kind,
        owner: owner.into(),
        caller: None,
        file_path: format!("{owner}/{n}.opus"),
        codec: "opus".into(),
        duration_ms: 1000,
        size_bytes: 100,
        created: Timestamp(created),
    }
}

async fn search_filters_by_fields_and_creation_time(storage: &Storage) {
    let recs = storage.recordings();
    // Ten voicemails of 1001 at t = 0, 10, ..., 90 and five room recordings at t = 5, 15, ..., 45.
    let mut all = Vec::new();
    for n in 0..10 {
        all.push(rec(RecordingKind::Voicemail, "1001", n, i64::from(n) * 10));
    }
    for n in 0..5 {
        all.push(rec(RecordingKind::Room, "room-1", n, i64::from(n) * 10 + 5));
    }
    recs.create_batch(all).await.unwrap();
    let first = recs
        .list(&RecordingFilter::default(), Page::first(1000))
        .await
        .unwrap()
        .last()
        .unwrap()
        .id;
    recs.set_heard(first, true).await.unwrap();

    let search = |filter: RecordingFilter, from: Option<i64>, to: Option<i64>, page: Page| {
        let recs = storage.recordings();
        async move {
            recs.search(
                &filter,
                CreatedRange {
                    from: from.map(Timestamp),
                    to: to.map(Timestamp),
                },
                page,
            )
            .await
            .unwrap()
        }
    };
    let any = RecordingFilter::default;
    let (rows, total) = search(any(), None, None, Page::first(1000)).await;
    assert_eq!((rows.len(), total), (15, 15));
    assert!(rows.windows(2).all(|w| w[0].id > w[1].id), "newest first");

    // [20, 50): voicemail 20, 30, 40 and rooms 25, 35, 45.
    let (rows, total) = search(any(), Some(20), Some(50), Page::first(1000)).await;
    assert_eq!(total, 6);
    assert!(rows
        .iter()
        .all(|r| (20..50).contains(&r.meta.created.as_millis())));
    let (_, total) = search(any(), Some(85), None, Page::first(1000)).await;
    assert_eq!(total, 1);
    let (_, total) = search(any(), None, Some(10), Page::first(1000)).await;
    assert_eq!(total, 2, "t = 0 and t = 5; the upper bound is excluded");

    let rooms = RecordingFilter {
        kind: Some(RecordingKind::Room),
        ..Default::default()
    };
    let (rows, total) = search(rooms.clone(), Some(10), None, Page::first(1000)).await;
    assert_eq!(total, 4);
    assert!(rows.iter().all(|r| r.meta.kind == RecordingKind::Room));

    let heard = RecordingFilter {
        heard: Some(true),
        owner: Some("1001".into()),
        ..Default::default()
    };
    let (rows, total) = search(heard, Some(0), Some(1), Page::first(1000)).await;
    assert_eq!((rows.len(), total), (1, 1));
    assert_eq!(rows[0].id, first);

    // Paging: the total stays the whole match count.
    let (rows, total) = search(
        any(),
        None,
        None,
        Page {
            offset: 12,
            limit: 5,
        },
    )
    .await;
    assert_eq!((rows.len(), total), (3, 15));
    let (rows, total) = search(
        rooms,
        None,
        None,
        Page {
            offset: 10,
            limit: 5,
        },
    )
    .await;
    assert_eq!((rows.len(), total), (0, 5));
}

on_both_backends!(search_filters_by_fields_and_creation_time);
