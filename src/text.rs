//! The one table of explanatory text: `explain`, `list --explain`, the man page
//! and README all read it.

use crate::state::TcpState;

/// One line: what a socket in this state is doing.
pub fn short(s: TcpState) -> &'static str {
    match s {
        TcpState::Established => "open; data flows both ways",
        TcpState::SynSent => "connecting: SYN sent, waiting for the peer's SYN-ACK",
        TcpState::SynRecv => "half-open: SYN received, SYN-ACK sent, waiting for the final ACK",
        TcpState::FinWait1 => "we closed first: FIN sent, waiting for its ACK",
        TcpState::FinWait2 => "we closed first: our FIN is acked, waiting for the peer's FIN",
        TcpState::TimeWait => "we closed first and it is finished; the tuple is held for 60 s",
        TcpState::Close => "closed, not yet released",
        TcpState::CloseWait => "the peer closed; our application has not closed yet",
        TcpState::LastAck => "the peer closed, then we did: waiting for the ACK of our FIN",
        TcpState::Listen => "a server socket waiting for connections",
        TcpState::Closing => "both closed at once: waiting for the ACK of our FIN",
        TcpState::NewSynRecv => "a connection request being answered (request socket)",
        TcpState::BoundInactive => "bound to a port but neither listening nor connected",
    }
}
