//! The operations a thread draws: on its own flows of the exact registry, the model's
//! ([`ModelOp`], shared with the property test), and on the flows every thread shares.

use crate::model::ModelOp;
use crate::options::Rng;

/// The registries of a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Exact,
    Free,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    /// On a flow of the thread's own, on the exact registry, against the model.
    Own(ModelOp),
    // On a flow every thread uses.
    SharedAllocate {
        flow: usize,
        lease: bool,
    },
    SharedRelease {
        flow: usize,
        pick: u64,
        aging: bool,
    },
    SharedMark {
        flow: usize,
        slot: usize,
    },
    SharedInspect {
        which: Which,
    },
    FreeAdvance {
        us: u64,
    },
}

pub(crate) const PRIVATE_FLOWS: usize = 2;
/// Shared flows: the first half on the exact registry, the rest on the free one.
pub(crate) const SHARED_FLOWS: usize = 4;

pub(crate) fn shared_which(flow: usize) -> Which {
    if flow < SHARED_FLOWS / 2 {
        Which::Exact
    } else {
        Which::Free
    }
}

/// An operation on the thread's own flows (35 of 55) or on the shared ones (20 of 55).
pub(crate) fn draw_op(rng: &mut Rng, span: u16) -> Op {
    let flow = rng.below(PRIVATE_FLOWS as u64) as usize;
    let shared = rng.below(SHARED_FLOWS as u64) as usize;
    let own = |op| Op::Own(op);
    match rng.below(55) {
        0..=9 => own(ModelOp::Allocate {
            flow,
            lease: rng.below(4) == 0,
        }),
        10..=17 => own(ModelOp::Release {
            flow,
            pick: rng.next(),
            aging: rng.coin(),
        }),
        18..=19 => own(ModelOp::DoubleRelease {
            flow,
            pick: rng.next(),
            first_aging: rng.coin(),
            second_aging: rng.coin(),
        }),
        20..=21 => own(ModelOp::ReleaseAny {
            flow,
            offset: rng.below(u64::from(span) + 4) as u16,
            aging: rng.coin(),
        }),
        22..=23 => own(ModelOp::MarkInUse {
            flow,
            offset: rng.below(u64::from(span) + 6) as u16,
        }),
        24 => own(ModelOp::DropHandle { flow }),
        25..=26 => own(ModelOp::Check),
        27 => own(ModelOp::Counts),
        28..=31 => own(ModelOp::Advance { us: rng.below(60) }),
        32..=34 => own(ModelOp::ToNextDeadline { before: rng.coin() }),
        35..=42 => Op::SharedAllocate {
            flow: shared,
            lease: rng.below(4) == 0,
        },
        43..=50 => Op::SharedRelease {
            flow: shared,
            pick: rng.next(),
            aging: rng.coin(),
        },
        51 => Op::SharedMark {
            flow: shared,
            slot: rng.below(6) as usize,
        },
        52 => Op::SharedInspect {
            which: if rng.coin() { Which::Exact } else { Which::Free },
        },
        _ => Op::FreeAdvance { us: rng.below(60) },
    }
}
