//! Where output goes: stdout, or a file replaced atomically so that a reader
//! (node_exporter's textfile collector, a script) never sees it half-written.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A destination for a command's output.
pub enum Output {
    Stdout(BufWriter<io::Stdout>),
    File {
        tmp: BufWriter<tempfile::NamedTempFile>,
        path: PathBuf,
    },
    /// A FIFO, terminal or device (`-o /dev/stdout`): written in place, since
    /// renaming a file over it would replace the device node itself.
    Special(BufWriter<fs::File>),
}

impl Output {
    /// Opens stdout, or a temporary file next to `path`. Opening first means an
    /// unwritable destination fails before any work is done.
    pub fn open(path: Option<&Path>) -> Result<Output> {
        let Some(path) = path else {
            return Ok(Output::Stdout(BufWriter::with_capacity(
                64 * 1024,
                io::stdout(),
            )));
        };
        if path.as_os_str().is_empty() {
            return Err(crate::exit::UsageError("--output '': empty file name".into()).into());
        }
        if path.is_dir() {
            return Err(crate::exit::UsageError(format!(
                "--output: '{}' is a directory; give a file name",
                path.display()
            ))
            .into());
        }
        if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
            let f = fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(|| format!("cannot write '{}'", path.display()))?;
            return Ok(Output::Special(BufWriter::new(f)));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| {
                format!(
                    "cannot write '{}': creating a temporary file in '{}'",
                    path.display(),
                    dir.display()
                )
            })?;
        Ok(Output::File {
            tmp: BufWriter::new(tmp),
            path: path.to_path_buf(),
        })
    }

    pub fn is_terminal(&self) -> bool {
        match self {
            Output::Stdout(_) => io::IsTerminal::is_terminal(&io::stdout()),
            Output::File { .. } => false,
            Output::Special(f) => io::IsTerminal::is_terminal(f.get_ref()),
        }
    }

    /// Flushes, and for a file: syncs and renames it into place. Dropping an
    /// `Output` without finishing removes the temporary file.
    pub fn finish(self) -> Result<()> {
        match self {
            Output::Stdout(mut w) => w.flush().context("writing to stdout"),
            Output::Special(mut w) => w.flush().context("writing the output"),
            Output::File { tmp, path } => {
                let tmp = tmp
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .context("writing the temporary file")?;
                // Keep the mode of the file we replace; a new file is world-readable
                // (0644) so a collector running as another user can read it.
                let mode = fs::metadata(&path)
                    .map(|m| m.permissions().mode() & 0o7777)
                    .unwrap_or(0o644);
                fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))
                    .with_context(|| format!("setting permissions on {}", tmp.path().display()))?;
                tmp.as_file()
                    .sync_all()
                    .context("syncing the temporary file")?;
                tmp.persist(&path).map_err(|e| e.error).with_context(|| {
                    format!("renaming the temporary file onto '{}'", path.display())
                })?;
                Ok(())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(w) => w.write(buf),
            Output::File { tmp, .. } => tmp.write(buf),
            Output::Special(w) => w.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.write_all(buf),
            Output::File { tmp, .. } => tmp.write_all(buf),
            Output::Special(w) => w.write_all(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(w) => w.flush(),
            Output::File { tmp, .. } => tmp.flush(),
            Output::Special(w) => w.flush(),
        }
    }
}

/// True when the error chain holds a broken pipe: the reader went away, which is
/// not a failure (`tw-inspect list | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            // serde_json wraps the writer's error in its own type.
            || e.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_appears_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.prom");
        let mut o = Output::open(Some(&path)).unwrap();
        o.write_all(b"half").unwrap();
        assert!(!path.exists(), "nothing visible before finish");
        drop(o);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "temporary file removed on drop"
        );
        let mut o = Output::open(Some(&path)).unwrap();
        o.write_all(b"whole\n").unwrap();
        o.finish().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"whole\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn unwritable_directory_fails_early() {
        let e = Output::open(Some(Path::new("/nonexistent-dir/x.prom")))
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("/nonexistent-dir/x.prom"));
    }
}
