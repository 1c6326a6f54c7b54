//! File helpers shared by every layer (the engine, plots, run folders): nothing here depends
//! on the rest of the crate but its error type.

use std::path::Path;

use crate::{EngineError, Result};

/// Writes `bytes` to `path` atomically, so a crash never leaves a half-written artifact: to a
/// temporary file beside it whose name no other writer uses (the file name, the process and a
/// counter), flushed to disk, then renamed over `path`; the folder is synced after the rename
/// where the platform allows it. On failure the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(EngineError::io(&tmp, e));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(EngineError::io(path, e));
    }
    // The rename itself reaches the disk with the folder's entry (not possible everywhere).
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writers_of_one_file_never_collide_or_leave_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.json");
        let payloads: Vec<Vec<u8>> = (0..6u8).map(|k| vec![b'a' + k; 200_000]).collect();
        std::thread::scope(|s| {
            for p in &payloads {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(path, p).unwrap();
                    }
                });
            }
        });
        let got = std::fs::read(&path).unwrap();
        assert!(
            payloads.contains(&got),
            "a mixed file of {} bytes",
            got.len()
        );
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["metrics.json"]);
    }

    #[test]
    fn a_failed_write_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/out.json");
        let e = write_atomic(&path, b"x").unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
