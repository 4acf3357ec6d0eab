//! A reader that goes away early is not an error: `tw-inspect list | head -1`
//! exits 0 and says nothing, in every format.

use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_tw-inspect");

/// Enough listeners that `--sockets` output is far larger than a pipe
/// buffer (64 KiB), so the writer is still writing when `head` leaves.
fn many_sockets() -> Vec<TcpListener> {
    (0..400)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect()
}

#[test]
fn head_closing_the_pipe_is_quiet() {
    let _l = many_sockets();
    for format in ["table", "json", "ndjson", "csv"] {
        let script = format!(
            "set -o pipefail; \"$0\" list --sockets --format {format} | head -1 >/dev/null"
        );
        let out = Command::new("bash")
            .args(["-c", &script, BIN])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The read end is closed before the program writes a byte: every write
/// fails with EPIPE (SIGPIPE is ignored by the Rust runtime), for summaries
/// and socket lists alike.
#[test]
fn closed_pipe_before_the_first_write_is_quiet() {
    for args in [
        &["list"][..],
        &["list", "--format", "json"],
        &["list", "--format", "csv"],
        &["list", "--sockets"],
        &["list", "--sockets", "--format", "json"],
        &["list", "--format", "ndjson"],
        &["list", "--sockets", "--format", "ndjson"],
        &["list", "--sockets", "--format", "csv", "--explain"],
        &["list", "--sockets", "--sort", "expires"],
    ] {
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
        drop(read);
        let out = Command::new(BIN)
            .args(args)
            .stdout(Stdio::from(write))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Writing to a full disk is a real failure, unlike a closed pipe: exit 1
/// with one line.
#[test]
fn full_device_is_a_failure() {
    let out = Command::new(BIN)
        .args(["list", "--sockets", "--format", "json"])
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("No space left"), "{err}");
}
