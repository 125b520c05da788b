//! Header rules: proof of work (context-free), then difficulty, time and
//! version against the header's parent.

use bitcoin::block::Header;

use super::{BlockError, MAX_FUTURE_BLOCK_TIME};
use crate::params::{ChainParams, DifficultyRule};
use crate::pow::{self, Parent};

/// Core's `CheckBlockHeader`: the hash meets the header's own bits.
pub fn check_header(header: &Header, params: &ChainParams) -> Result<(), BlockError> {
    pow::check_proof_of_work(header, params.pow_limit).map(|_| ()).map_err(|_| BlockError::HighHash)
}

/// What a header's checks need to know of its parent and of the clock.
pub struct HeaderContext<'a> {
    /// The parent and its ancestors.
    pub parent: Parent<'a>,
    /// Median time past of the parent (the median of its last 11 times).
    pub median_time_past: u32,
    /// The node's adjusted clock, in Unix seconds.
    pub now: i64,
}

/// Core's `ContextualCheckBlockHeader`.
pub fn contextual_check_header(
    header: &Header,
    ctx: &HeaderContext<'_>,
    params: &ChainParams,
) -> Result<(), BlockError> {
    let height = ctx.parent.height + 1;
    let expected = pow::next_work_required(params, &ctx.parent, header.time);
    if header.bits != expected {
        return Err(BlockError::BadDiffBits { got: header.bits.to_consensus(), expected: expected.to_consensus() });
    }
    if header.time <= ctx.median_time_past {
        return Err(BlockError::TimeTooOld { time: header.time, median_time_past: ctx.median_time_past });
    }
    if let DifficultyRule::Retarget { interval, bip94: true, .. } = params.difficulty {
        if height.is_multiple_of(interval) && i64::from(header.time) < i64::from(ctx.parent.header.time) - 600 {
            return Err(BlockError::TimewarpAttack);
        }
    }
    if i64::from(header.time) > ctx.now + MAX_FUTURE_BLOCK_TIME {
        return Err(BlockError::TimeTooNew { time: header.time, now: ctx.now });
    }
    let version = header.version.to_consensus();
    if (version < 2 && height >= params.bip34_height)
        || (version < 3 && height >= params.bip66_height)
        || (version < 4 && height >= params.bip65_height)
    {
        return Err(BlockError::BadVersion(version));
    }
    Ok(())
}
