//! Two ranks launched by torchrun (`--standalone`, gloo on CPU) sum, broadcast and meet at a
//! barrier through LibTorch's c10d, and agree.

use std::path::PathBuf;
use std::process::Command;

/// torchrun: `SIREN_TORCHRUN`, else `$VIRTUAL_ENV/bin/torchrun`, else the checkout's `.venv`.
fn torchrun() -> PathBuf {
    if let Some(p) = std::env::var_os("SIREN_TORCHRUN") {
        return p.into();
    }
    let venv = std::env::var_os("VIRTUAL_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv"));
    let p = venv.join("bin/torchrun");
    assert!(
        p.is_file(),
        "{} is missing: the test needs pip's torch (bash scripts/setup-torch.sh), or SIREN_TORCHRUN",
        p.display()
    );
    p
}

#[test]
fn two_ranks_over_gloo_agree() {
    // torchrun leaves a log folder in TMPDIR: keep it under the build's own scratch folder.
    let scratch = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("torchrun");
    std::fs::create_dir_all(&scratch).unwrap();
    let out = Command::new(torchrun())
        .args(["--standalone", "--nproc_per_node=2", "--no-python"])
        .arg(env!("CARGO_BIN_EXE_siren-dist-selftest"))
        .env("TMPDIR", &scratch)
        .output()
        .expect("running torchrun");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprintln!("{stdout}");
    assert!(out.status.success(), "torchrun failed:\n{stdout}\n{stderr}");
    for rank in 0..2 {
        assert!(
            stdout.contains(&format!("rank {rank} of 2: ok")),
            "no line from rank {rank}:\n{stdout}\n{stderr}"
        );
    }
    assert!(stdout.contains("torchrun's agent store"), "{stdout}");
}

/// A port nothing listens on now.
fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port().to_string()
}

/// The self-test as rank `rank` of 2, started with the variables a launcher sets but no
/// torchrun agent (rank 0 hosts the store on `port`).
fn by_hand(rank: usize, port: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_siren-dist-selftest"));
    c.env_remove("TORCHELASTIC_USE_AGENT_STORE").envs([
        ("WORLD_SIZE", "2"),
        ("RANK", &rank.to_string()),
        ("MASTER_ADDR", "127.0.0.1"),
        ("MASTER_PORT", port),
    ]);
    c
}

#[test]
fn without_an_agent_rank_0_hosts_the_store() {
    // Two processes started by hand with the variables a launcher sets, no torchrun agent.
    let port = free_port();
    let children: Vec<_> = (0..2)
        .map(|rank| {
            by_hand(rank, &port)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (rank, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "rank {rank}:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains(&format!("rank {rank} of 2: ok")),
            "{stdout}"
        );
        assert!(!stdout.contains("agent store"), "{stdout}");
    }
}

#[test]
fn a_peer_that_never_comes_is_a_timeout_error_not_a_hang_or_an_abort() {
    let port = free_port();
    let t = std::time::Instant::now();
    // Rank 0 of 2, alone.
    let out = by_hand(0, &port)
        .env("SIREN_DIST_TIMEOUT_S", "3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("c10d joining the process group") && stderr.contains("rank 0 of 2"),
        "{stderr}"
    );
    assert!(t.elapsed().as_secs() < 60, "took {:?}", t.elapsed());
}

#[test]
fn a_process_not_launched_says_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_siren-dist-selftest"))
        .env_remove("WORLD_SIZE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not launched by torchrun"));
}
