//! Forwarding rank output line by line, so that lines of different ranks never interleave.

use std::io::{BufRead, BufReader, Read, Write};
use std::thread::JoinHandle;

/// Longest chunk forwarded at once when a rank writes a very long line.
const MAX_CHUNK: u64 = 64 * 1024;

/// Which of zrun's streams to write to.
#[derive(Debug, Clone, Copy)]
pub enum Sink {
    /// zrun's stdout.
    Stdout,
    /// zrun's stderr.
    Stderr,
}

/// Copy `src` to `sink` line by line (each line written with one locked write), prefixed
/// with `prefix`. Returns when `src` reaches end of file.
pub fn forward<R: Read + Send + 'static>(
    src: R,
    sink: Sink,
    prefix: String,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("zrun-output".into())
        .spawn(move || {
            let mut r = BufReader::new(src);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.by_ref().take(MAX_CHUNK).read_until(b'\n', &mut buf) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => return,
                }
                let mut line = Vec::with_capacity(prefix.len() + buf.len() + 1);
                line.extend_from_slice(prefix.as_bytes());
                line.extend_from_slice(&buf);
                if line.last() != Some(&b'\n') {
                    line.push(b'\n');
                }
                let res = match sink {
                    Sink::Stdout => {
                        let mut o = std::io::stdout().lock();
                        o.write_all(&line).and_then(|_| o.flush())
                    }
                    Sink::Stderr => {
                        let mut o = std::io::stderr().lock();
                        o.write_all(&line).and_then(|_| o.flush())
                    }
                };
                if res.is_err() {
                    // Our own output is gone (closed pipe): keep draining so the rank never blocks.
                    continue;
                }
            }
        })
}
