//! Misbehaviour scores (Core's `Misbehaving` before 0.28's discouragement):
//! every offence adds points, and a peer that reaches [`BAN_THRESHOLD`] is
//! disconnected and banned.

/// Points at which a peer is banned.
pub const BAN_THRESHOLD: u32 = 100;

/// Core's `-bantime` default: 24 hours.
pub const DEFAULT_BAN_SECONDS: i64 = 24 * 60 * 60;

/// Something a peer did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehavior {
    /// Bytes that are not a message of our network (wrong magic, bad command).
    Garbage,
    /// A message larger than the limit.
    Oversized,
    /// A payload that fails its checksum.
    BadChecksum,
    /// A payload that does not decode.
    Malformed,
    /// A message other than `version` before the handshake, or a second `version`.
    OutOfOrder,
    /// A block that breaks a consensus rule.
    InvalidBlock,
    /// A header that breaks a consensus rule, or builds on an invalid one.
    InvalidHeader,
    /// A `headers` message whose headers do not chain.
    NonContinuousHeaders,
    /// More than 2,000 headers in one message.
    TooManyHeaders,
    /// Ten `headers` messages in a row that do not connect to our index.
    UnconnectingHeaders,
    /// More than 50,000 inventory items, or 1,000 addresses.
    OversizedList,
    /// A compact block or `blocktxn` that cannot be right.
    InvalidCompactBlock,
    /// `getblocktxn` for indexes the block does not have.
    OutOfBoundsBlockTxn,
}

impl Misbehavior {
    /// The points this offence costs (Core's historical values).
    pub fn score(self) -> u32 {
        match self {
            Misbehavior::Garbage
            | Misbehavior::Oversized
            | Misbehavior::BadChecksum
            | Misbehavior::Malformed
            | Misbehavior::InvalidBlock
            | Misbehavior::InvalidHeader
            | Misbehavior::NonContinuousHeaders
            | Misbehavior::InvalidCompactBlock
            | Misbehavior::OutOfBoundsBlockTxn => 100,
            Misbehavior::OutOfOrder
            | Misbehavior::TooManyHeaders
            | Misbehavior::UnconnectingHeaders
            | Misbehavior::OversizedList => 20,
        }
    }

    /// Why, in a few words, for the log and `listbanned`.
    pub fn reason(self) -> &'static str {
        match self {
            Misbehavior::Garbage => "garbage on the wire",
            Misbehavior::Oversized => "oversized message",
            Misbehavior::BadChecksum => "message checksum mismatch",
            Misbehavior::Malformed => "malformed message",
            Misbehavior::OutOfOrder => "message out of handshake order",
            Misbehavior::InvalidBlock => "invalid block",
            Misbehavior::InvalidHeader => "invalid header",
            Misbehavior::NonContinuousHeaders => "non-continuous headers sequence",
            Misbehavior::TooManyHeaders => "headers message size",
            Misbehavior::UnconnectingHeaders => "too many unconnecting headers",
            Misbehavior::OversizedList => "oversized inventory or address list",
            Misbehavior::InvalidCompactBlock => "invalid compact block",
            Misbehavior::OutOfBoundsBlockTxn => "getblocktxn with out-of-bounds indexes",
        }
    }
}

/// What to do after an offence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the connection.
    Tolerate,
    /// Disconnect and ban.
    Ban,
}

/// One peer's accumulated score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Score(u32);

impl Score {
    /// Adds an offence and says whether the peer is now to be banned.
    pub fn add(&mut self, offence: Misbehavior) -> Verdict {
        self.0 = self.0.saturating_add(offence.score());
        if self.0 >= BAN_THRESHOLD {
            Verdict::Ban
        } else {
            Verdict::Tolerate
        }
    }

    /// Points so far.
    pub fn points(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severe_offences_ban_at_once_and_minor_ones_add_up() {
        for offence in [Misbehavior::Garbage, Misbehavior::Oversized, Misbehavior::InvalidBlock, Misbehavior::Malformed]
        {
            assert_eq!(Score::default().add(offence), Verdict::Ban, "{offence:?}");
        }
        let mut score = Score::default();
        for _ in 0..4 {
            assert_eq!(score.add(Misbehavior::UnconnectingHeaders), Verdict::Tolerate);
        }
        assert_eq!(score.add(Misbehavior::OversizedList), Verdict::Ban);
        assert_eq!(score.points(), 100);
    }
}
