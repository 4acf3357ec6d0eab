//! CSV (RFC 4180): a header line, then one record per group or per socket.

use std::io::Write;

use anyhow::Result;

use crate::report::ListReport;

/// Quotes a field when it holds a comma, quote or line break.
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Without `--sockets`: the groups. With it: the sockets.
pub fn list(w: &mut dyn Write, r: &ListReport, explain: bool) -> Result<()> {
    if let Some(sockets) = &r.sockets {
        let mut head = "state,local,local_port,peer,peer_port,timer,expires_ms,retransmits,uid,inode,cookie,orphaned,pid,process".to_string();
        if explain {
            head.push_str(",meaning");
        }
        writeln!(w, "{head}")?;
        for s in sockets {
            let (pid, comm) = match &s.process {
                Some(p) => (p.pid.to_string(), field(&p.comm)),
                None => (String::new(), String::new()),
            };
            write!(
                w,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                s.state,
                s.local,
                s.local_port,
                s.peer,
                s.peer_port,
                s.timer,
                s.expires_ms,
                s.retransmits,
                s.uid,
                s.inode,
                s.cookie,
                s.orphaned,
                pid,
                comm
            )?;
            if explain {
                let st = crate::state::TcpState::parse(s.state);
                write!(w, ",{}", field(st.map(crate::text::short).unwrap_or("")))?;
            }
            writeln!(w)?;
        }
        return Ok(());
    }
    writeln!(
        w,
        "state,peer,peer_port,local,local_port,count,soonest_ms,latest_ms"
    )?;
    for g in &r.groups {
        writeln!(
            w,
            "{},{},{},{},{},{},{},{}",
            opt(g.state),
            opt(g.peer.as_deref()),
            opt(g.peer_port),
            opt(g.local.as_deref()),
            opt(g.local_port),
            g.count,
            opt(g.soonest_ms),
            opt(g.latest_ms)
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(field("nginx"), "nginx");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
