//! Recordings end to end: Opus packets from a real encoder go through the recording service
//! into an Ogg file on disk and a row in a SQLite registry; ffprobe/ffmpeg (installed with
//! the media test tools) must decode the file with the right duration, also when packets were
//! lost and when the writer never finished (a crash).

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use bifrons::services::recording::ogg::OggOpusWriter;
use bifrons::services::recording::{RecordingError, RecordingService};
use bifrons::storage::{RecordingFilter, RecordingKind, Storage};
use bytes::Bytes;
use support::media::{ffprobe, mean_volume_db, sine_packets, FRAME};

async fn registry(dir: &Path) -> Storage {
    Storage::open(&format!("sqlite://{}", dir.join("db").display()))
        .await
        .unwrap()
}

/// Waits for `check` with a hang guard; not a timing assertion.
async fn eventually<T>(mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn three_seconds_of_sine_decode_as_opus_and_are_registered() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = registry(tmp.path()).await;
    let service = RecordingService::start(tmp.path().join("rec"), storage.clone()).unwrap();
    let rec = service
        .start_opus(RecordingKind::Echotest, "alice", "echotest/alice/1.opus")
        .await
        .unwrap();
    assert_eq!(rec.row().meta.duration_ms, 0, "registered at start");
    // Timestamps start 1.5 s before they wrap around.
    let start = u32::MAX - 75 * FRAME as u32 + 1;
    for (i, p) in sine_packets(3).into_iter().enumerate() {
        assert!(rec.push(Bytes::from(p), start.wrapping_add((i * FRAME) as u32)));
    }
    let row = rec.finish().await.unwrap();

    let path = tmp.path().join("rec/echotest/alice/1.opus");
    let probe = ffprobe(&path);
    assert_eq!(probe.codec, "opus");
    assert_eq!(probe.channels, 1);
    assert!(
        (probe.duration_s - 3.0).abs() <= 0.1,
        "duration {}",
        probe.duration_s
    );
    // The tone itself came through: a sine of amplitude 8000 is at about -15.3 dBFS.
    let level = mean_volume_db(&path);
    eprintln!("mean volume {level} dBFS");
    assert!((-17.0..=-14.0).contains(&level), "mean volume {level} dB");

    assert_eq!(row.meta.kind, RecordingKind::Echotest);
    assert_eq!(row.meta.duration_ms, 3000);
    assert_eq!(row.meta.size_bytes, std::fs::metadata(&path).unwrap().len());
    assert_eq!(row.meta.codec, "opus");
    assert_eq!(storage.recordings().get(row.id).await.unwrap(), row);
    let stats = service.stats();
    assert_eq!((stats.open, stats.dropped, stats.invalid), (0, 0, 0));
    service.shutdown().await;
}

#[tokio::test]
async fn lost_packets_keep_the_timing_and_still_decode() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = registry(tmp.path()).await;
    let service = RecordingService::start(tmp.path().join("rec"), storage).unwrap();
    let rec = service
        .start_opus(RecordingKind::Call, "1001", "calls/lossy.opus")
        .await
        .unwrap();
    for (i, p) in sine_packets(3).into_iter().enumerate() {
        // 500 ms lost in the middle, and one packet in ten after that.
        if (50..75).contains(&i) || (i > 75 && i % 10 == 0 && i < 149) {
            continue;
        }
        rec.push(Bytes::from(p), (i * FRAME) as u32);
    }
    let row = rec.finish().await.unwrap();
    assert_eq!(row.meta.duration_ms, 3000, "gaps count as time");
    let probe = ffprobe(&tmp.path().join("rec/calls/lossy.opus"));
    assert!(
        (probe.duration_s - 3.0).abs() <= 0.1,
        "duration {}",
        probe.duration_s
    );
    service.shutdown().await;
}

#[test]
fn file_of_a_writer_dropped_without_finish_still_decodes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("crash.opus");
    let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut w = OggOpusWriter::new(file, 42, "test");
    for (i, p) in sine_packets(3).into_iter().enumerate() {
        w.push(&p, (i * FRAME) as u32).unwrap();
    }
    // A crash: no end-of-stream page, the page in progress never written.
    drop(w);
    let probe = ffprobe(&path);
    assert_eq!(probe.codec, "opus");
    assert!(
        probe.duration_s > 2.5 && probe.duration_s <= 3.0,
        "everything but the last page survives: {}",
        probe.duration_s
    );
}

#[tokio::test]
async fn recorder_dropped_without_finish_is_closed_and_registered_in_the_background() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = registry(tmp.path()).await;
    let service = RecordingService::start(tmp.path().join("rec"), storage.clone()).unwrap();
    let rec = service
        .start_opus(RecordingKind::Room, "room1", "rooms/room1.opus")
        .await
        .unwrap();
    let id = rec.row().id;
    let sink = rec.sink();
    for (i, p) in sine_packets(1).into_iter().enumerate() {
        sink.push(Bytes::from(p), (i * FRAME) as u32);
    }
    drop(rec);
    let row = eventually(async || {
        let r = storage.recordings().get(id).await.unwrap();
        (r.meta.size_bytes > 0).then_some(r)
    })
    .await;
    assert_eq!(row.meta.duration_ms, 1000);
    let probe = ffprobe(&tmp.path().join("rec/rooms/room1.opus"));
    assert!((probe.duration_s - 1.0).abs() <= 0.1, "{probe:?}");
    assert_eq!(service.stats().open, 0);
    service.shutdown().await;
}

#[tokio::test]
async fn empty_recordings_and_refused_starts_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = registry(tmp.path()).await;
    // A queue of 0 packets: every push is dropped and counted.
    let service =
        RecordingService::start_with_capacity(tmp.path().join("rec"), storage.clone(), 0).unwrap();
    let rec = service
        .start_opus(RecordingKind::Voicemail, "1001", "vm/1001/a.opus")
        .await
        .unwrap();
    for i in 0..10u32 {
        assert!(!rec.push(Bytes::from_static(&[0xF8, 0xFF, 0xFE]), i * 960));
    }
    assert_eq!(rec.sink().dropped(), 10);
    assert_eq!(service.stats().dropped, 10);
    assert!(matches!(rec.finish().await, Err(RecordingError::Empty)));
    assert!(!tmp.path().join("rec/vm/1001/a.opus").exists());
    assert_eq!(
        storage
            .recordings()
            .count(&RecordingFilter::default())
            .await
            .unwrap(),
        0
    );

    for bad in ["../escape.opus", "/abs.opus", "a//b.opus"] {
        assert!(
            matches!(
                service
                    .start_opus(RecordingKind::Voicemail, "1001", bad)
                    .await,
                Err(RecordingError::Storage(_))
            ),
            "{bad}"
        );
    }
    // A file already on disk is never overwritten, and the row made for it is taken back.
    std::fs::write(tmp.path().join("rec/taken.opus"), b"keep").unwrap();
    assert!(matches!(
        service
            .start_opus(RecordingKind::Voicemail, "1001", "taken.opus")
            .await,
        Err(RecordingError::Write { .. })
    ));
    assert_eq!(
        std::fs::read(tmp.path().join("rec/taken.opus")).unwrap(),
        b"keep"
    );
    assert_eq!(
        storage
            .recordings()
            .count(&RecordingFilter::default())
            .await
            .unwrap(),
        0
    );
    service.shutdown().await;
    assert!(matches!(
        service
            .start_opus(RecordingKind::Voicemail, "1001", "late.opus")
            .await,
        Err(RecordingError::Stopped)
    ));
}
