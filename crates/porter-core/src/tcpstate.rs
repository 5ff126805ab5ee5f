//! TCP states as the kernel numbers them, and which of them hold a 4-tuple (what
//! [`crate::HostSockets`] counts per destination).

/// A TCP state as the kernel numbers it (`include/net/tcp_states.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    /// `ESTABLISHED` (1).
    Established = 1,
    /// `SYN_SENT` (2): an outgoing connect waiting for the peer's answer.
    SynSent,
    /// `SYN_RECV` (3; and `NEW_SYN_RECV`, 12, a request not yet a socket).
    SynRecv,
    /// `FIN_WAIT1` (4).
    FinWait1,
    /// `FIN_WAIT2` (5).
    FinWait2,
    /// `TIME_WAIT` (6): closed by this side first; holds its 4-tuple for 60 s.
    TimeWait,
    /// `CLOSE` (7): no connection; holds no 4-tuple.
    Close,
    /// `CLOSE_WAIT` (8): the peer closed first, this side has not.
    CloseWait,
    /// `LAST_ACK` (9).
    LastAck,
    /// `LISTEN` (10).
    Listen,
    /// `CLOSING` (11).
    Closing,
}

impl TcpState {
    /// The states that hold a 4-tuple, in the kernel's order: what a destination's
    /// [`Destination::states`](crate::Destination::states) counts.
    pub const HOLDING: [TcpState; 9] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Closing,
    ];

    /// The state numbered `n` by the kernel (`NEW_SYN_RECV` is read as `SYN_RECV`).
    pub fn from_kernel(n: u8) -> Option<Self> {
        Some(match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 | 12 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            _ => return None,
        })
    }

    /// The name in lower case, as `ss` writes it with `_`: `established`, `time_wait`, ...
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "established",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::FinWait1 => "fin_wait1",
            TcpState::FinWait2 => "fin_wait2",
            TcpState::TimeWait => "time_wait",
            TcpState::Close => "close",
            TcpState::CloseWait => "close_wait",
            TcpState::LastAck => "last_ack",
            TcpState::Listen => "listen",
            TcpState::Closing => "closing",
        }
    }

    /// The index of a holding state in [`TcpState::HOLDING`].
    pub(crate) fn holding_index(self) -> Option<usize> {
        TcpState::HOLDING.iter().position(|&s| s == self)
    }
}

/// The kernel's state mask for every state read: those of [`TcpState::HOLDING`] and
/// `LISTEN` (`NEW_SYN_RECV` included).
pub(crate) fn state_mask() -> u32 {
    TcpState::HOLDING
        .iter()
        .chain(&[TcpState::Listen])
        .fold(1 << 12, |mask, &s| mask | 1 << s as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_mask_asks_for_every_state_that_holds_a_tuple_and_listen() {
        let mask = state_mask();
        for n in 0..16u8 {
            let wanted = TcpState::from_kernel(n).is_some_and(|s| s != TcpState::Close);
            assert_eq!(mask & (1 << n) != 0, wanted, "state {n}");
        }
    }
}
